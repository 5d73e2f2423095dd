"""Documents -> token ids, Dolma's way, many documents per call.

Per document (reference-dolma.md §10.1): the text is stripped and empty texts are skipped by the
caller; it is encoded without the tokenizer's template; BOS is prepended when set and not already
first; EOS is appended when set and not already last. The pad id is never written.

Dolma calls the tokenizer once per document; here a whole batch goes through one
`encode_batch_fast` call (no offsets), or the ASCII fast path, and each document's ids come back
as the bytes of a `dtype` array (no Python int per token), ready to be shuffled and written.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field

import numpy as np
import orjson
import tokenizers

from dolma_tools.tokenize.fastpath import AsciiFastEncoder, pack, typecode, unpack_ids
from dolma_tools.tokenize.fastpath import eligible as fast_path_eligible
from dolma_tools.tokenize.tokenizers import ResolvedTokenizer, tokenizer_from_resolved

# A paragraph is a run of newlines and the line that follows (the first keeps only leading ones).
_PARAGRAPH = re.compile(r"(?:^\n*|\n+)[^\n]*")


# documents encoded per tokenizers call: ids are compacted into arrays after each
ENCODE_SUB_BATCH = 1000


@dataclass(frozen=True)
class EncodingSettings:
    """Everything that decides the ids of a document; built once in the driver."""

    tokenizer: ResolvedTokenizer
    eos_token_id: int | None
    bos_token_id: int | None
    dtype: str
    encode_special_tokens: bool = False
    segment_before_tokenization: bool = False
    refresh: int = 0  # documents between tokenizer rebuilds; 0 = never
    ascii_fast_path: bool = True  # see fastpath.py; same ids, several times faster on ASCII text
    # The tokenizer file's text travels with the settings, so workers on other machines need no
    # copy of it (identified by its sha256 in `tokenizer` for comparisons).
    tokenizer_json: str | None = field(default=None, compare=False, repr=False)


def _adds_prefix_space(config: dict) -> bool:
    """Whether the tokenizer puts a space before a sequence (then paragraph pieces need fixing)."""
    pre = config.get("pre_tokenizer") or {}
    pres = pre.get("pretokenizers", []) if pre.get("type") == "Sequence" else [pre]
    if any(p.get("add_prefix_space", False) for p in pres if isinstance(p, dict)):
        return True
    norm = config.get("normalizer") or {}
    norms = norm.get("normalizers", []) if norm.get("type") == "Sequence" else [norm]
    return any(isinstance(n, dict) and n.get("type") == "Prepend" for n in norms)


class DocumentEncoder:
    """One per worker process and settings: owns the tokenizer and rebuilds it every `refresh` docs."""

    def __init__(self, settings: EncodingSettings) -> None:
        self.settings = settings
        self.limit = int(np.iinfo(settings.dtype).max)
        self._since_refresh = 0
        self._tokenizer = self._build()
        config = orjson.loads(self._tokenizer.to_str())
        self._prefix = _adds_prefix_space(config) if settings.segment_before_tokenization else False
        self._code = typecode(settings.dtype)
        self._itemsize = np.dtype(settings.dtype).itemsize
        self._fast = (AsciiFastEncoder(self._tokenizer, config, settings.encode_special_tokens, settings.dtype)
                      if settings.ascii_fast_path and fast_path_eligible(config) else None)
        bos, eos = settings.bos_token_id, settings.eos_token_id
        self._bos = None if bos is None else pack([bos], self._code, settings.dtype)
        self._eos = None if eos is None else pack([eos], self._code, settings.dtype)

    def _build(self) -> tokenizers.Tokenizer:
        if self.settings.tokenizer_json is not None:
            tok = tokenizers.Tokenizer.from_str(self.settings.tokenizer_json)
        else:
            tok = tokenizer_from_resolved(self.settings.tokenizer)
        tok.encode_special_tokens = self.settings.encode_special_tokens
        tok.no_truncation()
        tok.no_padding()
        return tok

    def _maybe_refresh(self, n_docs: int) -> None:
        self._since_refresh += n_docs
        if self.settings.refresh and self._since_refresh >= self.settings.refresh:
            # tokenizers grows memory over long runs (huggingface/tokenizers#1495); a new
            # instance gives it back. The ids do not change.
            self._tokenizer = self._build()
            if self._fast is not None:
                self._fast.tokenizer = self._tokenizer
            self._since_refresh = 0

    def _pack(self, ids: list[int]) -> bytes:
        return pack(ids, self._code, self.settings.dtype)

    def _encode_plain(self, texts: list[str]) -> list[bytes]:
        """Ids of each text as `dtype` bytes (ASCII texts through the fast path when it applies)."""
        if self._fast is None:
            return [self._pack(e.ids) for e in self._tokenizer.encode_batch_fast(texts, add_special_tokens=False)]
        ascii_positions = [i for i, text in enumerate(texts) if text.isascii()]
        if len(ascii_positions) == len(texts):
            return self._fast.encode_batch_bytes(texts)
        out: list[bytes] = [b""] * len(texts)
        for i, data in zip(ascii_positions, self._fast.encode_batch_bytes([texts[i] for i in ascii_positions])):
            out[i] = data
        others = [i for i, text in enumerate(texts) if not text.isascii()]
        encoded = self._tokenizer.encode_batch_fast([texts[i] for i in others], add_special_tokens=False)
        for i, enc in zip(others, encoded):
            out[i] = self._pack(enc.ids)
        return out

    def _encode_lists(self, texts: list[str]) -> list[list[int]]:
        return unpack_ids(self._encode_plain(texts), self._code)

    def _encode_texts(self, texts: list[str]) -> list[bytes]:
        if not self.settings.segment_before_tokenization:
            return self._encode_plain(texts)
        pieces: list[str] = []
        spans: list[tuple[int, int]] = []
        for text in texts:
            start = len(pieces)
            for i, match in enumerate(_PARAGRAPH.finditer(text)):
                pieces.append((" " if self._prefix and i > 0 else "") + match.group())
            spans.append((start, len(pieces)))
        encoded = self._encode_lists(pieces)
        out = []
        for start, end in spans:
            ids: list[int] = []
            for pos in range(start, end):
                ids.extend(encoded[pos][1:] if self._prefix and pos > start else encoded[pos])
            out.append(self._pack(ids))
        return out

    def encode_chunks(self, texts: list[str]) -> list[bytes]:
        """Each document's ids (BOS/EOS added) as `dtype` bytes, for already stripped, non-empty texts.

        A text whose encoding is empty gives `b""` (the caller drops it). Texts are encoded in
        sub-batches, so the Python objects of pre-tokenization exist for one sub-batch at a time;
        the ids themselves are compact from the start.
        """
        out: list[bytes] = []
        for start in range(0, len(texts), ENCODE_SUB_BATCH):
            out.extend(self._encode_part(texts[start:start + ENCODE_SUB_BATCH]))
        self._maybe_refresh(len(texts))
        return out

    def encode(self, texts: list[str]) -> tuple[np.ndarray, np.ndarray]:
        """(flat ids in `dtype`, per-document lengths) for already stripped, non-empty texts.

        A text whose encoding is empty gets length 0 (the caller drops it).
        """
        chunks = self.encode_chunks(texts)
        lengths = np.fromiter((len(c) // self._itemsize for c in chunks), dtype=np.int64, count=len(chunks))
        flat = np.frombuffer(b"".join(chunks), dtype=self.settings.dtype).copy()
        return flat, lengths

    def _encode_part(self, texts: list[str]) -> list[bytes]:
        bos, eos, size = self._bos, self._eos, self._itemsize
        out: list[bytes] = []
        for data in self._encode_texts(texts):
            if data:
                if bos is not None and data[:size] != bos:
                    data = bos + data
                if eos is not None and data[-size:] != eos:
                    data = data + eos
            out.append(data)
        return out


_ENCODERS: dict[EncodingSettings, DocumentEncoder] = {}


def encoder_for(settings: EncodingSettings, parallel: bool) -> DocumentEncoder:
    """The process's encoder for these settings (the tokenizer is built once per worker).

    `parallel=False` keeps the Rust tokenizer to one thread, for runs with one worker per core.
    """
    if not parallel:
        os.environ["TOKENIZERS_PARALLELISM"] = "false"
    encoder = _ENCODERS.get(settings)
    if encoder is None:
        _ENCODERS.clear()
        encoder = _ENCODERS[settings] = DocumentEncoder(settings)
    return encoder
