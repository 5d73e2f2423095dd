"""Sampling helpers: a reproducible random number per document, for down-sampling filters."""

from __future__ import annotations

import xxhash

from dolma_tools.taggers.base import Document, Tagger, TagResult, register

RANDOM_SEED = 0
_SCALE = float(1 << 53)


def document_uniform(doc_id: str, seed: int = RANDOM_SEED) -> float:
    """A uniform number in [0, 1) that depends only on (seed, document id).

    Dolma 1.2.1 seeds with (pid + 1) * seed, so its numbers change from run to run; ours are
    stable across runs, worker counts and machines.
    """
    return (xxhash.xxh3_64_intdigest(doc_id.encode("utf-8", "surrogatepass"), seed=seed) >> 11) / _SCALE


@register("random_number_v1", "a reproducible uniform number in [0, 1) per document (`random`)")
class RandomNumber(Tagger):
    def tag(self, doc: Document) -> TagResult:
        return {"random": [(0, len(doc.text), document_uniform(doc.id))]}
