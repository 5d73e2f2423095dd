"""The vectorised paragraph split (on UTF-8 bytes) equals the plain definition on str, for any text."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from dolma_tools.dedupe.bloom import hash_keys
from dolma_tools.dedupe.exact import plan_exact_paragraphs, split_paragraphs

# newlines, ASCII and Unicode whitespace (\x1c-\x1f are whitespace to str.isspace, not bytes.isspace),
# multibyte characters, a multi-character separator's pieces
ALPHABET = ["\n", " ", "\t", "\x1c", "\x1f", "\xa0", "\u3000", "a", "b", "é", "😀", "<", "p", ">"]


def reference(texts: list[str], separator: str, skip_empty: bool, min_length: int, min_words: int):
    units, keys = [], []
    for i, text in enumerate(texts):
        if not text:
            continue
        for start, end, para in split_paragraphs(text, separator):
            if len(para) < min_length or (skip_empty and (not para or para.isspace())):
                continue
            if min_words > 0 and len(para.split()) < min_words:
                continue
            units.append((i, start, end))
            keys.append(para)
    return units, keys


@settings(max_examples=150, deadline=None)
@given(texts=st.lists(st.text(st.sampled_from(ALPHABET), max_size=30), max_size=8),
       separator=st.sampled_from(["\n", "<p>", "é\n", "\n\n"]), skip_empty=st.booleans(),
       min_length=st.sampled_from([0, 2]), min_words=st.sampled_from([0, 2]))
def test_split_equals_the_definition(texts, separator, skip_empty, min_length, min_words) -> None:
    docs = [{"id": str(i), "text": t} for i, t in enumerate(texts)] + [None]
    cfg = SimpleNamespace(skip_empty=skip_empty, min_length=min_length, min_words=min_words,
                          num_partitions=1, partition_index=0)
    plan = plan_exact_paragraphs(docs, "dup", separator, cfg)
    units, keys = reference(texts, separator, skip_empty, min_length, min_words)
    got = list(zip(np.asarray(plan.unit_doc).tolist(), np.asarray(plan.unit_start).tolist(),
                   np.asarray(plan.unit_end).tolist()))
    assert got == units
    assert np.array_equal(plan.hashes.reshape(-1, 2), hash_keys(keys).reshape(-1, 2))


def test_short_last_paragraph_and_self_overlapping_separator() -> None:
    # found by the property above: a last paragraph shorter than a multi-character separator
    # starts after the separator; and "\n\n" must not match across two documents' boundary
    cfg = SimpleNamespace(skip_empty=False, min_length=0, min_words=0, num_partitions=1, partition_index=0)
    for texts, separator in [(["é\n<"], "é\n"), (["a\n", "\nb\n\nc"], "\n\n"), (["x\n\n\n", "y"], "\n\n")]:
        plan = plan_exact_paragraphs([{"id": str(i), "text": t} for i, t in enumerate(texts)], "dup", separator, cfg)
        got = list(zip(np.asarray(plan.unit_doc).tolist(), np.asarray(plan.unit_start).tolist(),
                       np.asarray(plan.unit_end).tolist()))
        assert got == reference(texts, separator, False, 0, 0)[0], (texts, separator)
    plan = plan_exact_paragraphs([{"id": "0", "text": "é\n<"}], "dup", "é\n", cfg)
    assert np.asarray(plan.unit_start).tolist() == [0, 2] and np.asarray(plan.unit_end).tolist() == [2, 3]
