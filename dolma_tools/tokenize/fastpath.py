"""A faster, exact encoder for ASCII text with GPT-2-style byte-level BPE tokenizers.

For ASCII input, `tokenizers` spends most of its time on per-token bookkeeping (normalised
strings with alignments, offsets, token strings), not on BPE itself. The ids depend only on
1. the added tokens found in the text (leftmost-longest; first the ones matched on raw text,
   then the ones matched on normalised text, which for ASCII is the same text),
2. the pre-tokenizer's split of the rest (the GPT-2 regex; on ASCII, `\\p{L}` is [A-Za-z],
   `\\p{N}` is [0-9] and `\\s` is [\\t\\n\\v\\f\\r ]), and
3. BPE of each piece on its own.
So the pieces are found here with Python's `re` and each distinct piece is encoded once, by the
tokenizer itself, and remembered. The normalisers accepted are identities on ASCII.

It is used only when the tokenizer's JSON has exactly this shape (BPE without dropout, a plain
ByteLevel pre-tokenizer with the GPT-2 regex and no prefix space, an ASCII-neutral normaliser,
added tokens without strip/single-word rules); any other text or tokenizer goes through
`tokenizers` unchanged. Tests compare both paths on the dev corpus and on random ASCII text.
"""

from __future__ import annotations

import re
from array import array
from typing import Any

import tokenizers

from dolma_tools.errors import UserError

_WS = "\\t\\n\\x0b\\x0c\\r "
# The GPT-2 pre-tokenization regex restricted to ASCII (see the module docstring).
GPT2_ASCII = re.compile(
    rf"'s|'t|'re|'ve|'m|'ll|'d| ?[A-Za-z]+| ?[0-9]+| ?[^{_WS}A-Za-z0-9]+|[{_WS}]+(?![^{_WS}])|[{_WS}]+")

_IDENTITY_ON_ASCII = {None, "NFC", "NFD", "NFKC", "NFKD"}
MAX_CACHE = 500_000


def _normalizer_ok(cfg: Any) -> bool:
    if cfg is None:
        return True
    if not isinstance(cfg, dict):
        return False
    if cfg.get("type") == "Sequence":
        return all(_normalizer_ok(n) for n in cfg.get("normalizers", []))
    return cfg.get("type") in _IDENTITY_ON_ASCII


def eligible(config: dict) -> bool:
    """Whether a tokenizer JSON has the shape this fast path reproduces exactly."""
    model = config.get("model") or {}
    pre = config.get("pre_tokenizer") or {}
    if model.get("type") != "BPE" or model.get("dropout") not in (None, 0, 0.0):
        return False
    if model.get("byte_fallback") or model.get("continuing_subword_prefix") or model.get("end_of_word_suffix"):
        return False
    if pre.get("type") != "ByteLevel" or not pre.get("use_regex", True) or pre.get("add_prefix_space", False):
        return False
    if not _normalizer_ok(config.get("normalizer")):
        return False
    for token in config.get("added_tokens") or []:
        if token.get("single_word") or token.get("lstrip") or token.get("rstrip"):
            return False
    return True


def _trie_regex(node: dict) -> str:
    """A regex matching the longest string of a trie (dict of char -> subtrie; "" marks an end)."""
    branches = [re.escape(ch) + _trie_regex(child) for ch, child in sorted(node.items()) if ch]
    if not branches:
        return ""
    body = branches[0] if len(branches) == 1 else "(?:" + "|".join(branches) + ")"
    if "" in node:  # this prefix is itself a token: the longer ones are tried first
        return "(?:" + body + ")?"
    return body


def _alternation(contents: list[str]) -> re.Pattern | None:
    """A splitter for the leftmost-longest occurrences of `contents` (as Aho-Corasick would find).

    Built as a trie so that a long list of tokens (e.g. 23 runs of spaces) costs one pass.
    """
    if not contents:
        return None
    trie: dict = {}
    for content in set(contents):
        node = trie
        for ch in content:
            node = node.setdefault(ch, {})
        node[""] = {}
    return re.compile("(" + _trie_regex(trie) + ")")


def typecode(dtype: str) -> str:
    """The `array` type code whose items are `dtype` (native byte order, as numpy's)."""
    import numpy as np

    want = np.dtype(dtype)
    for code in "BHILQ":
        if array(code).itemsize == want.itemsize and want.kind == "u":
            return code
    raise ValueError(f"no array type code for {dtype}")


def pack(ids: list[int], code: str, dtype: str) -> bytes:
    """`ids` as the bytes of an array of `dtype`; an id that does not fit is a UserError."""
    try:
        return array(code, ids).tobytes()
    except OverflowError:
        top = max(ids)
        limit = (1 << (8 * array(code).itemsize)) - 1
        raise UserError(f"token id {top} does not fit dtype {dtype} (max {limit}): use a wider --dtype") from None


class AsciiFastEncoder:
    """Ids of ASCII texts, each distinct pre-tokenized piece encoded once and remembered.

    The cache holds each piece's ids already packed as `dtype` bytes, so a document's ids are one
    `bytes.join` of its pieces' entries: no Python int per token.
    """

    def __init__(self, tokenizer: tokenizers.Tokenizer, config: dict, encode_special_tokens: bool,
                 dtype: str = "uint32") -> None:
        self.tokenizer = tokenizer
        self.dtype = dtype
        self.code = typecode(dtype)
        added = [t for t in (config.get("added_tokens") or [])
                 if not (encode_special_tokens and t.get("special"))]
        self.added_ids = {t["content"]: int(t["id"]) for t in added}
        raw = [t["content"] for t in added if not t.get("normalized", True)]
        norm = [t["content"] for t in added if t.get("normalized", True)]
        self.raw_split = _alternation(raw)
        self.norm_split = _alternation(norm)
        # a text holding none of these cannot hold the tokens: its split is skipped
        self.raw_heads = tuple(sorted({c[:2] for c in raw if c}))
        self.norm_heads = tuple(sorted({c[:2] for c in norm if c}))
        self.cache: dict[str, bytes] = {}
        self._seed_cache()

    def _seed_cache(self) -> None:
        # An added token's text can never be a pre-tokenized piece (every occurrence was split
        # out first), so the two share one table.
        for content, token_id in self.added_ids.items():
            try:
                self.cache[content] = array(self.code, [token_id]).tobytes()
            except OverflowError:  # found (and refused) when a text uses it
                pass

    def _pieces(self, text: str) -> list[str]:
        """Pre-tokenized pieces and added tokens' texts, in order."""
        if self.raw_split is None or not any(head in text for head in self.raw_heads):
            if self.norm_split is None or not any(head in text for head in self.norm_heads):
                return GPT2_ASCII.findall(text)
            raw_parts = [text]
        else:
            raw_parts = self.raw_split.split(text)
        out: list[str] = []
        for i, part in enumerate(raw_parts):
            if i % 2:
                out.append(part)
                continue
            if not part:
                continue
            if self.norm_split is None or not any(head in part for head in self.norm_heads):
                out.extend(GPT2_ASCII.findall(part))
                continue
            for j, sub in enumerate(self.norm_split.split(part)):
                if j % 2:
                    out.append(sub)
                elif sub:
                    out.extend(GPT2_ASCII.findall(sub))
        return out

    def _fill(self, pieces: set[str]) -> None:
        missing = list(pieces.difference(self.cache))
        if not missing:
            return
        if len(self.cache) + len(missing) > MAX_CACHE:
            self.cache.clear()
            self._seed_cache()
            missing = list(pieces.difference(self.cache))  # everything this batch needs, again
        code, dtype = self.code, self.dtype
        for piece, enc in zip(missing, self.tokenizer.encode_batch_fast(missing, add_special_tokens=False)):
            self.cache[piece] = pack(enc.ids, code, dtype)

    def encode_batch_bytes(self, texts: list[str]) -> list[bytes]:
        """Ids of ASCII texts as `dtype` bytes, equal to `tokenizer.encode(text, add_special_tokens=False).ids`."""
        split = [self._pieces(t) for t in texts]
        join = b"".join
        get = self.cache.__getitem__
        out: list[bytes] = []
        retry: list[int] = []
        for i, pieces in enumerate(split):
            try:
                out.append(join(map(get, pieces)))
            except KeyError:  # a piece not seen yet: filled for all such documents at once below
                out.append(b"")
                retry.append(i)
        if retry:
            wanted: set[str] = set()
            for i in retry:
                wanted.update(split[i])
            self._fill(wanted)  # may clear the cache, but keeps every piece in `wanted`
            get = self.cache.__getitem__
            for i in retry:
                out[i] = join(map(get, split[i]))
        return out

    def encode_batch(self, texts: list[str]) -> list[list[int]]:
        """Ids of ASCII texts, equal to `tokenizer.encode(text, add_special_tokens=False).ids`."""
        return unpack_ids(self.encode_batch_bytes(texts), self.code)


def unpack_ids(packed: list[bytes], code: str) -> list[list[int]]:
    """Token ids as Python lists from ids packed with `array(code)` bytes (one entry per text)."""
    out = []
    for data in packed:
        ids = array(code)
        ids.frombytes(data)
        out.append(ids.tolist())
    return out
