"""Length and counting taggers: whole-document spans whose score is a length, or paragraph spans."""

from __future__ import annotations

import regex

from dolma_tools.taggers.base import Document, Tagger, TagResult, register
from dolma_tools.text import paragraphs

# Dolma's "whitespace tokenizer" splits on runs of word characters or of punctuation, so its
# count is (number of such runs) + 1, not a word count; kept so thresholds carry over.
_WORD_OR_PUNCT_RUN = regex.compile(r"\w+|[^\w\s]+")


def whitespace_tokenizer_length(text: str) -> int:
    return len(_WORD_OR_PUNCT_RUN.findall(text)) + 1


@register("char_length_v1", "document length in Unicode code points (`length`)")
class CharLength(Tagger):
    def tag(self, doc: Document) -> TagResult:
        n = len(doc.text)
        return {"length": [(0, n, float(n))]}


@register("bytes_length_v1", "document length in UTF-8 bytes (`bytes`)")
class BytesLength(Tagger):
    def tag(self, doc: Document) -> TagResult:
        return {"bytes": [(0, len(doc.text), float(len(doc.text.encode("utf-8", "surrogatepass"))))]}


@register("doc_count_v1", "1 per document (`docs`), for counting with `dolma stats`")
class DocCount(Tagger):
    def tag(self, doc: Document) -> TagResult:
        return {"docs": [(0, len(doc.text), 1.0)]}


@register("char_length_strip_ws_v1", "length of the text without leading/trailing whitespace (`length_no_ws`)")
class CharLengthStripWs(Tagger):
    def tag(self, doc: Document) -> TagResult:
        return {"length_no_ws": [(0, len(doc.text), float(len(doc.text.strip())))]}


@register("char_length_with_paragraphs_v1", "length of each `paragraph` and of the `document`")
class CharLengthWithParagraphs(Tagger):
    def tag(self, doc: Document) -> TagResult:
        out: TagResult = {}
        paras = [(p.start, p.end, float(p.end - p.start)) for p in paragraphs(doc.text)]
        if paras:
            out["paragraph"] = paras
        out["document"] = [(0, len(doc.text), float(len(doc.text)))]
        return out


@register("whitespace_tokenizer_v1", "Dolma's whitespace-tokenizer count: runs of word or punctuation "
                                     "characters, plus one (`length`)")
class WhitespaceTokenizer(Tagger):
    def tag(self, doc: Document) -> TagResult:
        return {"length": [(0, len(doc.text), float(whitespace_tokenizer_length(doc.text)))]}


@register("whitespace_tokenizer_with_paragraphs_v1", "whitespace_tokenizer_v1 per `paragraph`, and their "
                                                     "sum as `document`")
class WhitespaceTokenizerParagraphs(Tagger):
    def tag(self, doc: Document) -> TagResult:
        out: TagResult = {}
        paras = [(p.start, p.end, float(whitespace_tokenizer_length(p.text))) for p in paragraphs(doc.text)]
        if paras:
            out["paragraph"] = paras
        out["document"] = [(0, len(doc.text), float(sum(s for _, _, s in paras)))]
        return out
