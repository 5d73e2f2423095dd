"""Shared text segmentation: paragraphs, lines, sentences, words and word n-grams.

One implementation for every stage (taggers, dedupe, stats), with offsets in Unicode code points
(Python string indices), as Dolma's attribute spans are.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Iterator

_PARAGRAPH = re.compile(r"[^\n]*\n|[^\n]+\Z")
_WHITESPACE_WORD = re.compile(r"\S+")
_SENTENCE_END = re.compile(r"(?<=[.!?])(?P<close>[\"'\u201d\u2019)\]]*)\s+(?=\S)|\n+")


@dataclass(frozen=True, slots=True)
class Segment:
    start: int
    end: int
    text: str


def paragraphs(text: str, keep_empty: bool = False) -> list[Segment]:
    """Dolma's paragraphs: each run of non-newline characters with its trailing `\\n`.

    The newline stays inside the span; whitespace-only paragraphs are dropped unless `keep_empty`.
    """
    out = []
    for match in _PARAGRAPH.finditer(text):
        segment = match.group()
        if keep_empty or segment.strip():
            out.append(Segment(match.start(), match.end(), segment))
    return out


def lines(text: str) -> list[Segment]:
    """Lines split on `\\n`, each span including its newline; a trailing newline yields an empty last line."""
    out, start = [], 0
    for piece in text.split("\n"):
        end = start + len(piece)
        has_newline = end < len(text)
        out.append(Segment(start, end + (1 if has_newline else 0), piece))
        start = end + 1
    return out


# Words after which a period does not end a sentence (lowercase, without the period).
ABBREVIATIONS = frozenset({
    "mr", "mrs", "ms", "dr", "prof", "sr", "jr", "st", "mt", "vs", "etc", "e.g", "i.e", "cf", "al", "fig",
    "no", "vol", "pp", "ed", "eds", "inc", "ltd", "co", "corp", "gen", "gov", "sen", "rep", "rev", "jan", "feb",
    "mar", "apr", "jun", "jul", "aug", "sep", "sept", "oct", "nov", "dec", "u.s", "u.k", "a.m", "p.m",
})
_LAST_TOKEN = re.compile(r"(\S+)\.[\"'\u201d\u2019)\]]*$")


def _is_abbreviation(before: str) -> bool:
    """Whether the text before a candidate break ends in an abbreviation or an initial (`J.`)."""
    match = _LAST_TOKEN.search(before[-40:])
    if match is None:
        return False
    token = match.group(1).lstrip("(\"'[").lower()
    return token in ABBREVIATIONS or (len(token) == 1 and token.isalpha())


def sentences(text: str) -> list[Segment]:
    """Sentence spans: breaks after `.`, `!` or `?` (and closing quotes/brackets) followed by
    whitespace, and at newlines; not after common abbreviations (`Dr.`, `e.g.`) or initials (`J.`).

    A light, dependency-free splitter (no NLTK download at import, Dolma's defect #29). Spans
    exclude the whitespace between sentences.
    """
    out, start = [], 0
    for match in _SENTENCE_END.finditer(text):
        end = match.start() + len(match.group("close") or "")  # closing quotes stay in the sentence
        if "\n" not in match.group() and _is_abbreviation(text[start:end]):
            continue
        _append_trimmed(out, text, start, end)
        start = match.end()
    _append_trimmed(out, text, start, len(text))
    return out


def _append_trimmed(out: list[Segment], text: str, start: int, end: int) -> None:
    piece = text[start:end]
    stripped = piece.strip()
    if stripped:
        start += len(piece) - len(piece.lstrip())
        out.append(Segment(start, start + len(stripped), stripped))


def whitespace_words(text: str) -> list[str]:
    return text.split()


def word_spans(text: str) -> Iterator[Segment]:
    for match in _WHITESPACE_WORD.finditer(text):
        yield Segment(match.start(), match.end(), match.group())


def word_ngrams(words: list[str], n: int) -> list[tuple[str, ...]]:
    return [tuple(words[i:i + n]) for i in range(len(words) - n + 1)]
