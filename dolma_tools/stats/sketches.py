"""Bounded-memory, mergeable summaries used by `dolma stats`.

Every structure here has a fixed or capped size whatever the corpus size, and a `merge` that is
associative and commutative, so partial results from any number of workers combine into the
same answer (exactly for counts, within the stated error for sketches).

- `CountMinSketch`: frequency estimates of 64-bit keys; overestimates by at most e*N/width with
  probability 1 - exp(-depth).
- `HyperLogLog`: distinct-count estimate, relative error about 1.04/sqrt(2**precision).
- `BoundedCounter`: per-key count vectors for keys such as domains; keeps the heaviest
  `capacity` keys (Misra-Gries style pruning) and remembers how much it pruned.
- `LogHistogram`: counts over fixed log-spaced bins.
- `NGramSketch`: word n-gram counts: exact while the number of distinct n-grams stays under a
  limit, then a count-min sketch plus heavy-hitter candidates (top-k) and a bottom-by-hash sample
  of distinct n-grams with exact counts (bottom-k).

Keys are 64-bit hashes: `xxh3_64` of a word's UTF-8 bytes, combined into n-gram hashes with a
splitmix64 finaliser (`combine`), so hashes agree across processes and machines.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
import xxhash

U64 = np.uint64
_M1 = U64(0x9E3779B97F4A7C15)
_M2 = U64(0xBF58476D1CE4E5B9)
_M3 = U64(0x94D049BB133111EB)
# per-row multipliers of the count-min sketch (odd 64-bit constants)
_ROW_MULTIPLIERS = np.array([0x9E3779B97F4A7C15, 0xC2B2AE3D27D4EB4F, 0x165667B19E3779F9,
                             0x27D4EB2F165667C5, 0xFF51AFD7ED558CCD, 0xC4CEB9FE1A85EC53,
                             0x85EBCA77C2B2AE63, 0xD6E8FEB86659FD93], dtype=np.uint64)


def mix64(x: np.ndarray) -> np.ndarray:
    """splitmix64 finaliser, element-wise on uint64 (wrapping arithmetic)."""
    with np.errstate(over="ignore"):
        x = x ^ (x >> U64(30))
        x = x * _M2
        x = x ^ (x >> U64(27))
        x = x * _M3
        return x ^ (x >> U64(31))


def combine(prefix: np.ndarray, word: np.ndarray) -> np.ndarray:
    """Hash of an n-gram from the hash of its first n-1 words and the hash of its last word."""
    with np.errstate(over="ignore"):
        return mix64(prefix * _M1 + word)


def hash_strings(strings: list[str]) -> np.ndarray:
    """xxh3_64 of each string's UTF-8 bytes, as uint64."""
    return np.fromiter(map(xxhash.xxh3_64_intdigest, map(str.encode, strings)), dtype=np.uint64,
                       count=len(strings))


def hash_text(text: str) -> int:
    return xxhash.xxh3_64_intdigest(text.encode("utf-8", "surrogatepass"))


# ----------------------------------------------------------------------------------------------


class CountMinSketch:
    def __init__(self, width: int = 1 << 17, depth: int = 4) -> None:
        if width & (width - 1) or not 1 <= depth <= len(_ROW_MULTIPLIERS):
            raise ValueError("count-min width must be a power of two and depth between 1 and 8")
        self.width, self.depth = width, depth
        self.shift = U64(64 - int(math.log2(width)))
        self.table = np.zeros((depth, width), dtype=np.uint64)

    def _rows(self, keys: np.ndarray) -> list[np.ndarray]:
        with np.errstate(over="ignore"):
            # values < width: reinterpreting the uint64 as int64 is exact and copies nothing
            return [((keys * _ROW_MULTIPLIERS[r]) >> self.shift).view(np.int64) for r in range(self.depth)]

    def add(self, keys: np.ndarray, counts: np.ndarray | None = None) -> None:
        if len(keys) == 0:
            return
        weights = None if counts is None else counts.astype(np.float64)  # exact below 2**53
        for r, idx in enumerate(self._rows(keys)):
            self.table[r] += np.bincount(idx, weights=weights, minlength=self.width).astype(np.uint64)

    def estimate(self, keys: np.ndarray) -> np.ndarray:
        if len(keys) == 0:
            return np.zeros(0, dtype=np.uint64)
        rows = self._rows(keys)
        return np.min(np.stack([self.table[r][idx] for r, idx in enumerate(rows)]), axis=0)

    def merge(self, other: "CountMinSketch") -> None:
        if (self.width, self.depth) != (other.width, other.depth):
            raise ValueError("cannot merge count-min sketches of different shapes")
        self.table = self.table + other.table  # not in place: Ray hands back read-only arrays

    # sparse pickling: small inputs leave most cells empty
    def __getstate__(self) -> dict:
        flat = self.table.ravel()
        nz = np.flatnonzero(flat)
        # store counts in the smallest unsigned type that holds them
        top = int(flat.max()) if len(flat) else 0
        dtype = np.uint16 if top < (1 << 16) else np.uint32 if top < (1 << 32) else np.uint64
        if len(nz) * 3 < len(flat):
            cells = {"index": nz.astype(np.uint32), "values": flat[nz].astype(dtype)}
        else:
            cells = {"dense": self.table.astype(dtype)}
        return {"width": self.width, "depth": self.depth, **cells}

    def __setstate__(self, state: dict) -> None:
        self.__init__(state["width"], state["depth"])
        if "dense" in state:
            self.table = state["dense"].astype(np.uint64)
        else:
            self.table.ravel()[state["index"].astype(np.intp)] = state["values"].astype(np.uint64)


class HyperLogLog:
    def __init__(self, precision: int = 14) -> None:
        self.p = precision
        self.registers = np.zeros(1 << precision, dtype=np.uint8)

    def add(self, keys: np.ndarray) -> None:
        if len(keys) == 0:
            return
        keys = keys.astype(np.uint64, copy=False)
        idx = (keys >> U64(64 - self.p)).view(np.int64)
        rest = keys & U64((1 << (64 - self.p)) - 1)
        with np.errstate(over="ignore"):
            lowest = rest & (~rest + U64(1))  # lowest set bit, exact as a float64 power of two
        rank = np.where(rest == 0, 64 - self.p + 1,
                        np.log2(np.maximum(lowest, U64(1)).astype(np.float64)).astype(np.int64) + 1)
        np.maximum.at(self.registers, idx, rank.astype(np.uint8))

    def merge(self, other: "HyperLogLog") -> None:
        self.registers = np.maximum(self.registers, other.registers)

    def estimate(self) -> int:
        m = float(len(self.registers))
        alpha = 0.7213 / (1 + 1.079 / m)
        raw = alpha * m * m / float(np.sum(np.ldexp(1.0, -self.registers.astype(np.int64))))
        zeros = int(np.count_nonzero(self.registers == 0))
        if raw <= 2.5 * m and zeros:
            return int(round(m * math.log(m / zeros)))  # linear counting for small cardinalities
        return int(round(raw))


@dataclass
class BoundedCounter:
    """key -> vector of counts, keeping at most `capacity` keys (the heaviest by the first count).

    When it grows past the capacity it drops the lightest half; what it dropped goes to `other`,
    and `max_dropped` bounds how much any surviving key may be undercounted.
    """

    width: int = 1
    capacity: int = 100_000
    counts: dict = field(default_factory=dict)
    other: list = field(default_factory=list)
    max_dropped: int = 0

    def __post_init__(self) -> None:
        if not self.other:
            self.other = [0] * self.width

    def add(self, key, *values: int) -> None:
        row = self.counts.get(key)
        if row is None:
            self.counts[key] = list(values)
            if len(self.counts) > self.capacity:
                self._prune()
        else:
            for i, v in enumerate(values):
                row[i] += v

    def _prune(self) -> None:
        ranked = sorted(self.counts.items(), key=lambda kv: (-kv[1][0], str(kv[0])))
        keep = max(1, self.capacity // 2)
        for _, row in ranked[keep:]:
            self.max_dropped = max(self.max_dropped, row[0])
            for i, v in enumerate(row):
                self.other[i] += v
        self.counts = dict(ranked[:keep])

    def merge(self, other: "BoundedCounter") -> None:
        for key, row in other.counts.items():
            mine = self.counts.get(key)
            if mine is None:
                self.counts[key] = list(row)
            else:
                for i, v in enumerate(row):
                    mine[i] += v
        for i, v in enumerate(other.other):
            self.other[i] += v
        self.max_dropped = max(self.max_dropped, other.max_dropped)
        if len(self.counts) > self.capacity:
            self._prune()

    def top(self, k: int | None = None) -> list[tuple]:
        ranked = sorted(self.counts.items(), key=lambda kv: (-kv[1][0], str(kv[0])))
        return ranked if k is None else ranked[:k]


# Log-spaced bins: 10 per decade from 1 to 1e12, plus a bin for 0.
LOG_BIN_EDGES = np.concatenate([[0.0], np.power(10.0, np.arange(0, 121) / 10.0)])


@dataclass
class LogHistogram:
    counts: np.ndarray = field(default_factory=lambda: np.zeros(len(LOG_BIN_EDGES), dtype=np.int64))

    def add(self, values: np.ndarray) -> None:
        """A value v goes to bin i with edge[i] <= v < edge[i+1] (bin 0 holds [0, 1))."""
        if len(values) == 0:
            return
        idx = np.searchsorted(LOG_BIN_EDGES, np.asarray(values, dtype=np.float64), side="right") - 1
        self.counts = self.counts + np.bincount(np.clip(idx, 0, len(LOG_BIN_EDGES) - 1), minlength=len(LOG_BIN_EDGES))

    def merge(self, other: "LogHistogram") -> None:
        self.counts = self.counts + other.counts

    def nonempty(self) -> list[dict]:
        """Non-empty bins as {low, high, count}; bin i holds values in [edge[i], edge[i+1])."""
        out = []
        for i in np.flatnonzero(self.counts):
            high = float(LOG_BIN_EDGES[i + 1]) if i + 1 < len(LOG_BIN_EDGES) else None
            out.append({"low": float(LOG_BIN_EDGES[i]), "high": high, "count": int(self.counts[i])})
        return out


# ----------------------------------------------------------------------------------------------


def _member(keys: np.ndarray, sorted_keys: np.ndarray) -> np.ndarray:
    """Whether each of `keys` is in the sorted array `sorted_keys`."""
    if len(sorted_keys) == 0:
        return np.zeros(len(keys), dtype=bool)
    idx = np.minimum(np.searchsorted(sorted_keys, keys), len(sorted_keys) - 1)
    return sorted_keys[idx] == keys


def unique_counts(values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(sorted distinct values, int64 counts): `np.unique(values, return_counts=True)`, leaner."""
    if len(values) == 0:
        return values[:0].copy(), np.zeros(0, np.int64)
    ordered = np.sort(values)
    first = np.empty(len(ordered), dtype=bool)
    first[0] = True
    np.not_equal(ordered[1:], ordered[:-1], out=first[1:])
    starts = np.flatnonzero(first)
    counts = np.diff(starts, append=len(ordered)).astype(np.int64, copy=False)
    return ordered[starts], counts


def _merge_sorted_counts(keys_a: np.ndarray, counts_a: np.ndarray, keys_b: np.ndarray,
                         counts_b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The union of two (distinct ascending keys, counts) tables, counts added."""
    keys = np.concatenate([keys_a, keys_b])
    if len(keys) == 0:
        return keys, np.zeros(0, np.int64)
    order = np.argsort(keys)
    keys = keys[order]
    counts = np.concatenate([counts_a, counts_b]).astype(np.int64, copy=False)[order]
    first = np.empty(len(keys), dtype=bool)
    first[0] = True
    np.not_equal(keys[1:], keys[:-1], out=first[1:])
    starts = np.flatnonzero(first)
    return keys[starts], np.add.reduceat(counts, starts)


def _positions_of(hashes: np.ndarray, wanted: np.ndarray) -> np.ndarray:
    """One position in `hashes` of each wanted key (all present)."""
    if len(wanted) == 0:
        return np.zeros(0, dtype=np.intp)
    if len(wanted) <= 4:
        return np.array([int(np.argmax(hashes == k)) for k in wanted.tolist()], dtype=np.intp)
    # a bitmap of the wanted keys' top bits leaves few positions for the exact membership test
    bits = min(24, max(16, (16 * len(wanted)).bit_length()))
    shift = U64(64 - bits)
    bitmap = np.zeros(1 << bits, dtype=bool)
    bitmap[(wanted >> shift).view(np.int64)] = True
    maybe = np.flatnonzero(bitmap[(hashes >> shift).view(np.int64)])
    keys_sorted = np.unique(wanted)
    hits = maybe[_member(hashes[maybe], keys_sorted)]
    keys, first = np.unique(hashes[hits], return_index=True)
    return hits[first][np.searchsorted(keys, wanted)]


class NGramSketch:
    """Counts of word n-grams for one n: exact while small, then count-min + candidates + sample.

    Each batch is reduced to (distinct hash, count) by one sort. Exact mode keeps sorted
    (hash, count) arrays and every n-gram's text; it ends for good when more than `exact_limit`
    distinct n-grams are seen (in one partial or in a merge). Top-k then comes from heavy-hitter
    candidates (each batch's most frequent keys) with count-min estimates; bottom-k from the
    `sample_size` distinct n-grams with the smallest hashes, whose counts stay exact: a key that
    ends among the smallest overall was among the smallest of every batch that contained it.
    """

    def __init__(self, n: int, *, width: int = 1 << 17, depth: int = 4, exact_limit: int = 100_000,
                 candidates: int = 2_000, sample_size: int = 1_000, hll_precision: int = 14) -> None:
        self.n = n
        self.total = 0
        self.exact_limit = exact_limit
        self.exact_keys: np.ndarray | None = np.zeros(0, np.uint64)
        self.exact_counts = np.zeros(0, np.int64)
        self.exact_names: dict[int, str] = {}
        self.cms = CountMinSketch(width, depth)
        self.hll = HyperLogLog(hll_precision)
        self.capacity = candidates
        self.candidates: set[int] = set()
        self.sample_size = sample_size
        self.sample: dict[int, int] = {}  # the `sample_size` smallest hashes seen, with exact counts
        self.names: dict[int, str] = {}  # texts of candidates and sample keys

    @property
    def is_exact(self) -> bool:
        return self.exact_keys is not None

    # pickling: while exact, the count-min table is the exact counts added once, so it is rebuilt
    # on load instead of stored (most of a small partial's size)
    def __getstate__(self) -> dict:
        state = dict(self.__dict__)
        if self.exact_keys is not None:
            state["cms"] = (self.cms.width, self.cms.depth)
        return state

    def __setstate__(self, state: dict) -> None:
        cms = state["cms"]
        if isinstance(cms, tuple):
            state["cms"] = CountMinSketch(*cms)
            state["cms"].add(state["exact_keys"], state["exact_counts"])
        self.__dict__.update(state)

    # -- map side ------------------------------------------------------------------------------

    def add_batch(self, hashes: np.ndarray, names_of, candidates_per_batch: int = 64) -> None:
        """Count a batch of n-gram hashes; `names_of(positions)` gives the texts at those positions."""
        if len(hashes) == 0:
            return
        keys, counts = unique_counts(hashes)  # one (SIMD) sort; keys ascending
        self.add_counts(keys, counts, lambda idx: names_of(_positions_of(hashes, keys[idx])), candidates_per_batch)

    def add_counts(self, keys: np.ndarray, counts: np.ndarray, names_of, candidates_per_batch: int = 64) -> None:
        """Count a batch given as distinct ascending `keys` with their `counts`;
        `names_of(indices)` gives the texts of `keys[indices]` (asked once per batch)."""
        if len(keys) == 0:
            return
        counts = counts.astype(np.int64, copy=False)
        self.total += int(counts.sum())
        self.cms.add(keys, counts)
        self.hll.add(keys)
        exact_new = None
        if self.exact_keys is not None:
            known = _member(keys, self.exact_keys)
            if len(self.exact_keys) + (len(known) - int(np.count_nonzero(known))) > self.exact_limit:
                self._leave_exact()
            else:
                exact_new = np.flatnonzero(~known)
        # heavy hitters of this batch become candidates (their counts come from the sketch)
        if len(keys) <= candidates_per_batch:
            top = np.arange(len(keys))
        else:
            top = np.argpartition(-counts, candidates_per_batch - 1)[:candidates_per_batch]
        # the smallest hashes of the batch join the bottom-by-hash sample with their exact counts
        smallest = np.arange(min(self.sample_size, len(keys)))
        if len(self.sample) >= self.sample_size:
            smallest = smallest[keys[smallest] < U64(max(self.sample))]
        names, exact_names = self.names, self.exact_names
        if exact_new is not None:
            if len(exact_new):
                exact_names.update(zip(keys[exact_new].tolist(), names_of(exact_new)))
            self._merge_exact(keys, counts)
        # name the candidates and sample keys that have no text yet, in one call
        need = [idx[[k not in names and k not in exact_names for k in keys[idx].tolist()]]
                for idx in (top, smallest) if len(idx)]
        need_idx = np.unique(np.concatenate(need)) if need else np.zeros(0, np.intp)
        found = dict(zip(keys[need_idx].tolist(), names_of(need_idx))) if len(need_idx) else {}
        for key in keys[top].tolist():
            if key not in names:
                names[key] = found[key] if key in found else exact_names[key]
        self.candidates.update(keys[top].tolist())
        if len(smallest):
            sample = self.sample
            for key, count in zip(keys[smallest].tolist(), counts[smallest].tolist()):
                if key not in names:
                    names[key] = found[key] if key in found else exact_names[key]
                sample[key] = sample.get(key, 0) + count
            self._trim_sample()  # may replace self.names: nothing below uses `names`
        if len(self.candidates) > 2 * self.capacity:
            self._prune_candidates()

    def _merge_exact(self, keys: np.ndarray, counts: np.ndarray) -> None:
        assert self.exact_keys is not None
        self.exact_keys, self.exact_counts = _merge_sorted_counts(self.exact_keys, self.exact_counts, keys, counts)

    def _leave_exact(self) -> None:
        if self.exact_keys is None:
            return
        top = np.argsort(-self.exact_counts, kind="stable")[: self.capacity]
        for key in self.exact_keys[top].tolist():
            self.names.setdefault(key, self.exact_names[key])
            self.candidates.add(key)
        self.exact_keys, self.exact_counts, self.exact_names = None, np.zeros(0, np.int64), {}

    def _trim_sample(self) -> None:
        if len(self.sample) > self.sample_size:
            keep = sorted(self.sample)[: self.sample_size]
            self.sample = {k: self.sample[k] for k in keep}
            self._prune_names()

    def _prune_candidates(self) -> None:
        keys = np.fromiter(self.candidates, dtype=np.uint64, count=len(self.candidates))
        est = self.cms.estimate(keys)
        order = np.lexsort((keys, -est.astype(np.int64)))[: self.capacity]
        self.candidates = set(keys[order].tolist())
        self._prune_names()

    def _prune_names(self) -> None:
        """Forget texts of keys that are neither candidates nor sampled (when they are many: a
        stale text is never read, so pruning only bounds memory)."""
        if len(self.names) > 2 * (len(self.candidates) + len(self.sample)) + 1000:
            keep = self.candidates | set(self.sample)
            self.names = {k: v for k, v in self.names.items() if k in keep}

    # -- reduce side ---------------------------------------------------------------------------

    def merge(self, other: "NGramSketch") -> None:
        self.total += other.total
        self.cms.merge(other.cms)
        self.hll.merge(other.hll)
        self.names = {**other.names, **self.names}  # a text already known here wins
        self.candidates |= other.candidates
        for key, count in other.sample.items():
            self.sample[key] = self.sample.get(key, 0) + count
        if self.exact_keys is not None and other.exact_keys is not None:
            self.exact_names = {**other.exact_names, **self.exact_names}
            self._merge_exact(other.exact_keys, other.exact_counts)
            if len(self.exact_keys) > self.exact_limit:
                self._leave_exact()
        elif other.exact_keys is not None:  # this side already overflowed: the union is approximate
            top = np.argsort(-other.exact_counts, kind="stable")[: self.capacity]
            for key in other.exact_keys[top].tolist():
                self.names.setdefault(key, other.exact_names[key])
                self.candidates.add(key)
        else:
            self._leave_exact()
        self._trim_sample()
        if len(self.candidates) > self.capacity:
            self._prune_candidates()
        else:
            self._prune_names()

    def distinct(self) -> int:
        return len(self.exact_keys) if self.exact_keys is not None else self.hll.estimate()

    def top(self, k: int) -> list[tuple[str, int]]:
        if self.exact_keys is not None:
            items = zip(self.exact_keys.tolist(), self.exact_counts.tolist())
            ranked = sorted(items, key=lambda kv: (-kv[1], self.exact_names[kv[0]]))[:k]
            return [(self.exact_names[h], c) for h, c in ranked]
        keys = np.fromiter(self.candidates, dtype=np.uint64, count=len(self.candidates))
        est = self.cms.estimate(keys).tolist()
        ranked = sorted(zip(keys.tolist(), est), key=lambda kv: (-kv[1], self.names[kv[0]]))[:k]
        return [(self.names[h], int(c)) for h, c in ranked]

    def bottom(self, k: int) -> list[tuple[str, int]]:
        if self.exact_keys is not None:
            items, names = zip(self.exact_keys.tolist(), self.exact_counts.tolist()), self.exact_names
        else:
            items, names = self.sample.items(), self.names
        ranked = sorted(items, key=lambda kv: (kv[1], names[kv[0]]))[:k]
        return [(names[h], c) for h, c in ranked]
