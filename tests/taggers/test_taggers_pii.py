"""PII detection: recall and precision on a planted set, phone formats, whole-match spans."""

from __future__ import annotations

import random

import pytest

from dolma_tools.taggers import Document, get_tagger
from dolma_tools.taggers.pii import EMAIL, IP, PHONE, find_pii

PLANTED = [
    (EMAIL, "john.doe@example.com"), (EMAIL, "a_b-c+tag@mail.co.uk"), (EMAIL, "support@dolma-tools.org"),
    (EMAIL, "x.y.z@sub.domain.io"), (EMAIL, "first.last@university.edu"),
    (PHONE, "(555) 123-4567"), (PHONE, "555-123-4567"), (PHONE, "+1 555 123 4567"), (PHONE, "+44 20 7946 0958"),
    (PHONE, "555.123.4567"), (PHONE, "+1 (555) 123-4567"), (PHONE, "+33 1 23 45 67 89"), (PHONE, "5551234567"),
    (PHONE, "+49 30 1234 5678"), (PHONE, "(212) 555-0199"),
    (IP, "192.168.0.1"), (IP, "10.0.0.254"), (IP, "8.8.8.8"), (IP, "172.16.254.3"), (IP, "255.255.255.0"),
]
TEMPLATES = ["Please contact {} for details.", "{} is the one to use", "Reach us at {}.", "({})",
             "Line one\n{}\nline three", "Details: {}, thanks!", "You can also try {} tomorrow"]
DECOYS = ["ISBN 978-0-306-40615-7 is a book.", "The year 2024 had 365 days and 12 months.",
          "Version 1.2.3 was released; see v1.2.3.4.5 too.", "Order #12345 shipped.", "Pi is 3.14159265358979.",
          "Call me maybe @ noon", "Price: $1,234,567.89 total", "The @user handle and a@b are not addresses.",
          "Serial 12345678901234567890 printed.", "doi:10.1000/182 is a DOI.", "Score was 3-2 at 10.30pm.",
          "Coordinates 40.7128, -74.0060 mark the spot.", "2024-05-06 12:30:45 timestamp",
          "Room 101, floor 5, building 12.", "+5 points for 20 players"]


def planted_documents(seed: int = 0) -> list[tuple[str, list[tuple[int, int, str]]]]:
    """Documents with known PII spans, surrounded by text and decoys."""
    rng = random.Random(seed)
    docs = []
    for kind, item in PLANTED:
        for template in rng.sample(TEMPLATES, 3):
            before = rng.choice(DECOYS) + " "
            sentence = template.format(item)
            start = len(before) + sentence.index(item)
            docs.append((before + sentence + " " + rng.choice(DECOYS), [(start, start + len(item), kind)]))
    docs += [(decoy, []) for decoy in DECOYS]
    return docs


def test_find_pii_recall_and_precision_on_planted_set():
    tp = fp = fn = 0
    misses, false = [], []
    for text, truth in planted_documents():
        found = set(find_pii(text))
        tp += len(found & set(truth))
        fn += len(set(truth) - found)
        fp += len(found - set(truth))
        misses += [text[s:e] for s, e, _ in set(truth) - found]
        false += [text[s:e] for s, e, _ in found - set(truth)]
    recall, precision = tp / (tp + fn), tp / (tp + fp)
    assert recall == 1.0, misses
    assert precision >= 0.95, false


@pytest.mark.parametrize("number", ["(555) 123-4567", "555-123-4567", "+1 555 123 4567", "+44 20 7946 0958"])
def test_phone_formats_users_meet_whole_match(number):
    for text in (f"Call {number} now", f"{number} is my number", f"tel: {number}\n"):
        start = text.index(number)
        assert (start, start + len(number), PHONE) in find_pii(text)
        fast = get_tagger("pii_regex_with_counts_fast_v2").tag_batch([Document("d", text)])[0]
        [(s, e, score)] = fast[PHONE]
        # Dolma's span convention: the number plus the whitespace before it
        assert text[s:e].strip() == number and e == start + len(number) and score == 1.0


def test_dolma_span_conventions_kept():
    text = "Mail john.doe@example.com now, or call 555-123-4567 please.\n"
    out = get_tagger("pii_regex_with_counts_fast_v2").tag_batch([Document("d", text)])[0]
    [(s, e, _)] = out[EMAIL]
    assert text[s:e] == " john.doe@example.com "  # delimiters included, as Dolma
    [(s, e, _)] = out[PHONE]
    assert text[s:e] == " 555-123-4567"
    assert out["doc_count"] == [(0, len(text), 2.0)]
    [(_, _, frac)] = out["doc_frac"]
    assert frac == pytest.approx((22 + 13) / len(text))  # true fraction (Dolma's is 1 + this)
    assert 0 <= frac < 1


def test_no_phone_inside_longer_digit_runs():
    assert find_pii("serial 12345678901234567890") == []
    out = get_tagger("pii_regex_v2").tag_batch([Document("d", "serial 12345678901234567890")])[0]
    assert PHONE not in out


def test_pii_tagger_counts_and_fraction():
    text = "a@b.com and 10.0.0.1"
    out = get_tagger("pii_v1").tag_batch([Document("d", text)])[0]
    assert out[EMAIL] == [(0, 7, 1.0)] and out[IP] == [(12, 20, 1.0)]
    assert out["doc_count"] == [(0, 20, 2.0)] and out["doc_frac"] == [(0, 20, 15 / 20)]
