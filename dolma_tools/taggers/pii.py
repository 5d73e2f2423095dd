"""PII: e-mail addresses, phone numbers and IPv4 addresses.

Two layers:
- `find_pii(text)`: our detector, tight spans `(start, end, type)` covering exactly the address,
  number or IP (no surrounding whitespace), with international phone formats and context checks
  against ISBN/DOI-like numbers. Used by the stats report and the `pii_v1` tagger.
- Dolma's taggers (`pii_regex_v1`, `pii_regex_v2`, `pii_regex_with_counts_v2`,
  `pii_regex_with_counts_fast_v2`): Dolma's span boundaries (an e-mail span includes the
  delimiters around it, a phone span its leading whitespace) so existing mixer configs keep
  working, with these deliberate differences (docs/taggers.md):
  * phone numbers also match `+CC ...` international formats, at the start of a line or after
    punctuation, and never as the first 10 digits of a longer digit run;
  * an e-mail at the very end of the text is found (Dolma requires whitespace after it);
  * `doc_frac` is the true fraction of characters inside PII spans (Dolma's is always >= 1);
  * empty text scores -1 in every `doc` score (Dolma's v1 raises ZeroDivisionError).
"""

from __future__ import annotations

import re
from typing import Iterator

from dolma_tools.taggers.base import Document, Tagger, TagResult, register
from dolma_tools.text import paragraphs

EMAIL = "EMAIL_ADDRESS"
PHONE = "PHONE_NUMBER"
IP = "IP_ADDRESS"
PII_TYPES = (EMAIL, PHONE, IP)

# Dolma's e-mail pattern (group 1 is the address), plus end of text as a terminator.
_DOLMA_EMAIL = re.compile(r"[.\s@,?!;:)(]*([^\s@]+@[^\s@,?!;:)(]+?)[.\s@,?!;:)(]?(?:\s|\Z)")
_OCTET = r"(?:25[0-5]|2[0-4][0-9]|[01]?[0-9][0-9]?)"
_DOLMA_IP = re.compile(rf"(?:{_OCTET}\.){{3}}{_OCTET}")
# Phone numbers: group `num` is the number; Dolma's spans also include the whitespace before it.
_PHONE_NUMBER = (
    r"\+\d{1,3}[-. ]?(?:\(\d{1,4}\)|\d{1,4})(?:[-. ]?\d{2,4}){1,4}"  # +44 20 7946 0958, +1 (555) 123-4567
    r"|\(\d{3}\)[-. ]*\d{3}[-. ]?\d{4}"  # (555) 123-4567
    r"|\d{3}[-. ]*\d{3}[-. ]?\d{4}"  # 555-123-4567, 555.123.4567, 5551234567
)
_PHONE = re.compile(rf"(?P<lead>\s*)(?<![\w+\-.])(?P<num>{_PHONE_NUMBER})(?![\d])")
_PHONE_DIGITS = (10, 15)
_DIGIT = re.compile(r"\d")
_IDENTIFIER_CONTEXT = re.compile(r"isbn|issn|doi\b|doi:|arxiv", re.IGNORECASE)
_TIGHT_IP = re.compile(rf"(?<![\w.])(?:{_OCTET}\.){{3}}{_OCTET}(?![\w]|\.\d)")
_CONTEXT_WINDOW = 12  # an identifier keyword right before the number ("ISBN 978...", "doi: ...")


def _phone_matches(text: str) -> Iterator[re.Match]:
    if _DIGIT.search(text) is None:
        return
    for match in _PHONE.finditer(text):
        digits = sum(c.isdigit() for c in match.group("num"))
        if _PHONE_DIGITS[0] <= digits <= _PHONE_DIGITS[1]:
            yield match


def _email_ok(address: str) -> bool:
    addressee, _, domain = address.partition("@")
    return addressee.strip() != "(" and "." in domain


def find_pii(text: str) -> list[tuple[int, int, str]]:
    """E-mail, phone and IPv4 spans in `text`, sorted by start; spans cover exactly the item."""
    found: list[tuple[int, int, str]] = []
    if "@" in text:
        for m in _DOLMA_EMAIL.finditer(text):
            address = m.group(1).rstrip(".")
            if _email_ok(address):
                found.append((m.start(1), m.start(1) + len(address), EMAIL))
    for m in _phone_matches(text):
        start, end = m.span("num")
        context = text[max(0, start - _CONTEXT_WINDOW):start]
        if not _IDENTIFIER_CONTEXT.search(context):
            found.append((start, end, PHONE))
    if "." in text:
        for m in _TIGHT_IP.finditer(text):
            context = text[max(0, m.start() - _CONTEXT_WINDOW):m.start()]
            if not _IDENTIFIER_CONTEXT.search(context):
                found.append((m.start(), m.end(), IP))
    found.sort()
    return found


@register("pii_v1", "our PII detector (find_pii): tight EMAIL_ADDRESS / PHONE_NUMBER / IP_ADDRESS spans, "
                    "international phones, `doc_count` and `doc_frac`")
class PiiV1(Tagger):
    def tag(self, doc: Document) -> TagResult:
        out: TagResult = {}
        spans = find_pii(doc.text)
        for s, e, kind in spans:
            out.setdefault(kind, []).append((s, e, 1.0))
        n = len(doc.text)
        out["doc_count"] = [(0, n, float(len(spans)))]
        out["doc_frac"] = [(0, n, _covered(spans) / n if n else -1.0)]
        return out


def _covered(spans) -> int:
    """Characters inside at least one span."""
    total, reach = 0, 0
    for s, e, *_ in sorted(spans):
        if e > reach:
            total += e - max(s, reach)
            reach = e
    return total


# ------------------------------------------------------------------ Dolma's taggers


def _dolma_spans(text: str, window: int = 100) -> list[tuple[int, int, str]]:
    """pii_regex_v1's spans: by type (e-mail, phone, IP), each in text order, post-filtered."""
    spans: list[tuple[int, int, str]] = []
    if "@" in text:
        for m in _DOLMA_EMAIL.finditer(text):
            mention = m.group(0)
            parts = mention.split("@")
            if parts[0].strip() != "(" and "." in parts[1]:
                spans.append((m.start(), m.end(), EMAIL))
    for kind, matches in ((PHONE, [m.span() for m in _phone_matches(text)]),
                          (IP, [m.span() for m in _DOLMA_IP.finditer(text)])):
        for s, e in matches:
            context = text[max(0, s - window):min(len(text), e + window)]
            if "isbn" in context or "doi" in context or "#" in context:
                continue
            spans.append((s, e, kind))
    return spans


class _DolmaRegexPii(Tagger):
    with_count = False

    def tag(self, doc: Document) -> TagResult:
        spans = _dolma_spans(doc.text)
        out: TagResult = {}
        for s, e, kind in spans:
            out.setdefault(kind, []).append((s, e, 1.0))
        n = len(doc.text)
        words = len(doc.text.split())
        out["doc"] = [(0, n, len(spans) / words if words else -1.0)]
        if self.with_count:
            out["doc_count"] = [(0, n, float(len(spans)))]
        return out


@register("pii_regex_v1", "Dolma's regex PII: EMAIL_ADDRESS, PHONE_NUMBER, IP_ADDRESS spans and `doc` "
                          "(spans per word; -1 for empty text)")
class PiiRegexV1(_DolmaRegexPii):
    pass


@register("pii_regex_v2", "pii_regex_v1 (empty text scores -1)")
class PiiRegexV2(_DolmaRegexPii):
    pass


@register("pii_regex_with_counts_v2", "pii_regex_v2 plus `doc_count` (number of PII spans)")
class PiiRegexWithCountsV2(_DolmaRegexPii):
    with_count = True


@register("pii_regex_with_counts_fast_v2", "Dolma's fast PII tagger (per paragraph, prefiltered): type spans, "
                                           "`doc_count`, and `doc_frac` (true fraction of characters)")
class PiiRegexWithCountsFastV2(Tagger):
    def tag(self, doc: Document) -> TagResult:
        text = doc.text
        n = len(text)
        out: TagResult = {}
        count = 0
        covered = 0
        if text.count("?") <= 10_000:  # Dolma's guard against pathological regex time
            for p in paragraphs(text):
                for s, e, kind in self._paragraph(p.text):
                    out.setdefault(kind, []).append((s + p.start, e + p.start, 1.0))
                    count += 1
                    covered += e - s
        out["doc_count"] = [(0, n, float(count))]
        out["doc_frac"] = [(0, n, covered / n if n else -1.0)]
        return out

    @staticmethod
    def _paragraph(text: str) -> list[tuple[int, int, str]]:
        found: list[tuple[int, int, str]] = []
        if "@" in text:
            for m in _DOLMA_EMAIL.finditer(text):
                addressee, _, domain = m.group(1).partition("@")
                if addressee.strip() != "(" and "." in domain:
                    found.append((m.start(), m.end(), EMAIL))
        for m in _phone_matches(text):
            found.append((m.start(), m.end(), PHONE))
        if "." in text:
            for m in _DOLMA_IP.finditer(text):
                found.append((m.start(), m.end(), IP))
        return found
