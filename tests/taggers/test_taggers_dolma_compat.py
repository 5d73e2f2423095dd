"""Our Dolma-named taggers against expected files written once by Dolma 1.2.1.

tests/data/taggers/documents/ holds 30 web documents, 50 documents of each other dev-corpus source
(20 speeches) and a file of edge cases; tests/data/taggers/expected/ holds Dolma 1.2.1's
attributes for them (see tests/data/taggers/README.md). Scores are compared after rounding to 5
decimals, as both write them. Deliberate differences are asserted explicitly below.
"""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import pytest

from dolma_tools.taggers import Document, get_tagger
from dolma_tools.taggers.runner import format_spans

DATA = Path(__file__).resolve().parents[1] / "data" / "taggers"
FILES = sorted(p.stem.split(".")[0] for p in (DATA / "documents").glob("*.jsonl.gz"))

EXACT = ["char_length_v1", "char_length_with_paragraphs_v1", "char_length_strip_ws_v1", "bytes_length_v1",
         "doc_count_v1", "whitespace_tokenizer_v1", "whitespace_tokenizer_with_paragraphs_v1", "c4_v1", "c4_v2",
         "gopher_v1", "gopher_v2", "repetitions_v1", "paragraph_repetitions_v1", "ft_lang_id_doc_v1",
         "ft_lang_id_en_doc_v2", "ft_lang_id_en_paragraph_v2", "ft_lang_id_en_paragraph_with_doc_score_v2"]
PII = ["pii_regex_v2", "pii_regex_with_counts_fast_v2"]
PII_V1 = ["pii_regex_v1", "pii_regex_with_counts_v2"]  # Dolma raises on empty text: no edge file


def read_jsonl(path: Path) -> list[dict]:
    with gzip.open(path, "rt", encoding="utf-8") as f:
        return [json.loads(line) for line in f]


def expected(group: str, name: str) -> list[dict[str, dict[str, list]]]:
    """Per document: {tagger: {type: spans}} from Dolma's file (local_ft_* renamed to ft_*)."""
    out = []
    for record in read_jsonl(DATA / "expected" / group / f"{name}.jsonl.gz"):
        by_tagger: dict[str, dict[str, list]] = {}
        for key, spans in record["attributes"].items():
            _, tagger, kind = key.split("__", 2)
            by_tagger.setdefault(tagger.removeprefix("local_"), {})[kind] = spans
        out.append(by_tagger)
    return out


def ours(tagger: str, docs: list[Document]) -> list[dict[str, list]]:
    return [{k: format_spans(v) for k, v in r.items()} for r in get_tagger(tagger).tag_batch(docs)]


@pytest.fixture(scope="module")
def corpus() -> dict[str, tuple[list[Document], list[dict]]]:
    return {name: ([Document.from_json(r) for r in read_jsonl(DATA / "documents" / f"{name}.jsonl.gz")],
                   expected("dolma", name)) for name in FILES}


def diff(theirs: dict, mine: dict) -> list[str]:
    problems = []
    for kind in sorted(set(theirs) | set(mine)):
        if kind not in mine or kind not in theirs:
            problems.append(f"{kind}: only in {'ours' if kind in mine else 'dolma'}")
        elif mine[kind] != theirs[kind]:
            problems.append(f"{kind}: ours {mine[kind][:4]} dolma {theirs[kind][:4]}")
    return problems


# Slow taggers are compared on part of the subset to keep the suite fast: the repetition regex
# (Dolma's definition) is quadratic in line length, and per-paragraph fastText runs ~50k paragraphs.
SUBSET = {"ft_lang_id_doc_v1": lambda i, doc: i < 25,
          "ft_lang_id_en_doc_v2": lambda i, doc: i < 25,
          "repetitions_v1": lambda i, doc: len(doc.text) <= 4000,
          "paragraph_repetitions_v1": lambda i, doc: len(doc.text) <= 4000,
          "ft_lang_id_en_paragraph_v2": lambda i, doc: i < 15,
          "ft_lang_id_en_paragraph_with_doc_score_v2": lambda i, doc: i < 15}


@pytest.mark.parametrize("tagger", EXACT)
def test_same_keys_and_values_as_dolma(tagger, corpus):
    problems = []
    keep = SUBSET.get(tagger, lambda i, doc: True)
    for name, (all_docs, all_exp) in corpus.items():
        chosen = [(d, e) for i, (d, e) in enumerate(zip(all_docs, all_exp)) if keep(i, d)]
        docs, exp = [d for d, _ in chosen], [e for _, e in chosen]
        for doc, mine, theirs in zip(docs, ours(tagger, docs), exp):
            problems += [f"{name}/{doc.id}: {p}" for p in diff(theirs.get(tagger, {}), mine)]
    assert not problems, "\n".join(problems[:20])


def _pii_differences(tagger: str, docs, exp, mine_all):
    """Compare PII outputs; returns (doc id, type) pairs where spans differ, after checking that
    `doc_frac` differs exactly by Dolma's defect (its numerator counts the whole-document span)."""
    differing = []
    for doc, mine, theirs in zip(docs, mine_all, exp):
        theirs = dict(theirs.get(tagger, {}))
        mine = dict(mine)
        if "doc_frac" in theirs:
            n = len(doc.text)
            [[_, _, their_frac]] = theirs.pop("doc_frac")
            [[_, _, my_frac]] = mine.pop("doc_frac")
            if n:  # Dolma: (PII characters + len(text)) / len(text); ours: PII characters / len(text)
                assert their_frac >= 1.0
                if mine.get("PHONE_NUMBER") == theirs.get("PHONE_NUMBER") and \
                        mine.get("EMAIL_ADDRESS") == theirs.get("EMAIL_ADDRESS"):
                    assert abs(their_frac - 1.0 - my_frac) < 2e-5, doc.id
            else:
                assert my_frac == -1.0
        for kind in sorted(set(theirs) | set(mine)):
            if theirs.get(kind) != mine.get(kind):
                differing.append((doc.id, kind, mine.get(kind), theirs.get(kind)))
    return differing


# Documents where our phone/e-mail rules deliberately differ from Dolma's (see docs/taggers.md):
# - edge-3: `(555) 123-4567` etc. at the start of a line, and `+1 555 123 4567` / `+44 20 7946 0958`
#   (Dolma misses them or keeps only the last 10 digits);
# - edge-8: an e-mail at the very end of the text (Dolma requires whitespace after it);
# Everything else (the whole dev-corpus subset) must be identical.
ALLOWED_PII_DIFFERENCES = {"edge-3", "edge-8"}


@pytest.mark.parametrize("tagger", PII)
def test_pii_same_as_dolma_except_documented_fixes(tagger, corpus):
    unexpected = []
    for name, (docs, exp) in corpus.items():
        for doc_id, kind, mine, theirs in _pii_differences(tagger, docs, exp, ours(tagger, docs)):
            if doc_id not in ALLOWED_PII_DIFFERENCES:
                unexpected.append(f"{doc_id} {kind}: ours {mine} dolma {theirs}")
    assert not unexpected, "\n".join(unexpected[:20])


@pytest.mark.parametrize("tagger", PII_V1)
def test_pii_v1_same_as_dolma(tagger, corpus):
    unexpected = []
    for name, (docs, _) in corpus.items():
        if name == "edge":
            continue
        exp = expected("dolma_pii_v1", name)
        for doc_id, kind, mine, theirs in _pii_differences(tagger, docs, exp, ours(tagger, docs)):
            unexpected.append(f"{doc_id} {kind}: ours {mine} dolma {theirs}")
    assert not unexpected, "\n".join(unexpected[:20])


def test_pii_empty_text_scores_minus_one_where_dolma_raises():
    doc = Document("e", "")
    for tagger in PII_V1 + PII:
        result = get_tagger(tagger).tag_batch([doc])[0]
        key = "doc_frac" if tagger.endswith("fast_v2") else "doc"
        assert result[key] == [(0, 0, -1.0)]


def test_random_number_same_keys_reproducible_values(corpus):
    """Dolma seeds with (pid+1)*seed, so its values are not reproducible; ours depend on the id."""
    for name, (docs, exp) in corpus.items():
        first = ours("random_number_v1", docs)
        assert first == ours("random_number_v1", docs)
        for doc, mine, theirs in zip(docs, first, exp):
            assert set(mine) == set(theirs["random_number_v1"]) == {"random"}
            [[s, e, score]] = mine["random"]
            assert [s, e] == theirs["random_number_v1"]["random"][0][:2] and 0 <= score < 1
