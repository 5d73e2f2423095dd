"""Unicode word segmentation (UAX #29 word boundaries), for Dolma's `uniseg_*` length taggers.

Dolma counts words with the `uniseg` package (pure Python, about 1 µs per character). This is
the same standard algorithm, vectorised with numpy over the `Word_Break` property of the `regex`
package (a dependency already) and the Extended_Pictographic ranges of Unicode's emoji data, so
no extra package is needed. It gives uniseg 0.10.1's segments on the tagger test corpus and on
random strings of every class (`tests/taggers/test_taggers_length_extra.py`); characters added to
Unicode after uniseg's tables can segment differently.

The rules are applied as UAX #29 orders them: WB3 (CR × LF), WB3a/3b (break around newlines),
WB3c/3d/WB4 (emoji ZWJ sequences, runs of spaces, Extend/Format/ZWJ attach to what precedes),
then WB5-WB13b and WB15/16 on the characters WB4 leaves ("seen" ones), else WB999 (break).
"""

from __future__ import annotations

import numpy as np
import regex

# Word_Break values the rules use; every other character is OTHER. NONE stands before the text
# and after it.
(OTHER, CR, LF, NEWLINE, EXTEND, ZWJ, RI, FORMAT, KATAKANA, HEBREW, ALETTER, SINGLE_QUOTE, DOUBLE_QUOTE,
 MIDNUMLET, MIDLETTER, MIDNUM, NUMERIC, EXTENDNUMLET, WSEGSPACE) = range(19)
NONE = 255

_CLASSES = [("CR", CR), ("LF", LF), ("Newline", NEWLINE), ("Extend", EXTEND), ("ZWJ", ZWJ),
            ("Regional_Indicator", RI), ("Format", FORMAT), ("Katakana", KATAKANA), ("Hebrew_Letter", HEBREW),
            ("ALetter", ALETTER), ("Single_Quote", SINGLE_QUOTE), ("Double_Quote", DOUBLE_QUOTE),
            ("MidNumLet", MIDNUMLET), ("MidLetter", MIDLETTER), ("MidNum", MIDNUM), ("Numeric", NUMERIC),
            ("ExtendNumLet", EXTENDNUMLET), ("WSegSpace", WSEGSPACE)]
# The name of the group that matches is the character's class. U+00B8 CEDILLA is Other in
# uniseg's tables (ALetter in the regex package's newer ones): Dolma's counts come first.
_CLASSIFY = regex.compile("(?P<Other>\u00b8)|"
                          + "|".join(f"(?P<{name}>\\p{{Word_Break={name}}})" for name, _ in _CLASSES)
                          + "|(?P<Other_>.)", flags=regex.DOTALL)
_BY_NAME = {name: value for name, value in _CLASSES} | {"Other": OTHER, "Other_": OTHER}

# Extended_Pictographic (emoji-data.txt; unchanged since Unicode 13). The regex package's property
# lacks hundreds of them (U+2605, U+2767, ...), so the ranges are spelled out.
_PICTOGRAPHIC = np.array([
    (0xA9, 0xA9), (0xAE, 0xAE), (0x203C, 0x203C), (0x2049, 0x2049), (0x2122, 0x2122), (0x2139, 0x2139),
    (0x2194, 0x2199), (0x21A9, 0x21AA), (0x231A, 0x231B), (0x2328, 0x2328), (0x2388, 0x2388),
    (0x23CF, 0x23CF), (0x23E9, 0x23F3), (0x23F8, 0x23FA), (0x24C2, 0x24C2), (0x25AA, 0x25AB),
    (0x25B6, 0x25B6), (0x25C0, 0x25C0), (0x25FB, 0x25FE), (0x2600, 0x2605), (0x2607, 0x2612),
    (0x2614, 0x2685), (0x2690, 0x2705), (0x2708, 0x2712), (0x2714, 0x2714), (0x2716, 0x2716),
    (0x271D, 0x271D), (0x2721, 0x2721), (0x2728, 0x2728), (0x2733, 0x2734), (0x2744, 0x2744),
    (0x2747, 0x2747), (0x274C, 0x274C), (0x274E, 0x274E), (0x2753, 0x2755), (0x2757, 0x2757),
    (0x2763, 0x2767), (0x2795, 0x2797), (0x27A1, 0x27A1), (0x27B0, 0x27B0), (0x27BF, 0x27BF),
    (0x2934, 0x2935), (0x2B05, 0x2B07), (0x2B1B, 0x2B1C), (0x2B50, 0x2B50), (0x2B55, 0x2B55),
    (0x3030, 0x3030), (0x303D, 0x303D), (0x3297, 0x3297), (0x3299, 0x3299), (0x1F000, 0x1F0FF),
    (0x1F10D, 0x1F10F), (0x1F12F, 0x1F12F), (0x1F16C, 0x1F171), (0x1F17E, 0x1F17F), (0x1F18E, 0x1F18E),
    (0x1F191, 0x1F19A), (0x1F1AD, 0x1F1E5), (0x1F201, 0x1F20F), (0x1F21A, 0x1F21A), (0x1F22F, 0x1F22F),
    (0x1F232, 0x1F23A), (0x1F23C, 0x1F23F), (0x1F249, 0x1F3FA), (0x1F400, 0x1F53D), (0x1F546, 0x1F64F),
    (0x1F680, 0x1F6FF), (0x1F774, 0x1F77F), (0x1F7D5, 0x1F7FF), (0x1F80C, 0x1F80F), (0x1F848, 0x1F84F),
    (0x1F85A, 0x1F85F), (0x1F888, 0x1F88F), (0x1F8AE, 0x1F8FF), (0x1F90C, 0x1F93A), (0x1F93C, 0x1F945),
    (0x1F947, 0x1FAFF), (0x1FC00, 0x1FFFD)], dtype=np.int64)

_LINE = (CR, LF, NEWLINE)
_AHLETTER = (ALETTER, HEBREW)
_MIDLETTER_Q = (MIDLETTER, MIDNUMLET, SINGLE_QUOTE)
_MIDNUM_Q = (MIDNUM, MIDNUMLET, SINGLE_QUOTE)

_BMP: tuple[np.ndarray, np.ndarray] | None = None  # per BMP code point: class, and str.isspace
_ASTRAL: dict[int, int] = {}


def _class_of(text: str) -> list[int]:
    return [_BY_NAME[m.lastgroup] for m in _CLASSIFY.finditer(text)]


def _bmp_tables() -> tuple[np.ndarray, np.ndarray]:
    """Built once per process (about 50 ms): classes and whitespace of the 65,536 BMP code points."""
    global _BMP
    if _BMP is None:
        chars = "".join(" " if 0xD800 <= c < 0xE000 else chr(c) for c in range(0x10000))
        classes = np.array(_class_of(chars), dtype=np.uint8)
        classes[0xD800:0xE000] = OTHER  # lone surrogates
        space = np.array([c.isspace() for c in chars], dtype=bool)
        space[0xD800:0xE000] = False
        _BMP = (classes, space)
    return _BMP


def _code_points(text: str) -> np.ndarray:
    return np.frombuffer(text.encode("utf-32-le", "surrogatepass"), dtype="<u4").astype(np.int64)


def word_break_classes(text: str) -> np.ndarray:
    cp = _code_points(text)
    classes, _ = _bmp_tables()
    wb = classes[np.minimum(cp, 0xFFFF)]
    for i in np.flatnonzero(cp > 0xFFFF):  # rare: classified one by one, remembered
        c = int(cp[i])
        if c not in _ASTRAL:
            _ASTRAL[c] = _class_of(chr(c))[0]
        wb[i] = _ASTRAL[c]
    return wb


def _pictographic(cp: np.ndarray) -> np.ndarray:
    k = np.searchsorted(_PICTOGRAPHIC[:, 0], cp, side="right") - 1
    return (k >= 0) & (cp <= _PICTOGRAPHIC[np.maximum(k, 0), 1])


def word_starts(text: str) -> np.ndarray:
    """Offsets where a UAX #29 word segment starts (0 first; empty text: none)."""
    n = len(text)
    if n == 0:
        return np.zeros(0, dtype=np.int64)
    cp = _code_points(text)
    wb = word_break_classes(text)
    ext = np.append(wb, NONE)  # ext[-1] and ext[n]: before and after the text
    index = np.arange(n)
    ignored = np.isin(wb, (EXTEND, FORMAT, ZWJ))  # WB4: attach to the character before them
    # nearest seen character before / after each position (-1 / n: none)
    last_seen = np.maximum.accumulate(np.where(ignored, -1, index))
    prev_seen = np.concatenate(([-1], last_seen[:-1]))
    first_seen = np.minimum.accumulate(np.where(ignored, n, index)[::-1])[::-1]
    next_seen = np.concatenate((first_seen[1:], [n]))
    before, after = ext[prev_seen], ext[next_seen]
    before2 = ext[np.append(prev_seen, -1)[prev_seen]]
    prev, curr = ext[np.arange(-1, n - 1)], wb

    def ah(x: np.ndarray) -> np.ndarray:
        return (x == ALETTER) | (x == HEBREW)

    line_break = np.isin(prev, _LINE) | np.isin(curr, _LINE)                                # WB3a, WB3b
    attach = (
        ((prev == ZWJ) & _pictographic(cp))                                                 # WB3c
        | ((prev == WSEGSPACE) & (curr == WSEGSPACE))                                        # WB3d
        | ignored                                                                            # WB4
        | (ah(before) & ah(curr))                                                            # WB5
        | (ah(before) & np.isin(curr, _MIDLETTER_Q) & ah(after))                             # WB6
        | (ah(before2) & np.isin(before, _MIDLETTER_Q) & ah(curr))                           # WB7
        | ((before == HEBREW) & (curr == SINGLE_QUOTE))                                      # WB7a
        | ((before == HEBREW) & (curr == DOUBLE_QUOTE) & (after == HEBREW))                  # WB7b
        | ((before2 == HEBREW) & (before == DOUBLE_QUOTE) & (curr == HEBREW))                # WB7c
        | ((before == NUMERIC) & (curr == NUMERIC))                                          # WB8
        | (ah(before) & (curr == NUMERIC))                                                   # WB9
        | ((before == NUMERIC) & ah(curr))                                                   # WB10
        | ((before2 == NUMERIC) & np.isin(before, _MIDNUM_Q) & (curr == NUMERIC))            # WB11
        | ((before == NUMERIC) & np.isin(curr, _MIDNUM_Q) & (after == NUMERIC))              # WB12
        | ((before == KATAKANA) & (curr == KATAKANA))                                        # WB13
        | (np.isin(before, (ALETTER, HEBREW, NUMERIC, KATAKANA, EXTENDNUMLET)) & (curr == EXTENDNUMLET))  # WB13a
        | ((before == EXTENDNUMLET) & np.isin(curr, (ALETTER, HEBREW, NUMERIC, KATAKANA)))  # WB13b
        | _regional_indicator_pairs(wb, ignored)                                             # WB15, WB16
    )
    no_break = ((prev == CR) & (curr == LF)) | (~line_break & attach)                       # WB3 first
    no_break[0] = False
    return np.flatnonzero(~no_break)


def _regional_indicator_pairs(wb: np.ndarray, ignored: np.ndarray) -> np.ndarray:
    """True at a seen regional indicator that follows an odd run of them: the second of a pair."""
    seen = np.flatnonzero(~ignored)
    is_ri = wb[seen] == RI
    count = np.cumsum(is_ri)
    run = count - np.maximum.accumulate(np.where(is_ri, 0, count))  # RIs in a row ending here
    run_before = np.concatenate(([0], run[:-1]))
    out = np.zeros(len(wb), dtype=bool)
    out[seen[is_ri & (run_before % 2 == 1)]] = True
    return out


def word_count(text: str) -> int:
    """Number of word segments, whitespace ones included (Dolma's `uniseg_length_v1` counts all)."""
    return len(word_starts(text))


def non_space_word_count(text: str) -> int:
    """Number of word segments that are not only whitespace (`str.isspace`)."""
    return int(non_space_words_in(text, [(0, len(text))])[0])


def non_space_words_in(text: str, spans: list[tuple[int, int]]) -> np.ndarray:
    """For each (start, end) span that begins and ends at segment boundaries (paragraphs do: a
    newline is always a segment of its own), the non-whitespace word segments inside it, from one
    segmentation of the whole text. Leading and trailing whitespace of a span does not change its
    count: whitespace never joins a non-whitespace character into one segment except through WB4
    (a space followed by Extend/Format/ZWJ), which makes one non-whitespace segment either way."""
    starts = word_starts(text)
    if len(starts) == 0:
        return np.zeros(len(spans), dtype=np.int64)
    cp = _code_points(text)
    _, space = _bmp_tables()
    solid = ~space[np.minimum(cp, 0xFFFF)] | (cp > 0xFFFF)
    counted = np.concatenate(([0], np.cumsum(np.add.reduceat(solid.astype(np.int64), starts) > 0)))
    bounds = np.asarray(spans, dtype=np.int64).reshape(-1, 2)
    first = np.searchsorted(starts, bounds[:, 0], side="left")
    last = np.searchsorted(starts, bounds[:, 1], side="left")
    return counted[last] - counted[first]
