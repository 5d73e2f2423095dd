"""N-gram tokens as Dolma 1.2.1 makes them: the Unicode word-boundary segments of a paragraph
(UAX #29, as Rust's unicode-segmentation `split_word_bounds` gives them) minus those made only of
whitespace. A run of Han ideographs or hiragana is one token per character, a katakana run is one
token, Thai gives one token per letter with its marks, `3.14`, `1,000`, `don't` and `a:b` are one
token each, and every other punctuation mark or emoji (with its modifiers) is its own token.

Five paths give the same tokens; each paragraph takes the first that applies to it:

- ASCII text (most paragraphs) goes through one `re` pattern: UAX #29 restricted to ASCII.
- Latin, Greek and Cyrillic text with general punctuation goes through the same pattern with
  `re`'s `\\w` and `\\d`, which agree with UAX #29's classes on those blocks.
- Text without katakana, Hebrew letters, combining marks, format characters (ZWJ, BOM, ...) or
  regional indicators (CJK, Arabic, Korean, ...) goes through that pattern written with the
  Unicode classes (`regex`): the rules it leaves out are about those characters.
- Other text is split by the `regex` module's default word boundaries (`(?w)\\b`), with one
  repair: `regex` keeps an apostrophe (' or ’) together with a following vowel (a French/Italian
  tailoring, "'em", "'Are"), which UAX #29 does not.
- `regex`'s mid-word rules (`a.b`, `3.14`, Hebrew `"`) and flag pairs do not look through
  combining marks and format characters, it joins marks at the start of a text to what follows,
  and unicode-segmentation itself departs from UAX #29 in one place (a ZWJ and an emoji after
  `a.` or `1,` join all of them). Paragraphs where any of that can matter (NFD `cafe\\u0301's`,
  Hindi `क\\u093f.ख`, a leading BOM, a regional indicator) go through `uax29_segments`, a
  direct implementation of the rules plus that departure (pure Python, ~1 M characters/s).

Whitespace is Rust's `char::is_whitespace`: Python's `str.isspace` minus U+001C..U+001F, which are
tokens for Dolma.
"""

from __future__ import annotations

import re
from functools import lru_cache

import regex

# UAX #29 on ASCII: letters, digits and `_` join (WB5, WB8-WB10, WB13a/b); `:` `.` `'` join two
# letters (WB6/7), `.` `,` `;` `'` two digits (WB11/12); every other non-space character is alone.
# (The lookahead for a mid-word mark first makes the usual end of a word, a space, fail fast.)
_ASCII_TOKEN = re.compile(
    r"[A-Za-z0-9_]+(?:(?=[.:',;])(?:(?<=[A-Za-z])[.:'](?=[A-Za-z])|(?<=[0-9])[.,;'](?=[0-9]))[A-Za-z0-9_]+)*"
    r"|[^\t\n\v\f\r A-Za-z0-9_]")
_AH, _NUM, _ENL = r"\p{Word_Break=ALetter}", r"\p{Word_Break=Numeric}", r"\p{Word_Break=ExtendNumLet}"
_MID_L = r"\p{Word_Break=MidLetter}\p{Word_Break=MidNumLet}\p{Word_Break=Single_Quote}"
_MID_N = r"\p{Word_Break=MidNum}\p{Word_Break=MidNumLet}\p{Word_Break=Single_Quote}"
_RUST_WHITESPACE = r"\t\n\v\f\r \x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000"
_SIMPLE_TOKEN = regex.compile(
    rf"[{_AH}{_NUM}{_ENL}]+(?:(?=[{_MID_L}{_MID_N}])(?:(?<=[{_AH}])[{_MID_L}](?=[{_AH}])|(?<=[{_NUM}])[{_MID_N}]"
    rf"(?=[{_NUM}]))[{_AH}{_NUM}{_ENL}]+)*|[^{_RUST_WHITESPACE}{_AH}{_NUM}{_ENL}]")
_NOT_SIMPLE = regex.compile(r"[\p{Word_Break=Katakana}\p{Word_Break=Hebrew_Letter}\p{Word_Break=Extend}"
                            r"\p{Word_Break=Format}\p{Word_Break=ZWJ}\p{Word_Break=Regional_Indicator}]")
_BOUNDARY = regex.compile(r"(?V1w)\b")
_EFZ = r"\p{Word_Break=Extend}\p{Word_Break=Format}\p{Word_Break=ZWJ}"
_MID = (r"\p{Word_Break=MidLetter}\p{Word_Break=MidNum}\p{Word_Break=MidNumLet}"
        r"\p{Word_Break=Single_Quote}\p{Word_Break=Double_Quote}")
_JOINS = r"\p{Word_Break=ALetter}\p{Word_Break=Hebrew_Letter}\p{Word_Break=Numeric}"
# where `regex` and unicode-segmentation can disagree: marks around a mid-word mark between letters or
# numbers, a ZWJ after a mid-word mark, an apostrophe before marks, marks first, regional indicators
_NEEDS_EXACT = regex.compile(
    rf"[{_JOINS}](?:[{_EFZ}]+[{_MID}][{_EFZ}]*|[{_MID}][{_EFZ}]+)[{_JOINS}]|[{_MID}][{_EFZ}]*\u200d"
    rf"|['\u2019][{_EFZ}]|\A[{_EFZ}]|\p{{Word_Break=Regional_Indicator}}")
_APOSTROPHES = ("'", "\u2019")
_NOT_WHITESPACE_IN_RUST = ("\x1c", "\x1d", "\x1e", "\x1f")


def ngram_tokens(text: str) -> list[str]:
    """The paragraph's tokens, as Dolma 1.2.1's n-gram dedupe sees them."""
    if text.isascii():
        return _ASCII_TOKEN.findall(text)
    outside_latin, latin_token = _latin_patterns()
    if outside_latin.search(text) is None:
        return latin_token.findall(text)
    if _NOT_SIMPLE.search(text) is None:
        tokens = _SIMPLE_TOKEN.findall(text)
        if "\u202f" in text:  # the narrow no-break space is whitespace, and joins words (ExtendNumLet)
            tokens = [t for t in tokens if not _whitespace_only(t)]
        return tokens
    exact = _NEEDS_EXACT.search(text) is not None
    out = []
    for seg in uax29_segments(text) if exact else _BOUNDARY.split(text):
        if not seg or _whitespace_only(seg):
            continue
        if not exact and len(seg) > 1 and seg[0] in _APOSTROPHES:
            out.append(seg[0])  # regex's apostrophe + vowel join (only ever at a segment's start)
            seg = seg[1:]
        out.append(seg)
    return out


# Latin, Greek and Cyrillic letters, general punctuation and currency signs, where `re`'s \\w,
# \\d and letters are UAX #29's ALetter, Numeric and ExtendNumLet: the ASCII pattern with those
# classes is right there, and `re` runs it at the ASCII pattern's speed (`regex`'s Unicode
# property classes take about twice as long). Characters of these blocks where the two disagree
# (combining marks, superscript digits, modifier symbols, the soft hyphen, ...) leave the path.
_LATIN_BLOCKS = ((0x00, 0x52F), (0x1E00, 0x1FFF), (0x2010, 0x2027), (0x2030, 0x205E), (0x20A0, 0x20CF))


@lru_cache(maxsize=1)
def _latin_patterns() -> tuple[re.Pattern, re.Pattern]:
    """(a search for a character outside the Latin path, the path's token pattern)."""
    allowed, mid_letter, mid_number = [], [], []
    leaves = (_EXTEND, _FORMAT, _ZWJ, _KATAKANA, _HEBREW, _RI)
    for lo, hi in _LATIN_BLOCKS:
        for code in range(lo, hi + 1):
            ch = chr(code)
            wb = _word_break(ch)
            letter, digit = ch.isalnum() and not ch.isdecimal(), ch.isdecimal()
            if (letter != (wb == _ALETTER) or digit != (wb == _NUMERIC)
                    or (ch == "_") != (wb == _EXTENDNUMLET) or wb in leaves):
                continue
            allowed.append(ch)
            if wb in _MID_LETTER:
                mid_letter.append(ch)
            if wb in _MID_NUMBER:
                mid_number.append(ch)
    outside = re.compile(f"[^{_char_class(allowed)}]")
    letter_class, mid_l, mid_n = r"[^\W\d_]", _char_class(mid_letter), _char_class(mid_number)
    token = re.compile(rf"\w+(?:(?=[{mid_l}{mid_n}])(?:(?<={letter_class})[{mid_l}](?={letter_class})"
                       rf"|(?<=\d)[{mid_n}](?=\d))\w+)*|[^\t\n\v\f\r \x85\xa0\w]")
    return outside, token


def _char_class(chars: list[str]) -> str:
    """The inside of a `[...]` class for these characters, as ranges of consecutive code points."""
    parts = []
    codes = sorted(map(ord, chars))
    i = 0
    while i < len(codes):
        j = i
        while j + 1 < len(codes) and codes[j + 1] == codes[j] + 1:
            j += 1
        lo, hi = re.escape(chr(codes[i])), re.escape(chr(codes[j]))
        parts.append(lo if i == j else f"{lo}-{hi}")
        i = j + 1
    return "".join(parts)


def _whitespace_only(segment: str) -> bool:
    return segment.isspace() and not any(c in segment for c in _NOT_WHITESPACE_IN_RUST)


# ------------------------------------------------------------------------------------------
# UAX #29 word boundaries, rule by rule (WB1-WB999)

(_OTHER, _CR, _LF, _NEWLINE, _EXTEND, _FORMAT, _ZWJ, _RI, _KATAKANA, _HEBREW, _ALETTER, _SQ, _DQ,
 _MIDNUMLET, _MIDLETTER, _MIDNUM, _NUMERIC, _EXTENDNUMLET, _WSEG) = range(19)
_CLASSES = [
    (_CR, "CR"), (_LF, "LF"), (_NEWLINE, "Newline"), (_EXTEND, "Extend"), (_FORMAT, "Format"),
    (_ZWJ, "ZWJ"), (_RI, "Regional_Indicator"), (_KATAKANA, "Katakana"), (_HEBREW, "Hebrew_Letter"),
    (_ALETTER, "ALetter"), (_SQ, "Single_Quote"), (_DQ, "Double_Quote"), (_MIDNUMLET, "MidNumLet"),
    (_MIDLETTER, "MidLetter"), (_MIDNUM, "MidNum"), (_NUMERIC, "Numeric"), (_EXTENDNUMLET, "ExtendNumLet"),
    (_WSEG, "WSegSpace"),
]
_CLASS_PATTERNS = [(code, regex.compile(rf"\p{{Word_Break={name}}}")) for code, name in _CLASSES]
_PICTOGRAPHIC = regex.compile(r"\p{Extended_Pictographic}")
_BREAKS = frozenset((_CR, _LF, _NEWLINE))
_IGNORED = frozenset((_EXTEND, _FORMAT, _ZWJ))
_AHLETTER = frozenset((_ALETTER, _HEBREW))
_MID_LETTER = frozenset((_MIDLETTER, _MIDNUMLET, _SQ))
_MID_NUMBER = frozenset((_MIDNUM, _MIDNUMLET, _SQ))
_BEFORE_EXTENDER = frozenset((_ALETTER, _HEBREW, _NUMERIC, _KATAKANA, _EXTENDNUMLET))
_AFTER_EXTENDER = frozenset((_ALETTER, _HEBREW, _NUMERIC, _KATAKANA))
# after a letter or a number, the punctuation that only joins if the right character follows
_PENDING = {_ALETTER: _MID_LETTER, _HEBREW: frozenset((_MIDLETTER, _MIDNUMLET, _DQ)), _NUMERIC: _MID_NUMBER}


@lru_cache(maxsize=65536)
def _word_break(ch: str) -> int:
    for code, pattern in _CLASS_PATTERNS:
        if pattern.match(ch):
            return code
    return _OTHER


def uax29_segments(text: str) -> list[str]:
    """All segments (whitespace included) between UAX #29 default word boundaries."""
    if not text:
        return []
    cls = [_word_break(c) for c in text]
    out = []
    start = 0
    for i in range(1, len(text)):
        if _is_boundary(text, cls, i):
            out.append(text[start:i])
            start = i
    out.append(text[start:])
    return out


def _is_boundary(text: str, cls: list[int], i: int) -> bool:
    """Whether UAX #29 breaks between text[i - 1] and text[i]."""
    left, right = cls[i - 1], cls[i]
    if left == _CR and right == _LF:  # WB3
        return False
    if left in _BREAKS or right in _BREAKS:  # WB3a, WB3b
        return True
    if left == _ZWJ and _PICTOGRAPHIC.match(text[i]):  # WB3c
        return False
    if left == _WSEG and right == _WSEG:  # WB3d
        return False
    if right in _IGNORED:  # WB4: X (Extend | Format | ZWJ)* -> X
        return False
    j = i - 1
    while j >= 0 and cls[j] in _IGNORED:
        j -= 1
    if j < 0 or cls[j] in _BREAKS:  # marks after sot or a newline stand alone
        return True
    left = cls[j]
    k = i + 1
    while k < len(cls) and cls[k] in _IGNORED:
        k += 1
    after = cls[k] if k < len(cls) else _OTHER
    m = j - 1
    while m >= 0 and cls[m] in _IGNORED:
        m -= 1
    before = cls[m] if m >= 0 else _OTHER
    if left in _AHLETTER and right in _AHLETTER:  # WB5
        return False
    if right in _PENDING.get(left, ()) and k < len(cls) and cls[k - 1] == _ZWJ and k - 1 > i \
            and _PICTOGRAPHIC.match(text[k]):
        return False  # unicode-segmentation: a ZWJ + emoji after `a.` / `1,` joins them all (not UAX #29)
    if left in _AHLETTER and right in _MID_LETTER and after in _AHLETTER:  # WB6
        return False
    if before in _AHLETTER and left in _MID_LETTER and right in _AHLETTER:  # WB7
        return False
    if left == _HEBREW and right == _SQ:  # WB7a
        return False
    if left == _HEBREW and right == _DQ and after == _HEBREW:  # WB7b
        return False
    if before == _HEBREW and left == _DQ and right == _HEBREW:  # WB7c
        return False
    if left == _NUMERIC and right == _NUMERIC:  # WB8
        return False
    if left in _AHLETTER and right == _NUMERIC:  # WB9
        return False
    if left == _NUMERIC and right in _AHLETTER:  # WB10
        return False
    if before == _NUMERIC and left in _MID_NUMBER and right == _NUMERIC:  # WB11
        return False
    if left == _NUMERIC and right in _MID_NUMBER and after == _NUMERIC:  # WB12
        return False
    if left == _KATAKANA and right == _KATAKANA:  # WB13
        return False
    if left in _BEFORE_EXTENDER and right == _EXTENDNUMLET:  # WB13a
        return False
    if left == _EXTENDNUMLET and right in _AFTER_EXTENDER:  # WB13b
        return False
    if left == _RI and right == _RI:  # WB15, WB16: flags pair regional indicators from the left
        run = 0
        while j >= 0 and (cls[j] == _RI or cls[j] in _IGNORED):
            run += cls[j] == _RI
            j -= 1
        return run % 2 == 0
    return True  # WB999
