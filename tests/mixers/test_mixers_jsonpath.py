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


# ---------------------------------------------------------------------------------------------
# jsonpath-rust 0.3's operators, checked against Dolma 1.2.1's mixer: each pattern was an
# include filter of a `dolma mix` run over these twelve documents; the ids are what it kept.

DOCS = [{"id": f"d{i}", "text": "t", "allowed": ["ab", "abcd", "a", 1], "empty": [], "obj": {"k": "ab"},
         "three": 3, "metadata": metadata} for i, metadata in enumerate([
             {"tags": ["a", "b"], "n": 3, "s": "abc", "o": {"x": 1}},
             {"tags": ["c"], "n": 1, "s": "ab"},
             {"tags": [], "n": 2.0},
             {"s": "abcd"},
             {"tags": "a", "n": -1},
             {"tags": ["a", "b", "c"], "s": "é€x"},      # 6 UTF-8 bytes
             {"tags": [1, 2], "n": "3"},
             {"tags": ["a", "z"], "n": 1.5},
             {"tags": None, "n": None},
             {"tags": {"k": "a"}, "o": {}},
             {"tags": [["c"]], "n": True},
             {"tags": [1.0, 2.0], "n": 3.0},
         ])]

SAME_AS_DOLMA = [
    # size: strings count UTF-8 bytes, arrays elements, objects keys; a missing value matches
    ("$.metadata[?(@.tags size 2)]", "0 3 6 7 11"),
    ("$.metadata[?(@.tags size 3)]", "3 5"),
    ("$.metadata[?(@.s size 3)]", "0 2 4 6 7 8 9 10 11"),
    ("$.metadata[?(@.o size 1)]", "0 1 2 3 4 5 6 7 8 10 11"),
    ("$.metadata[?(@.tags size 0)]", "2 3"),
    ("$.metadata[?(@.tags size 1)]", "1 3 4 9 10"),
    ("$.metadata[?(@.tags size 2.5)]", "0 3 6 7 11"),
    ("$.metadata[?(@.tags size -1)]", "2 3"),
    ("$.metadata[?(@.s size $.three)]", "0 2 4 6 7 8 9 10 11"),
    ("$.metadata[?(@.tags[*] size 1)]", "0 1 2 3 4 5 7 8 9 10"),
    # anyOf / noneOf: a left array shares an element (a scalar is itself); missing matches anyOf
    ("$.metadata[?(@.tags anyOf ['a','x'])]", "0 3 4 5 7"),
    ("$.metadata[?(@.tags anyOf ['z'])]", "3 7"),
    ("$.metadata[?(@.tags anyOf ['a'])]", "0 3 4 5 7"),
    ("$.metadata[?(@.tags noneOf ['a'])]", "1 2 6 8 9 10 11"),
    ("$.metadata[?(@.tags noneOf ['a','b','c','z'])]", "2 6 8 9 10 11"),
    ("$.metadata[?(!(@.tags anyOf ['a']))]", "1 2 6 8 9 10 11"),
    ("$.metadata[?(@.tags[*] anyOf ['a'])]", "0 2 3 4 5 7 8 9"),
    ("$.metadata[?(@.tags anyOf $.empty)]", "3"),
    ("$.metadata[?(@.tags anyOf $.obj)]", "3"),
    ("$.metadata[?(@.tags anyOf $.allowed[*])]", "3"),
    ("$.metadata[?(@.tags noneOf $.nothing)]", "0 1 2 4 5 6 7 8 9 10 11"),
    ("$.metadata.tags[?(@ anyOf ['a'])]", "0 4 5 7"),
    ("$[?(@.metadata.tags anyOf ['z'])]", "3 7"),
    # subsetOf: the first left value is an array inside a non-empty right array; missing matches
    ("$.metadata[?(@.tags subsetOf ['a','b','c'])]", "0 1 2 3 5"),
    ("$.metadata[?(@.tags subsetOf ['a'])]", "2 3"),
    ("$.metadata[?(@.tags subsetOf $.allowed)]", "2 3"),
    ("$.metadata[?(@.tags subsetOf $.empty)]", "3"),
    ("$.metadata[?(@.missing subsetOf $.empty)]", "0 1 2 3 4 5 6 7 8 9 10 11"),
    ("$.metadata[?(@.tags[*] subsetOf ['a','b','c'])]", "2 3 4 8 10"),
    # in / nin: some left value is in the right array (or object's values); nin is its negation
    ("$.metadata[?(@.s in ['ab','abc'])]", "0 1"),
    ("$.metadata[?(@.tags in ['a'])]", "4"),
    ("$.metadata[?(@.tags nin ['a'])]", "0 1 2 3 5 6 7 8 9 10 11"),
    ("$.metadata[?(@.tags[*] in ['a','b'])]", "0 5 7 9"),
    ("$.metadata[?(@.tags[*] nin ['a','b'])]", "1 2 3 4 6 8 10 11"),
    ("$.metadata[?(@.s in $.allowed)]", "1 3"),
    ("$.metadata[?(@.n in $.allowed)]", "1"),
    ("$.metadata[?(@.s in $.obj)]", "1"),
    ("$.metadata[?(@.s in $.allowed[*])]", ""),
    ("$.metadata[?(@.s in 'abc')]", ""),
    ("$.metadata[?(@.n in 3)]", ""),
    ("$.metadata[?(@.o in [1, 2])]", ""),
    ("$.metadata[?(@.missing nin $.nothing)]", "0 1 2 3 4 5 6 7 8 9 10 11"),
    ("$.metadata[?(@.tags[0] in ['a','c'])]", "0 1 5 7"),
    ("$[?(@.id in ['d1','d2'])]", "1 2"),
    ("$.metadata[?(@.tags anyOf ['a'] && @.n in [-1, 3])]", "0 4"),
    ("$.metadata[?(@.tags anyOf ['a'] || @.tags size 0)]", "0 2 3 4 5 7"),
    # comparisons: lists of values compared whole, only numbers order, missing != anything
    ("$.metadata[?(@.tags[*] == 'a')]", "9"),
    ("$.metadata[?(@.tags[*] != 'a')]", "0 1 2 3 4 5 6 7 8 10 11"),
    ("$.metadata[?(@.tags[*] > 0)]", ""),
    ("$.metadata[?(@.tags == ['a','b'])]", "0"),
    ("$.metadata[?(@.missing != 'a')]", "0 1 2 3 4 5 6 7 8 9 10 11"),
    ("$.metadata[?(@.missing == null)]", ""),
    ("$.metadata[?(@.n == null)]", "8"),
    ("$.metadata[?(@.n >= 1)]", "0 1 2 7 11"),
    ("$.metadata[?(@.n <= 1)]", "1 4"),
    ("$.metadata[?(@.s >= 'abc')]", "0"),
    ("$.metadata[?(@.s < 'b')]", ""),
    ("$.metadata[?(@.tags >= ['a','b'])]", "0"),
    ("$.metadata[?(@.missing == @.nothing)]", "0 1 2 3 4 5 6 7 8 9 10 11"),
    ("$.metadata[?(@.n == true)]", "10"),
    ("$.metadata[?(@.n >= true)]", "10"),
    ("$.metadata[?(@.tags[*] ~= 'z')]", "7"),
]

# Ours: numbers are equal when their values are (Dolma 1.2.1: 3 != 3.0, so d11's 3.0 and
# [1.0, 2.0] never equal an integer), and `[1]` is a one-element array (Dolma: an index path).
OURS_DIFFERS = [
    # (pattern, ours, Dolma 1.2.1)
    ("$.metadata[?(@.n in [1,3])]", "0 1 11", "0 1"),
    ("$.metadata[?(@.n nin [1,3])]", "2 3 4 5 6 7 8 9 10", "2 3 4 5 6 7 8 9 10 11"),
    ("$.metadata[?(@.n in [1.5, 3])]", "0 7 11", "0 7"),
    ("$.metadata[?(@.tags anyOf [1,2])]", "3 6 11", "3 6"),
    ("$.metadata[?(@.tags anyOf [1.0, 2.0])]", "3 6 11", "3 11"),
    ("$.metadata[?(@.tags subsetOf [1,2])]", "2 3 6 11", "2 3 6"),
    ("$.metadata[?(@.n != 3)]", "1 2 3 4 5 6 7 8 9 10", "1 2 3 4 5 6 7 8 9 10 11"),
    ("$.metadata[?(@.n in [1])]", "1", ""),
]


def kept(pattern: str) -> str:
    path = JsonPath(pattern)
    return " ".join(doc["id"][1:] for doc in DOCS if path.matches(doc))


@pytest.mark.parametrize("pattern,expected", SAME_AS_DOLMA)
def test_operators_keep_what_dolma_keeps(pattern, expected):
    assert kept(pattern) == expected


@pytest.mark.parametrize("pattern,ours,dolma", OURS_DIFFERS)
def test_operators_compare_numbers_by_value(pattern, ours, dolma):
    assert kept(pattern) == ours != dolma


@pytest.mark.parametrize("pattern,message", [
    ("$.metadata[?(@.tags anyof ['a'])]", "operators are case-sensitive"),
    ("$.metadata[?(@.tags size '2')]", "`size` needs a number"),
    ("$.metadata[?(@.tags anyOf 'a')]", "`anyOf` needs an array"),
])
def test_operator_mistakes_are_config_errors(pattern, message):
    with pytest.raises(ConfigError, match=message):
        JsonPath(pattern)


def test_operators_through_dolma_mix(tmp_path):
    """End to end, in order (shuffle: false), with the kept ids Dolma 1.2.1 writes."""
    import gzip
    import json

    from dolma_tools.config import from_dict
    from dolma_tools.mixers.config import MixConfig
    from dolma_tools.mixers.runner import run_mix

    src = tmp_path / "documents" / "p.jsonl.gz"
    src.parent.mkdir()
    with gzip.open(src, "wt") as fh:
        fh.writelines(json.dumps(doc) + "\n" for doc in DOCS)
    cfg = from_dict(MixConfig, {"debug": True, "shuffle": False, "streams": [{
        "name": "ops", "documents": [str(src)], "output": {"path": str(tmp_path / "out")},
        "filter": {"include": ["$.metadata[?(@.tags size 2)]", "$.metadata[?(@.tags anyOf ['z'])]"],
                   "exclude": ["$.metadata[?(@.tags noneOf ['a'])]", "$.metadata[?(@.n in [-1, 3])]"]}}]})
    report = run_mix(cfg, progress=False)
    with gzip.open(report["streams"]["ops"]["shards"][0], "rt") as fh:
        assert [json.loads(line)["id"] for line in fh] == ["d3", "d7"]
