"""`dolma stats` on the dev corpus, through Ray: every count checked against an independent pass."""

from __future__ import annotations

import gzip
import json
from collections import Counter
from pathlib import Path
from urllib.parse import urlsplit

import orjson
import pytest

from dolma_tools.stats.config import LanguageOptions, StatsConfig
from dolma_tools.stats.runner import run_stats


@pytest.fixture(scope="module")
def dev_docs(dev_corpus: Path) -> list[dict]:
    docs = []
    for path in sorted(dev_corpus.glob("*/*.json.gz")):
        with gzip.open(path, "rb") as fh:
            docs.extend(orjson.loads(line) for line in fh if line.strip())
    return docs


@pytest.fixture(scope="module")
def dev_report(dev_corpus: Path, tmp_path_factory, ray_session) -> dict:
    out = tmp_path_factory.mktemp("stats_dev")
    cfg = StatsConfig(documents=[str(dev_corpus / "*" / "*.json.gz")], output=str(out), processes=2)
    run_stats(cfg, progress=False)
    assert not (out / "partials").exists()  # removed after the report
    return json.loads((out / "report.json").read_text())


def test_summary_counts(dev_report, dev_docs):
    s = dev_report["summary"]
    assert s["documents"] == len(dev_docs) == 6603
    assert s["characters"] == sum(len(d["text"]) for d in dev_docs)
    assert s["bytes"] == sum(len(d["text"].encode("utf-8")) for d in dev_docs)
    assert s["words"] == sum(len(d["text"].split()) for d in dev_docs)
    assert s["tokens"] is None and s["skipped_lines"] == 0
    sources = Counter(d["source"] for d in dev_docs)
    assert {k: v["documents"] for k, v in dev_report["sources"].items()} == dict(sources)
    chars = Counter()
    for d in dev_docs:
        chars[d["source"]] += len(d["text"])
    assert {k: v["characters"] for k, v in dev_report["sources"].items()} == dict(chars)
    shortest = min(dev_docs, key=lambda d: len(d["text"]))
    longest = max(dev_docs, key=lambda d: len(d["text"]))
    assert s["shortest"][0]["characters"] == len(shortest["text"])
    assert s["longest"][0] == {**s["longest"][0], "id": longest["id"], "characters": len(longest["text"])}
    hist = dev_report["distributions"]["characters"]["bins"]
    assert sum(b["count"] for b in hist) == len(dev_docs)
    assert all(b["low"] <= len(d["text"]) < b["high"] for b in hist[:1] for d in [shortest])


def test_exact_duplicates(dev_report, dev_docs):
    counts = Counter(d["text"] for d in dev_docs)
    exact = dev_report["duplicates"]["exact"]
    assert exact["documents"] == sum(c - 1 for c in counts.values()) == 15
    assert exact["clusters"] == sum(1 for c in counts.values() if c > 1)
    assert exact["documents_in_clusters"] == sum(c for c in counts.values() if c > 1)
    by_id = {d["id"]: d["text"] for d in dev_docs}
    for cluster in exact["largest"]:
        texts = {by_id[e["id"]] for e in cluster["examples"]}
        assert len(texts) == 1 and counts[texts.pop()] == cluster["size"]


def test_languages(dev_report, dev_docs):
    from dolma_tools.taggers.language import default_lid_model, load_fasttext

    model = load_fasttext(default_lid_model())
    labels, _ = model.predict([d["text"][:LanguageOptions().max_chars].replace("\n", " ") for d in dev_docs], k=1)
    docs, chars = Counter(), Counter()
    for (label,), d in zip(labels, dev_docs):
        docs[label.removeprefix("__label__")] += 1
        chars[label.removeprefix("__label__")] += len(d["text"])
    assert {k: v["documents"] for k, v in dev_report["languages"].items()} == dict(docs)
    assert {k: v["characters"] for k, v in dev_report["languages"].items()} == dict(chars)
    assert next(iter(dev_report["languages"])) == "en"


def test_pii(dev_report, dev_docs):
    pii = pytest.importorskip("dolma_tools.taggers.pii")
    counts, documents = Counter(), 0
    for d in dev_docs:
        found = pii.find_pii(d["text"])
        documents += bool(found)
        counts.update(kind for _, _, kind in found)
    report = dev_report["pii"]
    for kind in ("EMAIL_ADDRESS", "PHONE_NUMBER", "IP_ADDRESS"):
        assert report[kind] == counts[kind]
    assert report["documents"] == documents


def test_dates_urls_and_ngrams(dev_report, dev_docs):
    assert dev_report["dates"] == dict(Counter(d["created"][:7] for d in dev_docs))
    urls = [d["metadata"]["url"] for d in dev_docs if (d.get("metadata") or {}).get("url")]
    assert dev_report["urls"]["documents"] == len(urls)
    domains = Counter((urlsplit(u).hostname or "").removeprefix("www.") for u in urls)
    top = {r["domain"]: r["documents"] for r in dev_report["urls"]["domains"]["top"]}
    assert all(domains[k] == v for k, v in top.items())
    assert sum(dev_report["urls"]["schemes"].values()) == len(urls)
    assert dev_report["duplicates"]["url"]["documents"] == len(urls) - len(set(urls))
    unigrams = Counter(w for d in dev_docs for w in d["text"].split())
    n1 = dev_report["ngrams"]["1"]
    assert n1["total"] == sum(unigrams.values())
    truth_top = [w for w, _ in unigrams.most_common(10)]
    assert [r["ngram"] for r in n1["top"][:10]] == truth_top
    slack = 2.72 * n1["total"] / (1 << 17)
    assert all(unigrams[r["ngram"]] <= r["count"] <= unigrams[r["ngram"]] + slack for r in n1["top"])
    assert all(unigrams[r["ngram"]] == r["count"] for r in n1["bottom"])
    assert abs(n1["distinct"] - len(unigrams)) / len(unigrams) < 0.03
    assert set(dev_report["ngrams"]) == {"1", "2", "3"}
    tox = dev_report["toxicity"]
    assert tox["documents"] == len(dev_docs) and 0 < tox["flagged"] < len(dev_docs)
    assert dev_report["run"]["mb_per_second"] > 0
