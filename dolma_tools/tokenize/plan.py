"""Which input files go to which writer group, and in what order their documents are read.

Everything here is decided in the driver from (seed, sorted file list, config) and nothing else,
so the shards a run writes do not depend on how many workers run it or on their timing. (Dolma
derives its groups from `processes` and never seeds, so its output changes from run to run.)
"""

from __future__ import annotations

import hashlib
import math
import os
from collections import deque
from dataclasses import dataclass
from typing import Any, Iterator, Sequence

import numpy as np
import orjson

from dolma_tools.io.documents import BadLine, iter_json_records

SEED_MASK = (1 << 63) - 1


def rng_for(seed: int, *stream: int) -> np.random.Generator:
    """An independent PCG64 stream per (seed, group, purpose)."""
    return np.random.default_rng([seed & SEED_MASK, *stream])


@dataclass(frozen=True)
class GroupPlan:
    index: int
    files: tuple[str, ...]


@dataclass(frozen=True)
class TokenizePlan:
    groups: tuple[GroupPlan, ...]
    digits: int  # width of <g> in part-<g>-<k:05d>, as Dolma: ceil(log10(n_groups + 1))

    def shard_stem(self, group: int, shard: int) -> str:
        return f"part-{group:0{self.digits}d}-{shard:05d}"

    def group_prefix(self, group: int) -> str:
        return f"part-{group:0{self.digits}d}-"


def plan_groups(files: Sequence[str], seed: int, files_per_group: int | None) -> TokenizePlan:
    """Sort, shuffle with the seed, and cut into contiguous groups of `files_per_group` files."""
    ordered = sorted(dict.fromkeys(files))
    permutation = rng_for(seed, 0xF11E).permutation(len(ordered))
    shuffled = [ordered[i] for i in permutation]
    size = max(1, files_per_group or 1)
    groups = tuple(GroupPlan(g, tuple(shuffled[start:start + size]))
                   for g, start in enumerate(range(0, len(shuffled), size)))
    digits = max(1, math.ceil(math.log10(len(groups) + 1)))
    return TokenizePlan(groups=groups, digits=digits)


def fingerprint(payload: Any) -> str:
    return hashlib.sha256(orjson.dumps(payload, option=orjson.OPT_SORT_KEYS)).hexdigest()


def _file_size(path: str) -> int:
    try:
        if "://" in path and not path.startswith("file://"):
            from dolma_tools.io.s3 import s3_client, split_url

            bucket, key = split_url(path)
            return int(s3_client().head_object(Bucket=bucket, Key=key)["ContentLength"])
        return os.path.getsize(path.removeprefix("file://"))
    except Exception:  # noqa: BLE001 - a size is only a sampling weight
        return 1


def ring_records(files: Sequence[str], ring_size: int, rng: np.random.Generator | None
                 ) -> Iterator[tuple[str, int, dict | BadLine]]:
    """(path, line, record) from up to `ring_size` open files, one record from each in turn.

    With `rng` (Dolma's `sample_ring_prop`), the next file is drawn in proportion to its size
    instead. An exhausted file leaves the ring and the next file of the group takes its place.
    """
    pending = deque(files)
    ring: list[tuple[str, Iterator[tuple[int, dict | BadLine]], int]] = []

    def refill() -> None:
        while len(ring) < max(1, ring_size) and pending:
            path = pending.popleft()
            ring.append((path, iter_json_records(path), _file_size(path) if rng is not None else 1))

    refill()
    turn = 0
    while ring:
        if rng is not None:
            weights = np.array([max(size, 1) for _, _, size in ring], dtype=np.float64)
            index = int(rng.choice(len(ring), p=weights / weights.sum()))
        else:
            index = turn % len(ring)
        path, records, _ = ring[index]
        item = next(records, None)
        if item is None:
            ring.pop(index)
            refill()
            turn = index  # the member after the exhausted one moved into its place
            continue
        turn = index + 1
        yield path, item[0], item[1]
