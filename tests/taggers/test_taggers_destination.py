"""`dolma tag --destination`: Dolma's CLI layout (one prefix per documents pattern, no experiment folder).

Expected lines and paths were written by Dolma 1.2.1 (`dolma tag ... --destination out/a out/b`) on
the same three documents.
"""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import pytest

from dolma_tools.config import build_config
from dolma_tools.errors import UserError
from dolma_tools.runtime.locks import destination_lock
from dolma_tools.taggers.destinations import route_documents, shared_directory
from dolma_tools.taggers.runner import TagConfig, run_tag

DOCS = {"a/x/1.jsonl.gz": {"id": "d1", "text": "Hello world.\nSecond line!\n", "source": "s1"},
        "a/y/2.jsonl.gz": {"id": "d2", "text": "Ünïcödé text", "source": "s2"},
        "b/3.jsonl.gz": {"id": "d3", "text": "x", "source": "s3"}}

# Dolma 1.2.1, no --experiment: every tagger of the run in one file per destination
DOLMA_NO_EXPERIMENT = {
    "a/x/1.jsonl.gz": '{"id":"d1","attributes":{"char_length_v1__char_length_v1__length":[[0,26,26.0]],'
                      '"doc_count_v1__doc_count_v1__docs":[[0,26,1.0]]},"source":"s1"}',
    "a/y/2.jsonl.gz": '{"id":"d2","attributes":{"char_length_v1__char_length_v1__length":[[0,12,12.0]],'
                      '"doc_count_v1__doc_count_v1__docs":[[0,12,1.0]]},"source":"s2"}',
    "b/3.jsonl.gz": '{"id":"d3","attributes":{"char_length_v1__char_length_v1__length":[[0,1,1.0]],'
                    '"doc_count_v1__doc_count_v1__docs":[[0,1,1.0]]},"source":"s3"}',
}


@pytest.fixture
def corpus(tmp_path: Path, monkeypatch) -> Path:
    monkeypatch.chdir(tmp_path)
    for rel, doc in DOCS.items():
        path = tmp_path / "corpus" / "documents" / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        with gzip.open(path, "wt") as f:
            f.write(json.dumps(doc) + "\n")
    return tmp_path


def lines(path: Path) -> list[str]:
    with gzip.open(path, "rt") as f:
        return f.read().splitlines()


def files(root: Path) -> list[str]:
    return sorted(str(p.relative_to(root)) for p in root.rglob("*") if p.is_file())


def test_one_destination_per_pattern_as_dolma(corpus: Path):
    cfg = build_config(TagConfig, None, [
        "--documents", "corpus/documents/a/**/*.gz", "corpus/documents/b/*.gz", "--destination", "out/a", "out/b",
        "--taggers", "char_length_v1", "doc_count_v1", "--executor", "local"])
    assert run_tag(cfg, progress=False).documents == 3
    out = corpus / "out"
    assert [f for f in files(out) if not f.rsplit("/", 1)[-1].startswith(".")] == [
        "a/x/1.jsonl.gz", "a/y/2.jsonl.gz", "b/3.jsonl.gz"]
    for rel, expected in DOLMA_NO_EXPERIMENT.items():
        assert lines(out / rel) == [expected]
    summary = json.loads((out / "a" / ".summary-tag.json").read_text())  # next to the first destination
    assert summary["documents"] == 3 and not (corpus / "corpus" / "attributes").exists()


def test_yaml_string_is_a_list_of_one_and_experiment_keys(corpus: Path):
    (corpus / "tag.yaml").write_text("documents: ['corpus/documents/a/**/*.gz']\ndestination: out2\n"
                                     "taggers: [char_length_v1]\nexperiment: ex\ndebug: true\n")
    cfg = build_config(TagConfig, str(corpus / "tag.yaml"), [])
    assert cfg.destination == ["out2"]
    run_tag(cfg, progress=False)
    # Dolma 1.2.1: relative to the directory the pattern's matches share, no experiment folder
    assert lines(corpus / "out2" / "x" / "1.jsonl.gz") == [
        '{"id":"d1","attributes":{"ex__char_length_v1__length":[[0,26,26.0]]},"source":"s1"}']
    assert lines(corpus / "out2" / "y" / "2.jsonl.gz") == [
        '{"id":"d2","attributes":{"ex__char_length_v1__length":[[0,12,12.0]]},"source":"s2"}']
    assert (corpus / "out2" / ".summary-tag.json").exists()


def test_a_file_matched_by_two_patterns_goes_to_both_destinations(corpus: Path):
    inputs, dest = route_documents(["corpus/documents/b/*.gz", "corpus/documents/*/3.jsonl.gz"], ["o1", "o2"])
    assert inputs == ["corpus/documents/b/3.jsonl.gz"]
    assert dest.outputs(inputs[0]) == ["o1/3.jsonl.gz", "o2/3.jsonl.gz"]
    assert shared_directory(["/x/a/1.gz", "/x/b/2.gz"]) == "/x/" and shared_directory(["s3://b/k/1.gz"]) == "s3://b/k/"


def test_destination_mistakes_are_one_line_errors(corpus: Path):
    base = dict(taggers=["char_length_v1"], debug=True)
    with pytest.raises(UserError, match=r"destination: 1 given for 2 documents pattern\(s\)"):
        run_tag(TagConfig(documents=["corpus/documents/a/x/*", "corpus/documents/b/*"], destination=["o"], **base))
    with pytest.raises(UserError, match=r"destination: 0 given for 1"):
        run_tag(TagConfig(documents=["corpus/documents/b/*"], destination=[], **base))
    (corpus / "corpus" / "documents" / "c").mkdir()
    (corpus / "corpus" / "documents" / "c" / "3.jsonl.gz").write_bytes(
        (corpus / "corpus" / "documents" / "b" / "3.jsonl.gz").read_bytes())
    with pytest.raises(UserError, match=r"b/3.jsonl.gz and .*c/3.jsonl.gz would both be tagged into o/3.jsonl.gz"):
        run_tag(TagConfig(documents=["corpus/documents/b/*", "corpus/documents/c/*"], destination=["o", "o"], **base))
    with pytest.raises(UserError, match="would overwrite the document file"):
        run_tag(TagConfig(documents=["corpus/documents/b/*"], destination=["corpus/documents/b"], **base))
    assert not (corpus / "o").exists()


def test_every_destination_is_locked(corpus: Path):
    cfg = TagConfig(documents=["corpus/documents/a/**/*.gz", "corpus/documents/b/*"], destination=["o1", "o2"],
                    taggers=["char_length_v1"], debug=True)
    with destination_lock(str(corpus / "o2")), pytest.raises(UserError, match="another dolma run"):
        run_tag(cfg, progress=False)
    assert not (corpus / "o1" / "x").exists()
