"""Bloom filter: sizing, stable hashing, the portable file format, segments."""

from __future__ import annotations

import numpy as np
import pytest
import xxhash

from dolma_tools.dedupe.bloom import (
    MAX_K,
    BloomFilter,
    SegmentHost,
    choose_size,
    hash_keys,
    optimal_size,
    split_by_segment,
)
from dolma_tools.errors import UserError


def test_sizing_is_standard_and_capped() -> None:
    m, k = optimal_size(1_000_000, 1e-3)
    assert 14_300_000 < m < 14_400_000 and k == 10
    assert optimal_size(1000, 1e-15)[1] == MAX_K  # Dolma 1.2.1 gives thousands of hashers here
    assert choose_size(size_in_bytes=1 << 20) == (8 << 20, 7)  # size alone works (Dolma panics)
    with pytest.raises(UserError):
        choose_size()


def test_hash_is_stable() -> None:
    # xxh3-128 with seed 0, little-endian halves: fixed across runs, machines and versions
    digest = xxhash.xxh3_128_digest(b"hello")
    assert hash_keys(["hello"]).tolist() == [[int.from_bytes(digest[:8], "little"),
                                              int.from_bytes(digest[8:], "little")]]


def test_first_seen_wins_within_a_batch() -> None:
    bf = BloomFilter(m=1 << 16, k=5)
    flags = bf.add_and_check(hash_keys(["a", "b", "a", "c", "b"]))
    assert flags.tolist() == [False, False, True, False, True]
    assert bf.add_and_check(hash_keys(["c", "d"])).tolist() == [True, False]
    ro = bf.add_and_check(hash_keys(["e", "e"]), insert=False)
    assert ro.tolist() == [False, True] and not bf.contains(hash_keys(["e"]))[0]


def test_false_positive_rate_near_target() -> None:
    m, k = optimal_size(20_000, 0.01)
    bf = BloomFilter(m=m, k=k)
    bf.insert(hash_keys([f"in-{i}" for i in range(20_000)]))
    assert bf.contains(hash_keys([f"in-{i}" for i in range(20_000)])).all()
    fp = bf.contains(hash_keys([f"out-{i}" for i in range(20_000)])).mean()
    assert fp < 0.02


def test_file_roundtrip(tmp_path) -> None:
    bf = BloomFilter(m=10_000, k=4, segments=2)
    bf.add_and_check(hash_keys(["x", "y"]))
    bf.meta["inserted_files"] = ["/data/documents/a.jsonl.gz"]
    path = tmp_path / "f.bin"
    bf.save(str(path))
    data = path.read_bytes()
    assert data[:8] == b"DTBLOOM\x01"
    back = BloomFilter.load(str(path))
    assert (back.m, back.k, back.segments) == (bf.m, bf.k, 2)
    assert np.array_equal(back.words, bf.words)
    assert back.meta["inserted_files"] == ["/data/documents/a.jsonl.gz"]
    (tmp_path / "dolma.bin").write_bytes(b"\x17\xf1\xf0\x81" + b"\0" * 64)
    with pytest.raises(UserError, match="not a dolma-tools Bloom filter"):
        BloomFilter.load(str(tmp_path / "dolma.bin"))


def test_segment_hosts_equal_one_filter() -> None:
    keys = hash_keys([f"k{i % 700}" for i in range(2000)])
    whole = BloomFilter(m=50_000, k=6, segments=4)
    expected = whole.add_and_check(keys)
    hosts = [SegmentHost(whole.m, whole.k, 4, s, None) for s in range(4)]
    got = np.zeros(len(keys), dtype=bool)
    for host, idx in zip(hosts, split_by_segment(keys, 4)):
        got[idx] = host.add_and_check(keys[idx], True)
    assert np.array_equal(expected, got)
    assert np.array_equal(np.concatenate([h.words() for h in hosts]), whole.words)
