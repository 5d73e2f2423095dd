"""Sketches and n-gram counting: exact where promised, bounded error where approximate, mergeable."""

from __future__ import annotations

from collections import Counter

import numpy as np

from dolma_tools.stats.sketches import (
    BoundedCounter,
    CountMinSketch,
    HyperLogLog,
    LogHistogram,
    NGramSketch,
    combine,
    hash_strings,
)


def _keys(n: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 2**64 - 1, size=n, dtype=np.uint64, endpoint=True)


def test_count_min_never_underestimates_and_merges():
    keys = _keys(5000)
    counts = np.random.default_rng(1).integers(1, 50, size=5000).astype(np.uint64)
    a, b, both = CountMinSketch(1 << 12, 4), CountMinSketch(1 << 12, 4), CountMinSketch(1 << 12, 4)
    a.add(keys[:2500], counts[:2500])
    b.add(keys[2500:], counts[2500:])
    both.add(keys, counts)
    a.merge(b)
    assert np.array_equal(a.table, both.table)
    est = a.estimate(keys)
    assert np.all(est >= counts)
    assert np.mean(est - counts) < np.e * counts.sum() / (1 << 12)


def test_count_min_pickles_sparse_and_dense():
    import pickle

    sketch = CountMinSketch(1 << 10, 3)
    sketch.add(_keys(10))
    assert np.array_equal(pickle.loads(pickle.dumps(sketch)).table, sketch.table)
    sketch.add(_keys(5000, seed=3))
    assert np.array_equal(pickle.loads(pickle.dumps(sketch)).table, sketch.table)


def test_hyperloglog_accuracy_and_merge():
    keys = _keys(200_000)
    whole, a, b = HyperLogLog(14), HyperLogLog(14), HyperLogLog(14)
    whole.add(keys)
    a.add(keys[:120_000])
    b.add(keys[80_000:])
    a.merge(b)
    assert np.array_equal(a.registers, whole.registers)
    assert abs(whole.estimate() - 200_000) / 200_000 < 0.03
    small = HyperLogLog(14)
    small.add(_keys(100))
    assert abs(small.estimate() - 100) <= 2


def test_bounded_counter_keeps_heavy_keys():
    counter = BoundedCounter(width=2, capacity=10)
    for i in range(100):
        counter.add(f"rare{i}", 1, 5)
    for _ in range(50):
        counter.add("heavy", 1, 2)
    assert counter.top(1)[0] == ("heavy", [50, 100])
    assert len(counter.counts) <= 10
    assert sum(r[0] for r in counter.counts.values()) + counter.other[0] == 150


def test_log_histogram_bins():
    hist = LogHistogram()
    hist.add(np.array([0, 1, 9, 10, 11, 1000]))
    bins = {(round(b["low"], 6)): b["count"] for b in hist.nonempty()}
    assert bins == {0.0: 1, 1.0: 1, round(10 ** 0.9, 6): 1, 10.0: 2, 1000.0: 1}


def _ngram_hashes(words: list[str], n: int) -> np.ndarray:
    h = hash_strings(words)
    word = h
    for k in range(1, n):
        h = combine(h[:-1], word[k:])
    return h


def _feed(sketch: NGramSketch, words: list[str], batch: int = 997) -> None:
    n = sketch.n
    for i in range(0, len(words), batch):
        chunk = words[i:i + batch]
        hashes = _ngram_hashes(chunk, n)
        starts = np.arange(len(hashes))
        sketch.add_batch(hashes, lambda pos, chunk=chunk: [" ".join(chunk[s:s + n]) for s in starts[pos].tolist()])


def _exact(words: list[str], n: int, batch: int = 997) -> Counter:
    out = Counter()
    for i in range(0, len(words), batch):
        chunk = words[i:i + batch]
        out.update(" ".join(chunk[j:j + n]) for j in range(len(chunk) - n + 1))
    return out


def _zipf_words(count: int, vocab: int, seed: int = 0) -> list[str]:
    rng = np.random.default_rng(seed)
    ranks = np.minimum(rng.zipf(1.3, size=count), vocab)
    return [f"w{r}" for r in ranks.tolist()]


def test_ngram_exact_mode_matches_counter_and_merges():
    words = _zipf_words(20_000, 3000)
    for n in (1, 2, 3):
        a, b = NGramSketch(n, width=1 << 12), NGramSketch(n, width=1 << 12)
        _feed(a, words[:10_000])
        _feed(b, words[10_000:])
        whole = _exact(words[:10_000], n) + _exact(words[10_000:], n)
        a.merge(b)
        assert a.is_exact and a.distinct() == len(whole)
        expected_top = sorted(whole.items(), key=lambda kv: (-kv[1], kv[0]))[:10]
        assert a.top(10) == expected_top
        expected_bottom = sorted(whole.items(), key=lambda kv: (kv[1], kv[0]))[:10]
        assert a.bottom(10) == expected_bottom
        assert a.total == sum(whole.values())


def test_ngram_approximate_mode_top_and_bottom():
    words = _zipf_words(200_000, 50_000, seed=2)
    n = 2
    truth = sum((_exact(words[i * 50_000:(i + 1) * 50_000], n) for i in range(4)), Counter())
    parts = [NGramSketch(n, width=1 << 14, exact_limit=2_000, sample_size=500) for _ in range(4)]
    for i, part in enumerate(parts):
        _feed(part, words[i * 50_000:(i + 1) * 50_000])
    merged = parts[0]
    for part in parts[1:]:
        merged.merge(part)
    assert not merged.is_exact
    bound = np.e * sum(truth.values()) / (1 << 14)
    top = merged.top(10)
    true_top = [g for g, _ in truth.most_common(10)]
    assert [g for g, _ in top][:5] == true_top[:5]
    for gram, count in top:
        assert truth[gram] <= count <= truth[gram] + bound
    # bottom-k comes from the hash sample, whose counts are exact
    for gram, count in merged.bottom(20):
        assert count == truth[gram]
    assert abs(merged.distinct() - len(truth)) / len(truth) < 0.05


def test_ngram_merge_order_does_not_matter():
    words = _zipf_words(60_000, 20_000, seed=5)
    parts = []
    for i in range(3):
        s = NGramSketch(1, width=1 << 12, exact_limit=1_000, sample_size=200)
        _feed(s, words[i * 20_000:(i + 1) * 20_000])
        parts.append(s)
    import copy

    left = copy.deepcopy(parts[0])
    left.merge(copy.deepcopy(parts[1]))
    left.merge(copy.deepcopy(parts[2]))
    right = copy.deepcopy(parts[1])
    right.merge(copy.deepcopy(parts[2]))
    first = copy.deepcopy(parts[0])
    first.merge(right)
    assert left.bottom(50) == first.bottom(50)
    assert np.array_equal(left.cms.table, first.cms.table)
    assert left.top(5) == first.top(5)
