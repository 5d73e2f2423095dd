"""Code taggers: Dolma 1.2.1's `code_*` (RedPajama's and StarCoder's code filters), same values.

- `code_copyright_comments_v1`: the first `/* ... */` comment if it mentions "copyright"
  (`copyright_notice`); without any such comment, the block of leading `//`, `#`, `--` or empty
  lines (`comment_block`); `doc` = (span length + 1) / text length.
- `code_redpajama_taggers_v1`: longest and mean line length, share of alphanumeric characters,
  letters per word-or-punctuation run.
- `code_starcoder_taggers_v1` / `_v2`: `<?xml version=` in the first 100 characters, GitHub stars
  (`metadata.max_stars_count`), comment share (`code_text`) and, for HTML, the share of visible
  text (`html_text`). The language comes from the file extension in `metadata.ext` (without the
  dot), through StarCoder's extension table (`dolma_tools/data/code_languages.json`).
- `code_secrets_v1`: detect-secrets' findings (all plugins, default filters) as `SECRET_<type>` spans.

pygments (lexers for the comment share) and detect-secrets are optional: `pip install 'dolma-tools[code]'`.
"""

from __future__ import annotations

import functools
import json
import re
from importlib import resources
from typing import Any, Sequence

from dolma_tools.taggers.base import Document, Tagger, TagResult, register
from dolma_tools.taggers.html_text import visible_text_length
from dolma_tools.taggers.length import whitespace_tokenizer_length


class CodeTagger(Tagger):
    """A tagger whose optional packages come with the `code` extra."""

    packages_extra = "code"


# --- copyright headers ------------------------------------------------------------------------------

_COPYRIGHT = re.compile("copyright", re.IGNORECASE)
_HEADER_COMMENT_STARTS = ("//", "#", "--")


def first_block_comment(text: str) -> tuple[int, int] | None:
    """The first complete `/* ... */` comment. If the first `/*` is never closed, no later one is."""
    start = text.find("/*")
    if start < 0:
        return None
    close = text.find("*/", start + 2)
    return None if close < 0 else (start, close + 2)


def leading_comment_lines(text: str) -> tuple[int, int]:
    """(number of leading lines that are empty or start a line comment, Dolma's end offset).

    Dolma's offset adds the lengths of those lines but no newline, and 1 per empty line (so it is
    not where the block ends); kept as is, since `doc` and the span come from it."""
    lines = end = pos = 0
    n = len(text)
    while True:
        newline = text.find("\n", pos)
        line_end = n if newline < 0 else newline
        if line_end > pos and not text.startswith(_HEADER_COMMENT_STARTS, pos, line_end):
            break
        lines += 1
        end += (line_end - pos) or 1
        if newline < 0:
            break
        pos = newline + 1
    return lines, end


def copyright_spans(text: str) -> TagResult:
    comment = first_block_comment(text)
    if comment is not None:
        start, end = comment
        return {"copyright_notice": [(start, end, 1.0)]} if _COPYRIGHT.search(text, start, end) else {}
    lines, end = leading_comment_lines(text)
    return {"comment_block": [(0, end, 1.0)]} if lines else {}


@register("code_copyright_comments_v1", "first /*...*/ comment mentioning copyright (`copyright_notice`) or "
                                        "leading line comments (`comment_block`); `doc` = their share of the text")
class CodeCopyright(CodeTagger):
    def tag(self, doc: Document) -> TagResult:
        out = copyright_spans(doc.text)
        spans = [span for spans in out.values() for span in spans]
        if not spans:
            score = 0.0
        elif doc.text:
            score = (spans[0][1] - spans[0][0] + 1) / len(doc.text)
        else:
            score = -1.0
        out["doc"] = [(0, len(doc.text), score)]
        return out


# --- RedPajama's code statistics -------------------------------------------------------------------

_ASCII_LETTERS = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"  # str.isalpha() among ASCII
_ASCII_DIGITS = b"0123456789"
_ASCII_RUNS = re.compile(r"[\x00-\x7f]+")


def alnum_and_alpha_counts(text: str) -> tuple[int, int]:
    """(characters with str.isalnum(), with str.isalpha()): bytes.translate over the ASCII part,
    the str methods only over the other characters."""
    ascii_bytes = text.encode("ascii", "ignore")
    letters = len(ascii_bytes) - len(ascii_bytes.translate(None, _ASCII_LETTERS))
    digits = len(ascii_bytes) - len(ascii_bytes.translate(None, _ASCII_DIGITS))
    if len(ascii_bytes) == len(text):
        return letters + digits, letters
    other = _ASCII_RUNS.sub("", text)
    return letters + digits + sum(map(str.isalnum, other)), letters + sum(map(str.isalpha, other))


@register("code_redpajama_taggers_v1", "RedPajama's code statistics: `max_line_length_doc`, "
                                       "`avg_line_length_doc`, `alnum_prop_doc`, `alpha_token_prop_doc`")
class CodeRedPajama(CodeTagger):
    def tag(self, doc: Document) -> TagResult:
        text, n = doc.text, len(doc.text)
        line_lengths = list(map(len, text.splitlines()))
        alnum, alpha = alnum_and_alpha_counts(text)
        whole = (0, n)
        return {
            "max_line_length_doc": [(*whole, float(max(line_lengths, default=0)))],
            "avg_line_length_doc": [(*whole, sum(line_lengths) / len(line_lengths) if line_lengths else 0.0)],
            "alnum_prop_doc": [(*whole, alnum / n if n else 0.0)],
            # Dolma's "tokens" are the pieces between runs of word or punctuation characters
            "alpha_token_prop_doc": [(*whole, alpha / whitespace_tokenizer_length(text))],
        }


# --- StarCoder's filters ---------------------------------------------------------------------------

# the languages whose comment share `code_starcoder_taggers_v2` measures (others score 0.5)
_V2_COMMENT_LANGUAGES = frozenset({"python", "java", "javascript"})


@functools.cache
def extension_languages() -> dict[str, str]:
    """File extension (no dot) -> StarCoder language name, from the package's table."""
    table = json.loads((resources.files("dolma_tools") / "data" / "code_languages.json").read_text("utf-8"))
    return {ext: language for language, exts in table.items() for ext in exts}


def html_text_ratio(html: str) -> float:
    """Visible text / page length, 0 when the visible text has at most 100 characters."""
    text_length = visible_text_length(html)
    return text_length / len(html) * (text_length > 100)


class StarCoder(CodeTagger):
    required_packages = (("pygments", "pygments"),)

    def __init__(self, **options: Any) -> None:
        super().__init__(**options)
        from dolma_tools.taggers.code_text import CommentCounter

        self.languages = extension_languages()
        self.comments = CommentCounter()

    def language(self, doc: Document) -> str | None:
        try:
            return self.languages[doc.metadata.get("ext", "-no-lang")]
        except (KeyError, TypeError):  # unknown or not even a string
            return None

    def common(self, doc: Document) -> TagResult:
        stars = doc.metadata.get("max_stars_count", 0) or 0
        try:
            stars = float(stars)
        except (TypeError, ValueError):  # Dolma fails on a non-numeric count; we take it as none
            stars = 0.0
        whole = (0, len(doc.text))
        return {"has_xml_template_doc": [(*whole, 1.0 if "<?xml version=" in doc.text[:100] else 0.0)],
                "num_github_stars_doc": [(*whole, stars)]}


@register("code_starcoder_taggers_v1", "StarCoder filters: `has_xml_template_doc`, `num_github_stars_doc`, "
                                       "`nl_ratio_doc` (comment share), `code_to_text_ratio_html_doc`; needs "
                                       "metadata.ext (-1 for unknown extensions)")
class CodeStarCoderV1(StarCoder):
    def tag(self, doc: Document) -> TagResult:
        language = self.language(doc)
        try:
            if language is None:
                raise LookupError("unknown extension")
            nl_ratio = self.comments.natural_language_ratio(doc.text, language)
            html_ratio = html_text_ratio(doc.text) if language == "html" else 1.0
        except Exception:  # noqa: BLE001 - as Dolma: any failure (empty text, no lexer, bad HTML) is -1 for both
            nl_ratio = html_ratio = -1.0
        out = self.common(doc)
        whole = (0, len(doc.text))
        out["nl_ratio_doc"] = [(*whole, nl_ratio)]
        out["code_to_text_ratio_html_doc"] = [(*whole, html_ratio)]
        return out


@register("code_starcoder_taggers_v2", "StarCoder filters: `has_xml_template_doc`, `num_github_stars_doc`, "
                                       "`code_to_comment_ratio_doc` (comment share of Python/Java/JavaScript, "
                                       "else 0.5), `code_to_text_ratio_html_doc`; needs metadata.ext")
class CodeStarCoderV2(StarCoder):
    def tag(self, doc: Document) -> TagResult:
        language = self.language(doc)
        comment_ratio = 0.5  # StarCoder's filters bound it from both sides; 0.5 passes both
        if language in _V2_COMMENT_LANGUAGES:
            try:
                comment_ratio = self.comments.natural_language_ratio(doc.text, language)
            except ZeroDivisionError:  # empty text: Dolma fails here; -1 as for other failures
                comment_ratio = -1.0
        html_ratio = 1.0
        if language == "html":
            try:
                html_ratio = html_text_ratio(doc.text)
            except Exception:  # noqa: BLE001 - empty or unparsable page, as Dolma
                html_ratio = -1.0
        out = self.common(doc)
        whole = (0, len(doc.text))
        out["code_to_comment_ratio_doc"] = [(*whole, comment_ratio)]
        out["code_to_text_ratio_html_doc"] = [(*whole, html_ratio)]
        return out


# --- secrets ---------------------------------------------------------------------------------------

# detect-secrets reads the file name: a YAML name selects its YAML rules for keywords
_SCANNED_NAME = "code_str.yml"


def find_secrets(text: str) -> list[tuple[int, int, str]]:
    """(start, end, type) per distinct secret, in detect-secrets' report order (line, hash, type).

    Needs detect-secrets' default settings active. A secret found twice keeps its first line. As
    Dolma, a secret is located in the first occurrence of its line's text in the document."""
    from detect_secrets.core.scan import _process_line_based_plugins
    from detect_secrets.core.secrets_collection import SecretsCollection

    lines = text.splitlines()
    found = SecretsCollection()
    for secret in _process_line_based_plugins(list(enumerate(lines, start=1)), filename=_SCANNED_NAME):
        found[_SCANNED_NAME].add(secret)
    spans = []
    for _, secret in found:
        value = secret.secret_value or ""
        line = lines[secret.line_number - 1]
        start = text.find(line) + line.find(value)
        if value and text.startswith(value, start):  # Dolma asserts this and stops otherwise
            spans.append((start, start + len(value), "SECRET_" + secret.type.replace(" ", "_")))
    return spans


@register("code_secrets_v1", "detect-secrets findings as `SECRET_<type>` spans; `doc` = secrets per "
                             "whitespace-separated word")
class CodeSecrets(CodeTagger):
    required_packages = (("detect_secrets", "detect-secrets"),)

    def tag_batch(self, docs: Sequence[Document]) -> list[TagResult]:
        from detect_secrets.settings import default_settings

        with default_settings():  # all plugins, default filters; set up once per batch, not per document
            return [self._tag(doc) for doc in docs]

    def tag(self, doc: Document) -> TagResult:
        return self.tag_batch([doc])[0]

    def _tag(self, doc: Document) -> TagResult:
        out: TagResult = {}
        spans = find_secrets(doc.text)
        for start, end, kind in spans:
            out.setdefault(kind, []).append((start, end, 1.0))
        words = len(doc.text.split())
        out["doc"] = [(0, len(doc.text), len(spans) / words if words else -1.0)]
        return out
