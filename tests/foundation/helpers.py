"""Small helpers shared by the foundation tests."""

from __future__ import annotations

import gzip
import json
import os
import subprocess
import sys
from pathlib import Path

VENV_BIN = Path(sys.executable).parent


def dolma(*args: str, env: dict | None = None, timeout: int = 180) -> subprocess.CompletedProcess:
    """Run the real `dolma` console script."""
    return subprocess.run([str(VENV_BIN / "dolma"), *args], capture_output=True, text=True, timeout=timeout,
                          env={**os.environ, **(env or {})})


def read_jsonl_gz(path: Path) -> list[dict]:
    with gzip.open(path, "rt", encoding="utf-8") as fh:
        return [json.loads(line) for line in fh if line.strip()]


def write_jsonl_gz(path: Path, records: list[dict]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with gzip.open(path, "wt", encoding="utf-8") as fh:
        for rec in records:
            fh.write(json.dumps(rec) + "\n")


def tree_bytes(root: Path) -> dict[str, bytes]:
    """Every file under root (relative path -> bytes), run summaries and settings journals excluded."""
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*"))
            if p.is_file() and not p.name.startswith((".summary", ".dolma-tools-"))}
