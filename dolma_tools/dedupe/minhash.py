"""MinHash-LSH near-duplicate detection, vectorised with NumPy over whole batches.

Signatures are value-for-value those of `datasketch.MinHash(num_perm, seed, hashfunc=shingle_hash)`
(datasketch 2's default `affine32` scheme: its permutation parameters from `seed`, the input hash
premixed with the 32-bit MurmurHash3 finalizer, then `a*h + b mod 2^32`). The shingle hash is
designed so that it can be computed for a whole batch without a per-shingle Python loop:

- words are runs of non-ASCII-whitespace bytes of the (optionally lowercased) UTF-8 text;
- word hash = fmix64(sum_j (byte_j + 1) * P^j  xor  byte length), mod 2^64;
- shingle hash (n consecutive words; a shorter document is one shingle of all its words)
  = low 32 bits of fmix64(sum_j word_hash_j * Q^j).

`shingle_hash` is the same function in plain Python, for datasketch. Bands/rows come from
datasketch's own optimal-parameter search; band buckets are hashed rows of the signature.
"""

from __future__ import annotations

import re

import numpy as np

_U64 = np.uint64
_U32 = np.uint32
_P = 0x100000001B3  # FNV prime: odd, so invertible mod 2^64
_P_INV = pow(_P, -1, 1 << 64)
_Q = 0x9E3779B97F4A7C15
_R = 0xC2B2AE3D27D4EB4F
_MASK64 = (1 << 64) - 1
_WHITESPACE = np.array([9, 10, 11, 12, 13, 32], dtype=np.uint8)
_ASCII_WS = re.compile(rb"[\t\n\x0b\x0c\r ]+")
MAX_HASH32 = np.uint32(0xFFFFFFFF)


# ------------------------------------------------------------------------------------------
# Reference (pure Python) hashing, used as datasketch's hashfunc


def _fmix64_int(h: int) -> int:
    h ^= h >> 33
    h = (h * 0xFF51AFD7ED558CCD) & _MASK64
    h ^= h >> 33
    h = (h * 0xC4CEB9FE1A85EC53) & _MASK64
    return h ^ (h >> 33)


def word_hash(word: bytes) -> int:
    acc, power = 0, 1
    for c in word:
        acc = (acc + (c + 1) * power) & _MASK64
        power = (power * _P) & _MASK64
    return _fmix64_int(acc ^ len(word))


def shingle_hash(shingle: tuple[bytes, ...]) -> int:
    """32-bit hash of a shingle (a tuple of UTF-8 words): datasketch's `hashfunc`."""
    acc, power = 0, 1
    for word in shingle:
        acc = (acc + word_hash(word) * power) & _MASK64
        power = (power * _Q) & _MASK64
    return _fmix64_int(acc) & 0xFFFFFFFF


def words_of(text: str, lowercase: bool = True) -> list[bytes]:
    data = (text.lower() if lowercase else text).encode("utf-8")
    return [w for w in _ASCII_WS.split(data) if w]


def shingles_of(text: str, ngram_size: int, lowercase: bool = True) -> list[tuple[bytes, ...]]:
    """The shingles our signatures use, for feeding datasketch or rensa."""
    words = words_of(text, lowercase)
    if not words:
        return []
    if len(words) < ngram_size:
        return [tuple(words)]
    return [tuple(words[i:i + ngram_size]) for i in range(len(words) - ngram_size + 1)]


# ------------------------------------------------------------------------------------------
# Vectorised hashing


def _fmix64(h: np.ndarray) -> np.ndarray:
    h = h ^ (h >> _U64(33))
    h = h * _U64(0xFF51AFD7ED558CCD)
    h = h ^ (h >> _U64(33))
    h = h * _U64(0xC4CEB9FE1A85EC53)
    return h ^ (h >> _U64(33))


def _fmix32(h: np.ndarray) -> np.ndarray:
    h = h ^ (h >> _U32(16))
    h = h * _U32(0x85EBCA6B)
    h = h ^ (h >> _U32(13))
    h = h * _U32(0xC2B2AE35)
    return h ^ (h >> _U32(16))


_POWERS: dict[int, tuple[np.ndarray, np.ndarray]] = {}


def _power_table(base: int, size: int) -> np.ndarray:
    """base^i mod 2^64 for i < size, by doubling (log2(size) vectorised steps)."""
    out = np.ones(size, dtype=_U64)
    filled, step = 1, base
    with np.errstate(over="ignore"):
        while filled < size:
            n = min(filled, size - filled)
            out[filled:filled + n] = out[:n] * _U64(step)
            filled += n
            step = (step * step) & _MASK64
    return out


def _powers(n: int) -> tuple[np.ndarray, np.ndarray]:
    """P^i and P^-i mod 2^64 for i < n (cached, grown by doubling)."""
    size = 1 << max(12, (n - 1).bit_length())
    cached = _POWERS.get(0)
    if cached is None or len(cached[0]) < size:
        cached = (_power_table(_P, size), _power_table(_P_INV, size))
        _POWERS[0] = cached
    return cached[0][:n], cached[1][:n]


_IS_WORD_BYTE = np.ones(256, dtype=bool)
_IS_WORD_BYTE[_WHITESPACE] = False


def batch_word_hashes(texts: list[str], lowercase: bool = True) -> tuple[np.ndarray, np.ndarray]:
    """All word hashes of a batch (uint64, in order) and the number of words per text."""
    encoded = [(t.lower() if lowercase else t).encode("utf-8") for t in texts]
    raw = np.frombuffer(b"\n".join(encoded), dtype=np.uint8)
    n = len(raw)
    if n == 0:
        return np.zeros(0, dtype=_U64), np.zeros(len(texts), dtype=np.int64)
    is_word = _IS_WORD_BYTE[raw]
    edges = np.diff(np.concatenate(([0], is_word.view(np.int8), [0])))
    starts = np.flatnonzero(edges == 1)
    ends = np.flatnonzero(edges == -1)
    fwd, inv = _powers(n + 1)
    with np.errstate(over="ignore"):
        terms = (raw.astype(_U64) + _U64(1)) * fwd[:n]
        prefix = np.concatenate(([_U64(0)], np.cumsum(terms, dtype=_U64)))
        h = (prefix[ends] - prefix[starts]) * inv[starts]
        h = _fmix64(h ^ (ends - starts).astype(_U64))
    # texts are joined by one "\n" byte: the separator after text i sits at this offset
    lengths = np.fromiter((len(e) for e in encoded), dtype=np.int64, count=len(encoded))
    separators = np.cumsum(lengths + 1)[:-1] - 1
    owner = np.searchsorted(separators, starts, side="right")
    return h, np.bincount(owner, minlength=len(texts)).astype(np.int64)


def batch_shingle_hashes(texts: list[str], ngram_size: int, lowercase: bool = True,
                         full: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """32-bit shingle hashes (uint32; 64-bit before truncation with `full`) and shingles per text."""
    wh, counts = batch_word_hashes(texts, lowercase)
    total = len(wh)
    doc_end = np.repeat(np.cumsum(counts), counts)
    doc_start = doc_end - np.repeat(counts, counts)
    idx = np.arange(total)
    acc = np.zeros(total, dtype=_U64)
    power = 1
    with np.errstate(over="ignore"):
        for j in range(ngram_size):
            pos = idx + j
            ok = pos < doc_end
            term = np.where(ok, wh[np.minimum(pos, max(total - 1, 0))], _U64(0)) * _U64(power)
            acc = acc + term
            power = (power * _Q) & _MASK64
        words_in_doc = doc_end - doc_start
        valid = (idx + ngram_size <= doc_end) | ((words_in_doc < ngram_size) & (idx == doc_start))
        mixed = _fmix64(acc[valid])
    per_doc = np.where(counts == 0, 0, np.maximum(counts - ngram_size + 1, 1))
    if full:
        return mixed, per_doc
    return (mixed & _U64(0xFFFFFFFF)).astype(_U32), per_doc


# ------------------------------------------------------------------------------------------
# Signatures


def permutations(num_perm: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """datasketch's affine32 permutation parameters (a odd, b) for `seed`."""
    gen = np.random.RandomState(seed)
    a = gen.randint(0, 1 << 31, num_perm, dtype=_U32) * _U32(2) + _U32(1)
    b = gen.randint(0, 1 << 32, num_perm, dtype=_U32)
    return a, b


def signatures(texts: list[str], num_perm: int = 128, seed: int = 1, ngram_size: int = 5,
               lowercase: bool = True, chunk_shingles: int = 16384) -> tuple[np.ndarray, np.ndarray]:
    """(n_texts, num_perm) uint32 signatures and a mask of texts that had any word."""
    a, b = permutations(num_perm, seed)
    hv, per_doc = batch_shingle_hashes(texts, ngram_size, lowercase)
    sig = np.full((len(texts), num_perm), MAX_HASH32, dtype=_U32)
    has = per_doc > 0
    if len(hv) == 0:
        return sig, has
    hv = _fmix32(hv)
    doc_of = np.repeat(np.arange(len(texts)), per_doc)
    a_col, b_col = a[:, None], b[:, None]
    start = 0
    with np.errstate(over="ignore"):
        while start < len(hv):
            stop = min(len(hv), start + chunk_shingles)
            # extend to the end of the last document in the chunk so reduceat segments are whole
            stop = int(np.searchsorted(doc_of, doc_of[stop - 1], side="right"))
            phv = a_col * hv[None, start:stop]  # (num_perm, shingles): reductions along rows are fast
            phv += b_col
            docs = doc_of[start:stop]
            bounds = np.flatnonzero(np.concatenate(([True], docs[1:] != docs[:-1])))
            mins = np.minimum.reduceat(phv, bounds, axis=1).T
            rows = docs[bounds]
            sig[rows] = np.minimum(sig[rows], mins)
            start = stop
    return sig, has


def to_lean_minhash(signature: np.ndarray, seed: int):
    """A `datasketch.LeanMinHash` with these values (for storage or datasketch's LSH)."""
    from datasketch import LeanMinHash

    return LeanMinHash(seed=seed, hashvalues=signature, scheme="affine32")


def choose_bands(num_perm: int, threshold: float, bands: int = 0, rows: int = 0) -> tuple[int, int]:
    if bands > 0 and rows > 0:
        if bands * rows > num_perm:
            from dolma_tools.errors import UserError

            raise UserError(f"dedupe.minhash: bands*rows = {bands * rows} exceeds num_perm = {num_perm}")
        return bands, rows
    from datasketch.lsh import _optimal_param

    return tuple(int(x) for x in _optimal_param(threshold, num_perm, 0.5, 0.5))  # type: ignore[return-value]


def band_hashes(sig: np.ndarray, bands: int, rows: int) -> np.ndarray:
    """(n, bands) uint64 bucket keys: hashed rows of each band (band index mixed in)."""
    out = np.zeros((len(sig), bands), dtype=_U64)
    with np.errstate(over="ignore"):
        for band in range(bands):
            acc = np.full(len(sig), _U64((band + 1) * _R & _MASK64), dtype=_U64)
            power = 1
            for j in range(rows):
                acc = acc + sig[:, band * rows + j].astype(_U64) * _U64(power)
                power = (power * _Q) & _MASK64
            out[:, band] = _fmix64(acc)
    return out


# ------------------------------------------------------------------------------------------
# Candidate pairs and clusters


def candidate_edges(bucket_keys: np.ndarray, doc_ids: np.ndarray) -> np.ndarray:
    """(e, 2) edges (member, lowest-index member of its bucket) over all bands."""
    edges = []
    for band in range(bucket_keys.shape[1]):
        keys = bucket_keys[:, band]
        order = np.lexsort((doc_ids, keys))
        k, d = keys[order], doc_ids[order]
        new_bucket = np.concatenate(([True], k[1:] != k[:-1]))
        head = np.maximum.accumulate(np.where(new_bucket, np.arange(len(k)), 0))
        member = ~new_bucket
        if member.any():
            edges.append(np.stack([d[member], d[head[member]]], axis=1))
    if not edges:
        return np.zeros((0, 2), dtype=np.int64)
    return np.unique(np.concatenate(edges), axis=0)


def connected_clusters(n: int, edges: np.ndarray) -> np.ndarray:
    """Cluster id per document = the lowest document index of its component."""
    if len(edges) == 0:
        return np.arange(n)
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import connected_components

    graph = coo_matrix((np.ones(len(edges), dtype=np.int8), (edges[:, 0], edges[:, 1])), shape=(n, n))
    _, labels = connected_components(graph, directed=False)
    lowest = np.full(labels.max() + 1, n, dtype=np.int64)
    np.minimum.at(lowest, labels, np.arange(n))
    return lowest[labels]


def jaccard(a: np.ndarray, b: np.ndarray) -> float:
    if len(a) == 0 and len(b) == 0:
        return 1.0
    inter = len(np.intersect1d(a, b, assume_unique=True))
    return inter / (len(a) + len(b) - inter)
