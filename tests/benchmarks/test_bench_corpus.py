"""The benchmark harness' pure parts: corpus scaling is deterministic, comparisons are right."""

from __future__ import annotations

import gzip
import json
import random
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from benchmarks import compare  # noqa: E402
from benchmarks.corpus import MB, ScaleParams, build_corpus, vary_text  # noqa: E402
from benchmarks.langid import expected_codes, top1  # noqa: E402


def make_source(root: Path, n: int = 60) -> Path:
    rng = random.Random(3)
    vocab = [f"w{i}" for i in range(500)]
    for src in ("alpha", "beta"):
        path = root / "documents" / src / f"{src}-0000.json.gz"
        path.parent.mkdir(parents=True)
        with gzip.open(path, "wt") as fh:
            for i in range(n):
                pars = [" ".join(rng.choice(vocab) for _ in range(rng.randint(20, 60))) for _ in range(rng.randint(2, 6))]
                fh.write(json.dumps({"id": f"{src}-{i}", "text": "\n".join(pars), "source": src,
                                     "metadata": {"k": i}}) + "\n")
    return root


def read_all(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted((root / "documents").rglob("*.gz"))}


def docs_of(root: Path) -> list[dict]:
    out = []
    for p in sorted((root / "documents").rglob("*.gz")):
        with gzip.open(p, "rt") as fh:
            out += [json.loads(line) for line in fh]
    return out


def test_scaler_is_deterministic_and_sized(tmp_path):
    src = make_source(tmp_path / "src")
    params = ScaleParams(size_mb=0.3, seed=5, file_mb=0.05)
    a = build_corpus(src, tmp_path / "a", params)
    b = build_corpus(src, tmp_path / "b", params)
    assert read_all(tmp_path / "a") == read_all(tmp_path / "b")
    assert a.documents == b.documents and a.text_bytes == b.text_bytes
    assert 0.3 * MB <= a.text_bytes < 0.3 * MB + 2000
    assert len(a.files) > 2  # rolled into several files per source
    build_corpus(src, tmp_path / "c", ScaleParams(size_mb=0.3, seed=6, file_mb=0.05))
    assert read_all(tmp_path / "c") != read_all(tmp_path / "a")


def test_scaler_duplicates_and_new_text(tmp_path):
    src = make_source(tmp_path / "src")
    info = build_corpus(src, tmp_path / "out", ScaleParams(size_mb=0.5, seed=1))
    docs = docs_of(tmp_path / "out")
    assert len(docs) == info.documents and len({d["id"] for d in docs}) == len(docs)
    texts = [d["text"] for d in docs]
    dups = len(texts) - len(set(texts))
    assert dups == info.duplicates
    assert 0.05 < dups / len(docs) < 0.16
    originals = {d["text"] for d in docs_of(src)}
    assert sum(t in originals for t in texts) < 0.2 * len(texts)  # most documents are new text
    assert all(d["metadata"]["bench_origin"].split("-")[0] in ("alpha", "beta") for d in docs)


def test_scaler_reuses_cache(tmp_path):
    src = make_source(tmp_path / "src")
    params = ScaleParams(size_mb=0.1, seed=2)
    build_corpus(src, tmp_path / "out", params)
    marker = tmp_path / "out" / "documents" / "marker"
    marker.write_text("x")
    build_corpus(src, tmp_path / "out", params)
    assert marker.exists()  # same manifest: not rebuilt
    build_corpus(src, tmp_path / "out", ScaleParams(size_mb=0.1, seed=3))
    assert not marker.exists()


def test_vary_text_keeps_words_per_paragraph():
    rng = random.Random(0)
    text = "a b c d e f g h i j\nk l m n o p q r s t\nu v"
    out = vary_text(text, rng, 0.5)
    assert sorted(sorted(p.split(" ")) for p in out.split("\n")) == \
        sorted(sorted(p.split(" ")) for p in text.split("\n"))
    assert out != text


def test_span_comparison_tolerance_and_known_dedupe_difference():
    assert compare.spans_equal([[0, 5, 0.123456]], [[0, 5, 0.12346]])
    assert not compare.spans_equal([[0, 5, 0.1]], [[0, 5, 0.2]])
    assert not compare.spans_equal([[0, 5, 1]], [[0, 6, 1]])
    assert compare._only_last_end_differs([[0, 5, 1], [5, 9, 1]], [[0, 5, 1], [5, 10, 1]])
    assert not compare._only_last_end_differs([[0, 4, 1], [5, 9, 1]], [[0, 5, 1], [5, 10, 1]])


def test_attribute_tree_comparison(tmp_path):
    def write(root: Path, records: list[dict]) -> Path:
        path = root / "x" / "f.jsonl.gz"
        path.parent.mkdir(parents=True)
        with gzip.open(path, "wt") as fh:
            fh.writelines(json.dumps(r) + "\n" for r in records)
        return root

    a = write(tmp_path / "a", [{"id": "1", "attributes": {"e__t__x": [[0, 3, 1.0]], "e__t__empty": [],
                                                        "e__pii_regex_with_counts_fast_v2__doc_frac": [[0, 3, 0.5]]}}])
    b = write(tmp_path / "b", [{"id": "1", "attributes": {"e__t__x": [[0, 3, 1.0]],
                                                        "e__pii_regex_with_counts_fast_v2__doc_frac": [[0, 3, 1.5]]}}])
    res = compare.compare_attribute_trees(a, b, compare.KNOWN_TAG_DIFFERENCES)
    assert res["status"] == "equal" and res["documented_differences"]
    c = write(tmp_path / "c", [{"id": "1", "attributes": {"e__t__x": [[0, 2, 1.0]]}}])
    assert compare.compare_attribute_trees(a, c, compare.KNOWN_TAG_DIFFERENCES)["mismatched_keys"] == {"e__t__x": 1}


def test_langid_mapping():
    assert expected_codes("German_Deutsch") == {"de"}
    assert expected_codes("Norwegian_Norsk-Nynorsk") == {"nn"}
    assert "sh" in expected_codes("Serbian_Srpski")
    assert expected_codes("Zulu") is None
    assert top1({"l__l__en": [[0, 9, 0.2]], "l__l__de": [[0, 9, 0.7]]}) == "de"
