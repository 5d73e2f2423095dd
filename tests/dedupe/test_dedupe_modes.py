"""Dedupe options beyond Dolma's tests: min_words, skip_empty, partitions, decontamination, eval sets."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import pytest

from dolma_tools.config import build_config
from dolma_tools.dedupe.config import DedupeConfig
from dolma_tools.dedupe.exact import parse_jsonpath, resolve_jsonpath, split_paragraphs
from dolma_tools.dedupe.runner import run_dedupe
from dolma_tools.errors import ConfigError, UserError
from dolma_tools.evalsets import available_eval_sets, load_eval_texts


def write_docs(root: Path, name: str, docs: list[dict]) -> None:
    path = root / "documents" / f"{name}.jsonl.gz"
    path.parent.mkdir(parents=True, exist_ok=True)
    with gzip.open(path, "wt") as fh:
        for d in docs:
            fh.write(json.dumps(d) + "\n")


def read_attrs(root: Path, name: str, file: str) -> list[dict]:
    with gzip.open(root / "attributes" / name / f"{file}.jsonl.gz", "rt") as fh:
        return [json.loads(line)["attributes"] for line in fh]


def run(root: Path, *flags: str):
    cfg = build_config(DedupeConfig, None, ["--documents", str(root / "documents/*.jsonl.gz"), "--debug", *flags])
    return run_dedupe(cfg, progress=False)


def test_jsonpath_and_paragraph_offsets() -> None:
    doc = {"metadata": {"url": "u", "list": ["x", "y"]}, "a b": "z"}
    assert resolve_jsonpath(doc, parse_jsonpath("$.metadata.url")) == "u"
    assert resolve_jsonpath(doc, parse_jsonpath("$.metadata.list[1]")) == "y"
    assert resolve_jsonpath(doc, parse_jsonpath("$['a b']")) == "z"
    assert resolve_jsonpath(doc, parse_jsonpath("$.missing.x")) is None
    assert split_paragraphs("ab\ncd\n", "\n") == [(0, 3, "ab"), (3, 5, "cd"), (5, 5, "")]
    assert split_paragraphs("é\n😀", "\n") == [(0, 2, "é"), (2, 3, "😀")]
    assert split_paragraphs("a<p>b", "<p>") == [(0, 4, "a"), (4, 5, "b")]


def test_min_words_skip_empty_and_bad_keys(tmp_path: Path) -> None:
    text = "one two three\nshort\none two three\nshort\n   \n   "
    write_docs(tmp_path, "a", [{"id": "1", "text": text}, {"id": "2", "text": text, "metadata": {"url": 5}}])
    run(tmp_path, "--dedupe.name", "p", "--dedupe.paragraphs.attribute_name", "dup", "--dedupe.min_words", "2",
        "--dedupe.skip_empty", "--bloom_filter.size_in_bytes", "4096")
    first, second = read_attrs(tmp_path, "p", "a")
    assert first == {"dup": [[20, 34, 1]]}  # the 2nd "one two three"; "short" (1 word) and blanks skipped
    assert second == {"dup": [[0, 14, 1], [20, 34, 1]]}
    summary = run(tmp_path, "--dedupe.name", "u", "--dedupe.documents.attribute_name", "url",
                  "--dedupe.documents.key", "$.metadata.url", "--bloom_filter.size_in_bytes", "4096")
    assert summary.skipped_lines == 2 and "not a string" in summary.errors[0]
    assert read_attrs(tmp_path, "u", "a") == [{}, {}]


def test_key_partitions_cover_everything_once(tmp_path: Path) -> None:
    docs = [{"id": str(i), "text": f"text {i % 10}"} for i in range(40)]
    write_docs(tmp_path, "a", docs)
    flagged = []
    for index in range(2):
        run(tmp_path, "--dedupe.name", "d", "--dedupe.documents.attribute_name", "dup",
            "--dedupe.documents.key", "$.text", "--dedupe.num_partitions", "2", "--dedupe.partition_index",
            str(index), "--bloom_filter.size_in_bytes", "65536")
        attrs = read_attrs(tmp_path, f"d_{index}", "a")
        flagged.append({i for i, a in enumerate(attrs) if a.get(f"dup_{index}")})
        assert all(a.get(f"dup_{index}") in (None, [], [[0, 6, 1]]) for a in attrs)
    assert flagged[0].isdisjoint(flagged[1]) and flagged[0] | flagged[1] == set(range(10, 40))


def test_ngram_overlap_scores(tmp_path: Path) -> None:
    a = "the quick brown fox jumps over the lazy dog"
    b = "the quick brown fox jumps over a sleepy cat"
    write_docs(tmp_path, "a", [{"id": "1", "text": a}, {"id": "2", "text": b}])
    run(tmp_path, "--dedupe.name", "n", "--dedupe.paragraphs.attribute_name", "dup",
        "--dedupe.paragraphs.by_ngram.ngram_length", "3", "--dedupe.paragraphs.by_ngram.threshold", "0.5",
        "--bloom_filter.estimated_doc_count", "1000", "--bloom_filter.desired_false_positive_rate", "0.001")
    assert read_attrs(tmp_path, "n", "a") == [{"dup": []}, {"dup": [[0, len(b), 0.57143]]}]


def test_eval_sets_by_name_and_path(tmp_path: Path) -> None:
    names = available_eval_sets()
    for expected in ("arc_easy", "arc_challenge", "boolq", "hellaswag", "piqa", "sciq", "winogrande",
                     "openbookqa", "mmlu"):
        assert expected in names
    arc = load_eval_texts("arc_easy")
    assert len(arc) > 500 and arc[0].startswith("Which technology was developed most recently?")
    path = tmp_path / "evals.jsonl"
    path.write_text('{"text": "a b"}\n{"text": "c d"}\n{"text": "a b"}\n')
    assert load_eval_texts(str(path)) == ["a b", "c d"]
    with pytest.raises(UserError, match="unknown evaluation set"):
        load_eval_texts("no_such_set")


def test_decontamination_scores_overlap(tmp_path: Path) -> None:
    question = load_eval_texts("arc_easy")[3]
    clean = "This paragraph is about something else entirely and shares nothing with any benchmark question."
    write_docs(tmp_path, "a", [{"id": "1", "text": f"{clean}\n{question}"}, {"id": "2", "text": clean}])
    summary = run(tmp_path, "--dedupe.name", "c", "--dedupe.decontaminate.eval_sets", "arc_easy",
                  "--dedupe.decontaminate.ngram_length", "8")
    first, second = read_attrs(tmp_path, "c", "a")
    start = len(clean) + 1
    assert first == {"eval_contamination": [[start, start + len(question), 1.0]]}
    assert second == {"eval_contamination": []}
    assert summary.counters["contaminated_spans"] == 1


def test_config_errors(tmp_path: Path) -> None:
    write_docs(tmp_path, "a", [{"id": "1", "text": "x"}])
    with pytest.raises(ConfigError, match="nothing to do"):
        run(tmp_path, "--dedupe.name", "x")
    with pytest.raises(ConfigError, match="key is required"):
        run(tmp_path, "--dedupe.documents.attribute_name", "x", "--bloom_filter.size_in_bytes", "64")
    with pytest.raises(UserError, match="size the Bloom filter"):
        run(tmp_path, "--dedupe.paragraphs.attribute_name", "x")


def test_s3_documents_and_filter(s3_server, tmp_path: Path) -> None:
    s3_server.create_bucket(Bucket="dedupe")
    from dolma_tools.dedupe.bloom import BloomFilter, hash_keys

    write_docs(tmp_path, "a", [{"id": "1", "text": "p one\np two"}, {"id": "2", "text": "p two\np three"}])
    s3_server.upload_file(str(tmp_path / "documents/a.jsonl.gz"), "dedupe", "ds/documents/a.jsonl.gz")
    args = ["--documents", "s3://dedupe/ds/documents/*.jsonl.gz", "--debug", "--dedupe.name", "p",
            "--dedupe.paragraphs.attribute_name", "dup", "--bloom_filter.size_in_bytes", "4096",
            "--bloom_filter.file", "s3://dedupe/filters/p.bloom"]
    run_dedupe(build_config(DedupeConfig, None, args), progress=False)
    s3_server.download_file("dedupe", "ds/attributes/p/a.jsonl.gz", str(tmp_path / "out.jsonl.gz"))
    with gzip.open(tmp_path / "out.jsonl.gz", "rt") as fh:
        assert [json.loads(line)["attributes"] for line in fh] == [{"dup": []}, {"dup": [[0, 6, 1]]}]
    bf = BloomFilter.load("s3://dedupe/filters/p.bloom")
    assert bf.contains(hash_keys(["p one", "p two", "p three"])).all()
    # read-only runs never rewrite the filter
    before = s3_server.head_object(Bucket="dedupe", Key="filters/p.bloom")["ETag"]
    run_dedupe(build_config(DedupeConfig, None, args + ["--bloom_filter.read_only", "--dedupe.name", "q"]),
               progress=False)
    assert s3_server.head_object(Bucket="dedupe", Key="filters/p.bloom")["ETag"] == before
