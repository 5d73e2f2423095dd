"""`dolma stat --attributes`: Dolma's attribute histograms, compared with Dolma 1.2.1's own output."""

from __future__ import annotations

import gzip
import json
import os
import re
from pathlib import Path

import pytest
from click.testing import CliRunner

from dolma_tools.cli import cli
from dolma_tools.config import RuntimeConfig
from dolma_tools.errors import UserError
from dolma_tools.runtime import executor, map_in_parallel
from dolma_tools.stats.attributes import (
    AttributeHistograms,
    aggregate_summaries,
    bucket_key,
    bucket_value,
    console_tables,
    file_summaries,
    rebucket,
    summarize_buckets,
)
from dolma_tools.stats.runner import summary_file_order

DATA = Path(__file__).resolve().parents[1] / "data" / "stats" / "dolma_stat"
GLOB = str(DATA / "attributes" / "exp" / "*.jsonl.gz")
# three files in two directories, --bins 8: every file has more buckets than bins for some keys
FEW_BINS = Path(__file__).resolve().parent / "data" / "dolma_stat_bins"
FEW_BINS_GLOB = str(FEW_BINS / "attributes" / "exp" / "*" / "*.jsonl.gz")


def _read_summaries(path: Path) -> list[dict]:
    with gzip.open(path, "rt") as fh:
        return [json.loads(line) for line in fh]


def _dolma_console(path: Path) -> dict[str, list[tuple[str, ...]]]:
    """Rows of the rich tables Dolma printed: {title: [(value, dist, count), ...]}."""
    tables: dict[str, list] = {}
    current = None
    for line in path.read_text().splitlines():
        if re.fullmatch(r"\s*\S+/(score|length)\s*", line):
            current = tables.setdefault(line.strip(), [])
        elif line.startswith("│") and current is not None:
            current.append(tuple(cell.strip() for cell in line.strip("│").split("│")))
    return tables


def _our_console(output: str) -> dict[str, list[tuple[str, ...]]]:
    tables: dict[str, list] = {}
    current = None
    for line in output.splitlines():
        if line and not line.startswith(" "):
            current = tables.setdefault(line, [])
        elif current is not None and line.strip() and not line.strip().startswith("value"):
            current.append(tuple(re.split(r"\s{2,}", line.strip())))
    return tables


def _records() -> list[dict]:
    out = []
    for path in sorted((DATA / "attributes" / "exp").glob("*.jsonl.gz")):
        with gzip.open(path, "rt") as fh:
            out.extend(json.loads(line) for line in fh)
    return out


def test_stat_matches_dolma_summaries(tmp_path: Path, ray_session):
    result = CliRunner().invoke(cli, ["stat", "--attributes", GLOB, "--report", str(tmp_path), "--processes", "2"])
    assert result.exit_code == 0, result.output
    ours = _read_summaries(tmp_path / "summaries.jsonl.gz")
    assert ours == _read_summaries(DATA / "expected_summaries.jsonl.gz")
    for record in ours:
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
    # --total: each histogram's own sum and count (here every key has one span per record but pii)
    rows = _our_console(result.stdout)
    for key, values in spans.items():
        assert rows[f"{key}/length"][-1][1:] == ("← sum/total →", f"{len(values):,}")


def test_stat_matches_dolma_with_few_bins(tmp_path: Path):
    """Files with more buckets than --bins are summarised per file first, as Dolma does; the records
    (order, counts, edges, totals, sums and their types) and the console rows equal Dolma 1.2.1's."""
    result = CliRunner().invoke(cli, ["stat", "--attributes", FEW_BINS_GLOB, "--bins", "8", "--total",
                                      "--report", str(tmp_path), "--executor", "local", "--processes", "2"])
    assert result.exit_code == 0, result.output
    ours = _read_summaries(tmp_path / "summaries.jsonl.gz")
    dolma = _read_summaries(FEW_BINS / "expected_summaries.jsonl.gz")
    assert ours == dolma
    assert [type(r["sum"]) for r in ours] == [type(r["sum"]) for r in dolma]  # scores are floats, lengths ints
    assert _our_console(result.stdout) == _dolma_console(FEW_BINS / "expected_console.txt")


def test_stat_totals_are_per_key():
    """`--total` prints each histogram's own sum and count, formatted as Dolma does."""
    hists = AttributeHistograms()
    hists.add_record({"a": [[0, 2, 1.5]], "b": [[0, 4, 10]], "c": [[0, 1, 0.25]], "big": [[0, 1, 12345678901.5]]})
    hists.add_record({"a": [[0, 3, 2.0], [5, 6, 0.5]], "b": [], "c": [[0, 1, 0.5]]})
    records = [{"name": name, "counts": c, "bins": e, "total": h.count, "sum": h.total}
               for name, h in hists.histograms.items() for c, e in [summarize_buckets(h.buckets, 1000)]]
    rows = _our_console(console_tables(records, total=True))
    totals = {name: table[-1] for name, table in rows.items()}
    assert totals == {
        "a/score": ("4", "← sum/total →", "3"),  # 1.5 + 2.0 + 0.5
        "a/length": ("6", "← sum/total →", "3"),  # 2 + 3 + 1
        "b/score": ("10", "← sum/total →", "2"),  # 10 and the empty list's 0
        "b/length": ("4", "← sum/total →", "2"),
        "c/score": ("0.75", "← sum/total →", "2"),
        "c/length": ("2", "← sum/total →", "2"),
        "big/score": ("1.23e+10", "← sum/total →", "1"),
        "big/length": ("1", "← sum/total →", "1"),
    }
    # edges: the three buckets and the last one's upper bound 2.00002, which needs the 4 decimals
    assert rows["a/score"][:-1] == [("[0.5000, 1.5000)", "0.3333", "1"), ("[1.5000, 2.0000)", "0.3333", "1"),
                                    ("[2.0000, 2.0000]", "0.3333", "1")]


def test_per_file_summaries_then_aggregate():
    """Dolma's two steps on known values: a file with more buckets than bins keeps only equal-width
    bins, whose lower edges (not the values) are what the aggregate sees."""
    first = {bucket_key(v): 1 for v in (1.0, 2.0, 3.0, 4.0, 10.0)}
    counts, edges = summarize_buckets(first, 2)
    assert (counts, edges) == ([4, 1], [1.0, 5.5, 10.0])
    assert rebucket(counts, edges) == {bucket_key(1.0): 4, bucket_key(5.5): 1}  # 10.0 is seen as 5.5
    few = {bucket_key(3.0): 2}
    assert summarize_buckets(few, 2) == ([2], [3.0, 3.00004])  # the buckets, then the last one's upper bound
    per_file = [[{"name": "x", "counts": counts, "bins": edges, "total": 5, "sum": 20.0}],
                [{"name": "x", "counts": [2], "bins": [3.0, 3.00004], "total": 2, "sum": 6.0}]]
    assert aggregate_summaries(per_file, 2) == [
        {"name": "x", "counts": [6, 1], "bins": [1.0, 3.25, 5.5], "total": 7, "sum": 26.0}]
    assert aggregate_summaries(per_file, 3) == [
        {"name": "x", "counts": [4, 2, 1], "bins": [1.0, 3.0, 5.5, 5.50008], "total": 7, "sum": 26.0}]
    # a bucket value bucketed again can land one step lower, as in Dolma
    assert bucket_key(bucket_value((50001, 1))) == (50000, 1)


def test_files_are_added_in_a_sorted_walk_and_options_are_checked(tmp_path: Path):
    assert summary_file_order(["r/web-2/a.gz", "r/web/b.gz", "r/a.gz"]) == ["r/a.gz", "r/web/b.gz", "r/web-2/a.gz"]
    for flags, message in ((["--bins", "0"], "--bins must be at least 1"), (["--regex", "("], "--regex")):
        result = CliRunner().invoke(cli, ["stat", "--attributes", FEW_BINS_GLOB, "--debug", *flags])
        assert isinstance(result.exception, UserError) and message in str(result.exception), result.output


def _no_ray(monkeypatch):
    import ray

    def refuse(*args, **kwargs):
        raise AssertionError("Ray was started")

    monkeypatch.setattr(ray, "init", refuse)
    monkeypatch.setattr(executor, "ensure_ray", refuse)


def test_stat_same_output_on_every_executor(tmp_path: Path, monkeypatch, ray_session):
    """Forked workers, one process, --debug and Ray give the same bytes; the local ones never start Ray."""
    outputs = {}
    runs = {"local": ["--executor", "local", "--processes", "2"], "one": ["--processes", "1"],
            "debug": ["--debug"], "ray": ["--processes", "2"]}
    for name, flags in runs.items():
        with monkeypatch.context() as patch:
            if name != "ray":
                _no_ray(patch)
            result = CliRunner().invoke(cli, ["stat", "--attributes", FEW_BINS_GLOB, "--bins", "8", "--total",
                                              "--report", str(tmp_path / name), *flags])
        assert result.exit_code == 0, (name, result.output)
        outputs[name] = (result.stdout, (tmp_path / name / "summaries.jsonl.gz").read_bytes())
    assert outputs["local"] == outputs["one"] == outputs["debug"] == outputs["ray"]


def test_map_in_parallel_local_forks_without_ray(monkeypatch, tmp_path: Path):
    _no_ray(monkeypatch)
    parent = os.getpid()
    local = RuntimeConfig(executor="local", processes=2)
    out = map_in_parallel(lambda x: (x * x, os.getpid()), list(range(6)), local)  # a lambda: nothing is pickled
    assert [v for v, _ in out] == [x * x for x in range(6)]
    assert parent not in {pid for _, pid in out}
    for cfg in (RuntimeConfig(executor="local", processes=1), RuntimeConfig(processes=1), RuntimeConfig(debug=True)):
        assert map_in_parallel(lambda x: (x + 1, os.getpid()), [1, 2, 3], cfg) == [(2, parent), (3, parent), (4, parent)]

    def dies_once(x: int) -> int:  # a worker that dies breaks the pool: its items run again
        marker = tmp_path / f"died-{x}"
        if x == 2 and not marker.exists():
            marker.touch()
            os._exit(1)
        return -x

    assert map_in_parallel(dies_once, [1, 2, 3, 4], RuntimeConfig(executor="local", processes=2, retries=1)) == \
        [-1, -2, -3, -4]
    with pytest.raises(ZeroDivisionError):  # the function's own error, as on Ray
        map_in_parallel(lambda x: 1 // x, [1, 0], local)


def test_file_summaries_keep_first_appearance_order():
    records, skipped = file_summaries(str(FEW_BINS / "attributes" / "exp" / "b" / "part-2.jsonl.gz"), None, 8)
    assert skipped == 0
    assert [r["name"] for r in records][-2:] == ["exp__late__only/score", "exp__late__only/length"]
    assert all(len(r["bins"]) == len(r["counts"]) + 1 for r in records)


def test_stat_clips_fasttext_labels_and_counts_empty_spans():
    hists = AttributeHistograms()
    hists.add_record({"a__ft__label__en": [[0, 5, 1.00002]], "b__pii__doc": []})
    label = hists.histograms["a__ft__label__en/score"]
    assert label.total == 1.0 and list(label.buckets) == [bucket_key(1.0)]
    empty = hists.histograms["b__pii__doc/score"]
    assert empty.count == 1 and hists.histograms["b__pii__doc/length"].total == 0
    assert abs(bucket_value(bucket_key(0.123456789)) - 0.123456789) < 1e-5
