"""Dolma's JSONPath dialect: the mixer idioms, numeric comparison, existence, errors."""

import pytest

from dolma_tools.errors import ConfigError
from dolma_tools.mixers.jsonpath import JsonPath

DOC = {
    "id": "a",
    "text": "hello",
    "metadata": {"length": 120, "url": "https://example.com/x"},
    "attributes": {
        "pii": [[0, 5, 0.3]],
        "dup": [[0, 3, 1]],           # the deduper writes integer scores
        "empty": [],
        "many": [[0, 1, 0.1], [2, 3, 0.9]],
    },
}


@pytest.mark.parametrize("pattern,expected", [
    # Dolma's idiom: the filter tests the attributes object itself
    ("$.attributes[?(@.pii && @.pii[0] && @.pii[0][2] < 0.5)]", True),
    ("$.attributes[?(@.pii && @.pii[0] && @.pii[0][2] > 0.5)]", False),
    ("$@.attributes[?(@.pii[0][2] < 0.5)]", True),
    # a missing or empty span list never matches
    ("$.attributes[?(@.missing && @.missing[0] && @.missing[0][2] > 0.5)]", False),
    ("$.attributes[?(@.empty && @.empty[0] && @.empty[0][2] > 0.5)]", False),
    ("$.attributes[?(@.missing[0][2] < 0.5)]", False),
    # existence tests
    ("$.attributes[?(@.empty)]", True),
    ("$.attributes[?(@.missing)]", False),
    ("$.attributes[?(!@.missing)]", True),
    # Ours: integer scores compare numerically with float literals (Dolma 1.2.1: never matches)
    ("$.attributes[?(@.dup[0][2] >= 1.0)]", True),
    ("$.attributes[?(@.dup[0][2] == 1.0)]", True),
    ("$.attributes[?(@.pii[0][2] >= 1)]", False),
    # metadata filters, || and parentheses
    ("$.metadata[?(@.length < 200)]", True),
    ("$.metadata[?(@.length < 100 || @.length > 110)]", True),
    ("$.metadata[?((@.length < 100) && @.url)]", False),
    ("$.metadata[?(@.url =~ 'example\\.com')]", True),
    ("$.metadata[?(@.url == 'https://example.com/x')]", True),
    ("$[?(@.id in ['a', 'b'])]", True),
    ("$[?(@.id nin ['a', 'b'])]", False),
    # filters on arrays test each element
    ("$.attributes.many[?(@[2] > 0.5)]", True),
    ("$.attributes.many[?(@[2] > 0.95)]", False),
    # plain paths match when they select something
    ("$.metadata.url", True),
    ("$.metadata.nothing", False),
    ("$.attributes.empty[0]", False),
    ("$..url", True),
])
def test_jsonpath_matches(pattern, expected):
    assert JsonPath(pattern).matches(DOC) is expected


def test_jsonpath_select_values():
    assert JsonPath("$.attributes.many[*][2]").select(DOC) == [0.1, 0.9]
    assert JsonPath("$.attributes.many[-1]").select(DOC) == [[2, 3, 0.9]]
    assert JsonPath("$.attributes.many[0:1]").select(DOC) == [[0, 1, 0.1]]
    assert JsonPath("$['metadata']['length']").select(DOC) == [120]
    assert JsonPath("$.attributes.pii").select(DOC) == [[[0, 5, 0.3]]]


def test_jsonpath_numbers_and_strings_do_not_mix():
    assert not JsonPath("$.metadata[?(@.url > 3)]").matches(DOC)
    assert JsonPath("$.metadata[?(@.url != 3)]").matches(DOC)


@pytest.mark.parametrize("pattern", ["attributes.x", "$.attributes[?(@.x < )]", "$.a[", "$.a[?(@.x > 1]"])
def test_jsonpath_syntax_errors_name_the_pattern(pattern):
    with pytest.raises(ConfigError, match="JSONPath"):
        JsonPath(pattern)
