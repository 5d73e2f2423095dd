"""Quality rules: C4 (`c4_v1`, `c4_v2`), Gopher (`gopher_v1`, `gopher_v2`) and FineWeb (`fineweb_v1`).

C4 and Gopher reproduce Dolma 1.2.1's attribute types and values (its quirks included: see
docs/taggers.md). Gopher's n-gram statistics, Dolma's slowest tagger, are computed without a
Python loop over n-grams: words are hashed to integers, and each n-gram level gets dense ids
from the previous level with one `np.unique` (exact, no n-gram hash collisions).
"""

from __future__ import annotations

import re
from collections import Counter
from functools import lru_cache
from importlib import resources

import numpy as np
import regex

from dolma_tools.taggers.base import Document, Tagger, TagResult, register
from dolma_tools.text import paragraphs

# ---------------------------------------------------------------- C4

MIN_WORDS_PER_LINE = 3
LINE_END_PUNCTUATION = (".", "?", "!", '"')


@lru_cache(maxsize=1)
def naughty_words() -> tuple[frozenset[str], re.Pattern | None]:
    """The LDNOOBW English list: (single words, one regex matching any multi-word phrase)."""
    lines = resources.files("dolma_tools").joinpath("data", "naughty_words_en.txt").read_text("utf-8").splitlines()
    words = frozenset(w for w in lines if w and " " not in w)
    phrases = [w for w in lines if " " in w]
    return words, (re.compile(trie_pattern(phrases)) if phrases else None)


def trie_pattern(strings: list[str]) -> str:
    """A regex matching any of `strings`, shaped as a trie so each position costs one branch.

    (An alternation of 124 phrases would try every phrase at every character.)
    """
    trie: dict = {}
    for s in strings:
        node = trie
        for ch in s:
            node = node.setdefault(ch, {})
        node[""] = {}

    def build(node: dict) -> str:
        if "" in node and len(node) == 1:
            return ""
        branches = [re.escape(ch) + build(child) for ch, child in sorted(node.items()) if ch]
        body = branches[0] if len(branches) == 1 else "(?:" + "|".join(branches) + ")"
        return f"(?:{body})?" if "" in node else body

    return build(trie)


def has_naughty_word(lowered: str, words: list[str] | None = None) -> bool:
    """C4's rule: a whitespace token is a listed word, or a listed phrase occurs as a substring."""
    single, phrases = naughty_words()
    if not single.isdisjoint(lowered.split() if words is None else words):
        return True
    return phrases is not None and phrases.search(lowered) is not None


@register("c4_v1", "C4 rules per line (no end punctuation, < 3 words) and naughty words, JavaScript, "
                   "lorem ipsum, curly braces per document")
class C4V1(Tagger):
    def tag(self, doc: Document) -> TagResult:
        text = doc.text
        n = len(text)
        no_punct, few_words = [], []
        naughty = javascript = lorem = curly = False
        lines = text.split("\n")
        last = len(lines) - 1
        offset = 0
        for i, original in enumerate(lines):
            end = offset + len(original) + (1 if i < last else 0)
            line = original.lower().strip()
            if not line.endswith(LINE_END_PUNCTUATION):
                no_punct.append((offset, end, 1.0))
            words = line.split()
            if len(words) < MIN_WORDS_PER_LINE:
                few_words.append((offset, end, 1.0))
            if not naughty and has_naughty_word(line, words):
                naughty = True
            if not javascript and "javascript" in words:
                javascript = True
            if not lorem and "lorem ipsum" in line:
                lorem = True
            if not curly and "{" in line:
                curly = True
            offset = end
        out: TagResult = {}
        if no_punct:
            out["lines_with_no_ending_punctuation"] = no_punct
        if few_words:
            out["lines_with_too_few_words"] = few_words
        for flag, name in ((naughty, "has_naughty_word"), (javascript, "has_javascript"),
                           (lorem, "has_lorem_ipsum"), (curly, "has_curly_brace")):
            if flag:
                out[name] = [(0, n, 1.0)]
        out["line_count"] = [(0, n, float(len(lines)))]
        return out


@register("c4_v2", "C4 rules, faster: line spans as c4_v1; `{`, `lorem ipsum`, `javascript` as substrings "
                   "of the lowercased document; naughty words; line_count")
class C4V2(Tagger):
    def tag(self, doc: Document) -> TagResult:
        n = len(doc.text)
        text = doc.text.lower()  # as Dolma, line offsets are those of the lowercased text
        out: TagResult = {}
        if "{" in text:
            out["has_curly_brace"] = [(0, n, 1.0)]
        if "lorem ipsum" in text:
            out["has_lorem_ipsum"] = [(0, n, 1.0)]
        if "javascript" in text:
            out["has_javascript"] = [(0, n, 1.0)]
        if has_naughty_word(text):
            out["has_naughty_word"] = [(0, n, 1.0)]
        no_punct, few_words = [], []
        total = len(text)
        start = count = 0
        for line in text.split("\n"):
            end = start + len(line)
            if end != total:
                end += 1
            line = line.strip()
            if not line.endswith(LINE_END_PUNCTUATION):
                no_punct.append((start, end, 1.0))
            if len(line.split()) < MIN_WORDS_PER_LINE:
                few_words.append((start, end, 1.0))
            count += 1
            start = end
        if no_punct:
            out["lines_with_no_ending_punctuation"] = no_punct
        if few_words:
            out["lines_with_too_few_words"] = few_words
        out["line_count"] = [(0, n, float(count))]
        return out


# ---------------------------------------------------------------- Gopher

REQUIRED_ENGLISH_WORDS = frozenset({"the", "be", "to", "of", "and", "that", "have", "with"})
MOST_COMMON_NGRAMS = (2, 3, 4)
DUPLICATE_NGRAMS = (5, 6, 7, 8, 9, 10)
# str.split()'s whitespace (str.isspace), spelled out so the regexes below agree with it exactly
_WS = "\t\n\x0b\x0c\r\x1c-\x1f \x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000"
_WORD_WITHOUT_LETTER = regex.compile(rf"(?<![^{_WS}])[^{_WS}\p{{L}}]+(?![^{_WS}])")
_WORD_WITH_SYMBOL = regex.compile(rf"(?<![^{_WS}])[^{_WS}]*[#\u2026][^{_WS}]*")
_NEWLINES = re.compile(r"\n+")

GOPHER_SCALARS = ("character_count", "word_count", "median_word_length", "symbol_to_word_ratio",
                  "fraction_of_words_with_alpha_character", "required_word_count",
                  "fraction_of_lines_starting_with_bullet_point", "fraction_of_lines_ending_with_ellipsis",
                  "fraction_of_duplicate_lines", "fraction_of_characters_in_duplicate_lines")


def ngram_statistics(words: list[str], lengths: np.ndarray) -> tuple[dict[int, float], dict[int, float]]:
    """Gopher's repetition statistics, vectorised.

    Returns ({n: fraction of characters in the most common n-gram} for n in 2..4,
             {n: fraction of characters in duplicate n-grams} for n in 5..10), with Dolma's
    definitions: characters are word characters (no spaces); an n-gram's weight is its count
    times its character length; among equally common n-grams the first seen wins.
    """
    total_chars = int(lengths.sum())
    n_words = len(words)
    most_common: dict[int, float] = {}
    duplicate: dict[int, float] = {}
    if n_words < 2:
        return most_common, duplicate
    # dense word ids: hash to int64, then rank (a 64-bit collision between two distinct words
    # of one document is ~1e-10 likely even for 100k-word documents)
    hashes = np.fromiter(map(hash, words), dtype=np.int64, count=n_words)
    _, word_ids = np.unique(hashes, return_inverse=True)
    word_ids = word_ids.astype(np.int64)
    vocab = int(word_ids.max()) + 1
    cumulative = np.concatenate(([0], np.cumsum(lengths, dtype=np.int64)))
    level = word_ids  # ids of (n-1)-grams, one per start position
    all_unique = vocab == n_words
    for n in range(2, 11):
        positions = n_words - n + 1
        if positions <= 0:
            break
        chars = cumulative[n:] - cumulative[:positions]  # character length of each n-gram
        if all_unique:  # no repeated (n-1)-gram, hence no repeated n-gram
            if n in MOST_COMMON_NGRAMS:
                most_common[n] = int(chars[0]) / max(total_chars, 1)
            else:
                duplicate[n] = 0.0
            continue
        keys = level[:positions] * vocab + word_ids[n - 1:]
        _, first, inverse, counts = np.unique(keys, return_index=True, return_inverse=True, return_counts=True)
        inverse = inverse.reshape(-1)
        top = int(counts.max())
        if n in MOST_COMMON_NGRAMS:
            position = int(first[counts == top].min())  # Counter.most_common: first inserted wins ties
            most_common[n] = top * int(chars[position]) / max(total_chars, 1)
        else:
            repeated = counts[inverse] > 1
            duplicate[n] = int(chars[repeated].sum()) / max(int(chars.sum()), 1)
        level = inverse.astype(np.int64)
        all_unique = top == 1
    return most_common, duplicate


def gopher_attributes(text: str, ignore_empty_lines: bool = False) -> TagResult:
    n = len(text)
    if n == 0:
        return {name: [(0, 0, 0.0)] for name in GOPHER_SCALARS}
    words = text.split()
    word_count = len(words)
    lengths = np.fromiter(map(len, words), dtype=np.int64, count=word_count)
    character_count = int(lengths.sum())
    denominator = max(word_count, 1)
    median = float(np.median(lengths)) if word_count else 0.0
    symbols = (len(_WORD_WITH_SYMBOL.findall(text)) if ("#" in text or "\u2026" in text) else 0) / denominator
    with_alpha = (word_count - len(_WORD_WITHOUT_LETTER.findall(text))) / denominator
    required = sum(1 for w in words if w in REQUIRED_ENGLISH_WORDS)

    most_common, duplicate = ngram_statistics(words, lengths)

    lines = _NEWLINES.split(text) if ignore_empty_lines else text.split("\n")
    line_count = len(lines)
    bullets = sum(1 for line in lines if line.startswith(("*", "-")))
    ellipsis = sum(1 for line in lines if line.endswith("\u2026"))
    line_counts = Counter(lines)
    dup_lines = sum(c for c in line_counts.values() if c > 1)
    dup_line_chars = sum(len(line) * c for line, c in line_counts.items() if c > 1)

    out: TagResult = {}
    for k, v in most_common.items():
        out[f"fraction_of_characters_in_most_common_{k}grams"] = [(0, n, v)]
    for k, v in duplicate.items():
        out[f"fraction_of_characters_in_duplicate_{k}grams"] = [(0, n, v)]
    values = (n, word_count, median, symbols, with_alpha, required, bullets / max(line_count, 1),
              ellipsis / max(line_count, 1), dup_lines / max(line_count, 1),
              dup_line_chars / max(character_count, 1))
    for name, value in zip(GOPHER_SCALARS, values):
        out[name] = [(0, n, float(value))]
    return out


@register("gopher_v1", "Gopher quality statistics (word counts, symbol ratios, line and n-gram repetition)")
class GopherV1(Tagger):
    def tag(self, doc: Document) -> TagResult:
        return gopher_attributes(doc.text)


@register("gopher_v2", "gopher_v1 with lines split on runs of newlines (empty lines ignored)")
class GopherV2(Tagger):
    def tag(self, doc: Document) -> TagResult:
        return gopher_attributes(doc.text, ignore_empty_lines=True)


# ---------------------------------------------------------------- FineWeb

FINEWEB_TERMINAL_PUNCTUATION = (".", "!", "?", '"', "'", "\u201d", "\u2019", "\u2026", "\u3002", "\uff01",
                                "\uff1f", "\uff0e", "\u203c", "\u203d", "\u2047", "\u2048", "\u2049",
                                "\u061f", "\u0964", "\u0965", "\u06d4")
FINEWEB_SHORT_LINE_LENGTH = 30
FINEWEB_THRESHOLDS = {"line_punct_ratio": 0.12, "short_line_ratio": 0.67, "char_dup_ratio": 0.01,
                      "newline_ratio": 0.3}


def fineweb_attributes(text: str) -> TagResult:
    """FineWeb's quality rules as scores, plus `fails` (1.0) when any default threshold fires.

    Lines are the non-blank lines. `line_punct_ratio`: lines ending in terminal punctuation
    (FineWeb drops < 0.12); `short_line_ratio`: lines of at most 30 characters (drops > 0.67);
    `char_dup_ratio`: characters in repeated lines over non-newline characters (drops > 0.01);
    `newline_ratio`: newlines per whitespace word (drops > 0.3).
    """
    n = len(text)
    lines = [line for line in text.split("\n") if line.strip()]
    if not lines:
        return {"fails": [(0, n, 1.0)]}
    stripped = [line.rstrip() for line in lines]
    punct = sum(1 for line in stripped if line.endswith(FINEWEB_TERMINAL_PUNCTUATION)) / len(lines)
    short = sum(1 for line in lines if len(line) <= FINEWEB_SHORT_LINE_LENGTH) / len(lines)
    seen: set[str] = set()
    dup_chars = 0
    for line in lines:
        if line in seen:
            dup_chars += len(line)
        else:
            seen.add(line)
    dup = dup_chars / max(n - text.count("\n"), 1)
    newline = text.count("\n") / max(len(text.split()), 1)
    scores = {"line_punct_ratio": punct, "short_line_ratio": short, "char_dup_ratio": dup,
              "newline_ratio": newline}
    out: TagResult = {k: [(0, n, v)] for k, v in scores.items()}
    fails = (punct < FINEWEB_THRESHOLDS["line_punct_ratio"] or short > FINEWEB_THRESHOLDS["short_line_ratio"]
             or dup > FINEWEB_THRESHOLDS["char_dup_ratio"] or newline > FINEWEB_THRESHOLDS["newline_ratio"])
    if fails:
        out["fails"] = [(0, n, 1.0)]
    return out


@register("fineweb_v1", "FineWeb rules: line punctuation, short lines, duplicated-line characters, "
                        "newline ratio (scores, plus `fails`)")
class FineWebV1(Tagger):
    def tag(self, doc: Document) -> TagResult:
        return fineweb_attributes(doc.text)


# Dolma's not_alphanum_paragraph_v1: a paragraph with no ASCII letter or digit that is made only of
# punctuation/symbols ([[:punct:]]), whitespace and emoji from a few blocks. Written as one
# repeated class: the same set of paragraphs as Dolma's alternation, without its backtracking.
_ASCII_ALPHANUM = re.compile(r"[a-zA-Z0-9]")
_ONLY_PUNCT_SPACE_EMOJI = regex.compile(
    "^[[:punct:]\\s\U0001f300-\U0001f64f\U0001f680-\U0001f6ff\u2600-\u26ff\u2700-\u27bf]+$")


@register("not_alphanum_paragraph_v1", "`all_punct` (1) on paragraphs of only punctuation, whitespace and "
                                       "emoji; one whole-document 0 when there are none")
class NotAlphanumParagraph(Tagger):
    def tag(self, doc: Document) -> TagResult:
        spans = [(p.start, p.end, 1.0) for p in paragraphs(doc.text)
                 if not _ASCII_ALPHANUM.search(p.text) and _ONLY_PUNCT_SPACE_EMOJI.search(p.text)]
        return {"all_punct": spans or [(0, len(doc.text), 0.0)]}
