"""Stats' PII counts (dolma_tools.stats.pii) equal the matches of find_pii, on tricky text."""

from __future__ import annotations

from collections import Counter

import pytest

pii = pytest.importorskip("dolma_tools.taggers.pii")
from dolma_tools.stats.pii import pii_counts, pii_counts_batch  # noqa: E402


def _truth(text: str) -> tuple[int, int, int]:
    kinds = Counter(kind for _, _, kind in pii.find_pii(text))
    return kinds["EMAIL_ADDRESS"], kinds["PHONE_NUMBER"], kinds["IP_ADDRESS"]


TEXTS = [
    "Contact: john@example.com\nISBN\n555-123-4567 is not a phone\n"
    "call 555-123-4567 or +1 (555) 765-4321\nserver 10.1.2.3.\n\nno digits here\n",
    "ISBN 978-3-16-148410-0 and doi:10.1000/1823456789 then 555.123.4567",
    "v1.2.3.4.5 and 1.2.3.4a and 256.1.1.1 and 01.2.3.4 and (1.2.3.4)",
    "+44 20 7946 0958, +1 (555) 123-4567; 12345678901234567890 digits",
    "\u0665\u0665\u0665-\u0661\u0662\u0663-\u0664\u0665\u0666\u0667 arabic-indic digits",
    "", "no pii at all", "a@b c@d.e (x@y.org) me@home.",
]


@pytest.mark.parametrize("text", TEXTS)
def test_pii_counts_equal_find_pii(text):
    assert pii_counts(text) == _truth(text)


def test_pii_counts_batch_equal_find_pii():
    assert pii_counts_batch(TEXTS).tolist() == [list(_truth(t)) for t in TEXTS]
    assert sum(_truth(TEXTS[0])) > 0 and sum(_truth(TEXTS[3])) > 0
