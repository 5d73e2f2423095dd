"""The reduce side of `dolma stats`: merge partials, then find exact duplicates.

`merge_partials` is associative: counts add, sketches merge, extremes keep the best k by a total
order (length, path, line), and per-document duplicate rows concatenate with file indices
shifted. The runner merges in input-file order, so the report does not depend on how many
workers ran or how files were grouped.

Duplicate detection keeps 16 bytes per document until the end (8-byte text hash, 4-byte file
index, 4-byte line): one sort of those rows finds every cluster of identical texts across the
whole corpus. That is the one part of the report whose memory grows with the corpus (16 GB per
billion documents); everything else is bounded.
"""

from __future__ import annotations

import pickle
from dataclasses import dataclass
from functools import reduce

import numpy as np

from dolma_tools.io.files import AtomicWriter, open_read
from dolma_tools.stats.collectors import StatsPartial


def merge_partials(a: StatsPartial, b: StatsPartial) -> StatsPartial:
    """Fold `b` into `a` (which is modified and returned)."""
    offset = len(a.files)
    a.files = a.files + b.files
    for name in ("documents", "skipped", "characters", "bytes", "words", "tokens", "url_documents"):
        setattr(a, name, getattr(a, name) + getattr(b, name))
    a.sources.merge(b.sources)
    k = max(len(a.shortest), len(b.shortest))
    a.shortest = sorted(a.shortest + b.shortest, key=lambda r: (r[0], r[1], r[2]))[:k]
    k = max(len(a.longest), len(b.longest))
    a.longest = sorted(a.longest + b.longest, key=lambda r: (-r[0], r[1], r[2]))[:k]
    for name, hist in b.histograms.items():
        a.histograms[name].merge(hist)
    _add_counts(a.dates, b.dates)
    _add_counts(a.schemes, b.schemes)
    if b.languages is not None:
        if a.languages is None:
            a.languages = {}
        for lang, (docs, chars) in b.languages.items():
            row = a.languages.setdefault(lang, [0, 0])
            row[0] += docs
            row[1] += chars
    a.domains.merge(b.domains)
    a.tlds.merge(b.tlds)
    for n, sketch in b.ngrams.items():
        if n in a.ngrams:
            a.ngrams[n].merge(sketch)
        else:
            a.ngrams[n] = sketch
    a.text_hashes = np.concatenate([a.text_hashes, b.text_hashes])
    a.text_files = np.concatenate([a.text_files, b.text_files + np.uint32(offset)])
    a.text_lines = np.concatenate([a.text_lines, b.text_lines])
    a.url_hashes = np.concatenate([a.url_hashes, b.url_hashes])
    a.url_files = np.concatenate([a.url_files, b.url_files + np.uint32(offset)])
    a.url_lines = np.concatenate([a.url_lines, b.url_lines])
    if b.pii is not None:
        a.pii = dict(b.pii) if a.pii is None else _add_counts(a.pii, b.pii)
    if b.toxicity is not None:
        if a.toxicity is None:
            a.toxicity = {"scored": 0, "flagged": 0, "histogram": [0] * len(b.toxicity["histogram"])}
        a.toxicity["scored"] += b.toxicity["scored"]
        a.toxicity["flagged"] += b.toxicity["flagged"]
        a.toxicity["histogram"] = [x + y for x, y in zip(a.toxicity["histogram"], b.toxicity["histogram"])]
    if b.attributes is not None:
        if a.attributes is None:
            a.attributes = b.attributes
        else:
            a.attributes.merge(b.attributes)
    for task, hits in b.contamination.items():
        a.contamination[task] = np.union1d(a.contamination.get(task, np.zeros(0, np.uint64)), hits)
    a.tokenizer = a.tokenizer or b.tokenizer
    return a


def _add_counts(target: dict, other: dict) -> dict:
    for key, value in other.items():
        target[key] = target.get(key, 0) + value
    return target


def merge_all(partials: list[StatsPartial]) -> StatsPartial:
    if not partials:
        return StatsPartial()
    return reduce(merge_partials, partials[1:], partials[0])


# ----------------------------------------------------------------------------------------------
# Partial files


def save_partial(partial: StatsPartial, path: str) -> None:
    with AtomicWriter(path, compression="") as out:
        out.write(pickle.dumps(partial, protocol=pickle.HIGHEST_PROTOCOL))


def load_partial(path: str) -> StatsPartial:
    with open_read(path, compression="") as stream:
        return pickle.loads(stream.read())


def merge_partial_files(paths: list[str]) -> StatsPartial:
    """Load and merge a group of partial files (one task of the tree reduce)."""
    return merge_all([load_partial(p) for p in paths])


# ----------------------------------------------------------------------------------------------
# Duplicates


@dataclass
class DuplicateClusters:
    documents: int  # rows equal to an earlier row (all but the first of each cluster)
    clusters: int  # keys seen at least twice
    in_clusters: int  # rows belonging to a cluster of two or more
    largest: list[tuple[int, list[tuple[int, int]]]]  # (size, [(file index, line), ...] first examples)


def find_duplicates(hashes: np.ndarray, files: np.ndarray, lines: np.ndarray, top: int = 10,
                    examples: int = 3) -> DuplicateClusters:
    """Clusters of equal hashes; "earlier" means the smaller (file index, line)."""
    if len(hashes) == 0:
        return DuplicateClusters(0, 0, 0, [])
    order = np.lexsort((lines, files, hashes))
    sorted_hashes = hashes[order]
    starts = np.flatnonzero(np.concatenate([[True], sorted_hashes[1:] != sorted_hashes[:-1]]))
    sizes = np.diff(np.concatenate([starts, [len(sorted_hashes)]]))
    multi = sizes > 1
    clusters = int(np.count_nonzero(multi))
    in_clusters = int(sizes[multi].sum())
    largest = []
    if clusters:
        # biggest first; ties by the position of the cluster's first document
        first_rows = order[starts]
        ranking = np.lexsort((lines[first_rows], files[first_rows], -sizes))
        for c in ranking[:top]:
            if sizes[c] < 2:
                break
            rows = order[starts[c]:starts[c] + min(int(sizes[c]), examples)]
            largest.append((int(sizes[c]), [(int(files[r]), int(lines[r])) for r in rows]))
    return DuplicateClusters(in_clusters - clusters, clusters, in_clusters, largest)
