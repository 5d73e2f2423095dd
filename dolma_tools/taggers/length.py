"""Length taggers: whole-document spans whose score is a length."""

from __future__ import annotations

from dolma_tools.taggers.base import Document, TagResult, Tagger, register


@register("char_length_v1", "document length in Unicode code points (`length`)")
class CharLength(Tagger):
    def tag(self, doc: Document) -> TagResult:
        n = len(doc.text)
        return {"length": [(0, n, float(n))]}
