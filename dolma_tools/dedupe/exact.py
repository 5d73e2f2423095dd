"""Exact dedupe plans: which keys a file contributes (documents, paragraphs, paragraph n-grams),
and how the Bloom filter's answers become Dolma's attribute spans.

A `SpanPlan` is built per file in the map phase (no filter needed): units (a document or a
paragraph, with its span), keys (hashes) and the unit each key belongs to. After the keys have been
checked against the filter, `SpanPlan.attributes` turns the per-key duplicate flags into spans:

- document mode: `[[0, byte length of key, 1]]` for a duplicate; no key for a new document; `[]`
  for a document skipped by min_length / min_words / skip_empty / partition (as Dolma 1.2.1);
- paragraph mode: the key is written for every non-empty text (possibly `[]`), a duplicate
  paragraph gets `[start, end, 1]` (code points, including its separator except at the end);
- n-gram mode: `[start, end, overlap]` for every checked paragraph whose overlap = seen / checked
  n-grams (as f32) is >= threshold, 0.0 included (as Dolma 1.2.1); scores rounded to 5 decimals;
- contamination mode (decontaminate.py): the same score, for units with at least one hit.
"""

from __future__ import annotations

import itertools
import re
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from dolma_tools.dedupe.bloom import empty_hashes, hash_keys
from dolma_tools.dedupe.words import ngram_tokens
from dolma_tools.errors import UserError

SCORE_DECIMALS = 5
NO_KEY, EMPTY_LIST, ONLY_IF_DUPLICATE = 0, 1, 2

_JSONPATH_PART = re.compile(r"\.([A-Za-z_][\w-]*)|\[(\d+)\]|\['([^']*)'\]|\[\"([^\"]*)\"\]")


def parse_jsonpath(path: str) -> list[str | int]:
    """`$.metadata.url`, `$['a b'][0]` -> steps. A bare `text` means `$.text`."""
    path = path.strip()
    if not path.startswith("$"):
        path = "$." + path
    steps: list[str | int] = []
    pos = 1
    while pos < len(path):
        m = _JSONPATH_PART.match(path, pos)
        if m is None:
            raise UserError(f"dedupe.documents.key {path!r} is not a supported JSONPath "
                            "(use forms like $.text, $.metadata.url, $.a[0], $['a b'])")
        name, index, q1, q2 = m.groups()
        steps.append(int(index) if index is not None else (name or q1 or q2 or ""))
        pos = m.end()
    return steps


def resolve_jsonpath(doc: Any, steps: list[str | int]) -> Any:
    node = doc
    for step in steps:
        if isinstance(step, int):
            if not isinstance(node, list) or step >= len(node):
                return None
        elif not isinstance(node, dict):
            return None
        node = node[step] if isinstance(step, int) else node.get(step)
    return node


def partition_mask(hashes: np.ndarray, num_partitions: int, index: int) -> np.ndarray:
    if num_partitions <= 1:
        return np.ones(len(hashes), dtype=bool)
    return (hashes[:, 1] % np.uint64(num_partitions)).astype(np.int64) == index


@dataclass
class SpanPlan:
    """One attribute of one file: units, their keys, and what to write for each document."""

    attribute: str
    mode: str  # "document" | "paragraph" | "ngram" | "contamination"
    threshold: float = 1.0
    doc_state: list[int] = field(default_factory=list)
    unit_doc: list[int] = field(default_factory=list)
    unit_start: list[int] = field(default_factory=list)
    unit_end: list[int] = field(default_factory=list)
    key_unit: list[int] = field(default_factory=list)
    keys: list[str] = field(default_factory=list)
    hashes: np.ndarray = field(default_factory=empty_hashes)
    # keys per unit before other partitions' keys were dropped (None: nothing was dropped)
    unit_keys: np.ndarray | None = None

    def add_unit(self, doc: int, start: int, end: int, keys: list[str]) -> None:
        unit = len(self.unit_doc)
        self.unit_doc.append(doc)
        self.unit_start.append(start)
        self.unit_end.append(end)
        self.key_unit.extend([unit] * len(keys))
        self.keys.extend(keys)

    def finish(self, num_partitions: int = 1, partition_index: int = 0,
               hashes: np.ndarray | None = None) -> "SpanPlan":
        """Hash the collected keys (one C call per key) and drop other partitions' keys."""
        hashes = hash_keys(self.keys) if hashes is None else hashes
        key_unit = np.asarray(self.key_unit, dtype=np.int64)
        keep = partition_mask(hashes, num_partitions, partition_index)
        if not keep.all():  # n-gram scores keep the paragraph's whole count as denominator (Dolma)
            self.unit_keys = np.bincount(key_unit, minlength=len(self.unit_doc))
        self.hashes = hashes if keep.all() else hashes[keep]
        self.key_unit = key_unit if keep.all() else key_unit[keep]
        self.keys = []
        # arrays pickle cheaply between Ray tasks
        self.unit_doc = np.asarray(self.unit_doc, dtype=np.int64)
        self.unit_start = np.asarray(self.unit_start, dtype=np.int64)
        self.unit_end = np.asarray(self.unit_end, dtype=np.int64)
        return self

    def attributes(self, duplicate: np.ndarray) -> list[dict[str, list]]:
        """Per document: {attribute: spans} or {} (per the mode's Dolma convention).

        Also sets `self.stats`: non-empty spans, documents with one, characters covered.
        """
        n_units = len(self.unit_doc)
        checked = np.bincount(self.key_unit, minlength=n_units)
        seen = np.bincount(self.key_unit, weights=duplicate.astype(np.float64), minlength=n_units)
        name = self.attribute
        out: list[dict[str, list]] = [{name: []} if state == EMPTY_LIST else {} for state in self.doc_state]
        hit = np.flatnonzero(seen > 0)
        scored = self.mode in ("ngram", "contamination")
        if scored:
            total = checked if self.unit_keys is None else self.unit_keys
            if self.mode == "ngram":  # every checked paragraph has a score, 0.0 included; a short
                # paragraph (one key) of another partition was not checked here
                hit = np.flatnonzero((total >= 2) | (checked >= 1))
            else:
                for doc in np.unique(self.unit_doc[hit]).tolist():  # the key exists even below threshold
                    out[doc].setdefault(name, [])
            # f32 as Dolma: overlap and threshold compare equal where Dolma's do (19/20 >= 0.95)
            overlap = seen[hit].astype(np.float32) / total[hit].astype(np.float32)
            passed = overlap >= np.float32(self.threshold)
            hit, overlap = hit[passed], overlap[passed]
            scores = np.round(overlap.astype(np.float64), SCORE_DECIMALS).tolist()
        docs = self.unit_doc[hit]
        starts, ends = self.unit_start[hit], self.unit_end[hit]
        counted = ends > starts
        if scored:
            counted &= overlap > 0
        self.stats = {"spans": int(counted.sum()), "documents": int(len(np.unique(docs[counted]))),
                      "characters": int((ends - starts)[counted].sum())}
        if scored:
            spans = [[a, b, c] for a, b, c in zip(starts.tolist(), ends.tolist(), scores)]
        else:  # NumPy rows, serialised by orjson directly (OPT_SERIALIZE_NUMPY) as [[s, e, 1], ...]
            spans = np.ascontiguousarray(np.stack([starts, ends, np.ones_like(starts)], axis=1))
        # units are in document order: one slice of `spans` per document
        bounds = np.flatnonzero(np.concatenate(([True], docs[1:] != docs[:-1]))) if len(docs) else np.zeros(0, int)
        stops = np.append(bounds[1:], len(docs)).tolist()
        for doc, lo, hi in zip(docs[bounds].tolist(), bounds.tolist(), stops):
            out[doc][name] = spans[lo:hi]
        return out


def _too_short(key: str, min_length: int, min_words: int, skip_empty: bool, length: int) -> bool:
    if length < min_length:
        return True
    if min_words > 0 and len(key.split()) < min_words:
        return True
    return skip_empty and not key.strip()


def plan_documents(docs: list[dict | None], attribute: str, key_path: str,
                   settings) -> tuple[SpanPlan, list[tuple[int, str]]]:
    """Document mode. Returns the plan and per-line problems (missing / non-string keys)."""
    steps = parse_jsonpath(key_path)
    plan = SpanPlan(attribute=attribute, mode="document")
    problems: list[tuple[int, str]] = []
    for i, doc in enumerate(docs):
        if doc is None:
            plan.doc_state.append(NO_KEY)
            continue
        value = resolve_jsonpath(doc, steps)
        if not isinstance(value, str):
            problems.append((i, f"dedupe key {key_path} is "
                                f"{'missing' if value is None else type(value).__name__}, not a string"))
            plan.doc_state.append(NO_KEY)
            continue
        length = len(value.encode("utf-8"))
        if _too_short(value, settings.min_length, settings.min_words, settings.skip_empty, length):
            plan.doc_state.append(EMPTY_LIST)
            continue
        plan.doc_state.append(ONLY_IF_DUPLICATE)
        plan.add_unit(i, 0, length, [value])
    plan.finish(settings.num_partitions, settings.partition_index)
    _partition_skips_as_empty(plan)
    return plan, problems


def _partition_skips_as_empty(plan: SpanPlan) -> None:
    """Dolma writes `[]` for a document whose key belongs to another partition."""
    kept_units = set(np.asarray(plan.key_unit).tolist())
    for u, doc in enumerate(plan.unit_doc.tolist()):
        if u not in kept_units:
            plan.doc_state[doc] = EMPTY_LIST


def split_paragraphs(text: str, separator: str) -> list[tuple[int, int, str]]:
    """(start, end, paragraph) in code points; the end covers the separator except at the end
    of the text (Dolma 1.2.1's convention, with the separator's real length)."""
    out = []
    offset = 0
    n = len(text)
    sep = len(separator)
    for part in text.split(separator):
        start = offset
        offset += len(part)
        if offset + sep < n:
            offset += sep
        out.append((start, offset, part))
    return out


def plan_paragraphs(docs: list[dict | None], attribute: str, pconf, settings) -> SpanPlan:
    ngram = pconf.by_ngram if pconf.by_ngram is not None and pconf.by_ngram.ngram_length > 0 else None
    if ngram is None:
        return plan_exact_paragraphs(docs, attribute, pconf.paragraph_separator, settings)
    plan = SpanPlan(attribute=attribute, mode="ngram", threshold=ngram.overlap_threshold)
    separator = pconf.paragraph_separator
    sep = len(separator)
    filtered = settings.min_length > 0 or settings.min_words > 0 or settings.skip_empty
    doc_state = plan.doc_state  # a local: this loop runs once per paragraph of the corpus
    for i, doc in enumerate(docs):
        text = doc["text"] if doc is not None else ""
        if not text:
            doc_state.append(NO_KEY)
            continue
        doc_state.append(EMPTY_LIST)
        n = len(text)
        offset = 0
        for para in text.split(separator):
            start = offset
            offset += len(para)
            if offset + sep < n:  # Dolma: the separator belongs to the paragraph, except at the end
                offset += sep
            if filtered and _too_short(para, settings.min_length, settings.min_words, settings.skip_empty,
                                       len(para)):
                continue
            unit_keys = ngram_keys(para, ngram.ngram_length, ngram.stride)
            if unit_keys is None:
                if ngram.skip_short_paragraphs:
                    continue
                unit_keys = [para]
            plan.add_unit(i, start, offset, unit_keys)
    return plan.finish(settings.num_partitions, settings.partition_index)


def ngram_keys(text: str, n: int, stride: int = 0) -> list[str] | None:
    """The checked n-grams of a paragraph, or None when it has fewer than 2 n-grams."""
    tokens = ngram_tokens(text)
    windows = len(tokens) - n + 1
    if windows < 2:
        return None
    join = "\x1f".join
    return [join(tokens[i:i + n]) for i in checked_windows(windows, stride)]


def checked_windows(windows: int, stride: int) -> range | list[int]:
    """The n-gram windows Dolma 1.2.1 checks: with stride s > 1, windows 0, 1, 1 + s, 1 + 2s, ...

    Dolma checks a window when no window was checked yet or when it starts at least `stride`
    after the last checked one, but tests "no window yet" as "the last checked window started
    at 0", so the window after the first is always checked too. The scores are what thresholds
    were tuned on, so we keep its windows (n = 3, stride = 2, 8 tokens: 0, 1, 3, 5).
    """
    if stride <= 1:
        return range(windows)
    return [0, *range(1, windows, stride)]


_ASCII_SPACES_ONLY_IN_STR = (b"\x1c", b"\x1d", b"\x1e", b"\x1f")  # str.isspace() yes, bytes.isspace() no


def _find_all(data: bytes, needles: tuple[bytes, ...]) -> list[int]:
    """Offsets of every occurrence of the one-byte needles (memchr speed; they are rare)."""
    out = []
    for needle in needles:
        at = data.find(needle)
        while at >= 0:
            out.append(at)
            at = data.find(needle, at + 1)
    return out


def plan_exact_paragraphs(docs: list[dict | None], attribute: str, separator: str, settings) -> SpanPlan:
    """Exact paragraph mode for a chunk of documents at once: one split, offsets with NumPy.

    Offsets follow Dolma's rule (the separator belongs to its paragraph unless nothing follows
    it), in code points: start_i is the running sum of len + separator, except for an empty last
    paragraph, which starts at len(text) - len(separator).

    The split is done on UTF-8 bytes (a UTF-8 separator only matches at character boundaries, so
    the pieces are those of the text), which hands the hash its keys without encoding each
    paragraph; paragraph lengths in code points are the byte lengths for ASCII documents and
    are measured on the text for the others.
    """
    plan = SpanPlan(attribute=attribute, mode="paragraph")
    texts = [doc["text"] if doc is not None else "" for doc in docs]
    plan.doc_state = [EMPTY_LIST if t else NO_KEY for t in texts]
    present = [t for t in texts if t]
    doc_index = np.flatnonzero(np.fromiter(map(bool, texts), dtype=bool, count=len(texts)))
    if not present:
        return plan.finish(settings.num_partitions, settings.partition_index)
    sep = len(separator)
    sep_bytes = separator.encode("utf-8")
    encoded = [t.encode("utf-8") for t in present]
    joined = sep_bytes.join(encoded)
    # each document split on its own: in the joined bytes a separator that can overlap itself
    # ("\n\n") could match across a document boundary
    parts = list(itertools.chain.from_iterable(e.split(sep_bytes) for e in encoded))
    counts = np.fromiter((e.count(sep_bytes) + 1 for e in encoded), dtype=np.int64, count=len(encoded))
    doc_len = np.fromiter(map(len, present), dtype=np.int64, count=len(present))
    lens = np.fromiter(map(len, parts), dtype=np.int64, count=len(parts))  # bytes, for now
    first = np.cumsum(counts) - counts  # index of each document's first paragraph
    blank = None
    if settings.skip_empty:  # empty or whitespace-only (isspace is False for the empty string)
        blank = np.fromiter(map(bytes.isspace, parts), dtype=bool, count=len(parts))
        odd = _find_all(joined, _ASCII_SPACES_ONLY_IN_STR)
        if odd:  # the few paragraphs holding one: str's answer
            step_bytes = lens + len(sep_bytes)
            part_start = np.cumsum(step_bytes) - step_bytes
            for i in np.unique(np.searchsorted(part_start, odd, side="right") - 1).tolist():
                blank[i] = parts[i].decode("utf-8").isspace()
        blank |= lens == 0
    non_ascii = np.flatnonzero(np.fromiter(map(str.isascii, present), dtype=bool, count=len(present)) == 0)
    for d in non_ascii.tolist():  # code points and Unicode whitespace: from the text itself
        pieces = present[d].split(separator)
        lo, hi = first[d], first[d] + counts[d]
        lens[lo:hi] = np.fromiter(map(len, pieces), dtype=np.int64, count=len(pieces))
        if blank is not None:
            blank[lo:hi] = np.fromiter(map(str.isspace, pieces), dtype=bool, count=len(pieces)) | (lens[lo:hi] == 0)
    owner = np.repeat(np.arange(len(present)), counts)
    step = lens + sep
    run = np.cumsum(step) - step  # exclusive running sum over the chunk
    starts = run - run[first][owner]
    n = doc_len[owner]
    # Dolma's rule moves one start only: that of an empty last paragraph (a text ending with the
    # separator), which sits before the separator, at n - sep. A non-empty last paragraph shorter
    # than the separator starts after it, at n - len.
    last = first + counts - 1
    starts[last] = np.where(lens[last] == 0, np.maximum(n[last] - sep, 0), starts[last])
    ends = starts + lens
    ends = np.where(ends + sep < n, ends + sep, ends)
    keep = None
    if settings.min_length > 0:
        keep = lens >= settings.min_length
    if blank is not None:
        keep = ~blank if keep is None else keep & ~blank
    if settings.min_words > 0:
        words_ok = np.fromiter((len(p.decode("utf-8").split()) >= settings.min_words for p in parts),
                               dtype=bool, count=len(parts))
        keep = words_ok if keep is None else keep & words_ok
    hashes = hash_keys(parts)  # hashing a skipped paragraph costs less than building a filtered list
    if keep is not None:
        idx = np.flatnonzero(keep)
        owner, starts, ends, hashes = owner[idx], starts[idx], ends[idx], hashes[idx]
    plan.unit_doc = doc_index[owner]
    plan.unit_start, plan.unit_end = starts, ends
    plan.key_unit = np.arange(len(hashes), dtype=np.int64)
    return plan.finish(settings.num_partitions, settings.partition_index, hashes)
