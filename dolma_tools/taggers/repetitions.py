"""Character repetition taggers (`repetitions_v1`, `paragraph_repetitions_v1`), as Dolma.

A span is a substring followed by at least 3 more copies of itself (each optionally preceded by
one whitespace character); its score is the number of copies. Document statistics:
`doc_max_score_repetition`, `doc_max_length_repetition`, `doc_frac_repetition` (0 when none).

`periodic_runs` finds the token-level equivalent (a block of 1..13 tokens repeated at least 3
times) for the tokenizer-based repetition taggers in `tokens.py`.
"""

from __future__ import annotations

import re
from typing import Iterator

import numpy as np

from dolma_tools.taggers.base import Document, Tagger, TagResult, register
from dolma_tools.text import paragraphs

_REPEATED = re.compile(r"(.+?)(\s?\1){3,}")


def repetition_spans(text: str, offset: int = 0) -> list[tuple[int, int, float]]:
    spans = []
    for match in _REPEATED.finditer(text):
        unit = match.group(1)
        spans.append((match.start() + offset, match.end() + offset, float(match.group(0).count(unit))))
    return spans


def periodic_runs(ids: np.ndarray, min_period: int = 1, max_period: int = 13) -> Iterator[tuple[int, int, int]]:
    """`(start, end, times)` of every stretch of `ids` that is a block of `period` items repeated
    at least 3 times (the last copy may be cut short), for each period in turn, then by start.

    Dolma finds these by folding the array into rows of `period` and comparing each row with the
    one above; that finds exactly the maximal runs where `ids[i] == ids[i - period]` that are at
    least `2 * period` long, which is what is computed here with one comparison per period.
    """
    n = len(ids)
    for period in range(min_period, min(max_period, n // 3) + 1):
        same = ids[period:] == ids[:-period]  # same[k]: ids[k + period] repeats ids[k]
        edges = np.flatnonzero(np.diff(np.concatenate(([False], same, [False])).astype(np.int8)))
        starts, ends = edges[0::2], edges[1::2]
        # a run of `2 * period` matches means 3 copies; Dolma drops anything shorter
        for start, end in zip(starts.tolist(), ends.tolist()):
            if end - start >= 2 * period:
                yield start, end + period, (end + period - start) // period


def with_repetition_stats(spans: list[tuple[int, int, float]], n: int) -> TagResult:
    out: TagResult = {}
    if spans:
        out["repetition"] = spans
    out["doc_max_score_repetition"] = [(0, n, max((s for _, _, s in spans), default=0.0))]
    out["doc_max_length_repetition"] = [(0, n, float(max((e - s for s, e, _ in spans), default=0)))]
    out["doc_frac_repetition"] = [(0, n, sum(e - s for s, e, _ in spans) / n if spans else 0.0)]
    return out


@register("repetitions_v1", "repeated substrings (>= 4 copies): `repetition` spans scored by copies, "
                            "plus document max score, max length and fraction")
class Repetitions(Tagger):
    def tag(self, doc: Document) -> TagResult:
        return with_repetition_stats(repetition_spans(doc.text), len(doc.text))


@register("paragraph_repetitions_v1", "repetitions_v1 within each paragraph (faster)")
class ParagraphRepetitions(Tagger):
    def tag(self, doc: Document) -> TagResult:
        spans = []
        for p in paragraphs(doc.text, keep_empty=True):
            spans.extend(repetition_spans(p.text, p.start))
        return with_repetition_stats(spans, len(doc.text))
