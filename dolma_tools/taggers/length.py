"""Length and counting taggers: whole-document spans whose score is a length, or paragraph spans."""

from __future__ import annotations

import numpy as np
import regex

from dolma_tools.taggers.base import Document, Tagger, TagResult, register
from dolma_tools.taggers.wordbreak import non_space_words_in, word_count
from dolma_tools.text import paragraphs

# Dolma's "whitespace tokenizer" splits on runs of word characters or of punctuation, so its
# count is (number of such runs) + 1, not a word count; kept so thresholds carry over.
_WORD_OR_PUNCT_RUN = regex.compile(r"\w+|[^\w\s]+")


def _ascii_classes() -> np.ndarray:
    """Per ASCII code: 0 whitespace, 1 word character, 2 anything else, as the `regex` module's
    `\\s` and `\\w` classify them."""
    word, space = regex.compile(r"\w"), regex.compile(r"\s")
    return np.array([1 if word.match(chr(c)) else 0 if space.match(chr(c)) else 2 for c in range(128)], np.uint8)


_ASCII_CLASSES = _ascii_classes()


def whitespace_tokenizer_length(text: str) -> int:
    """Runs of word characters or of other non-space characters, + 1. ASCII text is classified by one
    table lookup and its runs counted with numpy, about five times faster than the regex."""
    if len(text) < 64 or not text.isascii():  # below ~64 characters the regex is the faster
        return len(_WORD_OR_PUNCT_RUN.findall(text)) + 1
    classes = _ASCII_CLASSES[np.frombuffer(text.encode("ascii"), np.uint8)]
    run_starts = np.count_nonzero((classes[1:] != classes[:-1]) & (classes[1:] != 0))
    return int(run_starts) + int(classes[0] != 0) + 1


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


# --- Unicode word counts (Dolma's `uniseg_*`; UAX #29 segments from `wordbreak`) ------------------


@register("uniseg_length_v1", "UAX #29 word segments of the stripped text, whitespace segments included "
                              "(`length`; Dolma's uniseg count)")
class UnisegLength(Tagger):
    def tag(self, doc: Document) -> TagResult:
        return {"length": [(0, len(doc.text), float(word_count(doc.text.strip())))]}


@register("uniseg_length_paragraphs_v1", "UAX #29 words (not whitespace) per `paragraph`, and "
                                         "`negative_paragraph` = minus that (for >= filters in the mixer)")
class UnisegParagraphs(Tagger):
    keep_empty = False

    def paragraph_spans(self, text: str) -> TagResult:
        # Dolma counts each stripped paragraph on its own; one segmentation of the text gives the same
        paras = [(p.start, p.end) for p in paragraphs(text, keep_empty=self.keep_empty)]
        if not paras:
            return {}
        counts = [(s, e, int(n)) for (s, e), n in zip(paras, non_space_words_in(text, paras))]
        # float(-n), not -float(n): a count of 0 must not be written as -0.0
        return {"paragraph": [(s, e, float(n)) for s, e, n in counts],
                "negative_paragraph": [(s, e, float(-n)) for s, e, n in counts]}

    def tag(self, doc: Document) -> TagResult:
        return self.paragraph_spans(doc.text)


@register("uniseg_length_paragraphs_with_empty_v1", "uniseg_length_paragraphs_v1 including whitespace-only "
                                                    "paragraphs (count 0)")
class UnisegParagraphsWithEmpty(UnisegParagraphs):
    keep_empty = True


@register("uniseg_length_paragraphs_with_doc_length_v1", "uniseg_length_paragraphs_v1 plus their sums as "
                                                         "`document` and `negative_document`")
class UnisegParagraphsWithDocLength(UnisegParagraphs):
    def tag(self, doc: Document) -> TagResult:
        out = self.paragraph_spans(doc.text)
        total = sum(int(score) for _, _, score in out.get("paragraph", []))
        out["document"] = [(0, len(doc.text), float(total))]
        out["negative_document"] = [(0, len(doc.text), float(-total))]
        return out


# --- OLMo v1 pre-tokenizer piece counts ----------------------------------------------------------


def olmo_pretokenizer():
    """The pre-tokenizer Dolma counts with: punctuation and digits split off (with an optional
    leading space), then GPT-2's byte-level split (OLMo v1 / GPT-NeoX-20B).

    Dolma writes the punctuation class as `[[:punct:]]`, which the Oniguruma inside the tokenizers
    it pins (<= 0.19.1) reads as Unicode punctuation, `\\p{P}`; newer releases add `$+<=>^`|~`
    (so `||` became two pieces). `\\p{P}` keeps Dolma 1.2.1's counts whatever tokenizers is installed.
    """
    from tokenizers import Regex, pre_tokenizers

    return pre_tokenizers.Sequence([
        pre_tokenizers.Split(pattern=Regex(" ?\\p{P}"), behavior="isolated", invert=False),
        pre_tokenizers.Split(pattern=Regex(" ?\\d"), behavior="isolated", invert=False),
        pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True),
    ])


@register("olmo_pretokenizer_v1", "pieces of the OLMo v1 pre-tokenizer (punctuation, digits, byte-level "
                                  "words) in the document (`length`)")
class OlmoPretokenizer(Tagger):
    def __init__(self, **options) -> None:
        super().__init__(**options)
        self.pre_tokenizer = olmo_pretokenizer()

    def pieces(self, text: str) -> int:
        return len(self.pre_tokenizer.pre_tokenize_str(text))

    def tag(self, doc: Document) -> TagResult:
        return {"length": [(0, len(doc.text), float(self.pieces(doc.text)))]}


@register("olmo_pretokenizer_with_paragraphs_v1", "olmo_pretokenizer_v1 per `paragraph`, and their sum as "
                                                  "`document`")
class OlmoPretokenizerParagraphs(OlmoPretokenizer):
    def tag(self, doc: Document) -> TagResult:
        out: TagResult = {}
        paras = [(p.start, p.end, self.pieces(p.text)) for p in paragraphs(doc.text)]
        if paras:
            out["paragraph"] = [(s, e, float(n)) for s, e, n in paras]
        out["document"] = [(0, len(doc.text), float(sum(n for _, _, n in paras)))]
        return out
