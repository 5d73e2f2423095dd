"""`dolma stat --attributes`: Dolma's attribute histograms, compared with Dolma 1.2.1's own output."""

from __future__ import annotations

import gzip
import json
import re
from pathlib import Path

from click.testing import CliRunner

from dolma_tools.cli import cli
from dolma_tools.stats.attributes import AttributeHistograms, bucket_key, bucket_value

DATA = Path(__file__).resolve().parents[1] / "data" / "stats" / "dolma_stat"
GLOB = str(DATA / "attributes" / "exp" / "*.jsonl.gz")


def _records() -> list[dict]:
    out = []
    for path in sorted((DATA / "attributes" / "exp").glob("*.jsonl.gz")):
        with gzip.open(path, "rt") as fh:
            out.extend(json.loads(line) for line in fh)
    return out


def test_stat_matches_dolma_summaries(tmp_path: Path, ray_session):
    result = CliRunner().invoke(cli, ["stat", "--attributes", GLOB, "--report", str(tmp_path), "--processes", "2"])
    assert result.exit_code == 0, result.output
    with gzip.open(tmp_path / "summaries.jsonl.gz", "rt") as fh:
        ours = {r["name"]: r for r in map(json.loads, fh)}
    with gzip.open(DATA / "expected_summaries.jsonl.gz", "rt") as fh:
        dolma = {r["name"]: r for r in map(json.loads, fh)}
    assert ours == dolma
    for record in ours.values():
        assert len(record["bins"]) == len(record["counts"]) + 1


def test_stat_console_tables_and_counts():
    result = CliRunner().invoke(cli, ["stat", "--attributes", GLOB, "--debug", "--total"])
    assert result.exit_code == 0, result.output
    records = _records()
    spans = {}
    for r in records:
        for key, values in r["attributes"].items():
            spans.setdefault(key, []).extend(values or [[0, 0, 0.0]])
    tables = {}
    current = None
    for line in result.output.splitlines():
        if line and not line.startswith(" "):
            current = tables.setdefault(line, [])
        elif current is not None and re.match(r"\s+\[", line):
            current.append(int(line.split()[-1].replace(",", "")))
    assert set(tables) == {f"{k}/{kind}" for k in spans for kind in ("score", "length")}
    for key, values in spans.items():
        for kind in ("score", "length"):
            counts = tables[f"{key}/{kind}"]
            assert sum(counts) == len(values)
            assert len(counts) <= 10
    # 10 equal-count bins: 200 distinct lengths give 20 per bin
    assert tables["exp__char_length_v1__length/length"] == [20] * 10 or \
        max(tables["exp__char_length_v1__length/length"]) <= 22
    assert "sum ← sum/total → total" in result.output


def test_stat_clips_fasttext_labels_and_counts_empty_spans():
    hists = AttributeHistograms()
    hists.add_record({"a__ft__label__en": [[0, 5, 1.00002]], "b__pii__doc": []})
    label = hists.histograms["a__ft__label__en/score"]
    assert label.total == 1.0 and list(label.buckets) == [bucket_key(1.0)]
    empty = hists.histograms["b__pii__doc/score"]
    assert empty.count == 1 and hists.histograms["b__pii__doc/length"].total == 0
    assert abs(bucket_value(bucket_key(0.123456789)) - 0.123456789) < 1e-5
