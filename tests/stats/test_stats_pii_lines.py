"""The line-restricted PII scan finds exactly what find_pii finds on the whole text."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dolma_tools.stats.collectors import pii_in_lines

pii = pytest.importorskip("dolma_tools.taggers.pii")

PIECES = ["john.doe@example.com", "a@b", "x@y.org", "(555) 123-4567", "555-123-4567", "+44 20 7946 0958",
          "5551234567", "192.168.0.1", "10.0.0.256", "ISBN 978-3-16-148410-0", "doi: 10.1000/182", "isbn",
          "arxiv", "12", "3.4", " ", "  ", "\n", "\n\n", ".", ",", "(", ")", "+", "-", "@", "word", "Call",
          "e-mail:", "\t", "1", "22", "333", "4444"]


@settings(max_examples=300, deadline=None)
@given(st.lists(st.sampled_from(PIECES), max_size=40))
def test_pii_in_lines_equals_find_pii(pieces):
    text = "".join(pieces)
    assert pii_in_lines(pii.find_pii, text) == pii.find_pii(text)


def test_pii_in_lines_on_dev_like_text():
    text = ("Contact: john@example.com\nISBN\n555-123-4567 is not a phone\n"
            "call 555-123-4567 or +1 (555) 765-4321\nserver 10.1.2.3.\n\nno digits here\n")
    assert pii_in_lines(pii.find_pii, text) == pii.find_pii(text)
