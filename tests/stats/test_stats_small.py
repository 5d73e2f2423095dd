"""`dolma stats` on small hand-made corpora, in-process: exact expected values for every section."""

from __future__ import annotations

import gzip
import json
from collections import Counter
from pathlib import Path

import orjson
import pytest

from dolma_tools.errors import UserError
from dolma_tools.io import iter_documents
from dolma_tools.stats.collectors import collect_file
from dolma_tools.stats.config import StatsConfig
from dolma_tools.stats.merge import merge_all, merge_partials
from dolma_tools.stats.report import build_report
from dolma_tools.stats.runner import run_stats

A = [
    {"id": "a1", "text": "the cat sat on the mat", "source": "s1", "created": "2021-03-04T00:00:00Z",
     "metadata": {"url": "https://www.example.com/a"}},
    {"id": "a2", "text": "contact me at john.doe@example.com today", "source": "s1", "created": "2021-03-09",
     "metadata": {"url": "http://blog.example.org/x"}},
    {"id": "a3", "text": "the cat sat on the mat", "source": "s2", "created": "2022-12-01"},
    {"id": "https://news.example.co.uk/story", "text": "a short\nstory about the cat", "source": "s2"},
]
B = [
    {"id": "b1", "text": "the cat sat on the mat", "source": "s1", "created": "not a date"},
    {"id": "b2", "text": "Привет мир, the cat", "source": "s3", "metadata": {"url": "https://www.example.com/a"}},
    {"id": "b3", "text": "", "source": "s3"},
]


def write(path: Path, docs: list, extra_lines: list[bytes] = ()) -> str:
    path.parent.mkdir(parents=True, exist_ok=True)
    with gzip.open(path, "wb") as fh:
        for doc in docs:
            fh.write(orjson.dumps(doc) + b"\n")
        for line in extra_lines:
            fh.write(line + b"\n")
    return str(path)


@pytest.fixture
def corpus(tmp_path: Path) -> Path:
    root = tmp_path / "corpus" / "documents"
    write(root / "a.jsonl.gz", A, [b"{not json"])
    write(root / "b.jsonl.gz", B)
    return root


def small_cfg(root: Path, out: Path, **kw) -> StatsConfig:
    cfg = StatsConfig(documents=[str(root / "*.jsonl.gz")], output=str(out), debug=True, **kw)
    cfg.toxicity.enable = False
    return cfg


def test_small_corpus_report(corpus: Path, tmp_path: Path):
    report = run_stats(small_cfg(corpus, tmp_path / "out", tokenizer="allenai/gpt-neox-olmo-dolma-v1_5"),
                       progress=False)
    docs = A + B
    s = report["summary"]
    assert (s["documents"], s["skipped_lines"], s["files"]) == (7, 1, 2)
    assert s["characters"] == sum(len(d["text"]) for d in docs)
    assert s["bytes"] == sum(len(d["text"].encode()) for d in docs)
    assert s["words"] == sum(len(d["text"].split()) for d in docs)
    from tokenizers import Tokenizer

    from dolma_tools.stats.collectors import load_tokenizer

    tok: Tokenizer = load_tokenizer("allenai/gpt-neox-olmo-dolma-v1_5")
    assert s["tokens"] == sum(len(tok.encode(d["text"], add_special_tokens=False).ids) for d in docs)
    assert report["sources"]["s1"]["documents"] == 3 and report["sources"]["s3"]["characters"] == len(B[1]["text"])
    assert s["shortest"][0]["id"] == "b3" and s["longest"][0]["id"] == "a2"
    assert report["dates"] == {"2021-03": 2, "2022-12": 1, "unknown": 4}
    # URLs: metadata.url, else an id that is a URL
    urls = report["urls"]
    assert urls["documents"] == 4
    assert {r["domain"]: r["documents"] for r in urls["domains"]["top"]} == {
        "example.com": 2, "blog.example.org": 1, "news.example.co.uk": 1}
    assert {r["tld"]: r["documents"] for r in urls["tlds"]} == {"com": 2, "org": 1, "uk": 1}
    assert urls["schemes"] == {"https": 3, "http": 1}
    url_dups = report["duplicates"]["url"]
    assert (url_dups["documents"], url_dups["clusters"]) == (1, 1)
    assert url_dups["largest"][0]["examples"][0]["url"] == "https://www.example.com/a"
    # exact duplicates across files, "earlier" = first by (file, line)
    exact = report["duplicates"]["exact"]
    assert (exact["documents"], exact["clusters"], exact["documents_in_clusters"]) == (2, 1, 3)
    assert [e["id"] for e in exact["largest"][0]["examples"]] == ["a1", "a3", "b1"]
    # n-grams are exact on a corpus this small
    unigrams = Counter(w for d in docs for w in d["text"].split())
    n1 = report["ngrams"]["1"]
    assert n1["exact"] and n1["distinct"] == len(unigrams)
    assert [(r["ngram"], r["count"]) for r in n1["top"]] == sorted(unigrams.items(), key=lambda kv: (-kv[1], kv[0]))
    assert n1["top"][:2] == [{"ngram": "the", "count": 8}, {"ngram": "cat", "count": 5}]
    bigrams = Counter()
    for d in docs:
        w = d["text"].split()
        bigrams.update(" ".join(w[i:i + 2]) for i in range(len(w) - 1))
    assert report["ngrams"]["2"]["top"][0] == {"ngram": "the cat", "count": bigrams["the cat"]}
    assert report["ngrams"]["2"]["total"] == sum(bigrams.values())
    assert "mat today" not in {r["ngram"] for r in report["ngrams"]["2"]["bottom"]}  # never across documents
    langs = report["languages"]
    assert sum(v["documents"] for v in langs.values()) == 7 and langs["en"]["documents"] >= 4
    if report["pii"] is not None:
        assert report["pii"]["EMAIL_ADDRESS"] == 1 and report["pii"]["documents"] == 1
    assert report["toxicity"] is None
    saved = json.loads((tmp_path / "out" / "report.json").read_text())
    assert saved["summary"] == s
    assert (tmp_path / "out" / "report.html").read_text().startswith("<!DOCTYPE html>")


def test_merge_is_associative(corpus: Path, tmp_path: Path):
    root = corpus
    for i in range(3):
        write(root / f"c{i}.jsonl.gz", [{"id": f"c{i}-{j}", "text": f"doc {j % 3} of file {i % 2}", "source": "c"}
                                       for j in range(5)])
    cfg = small_cfg(root, tmp_path / "out")
    cfg.language.enable = False
    files = sorted(str(p) for p in root.glob("*.jsonl.gz"))
    left = merge_all([collect_file(cfg, f) for f in files])
    parts = [collect_file(cfg, f) for f in files]
    right = merge_partials(merge_all(parts[:2]), merge_partials(parts[2], merge_all(parts[3:])))
    a = build_report(left)
    b = build_report(right)
    assert a == b
    texts = Counter(d["text"] for f in files for _, d in iter_documents(f) if isinstance(d, dict))
    assert a["duplicates"]["exact"]["documents"] == sum(c - 1 for c in texts.values())


def test_contamination(corpus: Path, tmp_path: Path):
    evalset = tmp_path / "eval.jsonl"
    eval_texts = ["The cat sat on the mat!",  # 6 words < 13: matched as a whole 6-gram
                  "completely unrelated question about astrophysics and quasars",
                  "story about the cat"]
    evalset.write_text("".join(json.dumps({"text": t}) + "\n" for t in eval_texts))
    cfg = small_cfg(corpus, tmp_path / "out", decontaminate=[str(evalset)])
    cfg.language.enable = False
    report = run_stats(cfg, progress=False)
    row = report["contamination"][str(evalset)]
    assert row["instances"] == 3 and row["contaminated"] == 2
    assert row["fraction"] == pytest.approx(2 / 3)


def test_attribute_histograms_with_documents(corpus: Path, tmp_path: Path):
    attr_dir = corpus.parent / "attributes" / "lengths"
    attr_dir.mkdir(parents=True)
    for name, docs in (("a.jsonl.gz", A + [None]), ("b.jsonl.gz", B)):
        records = [{"id": d["id"] if d else None,
                    "attributes": {"x__len__length": [[0, len(d["text"]), float(len(d["text"]))]] if d else []}}
                   for d in docs]
        write(attr_dir / name, records)
    cfg = small_cfg(corpus, tmp_path / "out", attributes=["lengths"])
    cfg.language.enable = False
    report = run_stats(cfg, progress=False)
    scores = report["attributes"]["x__len__length/score"]
    lengths = [len(d["text"]) for d in A + B] + [0]  # the empty record counts as one (0, 0, 0)
    assert scores["count"] == len(lengths) and scores["sum"] == sum(lengths)
    assert scores["max"] == max(lengths) and scores["min"] == 0
    assert sum(scores["histogram"]["counts"]) == len(lengths)


def test_user_errors(tmp_path: Path):
    with pytest.raises(UserError, match="no files match"):
        run_stats(StatsConfig(documents=[str(tmp_path / "nothing*.gz")], output=str(tmp_path), debug=True))
    with pytest.raises(UserError, match="--output"):
        run_stats(StatsConfig(documents=[str(tmp_path)], debug=True))
    with pytest.raises(UserError, match="--documents"):
        run_stats(StatsConfig(debug=True))
    write(tmp_path / "documents" / "d.jsonl.gz", A)
    with pytest.raises(UserError, match="attribute file missing"):
        run_stats(StatsConfig(documents=[str(tmp_path / "documents" / "d.jsonl.gz")], output=str(tmp_path / "o"),
                              debug=True, attributes=["nothing"]))
    write(tmp_path / "d.jsonl.gz", A)
    with pytest.raises(UserError, match="tokenizer"):
        run_stats(StatsConfig(documents=[str(tmp_path / "d.jsonl.gz")], output=str(tmp_path / "o"), debug=True,
                              tokenizer="no/such-tokenizer"))


def test_cli_writes_report_and_prints_its_path(corpus: Path, tmp_path: Path):
    from click.testing import CliRunner

    from dolma_tools.cli import cli

    out = tmp_path / "cli-report"
    args = ["stats", "--documents", str(corpus / "*.jsonl.gz"), "--output", str(out), "--debug",
            "--no-toxicity.enable", "--ngrams.sizes", "1", "2", "--ngrams.top_k", "3"]
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 0, result.output
    assert f"report: {out}/report.json" in result.output
    report = json.loads((out / "report.json").read_text())
    assert set(report["ngrams"]) == {"1", "2"} and len(report["ngrams"]["1"]["top"]) == 3
    assert report["toxicity"] is None and report["summary"]["documents"] == 7
    # `stat` is the same command
    dry = CliRunner().invoke(cli, ["stat", "--documents", "x", "--output", "y", "--dryrun"])
    assert dry.exit_code == 0 and "ngrams:" in dry.output
    bad = CliRunner().invoke(cli, ["stats", "--documents", "x", "--ngrams.bogus", "1"])
    assert bad.exit_code != 0 and "ngrams.bogus" in str(bad.exception)


def test_parquet_input(tmp_path: Path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    root = tmp_path / "documents"
    root.mkdir()
    rows = [{"id": f"p{i}", "text": "same text" if i % 2 else f"text {i}", "source": "pq"} for i in range(6)]
    pq.write_table(pa.Table.from_pylist(rows), root / "part.parquet")
    cfg = StatsConfig(documents=[str(root / "*.parquet")], output=str(tmp_path / "out"), debug=True)
    cfg.toxicity.enable = cfg.language.enable = False
    report = run_stats(cfg, progress=False)
    assert report["summary"]["documents"] == 6
    exact = report["duplicates"]["exact"]
    assert exact["documents"] == 2 and [e["id"] for e in exact["largest"][0]["examples"]] == ["p1", "p3", "p5"]


def _lengths_attributes(path: Path, docs: list, extra_lines: list[bytes] = ()) -> None:
    write(path, [{"id": d["id"] if d else None, "attributes": {"x__len__length": [[0, 1, 1.0]] if d else []}}
                 for d in docs], extra_lines)


@pytest.mark.parametrize("case, expected", [
    ("short", r"b.jsonl.gz:3: the attribute file ends after 2 records, but \S+/b.jsonl.gz has 3 documents$"),
    ("long", r"b.jsonl.gz:4: more attribute records than the 3 documents of \S+/b.jsonl.gz$"),
    ("wrong id", r"b.jsonl.gz:2: id 'zz' does not match document 2 of \S+/b.jsonl.gz \('b2'\); the attribute file "
                 r"is misaligned$"),
])
def test_misaligned_attribute_files_are_errors_naming_the_line(corpus: Path, tmp_path: Path, case, expected):
    from dolma_tools.errors import DataError

    attr_dir = corpus.parent / "attributes" / "lengths"
    _lengths_attributes(attr_dir / "a.jsonl.gz", A + [None])
    docs = {"short": B[:2], "long": B + [B[0]], "wrong id": [B[0], {**B[1], "id": "zz"}, B[2]]}[case]
    _lengths_attributes(attr_dir / "b.jsonl.gz", docs)
    cfg = small_cfg(corpus, tmp_path / "out", attributes=["lengths"])
    cfg.language.enable = False
    with pytest.raises(DataError, match=expected):
        run_stats(cfg, progress=False)


def test_malformed_attribute_lines_are_counted_or_fatal_with_strict(corpus: Path, tmp_path: Path):
    from dolma_tools.errors import DataError

    attr_dir = corpus.parent / "attributes" / "lengths"
    _lengths_attributes(attr_dir / "a.jsonl.gz", A + [None])
    write(attr_dir / "b.jsonl.gz", [{"id": "b1", "attributes": {}}], [b"{not json", b'{"id": "b3"}'])
    cfg = small_cfg(corpus, tmp_path / "out", attributes=["lengths"])
    cfg.language.enable = False
    report = run_stats(cfg, progress=False)
    summary = json.loads((tmp_path / "out" / ".summary-stats.json").read_text())
    assert summary["skipped_lines"] == 1 + 2  # a's malformed document line, b's two attribute lines
    assert [e.split("/")[-1] for e in summary["errors"]][-2:] == [
        "b.jsonl.gz:2: malformed JSON (unexpected character, expected a string key: line 1 column 2 (char 1))",
        "b.jsonl.gz:3: not an attribute record (no `attributes` object)"]
    assert report["attributes"]["x__len__length/score"]["count"] == len(A) + 1  # only a's records count
    cfg = small_cfg(corpus, tmp_path / "out2", attributes=["lengths"], strict=True)
    cfg.language.enable = False
    with pytest.raises(DataError, match="a.jsonl.gz:5: malformed JSON"):  # the first bad line: a's document
        run_stats(cfg, progress=False)


def test_a_file_that_is_not_a_fasttext_model_is_a_one_line_error(tmp_path: Path):
    from dolma_tools.stats.collectors import language_model

    bogus = tmp_path / "lid.bin"
    bogus.write_text("not a model")
    with pytest.raises(UserError, match=rf"^{bogus} is not a fastText model \({bogus} has wrong file format!\)$"):
        language_model(str(bogus))
