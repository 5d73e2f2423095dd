"""Helpers shared by the dedupe tests."""

from __future__ import annotations

import gzip
from pathlib import Path


def read_all(root: Path, name: str) -> dict[str, list[str]]:
    """The lines of every attribute file of experiment `name` under `root`, by file name."""
    out = {}
    for path in sorted((root / "attributes" / name).glob("*.jsonl.gz")):
        with gzip.open(path, "rt") as fh:
            out[path.name] = fh.read().splitlines()
    return out
