"""The fast paths of `dolma stats` give exactly what the straightforward computations give:
PII counts vs `find_pii`, the numpy profanity model vs alt-profanity-check, the n-gram
helpers vs numpy, and the forked local executor vs an in-process run."""

from __future__ import annotations

import gzip
import json
import pickle
from collections import Counter
from pathlib import Path

import numpy as np
import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dolma_tools.stats.config import StatsConfig
from dolma_tools.stats.sketches import NGramSketch, _merge_sorted_counts, _positions_of, hash_strings, unique_counts

pii = pytest.importorskip("dolma_tools.taggers.pii")
from dolma_tools.stats.pii import pii_counts, pii_counts_batch  # noqa: E402

DEMO = Path(__file__).resolve().parents[2] / "demo" / "corpus" / "documents"

PIECES = ["john.doe@example.com", "a@b", "x@y.org", "(555) 123-4567", "555-123-4567", "+44 20 7946 0958",
          "5551234567", "55512345678901234", "192.168.0.1", "10.0.0.256", "1.2.3.4.5", "01.02.03.04",
          "ISBN 978-3-16-148410-0", "doi: 10.1000/182", "isbn", "arxiv", "12", "3.4", " ", "  ", "\n", "\n\n",
          "\t", ".", ",", "(", ")", "+", "-", "@", "word", "Call", "e-mail:", "1", "22", "333", "4444",
          "\u0663\u0664\u0665", "\uff11\uff12\uff13", "\u00b2", "_", "a1", "#"]


def _truth(text: str) -> tuple[int, int, int]:
    kinds = Counter(kind for _, _, kind in pii.find_pii(text))
    return kinds["EMAIL_ADDRESS"], kinds["PHONE_NUMBER"], kinds["IP_ADDRESS"]


@settings(max_examples=400, deadline=None)
@given(st.lists(st.sampled_from(PIECES), max_size=40))
def test_pii_counts_equal_find_pii(pieces):
    text = "".join(pieces)
    assert pii_counts(text) == _truth(text)


@settings(max_examples=60, deadline=None)
@given(st.lists(st.lists(st.sampled_from(PIECES), max_size=30).map("".join), min_size=1, max_size=8))
def test_pii_counts_batch_equal_find_pii(texts):
    assert pii_counts_batch(texts).tolist() == [list(_truth(t)) for t in texts]


def test_pii_counts_batch_on_corpus_text_and_surrogates():
    texts = []
    for path in sorted(DEMO.glob("*/*.json.gz")):
        with gzip.open(path, "rb") as fh:
            texts.extend(orjson.loads(line)["text"] for line in fh if line.strip())
    texts += ["call 555-123-4567 \ud800 or 10.1.2.3", "\ud800", ""]  # lone surrogates: no Arrow array
    assert pii_counts_batch(texts).tolist() == [list(_truth(t)) for t in texts]


def test_profanity_model_equals_alt_profanity_check(tmp_path, monkeypatch):
    profanity_check = pytest.importorskip("profanity_check")
    from dolma_tools.stats import toxicity

    monkeypatch.setenv("DOLMA_TOOLS_CACHE", str(tmp_path))
    toxicity.load_profanity_model.cache_clear()
    try:
        first = toxicity.load_profanity_model()
        assert list(tmp_path.glob("profanity-*.npz")), "parameters cached"
        toxicity.load_profanity_model.cache_clear()
        cached = toxicity.load_profanity_model()  # from the .npz, no scikit-learn
    finally:
        toxicity.load_profanity_model.cache_clear()
    texts = []
    for path in sorted(DEMO.glob("*/*.json.gz")):
        with gzip.open(path, "rb") as fh:
            texts.extend(orjson.loads(line)["text"][:500] for line in fh if line.strip())
    texts += ["", "   ", "fuck this shit", "you are an idiot", "İstanbul STRASSE straße", "a b c", "ok ok"]
    expected = profanity_check.predict_prob(texts)
    for model in (first, cached):
        assert np.abs(model(texts) - expected).max() < 1e-9


def test_unique_counts_positions_and_sorted_merge():
    rng = np.random.default_rng(3)
    values = rng.integers(0, 1 << 63, 500, dtype=np.uint64)[rng.integers(0, 500, 20_000)]
    keys, counts = unique_counts(values)
    ref_keys, ref_counts = np.unique(values, return_counts=True)
    assert np.array_equal(keys, ref_keys) and np.array_equal(counts, ref_counts)
    assert len(unique_counts(values[:0])[0]) == 0
    wanted = rng.permutation(keys)[:100]
    positions = _positions_of(values, wanted)
    assert np.array_equal(values[positions], wanted)
    a_keys, a_counts = unique_counts(values[:7000])
    b_keys, b_counts = unique_counts(values[7000:])
    m_keys, m_counts = _merge_sorted_counts(a_keys, a_counts, b_keys, b_counts)
    assert np.array_equal(m_keys, ref_keys) and np.array_equal(m_counts, ref_counts)


def test_exact_ngram_sketch_pickles_without_its_table():
    words = [f"w{i % 97}" for i in range(5000)]
    sketch = NGramSketch(1, width=1 << 12)
    keys, counts = unique_counts(hash_strings(words))
    by_hash = dict(zip(hash_strings(words).tolist(), words))
    sketch.add_counts(keys, counts, lambda idx: [by_hash[k] for k in keys[idx].tolist()])
    clone = pickle.loads(pickle.dumps(sketch))
    assert clone.is_exact and np.array_equal(clone.cms.table, sketch.cms.table)
    assert clone.top(5) == sketch.top(5) and clone.bottom(5) == sketch.bottom(5)


def test_forked_local_run_equals_in_process_run(tmp_path, monkeypatch):
    from dolma_tools.stats import runner

    docs = [str(DEMO / "*" / "*.json.gz")]
    reports = {}
    for name, debug in (("debug", True), ("forked", False)):
        out = tmp_path / name
        cfg = StatsConfig(documents=docs, output=str(out), debug=debug, processes=2, html=False, executor="local")
        runner.run_stats(cfg, progress=False)
        report = json.loads((out / "report.json").read_text())
        report.pop("run")
        reports[name] = report
        summary = json.loads((out / ".summary-stats.json").read_text())
        assert summary["files"] == len(report["files"]) and summary["files_failed"] == 0
    assert reports["forked"] == reports["debug"]


def test_executor_choice(monkeypatch):
    # Ray unless `--executor local` is asked for; local never joins a cluster
    from dolma_tools.errors import ConfigError

    monkeypatch.delenv("RAY_ADDRESS", raising=False)
    assert StatsConfig().local_pool() is False
    assert StatsConfig(executor="local").local_pool() is True
    with pytest.raises(ConfigError, match="this machine only"):
        StatsConfig(executor="local", ray_address="ray://head:10001").local_pool()
    with pytest.raises(ConfigError, match="not one of"):
        StatsConfig(executor="threads").local_pool()


def _dies_once(marker_dir: str, path: str):
    import os

    from dolma_tools.runtime import FileResult

    marker = os.path.join(marker_dir, "died")
    if path == "b" and not os.path.exists(marker):
        open(marker, "w").close()
        os._exit(1)  # the worker process dies mid-task
    return FileResult(path=path, documents=1)


def test_forked_pool_replaces_a_dead_worker(tmp_path):
    import functools

    from dolma_tools.runtime import run_files

    cfg = StatsConfig(processes=2, retries=1, executor="local")
    summary = run_files("stats", ["a", "b", "c", "d"], functools.partial(_dies_once, str(tmp_path)), cfg,
                        is_done=lambda p: False, summary_path=str(tmp_path / "summary.json"), progress=False)
    assert summary.documents == 4 and summary.files_failed == 0
    assert (tmp_path / "died").exists()
