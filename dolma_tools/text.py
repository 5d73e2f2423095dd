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
_SENTENCE_END = re.compile(r"(?<=[.!?])[\"')\]]*\s+(?=\S)|\n+")


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


def sentences(text: str) -> list[Segment]:
    """Sentence spans: breaks after `.`, `!` or `?` followed by whitespace, and at newlines.

    A light, dependency-free splitter (no NLTK download at import, Dolma's defect #29).
    """
    out, start = [], 0
    for match in _SENTENCE_END.finditer(text):
        end = match.start()
        if text[start:end].strip():
            out.append(Segment(start, end, text[start:end]))
        start = match.end()
    if text[start:].strip():
        out.append(Segment(start, len(text), text[start:]))
    return out


def whitespace_words(text: str) -> list[str]:
    return text.split()


def word_spans(text: str) -> Iterator[Segment]:
    for match in _WHITESPACE_WORD.finditer(text):
        yield Segment(match.start(), match.end(), match.group())


def word_ngrams(words: list[str], n: int) -> list[tuple[str, ...]]:
    return [tuple(words[i:i + n]) for i in range(len(words) - n + 1)]
