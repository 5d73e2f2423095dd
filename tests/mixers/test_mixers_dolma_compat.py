"""Dolma 1.2.1's mixer test configurations give Dolma's outputs, document for document.

Inputs, configs and Dolma's outputs are committed under tests/data/mixers/ (see its README).
"""

import gzip
import json
from pathlib import Path

import pytest

from dolma_tools.config import build_config
from dolma_tools.mixers.config import MixConfig
from dolma_tools.mixers.runner import run_mix

DATA = Path(__file__).resolve().parents[1] / "data" / "mixers"
CONFIGS = ["mixer", "email-spans", "email-spans-jq", "filter-by-spans", "paragraph-spans"]


def read_jsonl(path: Path) -> list[dict]:
    with gzip.open(path, "rt") as fh:
        return [json.loads(line) for line in fh if line.strip()]


def run_config(name: str, out: Path, monkeypatch, *flags: str) -> list[Path]:
    monkeypatch.setenv("MIX_ROOT", str(DATA / "source"))
    monkeypatch.setenv("MIX_OUT", str(out))
    cfg = build_config(MixConfig, str(DATA / "configs" / f"{name}.yaml"), ["--debug", *flags])
    run_mix(cfg, progress=False)
    return sorted((out / name).glob(f"{name}-*"))


@pytest.mark.parametrize("name", CONFIGS)
def test_dolma_mixer_configs_match_dolma(name, tmp_path, monkeypatch):
    expected = read_jsonl(DATA / "expected" / f"{name}.json.gz")
    # shuffle: false keeps input order, so the match is line for line
    shards = run_config(name, tmp_path / "ordered", monkeypatch, "--no-shuffle")
    assert [p.name for p in shards] == [f"{name}-0000.jsonl.gz"]
    ordered = read_jsonl(shards[0])
    assert ordered == expected
    # Dolma's output keys are sorted alphabetically at every level; so are ours
    first_line = gzip.open(shards[0], "rt").readline()
    assert list(json.loads(first_line)) == sorted(json.loads(first_line))
    # with the default shuffle: the same documents, in a seeded order
    shuffled = read_jsonl(run_config(name, tmp_path / "shuffled", monkeypatch)[0])
    key = lambda d: d["metadata"]["provenance"]  # noqa: E731
    assert sorted(shuffled, key=key) == sorted(expected, key=key)
