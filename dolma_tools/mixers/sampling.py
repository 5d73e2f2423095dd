"""Per-stream sampling rates: `sample`, `upsample` and `target_mix` proportions.

A stream has a rate r >= 0. A document kept by the filters is written `floor(r)` times, plus once
more when its unit hash `u = hash(seed, id)` is below a threshold t. With `sample`/`upsample`,
t = frac(r), so the extra copy is a seeded Bernoulli draw that only depends on the document id:
reproducible, and independent of files and workers.

With `target_mix`, a first pass measures each stream's kept text bytes as a histogram over hash
buckets; t is then the bucket edge at which the selected bytes reach the target, so the achieved
size misses the target by at most one bucket (1/16384 of the stream). Estimated tokens are
UTF-8 bytes / 4, so token and byte proportions are the same.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import xxhash

BYTES_PER_TOKEN = 4.0
HASH_BUCKETS = 1 << 14
_TWO_64 = float(1 << 64)


def unit_hash(seed: int, doc_id: str) -> float:
    """A reproducible number in [0, 1) from (seed, document id)."""
    return xxhash.xxh3_64_intdigest(doc_id.encode(), seed=seed & 0xFFFFFFFFFFFFFFFF) / _TWO_64


def estimated_tokens(text_bytes: int | float) -> float:
    return text_bytes / BYTES_PER_TOKEN


@dataclass(frozen=True)
class Rate:
    """`copies(u) = whole + (u < threshold)`."""

    whole: int = 1
    threshold: float = 0.0

    @classmethod
    def from_factor(cls, factor: float) -> "Rate":
        whole = math.floor(factor)
        return cls(whole=whole, threshold=factor - whole)

    @property
    def is_identity(self) -> bool:
        return self.whole == 1 and self.threshold == 0.0

    @property
    def expected(self) -> float:
        return self.whole + self.threshold

    def copies(self, u: float) -> int:
        return self.whole + (1 if u < self.threshold else 0)


def stream_rate(sample: float | None, upsample: float | None) -> Rate:
    factor = (1.0 if sample is None else sample) * (1.0 if upsample is None else upsample)
    return Rate.from_factor(factor)


def bucket_of(u: float) -> int:
    return min(int(u * HASH_BUCKETS), HASH_BUCKETS - 1)


def solve_target(histogram: np.ndarray, target_bytes: float) -> Rate:
    """The rate whose selected bytes come closest to `target_bytes` for this stream's histogram."""
    total = int(histogram.sum())
    if total == 0 or target_bytes <= 0:
        return Rate(whole=0, threshold=0.0)
    whole = int(target_bytes // total)
    remainder = target_bytes - whole * total
    cumulative = np.concatenate([[0], np.cumsum(histogram)])
    edge = int(np.searchsorted(cumulative, remainder))  # first edge with cumulative >= remainder
    if edge > 0 and abs(cumulative[edge - 1] - remainder) <= abs(cumulative[min(edge, HASH_BUCKETS)] - remainder):
        edge -= 1
    edge = min(edge, HASH_BUCKETS)
    return Rate(whole=whole, threshold=edge / HASH_BUCKETS)


def plan_target_mix(measured: dict[str, np.ndarray], proportions: dict[str, float],
                    total_bytes: float | None) -> tuple[dict[str, Rate], float]:
    """Rates per stream, and the total bytes aimed at.

    Without a total, the largest mix that needs no upsampling: min over streams of size / share.
    """
    weight = sum(proportions.values())
    shares = {name: p / weight for name, p in proportions.items()}
    sizes = {name: float(h.sum()) for name, h in measured.items()}
    if total_bytes is None:
        candidates = [sizes[name] / share for name, share in shares.items() if share > 0]
        total_bytes = min(candidates) if candidates else 0.0
    rates = {name: solve_target(measured[name], shares[name] * total_bytes) for name in measured}
    return rates, float(total_bytes)
