"""PII counts for `dolma stats`: the matches of `dolma_tools.taggers.pii.find_pii`, found faster.

`pii_counts(text)` returns how many e-mail addresses, phone numbers and IP addresses
`find_pii(text)` reports, using the tagger's own patterns and checks, but running the costly
patterns only where a match can be:

- e-mail: the tagger's pattern over the whole text, only when the text holds an `@` (as
  `find_pii` does);
- phone numbers: a number consists only of digits and `+ ( ) - . space`, so every match lies
  inside a maximal run of those characters that holds a digit; the phone pattern runs on each
  such run with at least 10 digits (fewer can never pass the 10-15 digit check). Python's `re`
  finds the runs with a fast first-character scan for a digit, where the tagger's pattern, which
  starts with `\\s*`, is tried at every position. The tagger's leading `\\s*` only widens its match
  (a number never starts with whitespace), so the numbers found are the same;
- IPv4 addresses: a match lies inside a maximal run of `[0-9.]` holding the seed
  `d{1,3}.d{1,3}.d{1,3}.d`; the tagger's pattern runs on each such run (its lookahead sees the two
  characters after the run).

Each pattern is evaluated with `pattern.finditer(text, start, end)`, so look-behinds see the real
text before a run, and the identifier check ("ISBN", "doi", ...) looks at the same 12 characters
before a match as the tagger does. Tests compare the counts with `find_pii` on random texts and
on the dev corpus.
"""

from __future__ import annotations

import functools
import re

import numpy as np

from dolma_tools.taggers.pii import (
    _CONTEXT_WINDOW,
    _DOLMA_EMAIL,
    _IDENTIFIER_CONTEXT,
    _PHONE_DIGITS,
    _PHONE_NUMBER,
    _TIGHT_IP,
    _email_ok,
)

# the tagger's phone pattern without its leading `(?P<lead>\s*)`
_PHONE_NUM = re.compile(rf"(?<![\w+\-.])(?:{_PHONE_NUMBER})(?![\d])")
_PHONE_RUN = re.compile(r"\d[\d+().\- ]*")  # from a digit to the end of its run
_PHONE_SEPARATORS = frozenset("+().- ")
_IP_SEED = re.compile(r"[0-9]{1,3}\.[0-9]{1,3}\.[0-9]{1,3}\.[0-9]")
_IP_CHARS = frozenset("0123456789.")


def pii_counts(text: str) -> tuple[int, int, int]:
    """(e-mail addresses, phone numbers, IP addresses) that `find_pii(text)` reports."""
    return (_emails(text) if "@" in text else 0), _phones(text), _ips(text)


def _emails(text: str) -> int:
    count = 0
    for m in _DOLMA_EMAIL.finditer(text):
        if _email_ok(m.group(1).rstrip(".")):
            count += 1
    return count


def _phones(text: str) -> int:
    count = done = 0
    for run in _PHONE_RUN.finditer(text):
        start, end = run.span()
        if end - start < _PHONE_DIGITS[0]:
            continue
        while start > done and text[start - 1] in _PHONE_SEPARATORS:
            start -= 1  # a number may start with `+` or `(` before its first digit
        done = end
        if sum(c not in _PHONE_SEPARATORS for c in text[start:end]) < _PHONE_DIGITS[0]:
            continue
        for m in _PHONE_NUM.finditer(text, start, end):
            digits = sum(c.isdigit() for c in m.group())
            if _PHONE_DIGITS[0] <= digits <= _PHONE_DIGITS[1]:
                s = m.start()
                if not _IDENTIFIER_CONTEXT.search(text, max(0, s - _CONTEXT_WINDOW), s):
                    count += 1
    return count


def _ips(text: str) -> int:
    count = done = 0
    n = len(text)
    for seed in _IP_SEED.finditer(text):
        start = seed.start()
        if start < done:
            continue  # in a run already scanned
        end = seed.end()
        while start > done and text[start - 1] in _IP_CHARS:
            start -= 1
        while end < n and text[end] in _IP_CHARS:
            end += 1
        done = end
        for m in _TIGHT_IP.finditer(text, start, min(n, end + 2)):
            s = m.start()
            if not _IDENTIFIER_CONTEXT.search(text, max(0, s - _CONTEXT_WINDOW), s):
                count += 1
    return count


@functools.lru_cache(maxsize=1)
def _arrow_digit_class() -> str:
    """An RE2 class of exactly the characters Python's `\\d` matches (Unicode decimal digits)."""
    digits = [c for c in range(0x110000) if chr(c).isdecimal()]
    ranges, start = [], digits[0]
    for prev, cur in zip(digits, digits[1:] + [-1]):
        if cur != prev + 1:
            ranges.append(f"\\x{{{start:X}}}-\\x{{{prev:X}}}" if prev > start else f"\\x{{{start:X}}}")
            start = cur
    return "[" + "".join(ranges) + "]"


@functools.lru_cache(maxsize=1)
def _prefilters() -> tuple[str, str]:
    d = _arrow_digit_class()
    phone = f"{d}(?:[+().\\- ]*{d}){{{_PHONE_DIGITS[0] - 1}}}"  # 10 digits in one run of number characters
    return phone, _IP_SEED.pattern


def pii_counts_batch(texts: list[str], array=None) -> np.ndarray:
    """`pii_counts` of each text, as an (n, 3) int64 array (e-mail, phone, IP).

    Two Arrow (RE2) scans over the whole batch first mark the texts that can hold a phone number
    (ten digits within one run of number characters) or an IP address (the seed); both are
    necessary conditions, so the texts they rule out get exactly 0 from the Python patterns too.
    """
    import pyarrow.compute as pc

    from dolma_tools.stats.collectors import arrow_texts, bools_of

    n = len(texts)
    out = np.zeros((n, 3), dtype=np.int64)
    if n == 0:
        return out
    if array is None:
        # lone surrogates become "?": neither is a digit, `.` or a number separator, so the
        # prefilters decide the same as on the text itself
        array = arrow_texts(texts)
    phone_pattern, ip_pattern = _prefilters()
    maybe_phone = bools_of(pc.match_substring_regex(array, phone_pattern))
    maybe_ip = bools_of(pc.match_substring_regex(array, ip_pattern))
    for i, text in enumerate(texts):
        if "@" in text:
            out[i, 0] = _emails(text)
    for i in np.flatnonzero(maybe_phone).tolist():
        out[i, 1] = _phones(texts[i])
    for i in np.flatnonzero(maybe_ip).tolist():
        out[i, 2] = _ips(texts[i])
    return out
