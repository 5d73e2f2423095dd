"""A Bloom filter with a stable hash and a portable on-disk format.

Keys are hashed once with xxh3-128 (seed 0) into two 64-bit halves (h1, h2); the k bit positions
are h1 + i*h2 (double hashing) inside one *segment* of the bit array. The segment is chosen from
the top bits of h1, so a filter split by hash range across S Ray actors (one segment each) sets
exactly the bits a single filter with S segments would: results never depend on how it is hosted.

File format (little-endian), version 1::

    magic   8 bytes  b"DTBLOOM\\x01"
    version u32      1
    k       u32      hash functions
    m       u64      bits (a multiple of 64 * segments)
    hash    u32      1 = xxh3-128 seed 0, double hashing
    segments u32
    meta_len u64     length of the JSON metadata that follows the bits
    bits    m/8 bytes (u64 words)
    meta    JSON: {"inserted_files": [...], "keys_inserted": n, ...}
"""

from __future__ import annotations

import math
import struct
from dataclasses import dataclass, field
from typing import Iterable

import numpy as np
import orjson
import xxhash

from dolma_tools.errors import UserError

MAGIC = b"DTBLOOM\x01"
VERSION = 1
HASH_XXH3_128 = 1
_HEADER = struct.Struct("<IIQIIQ")
MAX_K = 16
DEFAULT_K = 7
_U64 = np.uint64


def hash_keys(keys: Iterable[str | bytes]) -> np.ndarray:
    """(n, 2) uint64 array of xxh3-128 halves for each key (str keys are UTF-8 encoded)."""
    digest = xxhash.xxh3_128_digest
    keys = keys if isinstance(keys, list) else list(keys)
    if keys and isinstance(keys[0], str):
        joined = b"".join(map(digest, map(str.encode, keys)))
    else:
        joined = b"".join(map(digest, keys))
    return np.frombuffer(joined, dtype="<u8").reshape(-1, 2).astype(_U64, copy=False)


def _utf8(key: str) -> bytes:
    return key.encode("utf-8", "surrogatepass")


def empty_hashes() -> np.ndarray:
    return np.zeros((0, 2), dtype=_U64)


def optimal_size(n: int, p: float) -> tuple[int, int]:
    """(bits, k) for n keys at false-positive rate p: m = -n ln p / ln²2, k = m/n ln 2, k capped."""
    if n <= 0 or not 0 < p < 1:
        raise UserError("bloom_filter.estimated_doc_count must be > 0 and "
                        "desired_false_positive_rate between 0 and 1")
    m = math.ceil(-n * math.log(p) / (math.log(2) ** 2))
    k = min(MAX_K, max(1, round(m / n * math.log(2))))
    return m, k


def expected_fp_rate(m: int, k: int, n: int) -> float:
    return (1 - math.exp(-k * n / m)) ** k if m else 1.0


def choose_size(size_in_bytes: int = 0, estimated_doc_count: int = 0,
                desired_false_positive_rate: float = 0.0) -> tuple[int, int]:
    """Sizing from Dolma's keys. `size_in_bytes` alone works (k = 7, or optimal for the estimate)."""
    if size_in_bytes and size_in_bytes > 0:
        m = size_in_bytes * 8
        if estimated_doc_count > 0:
            k = min(MAX_K, max(1, round(m / estimated_doc_count * math.log(2))))
        else:
            k = DEFAULT_K
        return m, k
    if estimated_doc_count > 0 and desired_false_positive_rate > 0:
        return optimal_size(estimated_doc_count, desired_false_positive_rate)
    raise UserError("size the Bloom filter with bloom_filter.size_in_bytes, or with both "
                    "bloom_filter.estimated_doc_count and bloom_filter.desired_false_positive_rate")


def segment_of(hashes: np.ndarray, segments: int) -> np.ndarray:
    """Hash-range partition: the top 32 bits of h1 scaled to [0, segments)."""
    if segments == 1:
        return np.zeros(len(hashes), dtype=np.int64)
    top = hashes[:, 0] >> _U64(32)
    return ((top * _U64(segments)) >> _U64(32)).astype(np.int64)


def first_occurrence(hashes: np.ndarray) -> np.ndarray:
    """True where a key has not appeared earlier in the batch.

    Keys are compared by their first 64-bit half: two different keys sharing it (probability
    ~n²/2^65) would be one more false positive, which a Bloom filter allows anyway.
    """
    n = len(hashes)
    if n <= 1:
        return np.ones(n, dtype=bool)
    h1 = hashes[:, 0]
    order = np.argsort(h1, kind="stable")
    sorted_h = h1[order]
    repeat = np.empty(n, dtype=bool)
    repeat[0] = False
    repeat[1:] = sorted_h[1:] == sorted_h[:-1]
    out = np.empty(n, dtype=bool)
    out[order] = ~repeat  # stable sort: the first of equal keys comes first
    return out


@dataclass
class BloomFilter:
    """Bits of `segments` equal segments; one instance may hold only some of the segments."""

    m: int
    k: int
    segments: int = 1
    words: np.ndarray | None = None
    meta: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        unit = 64 * self.segments
        self.m = max(unit, -(-self.m // unit) * unit)
        self.k = max(1, min(int(self.k), MAX_K))
        if self.words is None:
            self.words = np.zeros(self.m // 64, dtype=_U64)
        self.meta.setdefault("inserted_files", [])
        self.meta.setdefault("keys_inserted", 0)

    @property
    def segment_bits(self) -> int:
        return self.m // self.segments

    def positions(self, hashes: np.ndarray) -> np.ndarray:
        """(n, k) global bit positions."""
        seg_bits = _U64(self.segment_bits)
        base = segment_of(hashes, self.segments).astype(_U64) * seg_bits
        i = np.arange(self.k, dtype=_U64)
        with np.errstate(over="ignore"):
            local = (hashes[:, :1] + i[None, :] * hashes[:, 1:2]) % seg_bits
        return base[:, None] + local

    def _contains_at(self, pos: np.ndarray) -> np.ndarray:
        bits = (self.words[pos >> _U64(6)] >> (pos & _U64(63))) & _U64(1)
        return bits.all(axis=1)

    def _set(self, pos: np.ndarray) -> None:
        pos = pos.reshape(-1)
        np.bitwise_or.at(self.words, pos >> _U64(6), _U64(1) << (pos & _U64(63)))

    def contains(self, hashes: np.ndarray) -> np.ndarray:
        if len(hashes) == 0:
            return np.zeros(0, dtype=bool)
        return self._contains_at(self.positions(hashes))

    def insert(self, hashes: np.ndarray) -> None:
        if len(hashes) == 0:
            return
        self._set(self.positions(hashes))
        self.meta["keys_inserted"] = int(self.meta.get("keys_inserted", 0)) + len(hashes)

    def add_and_check(self, hashes: np.ndarray, insert: bool = True) -> np.ndarray:
        """Duplicate flags with sequential semantics: a key counts as seen when it is in the
        filter or appeared earlier in this batch; new keys are inserted (unless read-only)."""
        if len(hashes) == 0:
            return np.zeros(0, dtype=bool)
        pos = self.positions(hashes)  # once, for the check and the insert
        dup = self._contains_at(pos) | ~first_occurrence(hashes)
        if insert:
            new = ~dup
            self._set(pos[new])
            self.meta["keys_inserted"] = int(self.meta.get("keys_inserted", 0)) + int(new.sum())
        return dup

    def check_then_insert(self, hashes: np.ndarray, insert: bool = True,
                          before_insert=None) -> tuple[np.ndarray, int]:
        """`add_and_check` in two steps that share the positions: the flags are computed, then
        `before_insert(flags)` runs (e.g. writes a journal), then the new keys' bits are set
        (unless `insert` is false). Returns (flags, keys inserted)."""
        if len(hashes) == 0:
            dup = np.zeros(0, dtype=bool)
            if before_insert is not None:
                before_insert(dup)
            return dup, 0
        pos = self.positions(hashes)
        dup = self._contains_at(pos) | ~first_occurrence(hashes)
        if before_insert is not None:
            before_insert(dup)
        if not insert:
            return dup, 0
        new = ~dup
        self._set(pos[new])
        return dup, int(new.sum())

    # -- persistence ------------------------------------------------------------------------
    def to_bytes(self) -> bytes:
        meta = orjson.dumps(self.meta)
        header = MAGIC + _HEADER.pack(VERSION, self.k, self.m, HASH_XXH3_128, self.segments, len(meta))
        return header + self.words.astype("<u8", copy=False).tobytes() + meta

    @classmethod
    def from_bytes(cls, data: bytes, source: str = "<bytes>") -> "BloomFilter":
        if data[:8] != MAGIC:
            raise UserError(f"{source} is not a dolma-tools Bloom filter file (Dolma's own .bin "
                            "filters depend on the binary that wrote them and cannot be read)")
        version, k, m, hash_id, segments, meta_len = _HEADER.unpack_from(data, 8)
        if version != VERSION or hash_id != HASH_XXH3_128:
            raise UserError(f"{source}: unsupported Bloom filter version {version} / hash {hash_id}")
        start = 8 + _HEADER.size
        n_words = m // 64
        words = np.frombuffer(data, dtype="<u8", count=n_words, offset=start).astype(_U64)
        meta = orjson.loads(data[start + 8 * n_words: start + 8 * n_words + meta_len] or b"{}")
        return cls(m=m, k=k, segments=segments, words=words, meta=meta)

    def save(self, path: str) -> None:
        """`to_bytes()` written piece by piece: no second copy of the bits in memory."""
        from dolma_tools.io.files import AtomicWriter

        meta = orjson.dumps(self.meta)
        words = np.ascontiguousarray(self.words.astype("<u8", copy=False))
        with AtomicWriter(path, compression="") as out:
            out.write(MAGIC + _HEADER.pack(VERSION, self.k, self.m, HASH_XXH3_128, self.segments, len(meta)))
            out.write(memoryview(words.view(np.uint8)))
            out.write(meta)

    @classmethod
    def load(cls, path: str) -> "BloomFilter":
        from dolma_tools.io.files import open_read

        with open_read(path, compression="") as fh:
            return cls.from_bytes(fh.read(), path)

    # -- segments (for hosting a filter across actors) ----------------------------------------
    def segment_words(self, index: int) -> np.ndarray:
        n = len(self.words) // self.segments
        return self.words[index * n:(index + 1) * n]


class SegmentHost:
    """Holds one segment of a filter; the body of a Ray actor when the filter is partitioned."""

    def __init__(self, m: int, k: int, segments: int, index: int, words: np.ndarray | None) -> None:
        self.filter = BloomFilter(m=m // segments, k=k, segments=1,
                                  words=None if words is None else np.array(words, dtype=_U64))
        self.index = index

    def add_and_check(self, hashes: np.ndarray, insert: bool) -> np.ndarray:
        return self.filter.add_and_check(hashes, insert)

    def words(self) -> np.ndarray:
        return self.filter.words

    def keys_inserted(self) -> int:
        return int(self.filter.meta["keys_inserted"])


def split_by_segment(hashes: np.ndarray, segments: int) -> list[np.ndarray]:
    """Row indices of `hashes` per segment, in their original order."""
    seg = segment_of(hashes, segments)
    return [np.flatnonzero(seg == s) for s in range(segments)]


def describe(bf: BloomFilter) -> str:
    return (f"{bf.m / 8 / 2**20:.1f} MiB, k={bf.k}, segments={bf.segments}, "
            f"{bf.meta.get('keys_inserted', 0):,} keys inserted")
