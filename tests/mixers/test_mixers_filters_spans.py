"""Filters in jq and Python syntax, and Dolma's span-replacement rules."""

import pytest

from dolma_tools.errors import ConfigError
from dolma_tools.mixers.filters import DocumentFilter, check_python_expression
from dolma_tools.mixers.spans import SpanReplacer, replace_spans

DOC = {"id": "a", "text": "abcdef", "metadata": {"length": 6},
       "attributes": {"x": [[0, 2, 0.7]], "n": [[0, 6, 3]], "flags": [[0, 1, 0], [1, 2, 1]]}}


@pytest.mark.parametrize("include,exclude,syntax,reason", [
    ([], ["$.attributes[?(@.x[0][2] > 0.5)]"], "jsonpath", "exclude: $.attributes[?(@.x[0][2] > 0.5)]"),
    (["$.metadata[?(@.length > 10)]"], [], "jsonpath", "include"),
    (["$.metadata[?(@.length > 10)]", "$.metadata[?(@.length > 5)]"], [], "jsonpath", None),
    # jq truthiness: numbers != 0, non-empty arrays; include needs every output truthy
    ([".attributes.n[0][2]"], [], "jq", None),
    ([".attributes.flags[][2]"], [], "jq", "include"),
    ([], [".attributes.flags[][2]"], "jq", "exclude: .attributes.flags[][2]"),
    ([".attributes.missing"], [], "jq", "include"),
    ([], [".attributes.missing"], "jq", None),
    ([".attributes.x"], [], "jq", None),
    ([".text | length > 3"], [".metadata.length < 3"], "jq", None),
    # python expressions over the document's fields
    (["attributes['x'][0][2] > 0.5"], [], "python", None),
    ([], ["attributes['n'][0][2] >= 3.0"], "python", "exclude: attributes['n'][0][2] >= 3.0"),
    (["len(text) > 100"], [], "python", "include"),
    ([], ["attributes['missing'][0][2] > 0"], "python", None),  # a missing key is a non-match
    (["any(s[2] > 0.5 for s in attributes['flags'])"], [], "python", None),
    (["all(s[1] <= len(text) for s in attributes['flags'])"], [], "python", None),  # fields seen inside
])
def test_filter_semantics(include, exclude, syntax, reason):
    assert DocumentFilter(include, exclude, syntax).reason_to_remove(DOC) == reason


def test_jq_runtime_error_is_a_counted_non_match():
    errors = []
    flt = DocumentFilter([], ['.text | error("boom")'], "jq", on_error=lambda p, e: errors.append(str(e)))
    assert flt.reason_to_remove(DOC) is None
    assert errors and "boom" in errors[0]


@pytest.mark.parametrize("source", [
    "text.__class__", "__import__('os')", "open('/etc/passwd')", "attributes.keys()",
    "(lambda: 1)()", "2 ** 1000000", "[].__class__.__base__",
])
def test_python_filters_reject_unsafe_expressions(source):
    with pytest.raises(ConfigError):
        check_python_expression(source)


def test_unknown_syntax_is_a_config_error():
    with pytest.raises(ConfigError, match="syntax"):
        DocumentFilter(["x"], [], "xpath")


def _replace(text, attributes, *replacers):
    doc = {"id": "d", "text": text, "attributes": attributes}
    return replace_spans(text, doc, list(replacers))[0]


def test_span_score_window_is_half_open():
    attrs = {"s": [[0, 1, 0.5], [1, 2, 0.9], [2, 3, 1.0], [3, 4, 0.2]]}
    rep = SpanReplacer("$.attributes.s", min_score=0.5, max_score=1.0, replacement="#")
    assert _replace("abcd", attrs, rep) == "##cd"


def test_spans_first_wins_and_placeholder_keeps_text():
    attrs = {"a": [[0, 4, 1.0]], "b": [[2, 6, 1.0], [6, 8, 1.0]]}
    first = SpanReplacer("$.attributes.a", min_score=0.5, replacement="<{}>")
    second = SpanReplacer("$.attributes.b", min_score=0.5, replacement="")
    # b's first span overlaps a's and is dropped; its second span is deleted
    assert _replace("0123456789", attrs, first, second) == "<0123>4589"


def test_span_offsets_are_code_points():
    text = "héllo wörld ✓ ok"
    attrs = {"pii": [[6, 11, 1.0]]}
    rep = SpanReplacer("$.attributes.pii", min_score=0.5, replacement="|||X|||")
    assert _replace(text, attrs, rep) == "héllo |||X||| ✓ ok"


def test_deleting_both_paragraphs_leaves_the_separator_as_dolma():
    text = "first paragraph\nsecond one"
    attrs = {"dup": [[0, 15, 1], [16, 26, 1]]}
    rep = SpanReplacer("$.attributes.dup", min_score=0.5)
    assert _replace(text, attrs, rep) == "\n"


def test_jq_span_selector_and_program_replacement():
    attrs = {"pii": [[0, 3, 1.0]]}
    rep = SpanReplacer(".attributes.pii", min_score=0.5, replacement='$"[" + .id + "]"', syntax="jq")
    assert _replace("abcdef", attrs, rep) == "[d]def"
    literal = SpanReplacer("$.attributes.pii", min_score=0.5, replacement="\\$5")
    assert _replace("abcdef", attrs, literal) == "$5def"


def test_span_replacement_needs_a_bound():
    with pytest.raises(ConfigError, match="min_score or max_score"):
        SpanReplacer("$.attributes.x")
