"""Character repetition taggers (`repetitions_v1`, `paragraph_repetitions_v1`), as Dolma.

A span is a substring followed by at least 3 more copies of itself (each optionally preceded by
one whitespace character); its score is the number of copies. Document statistics:
`doc_max_score_repetition`, `doc_max_length_repetition`, `doc_frac_repetition` (0 when none).
"""

from __future__ import annotations

import re

from dolma_tools.taggers.base import Document, Tagger, TagResult, register
from dolma_tools.text import paragraphs

_REPEATED = re.compile(r"(.+?)(\s?\1){3,}")


def repetition_spans(text: str, offset: int = 0) -> list[tuple[int, int, float]]:
    spans = []
    for match in _REPEATED.finditer(text):
        unit = match.group(1)
        spans.append((match.start() + offset, match.end() + offset, float(match.group(0).count(unit))))
    return spans


def _with_stats(spans: list[tuple[int, int, float]], n: int) -> TagResult:
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
        return _with_stats(repetition_spans(doc.text), len(doc.text))


@register("paragraph_repetitions_v1", "repetitions_v1 within each paragraph (faster)")
class ParagraphRepetitions(Tagger):
    def tag(self, doc: Document) -> TagResult:
        spans = []
        for p in paragraphs(doc.text, keep_empty=True):
            spans.extend(repetition_spans(p.text, p.start))
        return _with_stats(spans, len(doc.text))
