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
    report = run_mix(cfg, progress=False)
    return [Path(p) for p in report["streams"][name]["shards"]]


@pytest.mark.parametrize("name", CONFIGS)
def test_dolma_mixer_configs_match_dolma(name, tmp_path, monkeypatch):
    expected = read_jsonl(DATA / "expected" / f"{name}.json.gz")
    # shuffle: false (Dolma's strict filter mode) writes each input to documents/<its path>, in
    # order, so the outputs concatenated are Dolma's shard line for line
    outputs = run_config(name, tmp_path / "ordered", monkeypatch, "--no-shuffle")
    root = tmp_path / "ordered" / name
    assert [p.relative_to(root).as_posix() for p in outputs] == \
        ["documents/web/web-0000.json.gz", "documents/web/web-0001.json.gz"]
    assert [d for p in outputs for d in read_jsonl(p)] == expected
    # Dolma's output keys are sorted alphabetically at every level; so are ours
    first_line = gzip.open(outputs[0], "rt").readline()
    assert list(json.loads(first_line)) == sorted(json.loads(first_line))
    # with the default shuffle: one shard holding the same documents, in a seeded order
    shards = run_config(name, tmp_path / "shuffled", monkeypatch)
    assert [p.name for p in shards] == [f"{name}-0000.jsonl.gz"]
    key = lambda d: d["metadata"]["provenance"]  # noqa: E731
    assert sorted(read_jsonl(shards[0]), key=key) == sorted(expected, key=key)
    # a one-document shuffle buffer keeps input order in merged shards
    ordered = run_config(name, tmp_path / "merged", monkeypatch, "--shuffle_buffer", "1")
    assert read_jsonl(ordered[0]) == expected
