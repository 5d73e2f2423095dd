"""Dolma's langdetect_* and cld2_* taggers, against Dolma 1.2.1 (with langdetect 1.0.9, pycld2 0.42).

Expected values were written by Dolma 1.2.1: the fragments below for twelve hand-written documents
(one `dolma tag --taggers NAME --experiment e` run per tagger), and tests/taggers/data/dolma_langid_taggers/
for the tagger test corpus (`tests/taggers/data/generate_dolma_langid_taggers.sh`). Our langdetect is a
faster computation of the library's algorithm; `test_fast_langdetect_is_the_library_s` compares it with
`langdetect.detector.Detector` itself, bit for bit.
"""

from __future__ import annotations

import gzip
import json
import random
import shutil
from pathlib import Path

import numpy as np
import pytest
from dolma_reference import (
    lines_from_fragments,
    read_lines,
    records_for_taggers,
    tag_documents,
    text_documents,
    write_documents,
)

from dolma_tools.errors import UserError
from dolma_tools.taggers.language_other import (
    FastLangdetect,
    LibraryLangdetect,
    RandomStream,
    langdetect_factory,
    langdetect_model,
)
from dolma_tools.taggers.runner import TagConfig, run_tag
from dolma_tools.text import paragraphs

DATA = Path(__file__).resolve().parent / "data" / "dolma_langid_taggers"
CORPUS = Path(__file__).resolve().parents[1] / "data" / "taggers" / "documents"
LANGDETECT = ["langdetect_doc_v1", "langdetect_doc_en_v1", "langdetect_paragraph_v1", "langdetect_en_paragraph_v1"]
CLD2 = ["cld2_doc_v2", "cld2_paragraph_v2", "cld2_en_doc_v2", "cld2_en_paragraph_v2",
        "cld2_en_paragraph_with_doc_score_v2"]
TAGGERS = LANGDETECT + CLD2

TEXTS = [
    "The quick brown fox jumps over the lazy dog. This sentence is written in English.\n\n"
    "Le renard brun saute par-dessus le chien paresseux, et il est tr\u00e8s content.\n"
    "Der schnelle braune Fuchs springt \u00fcber den faulen Hund.\n",
    "",
    "   \n\t\n",
    "12345 67890 !!! ??? 3.14\n",  # no features: langdetect gives nothing
    # upper-case runs are skipped by langdetect; URLs and e-mails are removed
    "NASA AND THE USA ARE IN CAPITALS. Contact me at john.doe@example.com or https://example.com/page?x=1 today.",
    # control characters: CLD2 rejects the text and its ASCII transliteration, then takes it without them
    "bell\x07 and null\x00 inside an English sentence with enough words to be reliable for the detector.\n",
    "\u8fd9\u662f\u4e00\u4e2a\u4e2d\u6587\u53e5\u5b50\uff0c\u7528\u6765\u6d4b\u8bd5\u8bed\u8a00\u8bc6\u522b\u3002\n"
    "\u65e5\u672c\u8a9e\u306e\u6587\u7ae0\u3067\u3059\u3002\u3072\u3089\u304c\u306a\u3068\u30ab\u30bf\u30ab\u30ca"
    "\u3001\u6f22\u5b57\u304c\u542b\u307e\u308c\u3066\u3044\u307e\u3059\u3002\n"
    "\ud55c\uad6d\uc5b4 \ubb38\uc7a5\ub3c4 \uc788\uc2b5\ub2c8\ub2e4.\n",
    "Ti\u1ebfng Vi\u1ec7t c\u00f3 d\u1ea5u: Tr\u01b0\u1eddng h\u1ecdc, ng\u01b0\u1eddi d\u00e2n, "
    "n\u01b0\u1edbc ngo\u00e0i.\n"
    "Esto es una frase en espa\u00f1ol con muchas palabras comunes para que sea fiable.\n",
    # CLD2 names German `ge` (first two letters of GERMAN), as Dolma
    "Der schnelle braune Fuchs springt \u00fcber den faulen Hund und die Katze schl\u00e4ft auf dem Sofa im "
    "Wohnzimmer.\n",
    # a C1 control: CLD2 rejects the text, takes its ASCII transliteration
    "Ceci est une phrase fran\u00e7aise avec des accents : \u00e9t\u00e9, d\u00e9j\u00e0, tr\u00e8s bien, "
    "\u00e0 bient\u00f4t \x85 fin de la phrase.\n",
    # mostly Han with Latin words: langdetect drops the Latin letters
    "\u6211\u4eec\u4f7f\u7528 Python \u548c GitHub \u6765\u5f00\u53d1\u8fd9\u4e2a\u9879\u76ee\uff0c"
    "\u8fd9\u662f\u4e00\u4e2a\u4e2d\u6587\u53e5\u5b50\uff0c\u7528\u6765\u6d4b\u8bd5\u8bed\u8a00"
    "\u8bc6\u522b\u7684\u6548\u679c\u3002",
    "\u041f\u0440\u0438\u0432\u0435\u0442, \u043a\u0430\u043a \u0434\u0435\u043b\u0430? "
    "\u042d\u0442\u043e \u043f\u0440\u0435\u0434\u043b\u043e\u0436\u0435\u043d\u0438\u0435 "
    "\u043d\u0430 \u0440\u0443\u0441\u0441\u043a\u043e\u043c \u044f\u0437\u044b\u043a\u0435.\n"
    "\u0645\u0631\u062d\u0628\u0627 \u0628\u0643\u0645 \u0641\u064a \u0647\u0630\u0627 "
    "\u0627\u0644\u0646\u0635 \u0627\u0644\u0639\u0631\u0628\u064a \u0627\u0644\u0642\u0635\u064a\u0631\n",
]

# Dolma 1.2.1's attributes per tagger and document (key prefix `e__<tagger>__` written as `e__T__`)
DOLMA_FRAGMENTS = {
    'langdetect_doc_v1': [
        '"e__T__en":[[0,215,0.57143]],"e__T__fr":[[0,215,0.42857]]',
        '',
        '',
        '',
        '"e__T__en":[[0,107,1.0]]',
        '"e__T__en":[[0,94,1.0]]',
        '"e__T__ja":[[0,64,1.0]]',
        '"e__T__vi":[[0,132,1.0]]',
        '"e__T__de":[[0,105,1.0]]',
        '"e__T__fr":[[0,101,1.0]]',
        '"e__T__zh_cn":[[0,50,1.0]]',
        '"e__T__ru":[[0,88,0.71428]],"e__T__ar":[[0,88,0.28571]]',
    ],
    'langdetect_doc_en_v1': [
        '"e__T__en":[[0,215,0.57143]],"e__T__not_en":[[0,215,0.42857]]',
        '"e__T__en":[[0,0,0.0]],"e__T__not_en":[[0,0,1.0]]',
        '"e__T__en":[[0,6,0.0]],"e__T__not_en":[[0,6,1.0]]',
        '"e__T__en":[[0,25,0.0]],"e__T__not_en":[[0,25,1.0]]',
        '"e__T__en":[[0,107,1.0]],"e__T__not_en":[[0,107,0.0]]',
        '"e__T__en":[[0,94,1.0]],"e__T__not_en":[[0,94,0.0]]',
        '"e__T__en":[[0,64,0.0]],"e__T__not_en":[[0,64,1.0]]',
        '"e__T__en":[[0,132,0.0]],"e__T__not_en":[[0,132,1.0]]',
        '"e__T__en":[[0,105,0.0]],"e__T__not_en":[[0,105,1.0]]',
        '"e__T__en":[[0,101,0.0]],"e__T__not_en":[[0,101,1.0]]',
        '"e__T__en":[[0,50,0.0]],"e__T__not_en":[[0,50,1.0]]',
        '"e__T__en":[[0,88,0.0]],"e__T__not_en":[[0,88,1.0]]',
    ],
    'langdetect_paragraph_v1': [
        '"e__T__en":[[0,82,1.0]],"e__T__fr":[[83,159,0.99999]],"e__T__de":[[159,215,1.0]]',
        '',
        '',
        '',
        '"e__T__en":[[0,107,1.0]]',
        '"e__T__en":[[0,94,1.0]]',
        '"e__T__zh_cn":[[0,19,1.0]],"e__T__ja":[[19,50,1.0]],"e__T__ko":[[50,64,1.0]]',
        '"e__T__vi":[[0,54,1.0]],"e__T__es":[[54,132,1.0]]',
        '"e__T__de":[[0,105,1.0]]',
        '"e__T__fr":[[0,101,1.0]]',
        '"e__T__zh_cn":[[0,50,1.0]]',
        '"e__T__ru":[[0,52,1.0]],"e__T__ar":[[52,88,1.0]]',
    ],
    'langdetect_en_paragraph_v1': [
        '"e__T__en":[[0,82,1.0],[83,159,0.0],[159,215,0.0]],"e__T__not_en":[[0,82,0.0],[83,159,1.0],[159,215,1.0]]',
        '',
        '',
        '"e__T__en":[[0,25,0.0]],"e__T__not_en":[[0,25,1.0]]',
        '"e__T__en":[[0,107,1.0]],"e__T__not_en":[[0,107,0.0]]',
        '"e__T__en":[[0,94,1.0]],"e__T__not_en":[[0,94,0.0]]',
        '"e__T__en":[[0,19,0.0],[19,50,0.0],[50,64,0.0]],"e__T__not_en":[[0,19,1.0],[19,50,1.0],[50,64,1.0]]',
        '"e__T__en":[[0,54,0.0],[54,132,0.0]],"e__T__not_en":[[0,54,1.0],[54,132,1.0]]',
        '"e__T__en":[[0,105,0.0]],"e__T__not_en":[[0,105,1.0]]',
        '"e__T__en":[[0,101,0.0]],"e__T__not_en":[[0,101,1.0]]',
        '"e__T__en":[[0,50,0.0]],"e__T__not_en":[[0,50,1.0]]',
        '"e__T__en":[[0,52,0.0],[52,88,0.0]],"e__T__not_en":[[0,52,1.0],[52,88,1.0]]',
    ],
    'cld2_doc_v2': [
        '"e__T__fr":[[0,215,0.65]],"e__T__en":[[0,215,0.34]],"e__T__un":[[0,215,0.0]]',
        '',
        '',
        '',
        '"e__T__en":[[0,107,0.99]],"e__T__un":[[0,107,0.0],[0,107,0.0]]',
        '"e__T__en":[[0,94,0.98]],"e__T__un":[[0,94,0.0],[0,94,0.0]]',
        '"e__T__ja":[[0,64,0.99]],"e__T__un":[[0,64,0.0],[0,64,0.0]]',
        '"e__T__vi":[[0,132,0.99]],"e__T__un":[[0,132,0.0],[0,132,0.0]]',
        '"e__T__ge":[[0,105,0.99]],"e__T__un":[[0,105,0.0],[0,105,0.0]]',
        '"e__T__fr":[[0,101,0.98]],"e__T__un":[[0,101,0.0],[0,101,0.0]]',
        '"e__T__ch":[[0,50,0.8]],"e__T__un":[[0,50,0.0],[0,50,0.0]]',
        '"e__T__ru":[[0,88,0.57]],"e__T__ar":[[0,88,0.41]],"e__T__un":[[0,88,0.0]]',
    ],
    'cld2_paragraph_v2': [
        '"e__T__en":[[0,82,0.98]],"e__T__un":[[0,82,0.0],[0,82,0.0],[83,159,0.0],[83,159,0.0],[159,215,0.0],[159,215,0.0]],"e__T__fr":[[83,159,0.98]],"e__T__ge":[[159,215,0.98]]',
        '',
        '',
        '',
        '"e__T__en":[[0,107,0.99]],"e__T__un":[[0,107,0.0],[0,107,0.0]]',
        '"e__T__en":[[0,94,0.98]],"e__T__un":[[0,94,0.0],[0,94,0.0]]',
        '"e__T__ch":[[0,19,0.98]],"e__T__un":[[0,19,0.0],[0,19,0.0],[19,50,0.0],[19,50,0.0],[50,64,0.0],[50,64,0.0]],"e__T__ja":[[19,50,0.98]],"e__T__ko":[[50,64,0.97]]',
        '"e__T__vi":[[0,54,0.98]],"e__T__un":[[0,54,0.0],[0,54,0.0],[54,132,0.0],[54,132,0.0]],"e__T__sp":[[54,132,0.98]]',
        '"e__T__ge":[[0,105,0.99]],"e__T__un":[[0,105,0.0],[0,105,0.0]]',
        '"e__T__fr":[[0,101,0.98]],"e__T__un":[[0,101,0.0],[0,101,0.0]]',
        '"e__T__ch":[[0,50,0.8]],"e__T__un":[[0,50,0.0],[0,50,0.0]]',
        '"e__T__ru":[[0,52,0.98]],"e__T__un":[[0,52,0.0],[0,52,0.0],[52,88,0.0],[52,88,0.0]],"e__T__ar":[[52,88,0.98]]',
    ],
    'cld2_en_doc_v2': [
        '"e__T__en":[[0,215,0.34]],"e__T__not_en":[[0,215,0.66]]',
        '"e__T__en":[[0,0,0.0]],"e__T__not_en":[[0,0,1.0]]',
        '"e__T__en":[[0,6,0.0]],"e__T__not_en":[[0,6,1.0]]',
        '"e__T__en":[[0,25,0.0]],"e__T__not_en":[[0,25,1.0]]',
        '"e__T__en":[[0,107,0.99]],"e__T__not_en":[[0,107,0.01]]',
        '"e__T__en":[[0,94,0.98]],"e__T__not_en":[[0,94,0.02]]',
        '"e__T__en":[[0,64,0.0]],"e__T__not_en":[[0,64,1.0]]',
        '"e__T__en":[[0,132,0.0]],"e__T__not_en":[[0,132,1.0]]',
        '"e__T__en":[[0,105,0.0]],"e__T__not_en":[[0,105,1.0]]',
        '"e__T__en":[[0,101,0.0]],"e__T__not_en":[[0,101,1.0]]',
        '"e__T__en":[[0,50,0.0]],"e__T__not_en":[[0,50,1.0]]',
        '"e__T__en":[[0,88,0.0]],"e__T__not_en":[[0,88,1.0]]',
    ],
    'cld2_en_paragraph_v2': [
        '"e__T__en":[[0,82,0.98],[83,159,0.0],[159,215,0.0]],"e__T__not_en":[[0,82,0.02],[83,159,1.0],[159,215,1.0]]',
        '',
        '',
        '"e__T__en":[[0,25,0.0]],"e__T__not_en":[[0,25,1.0]]',
        '"e__T__en":[[0,107,0.99]],"e__T__not_en":[[0,107,0.01]]',
        '"e__T__en":[[0,94,0.98]],"e__T__not_en":[[0,94,0.02]]',
        '"e__T__en":[[0,19,0.0],[19,50,0.0],[50,64,0.0]],"e__T__not_en":[[0,19,1.0],[19,50,1.0],[50,64,1.0]]',
        '"e__T__en":[[0,54,0.0],[54,132,0.0]],"e__T__not_en":[[0,54,1.0],[54,132,1.0]]',
        '"e__T__en":[[0,105,0.0]],"e__T__not_en":[[0,105,1.0]]',
        '"e__T__en":[[0,101,0.0]],"e__T__not_en":[[0,101,1.0]]',
        '"e__T__en":[[0,50,0.0]],"e__T__not_en":[[0,50,1.0]]',
        '"e__T__en":[[0,52,0.0],[52,88,0.0]],"e__T__not_en":[[0,52,1.0],[52,88,1.0]]',
    ],
    'cld2_en_paragraph_with_doc_score_v2': [
        '"e__T__en":[[0,82,0.98],[83,159,0.0],[159,215,0.0]],"e__T__not_en":[[0,82,0.02],[83,159,1.0],[159,215,1.0]],"e__T__doc_en":[[0,215,0.37377]],"e__T__doc_not_en":[[0,215,0.62623]]',
        '"e__T__doc_en":[[0,0,0.0]],"e__T__doc_not_en":[[0,0,0.0]]',
        '"e__T__doc_en":[[0,6,0.0]],"e__T__doc_not_en":[[0,6,1.0]]',
        '"e__T__en":[[0,25,0.0]],"e__T__not_en":[[0,25,1.0]],"e__T__doc_en":[[0,25,0.0]],"e__T__doc_not_en":[[0,25,1.0]]',
        '"e__T__en":[[0,107,0.99]],"e__T__not_en":[[0,107,0.01]],"e__T__doc_en":[[0,107,0.99]],"e__T__doc_not_en":[[0,107,0.01]]',
        '"e__T__en":[[0,94,0.98]],"e__T__not_en":[[0,94,0.02]],"e__T__doc_en":[[0,94,0.98]],"e__T__doc_not_en":[[0,94,0.02]]',
        '"e__T__en":[[0,19,0.0],[19,50,0.0],[50,64,0.0]],"e__T__not_en":[[0,19,1.0],[19,50,1.0],[50,64,1.0]],"e__T__doc_en":[[0,64,0.0]],"e__T__doc_not_en":[[0,64,1.0]]',
        '"e__T__en":[[0,54,0.0],[54,132,0.0]],"e__T__not_en":[[0,54,1.0],[54,132,1.0]],"e__T__doc_en":[[0,132,0.0]],"e__T__doc_not_en":[[0,132,1.0]]',
        '"e__T__en":[[0,105,0.0]],"e__T__not_en":[[0,105,1.0]],"e__T__doc_en":[[0,105,0.0]],"e__T__doc_not_en":[[0,105,1.0]]',
        '"e__T__en":[[0,101,0.0]],"e__T__not_en":[[0,101,1.0]],"e__T__doc_en":[[0,101,0.0]],"e__T__doc_not_en":[[0,101,1.0]]',
        '"e__T__en":[[0,50,0.0]],"e__T__not_en":[[0,50,1.0]],"e__T__doc_en":[[0,50,0.0]],"e__T__doc_not_en":[[0,50,1.0]]',
        '"e__T__en":[[0,52,0.0],[52,88,0.0]],"e__T__not_en":[[0,52,1.0],[52,88,1.0]],"e__T__doc_en":[[0,88,0.0]],"e__T__doc_not_en":[[0,88,1.0]]',
    ],
}


def test_exact_lines_as_dolma(tmp_path: Path):
    assert (tag_documents(tmp_path, text_documents(TEXTS), TAGGERS)
            == lines_from_fragments(DOLMA_FRAGMENTS, TAGGERS, len(TEXTS)))


def _assert_corpus_as_dolma(tmp_path: Path, taggers: list[str], files: list[str]) -> None:
    docs = tmp_path / "documents"
    docs.mkdir(parents=True)
    for name in files:
        shutil.copy(CORPUS / name, docs / name)
    run_tag(TagConfig(documents=[str(docs / "*.jsonl.gz")], taggers=taggers, experiment="x", debug=True),
            progress=False)
    for name in files:
        ours = read_lines(tmp_path / "attributes" / "x" / name)
        if taggers == TAGGERS:  # Dolma's file holds all nine taggers: the lines are the same bytes
            assert ours == read_lines(DATA / name), name
        else:
            assert [json.loads(line) for line in ours] == records_for_taggers(DATA / name, taggers), name


def test_tagger_corpus_as_dolma(tmp_path: Path):
    # about 2 s of CPU: three CLD2 taggers and langdetect_doc_v1 on all 313 documents, a langdetect
    # paragraph tagger on the two smallest files (the exact-lines test covers all nine; the slow one all of them)
    everything = sorted(p.name for p in DATA.glob("*.jsonl.gz"))
    _assert_corpus_as_dolma(tmp_path / "a", ["cld2_doc_v2", "cld2_paragraph_v2", "cld2_en_paragraph_with_doc_score_v2",
                                             "langdetect_doc_v1"], everything)
    _assert_corpus_as_dolma(tmp_path / "b", ["langdetect_en_paragraph_v1"], ["edge.jsonl.gz", "news.jsonl.gz"])


@pytest.mark.slow
def test_whole_tagger_corpus_as_dolma(tmp_path: Path):
    # all nine taggers on all 313 documents (14,616 paragraphs), byte for byte: about 12 s
    _assert_corpus_as_dolma(tmp_path, TAGGERS, sorted(p.name for p in DATA.glob("*.jsonl.gz")))


def _random_texts(count: int, seed: int) -> list[str]:
    """Words from several scripts, upper-case runs, digits, URLs, e-mails and space runs."""
    rng = random.Random(seed)
    alphabets = ["abcdefghijklmnopqrstuvwxyz", "ABCDEFGHIJKLMNOPQRSTUVWXYZ", "\u00e9\u00e8\u00e0\u00fc\u00f6\u00df\u00e7",
                 "\u0430\u0431\u0432\u0433\u0434\u0435\u0436", "\u03b1\u03b2\u03b3\u03b4", "\u4e00\u4e8c\u4e09\u4eba\u5927",
                 "\u3042\u3044\u30a2\u30a4", "\uac00\ub098", "\u0627\u0628\u062a\u06cc", "0123456789",
                 ".,;!?-'\"()", "a\u0300e\u0301o\u0303", "\u0219\u021b\u1ea0\u1ef9"]
    fixed = ["http://example.com/x", "mail@example.org", "   ", "\n", "\u2014", "THE USA"]
    texts = []
    for _ in range(count):
        words = []
        for _ in range(rng.randint(0, 40)):
            if rng.random() < 0.1:
                words.append(rng.choice(fixed))
            else:
                letters = "".join(rng.sample(alphabets, 2))
                words.append("".join(rng.choice(letters) for _ in range(rng.randint(1, 9))))
        texts.append(" ".join(words))
    return texts


def test_fast_langdetect_is_the_library_s():
    from langdetect import PROFILES_DIRECTORY, DetectorFactory, LangDetectException

    factory = langdetect_factory(PROFILES_DIRECTORY, DetectorFactory)  # the same (sorted) profile order
    factory.set_seed(0)

    def library(text: str) -> list[tuple[str, float]]:
        detector = factory.create()
        detector.append(text)
        try:
            return [(lang.lang, lang.prob) for lang in detector.get_probabilities()]
        except LangDetectException:
            return []

    with gzip.open(CORPUS / "multilingual.jsonl.gz", "rt", encoding="utf-8") as f:
        documents = [json.loads(line)["text"] for line in f][:6]
    texts = _random_texts(100, seed=1) + documents + [p.text for p in paragraphs(documents[0])]
    assert langdetect_model().probabilities(texts) == [library(t) for t in texts]  # exact floats


def test_fast_path_is_used_when_it_agrees_and_the_library_when_not(tmp_path: Path,
                                                                   monkeypatch: pytest.MonkeyPatch):
    assert isinstance(langdetect_model(), FastLangdetect)  # it agrees with the library here
    write_documents(tmp_path / "documents" / "t.jsonl.gz", text_documents(TEXTS))
    expected = [DOLMA_FRAGMENTS["langdetect_doc_v1"][i].replace("e__T__", "e__langdetect_doc_v1__")
                for i in range(len(TEXTS))]
    # a fast path that is off in the last bits (as on a Python whose `random` or `sum` differ)
    real = FastLangdetect.probabilities
    monkeypatch.setattr(FastLangdetect, "probabilities",
                        lambda self, texts: [[(lang, p * (1 + 1e-12)) for lang, p in pred] for pred in real(self, texts)])
    langdetect_model.cache_clear()
    try:
        with pytest.warns(RuntimeWarning, match="using the library"):
            assert isinstance(langdetect_model(), LibraryLangdetect)
        run_tag(TagConfig(documents=[str(tmp_path / "documents" / "*.gz")], taggers=["langdetect_doc_v1"],
                          experiment="e", debug=True), progress=False)
    finally:
        langdetect_model.cache_clear()
    lines = read_lines(tmp_path / "attributes" / "e" / "t.jsonl.gz")
    assert [line.split('"attributes":{')[1].rsplit('},"source"')[0] for line in lines] == expected


class _CountingRandom(random.Random):
    """random.Random counting the 32-bit words its draws take."""

    words = 0

    def getrandbits(self, k: int) -> int:
        self.words += (k + 31) // 32
        return super().getrandbits(k)


def test_random_stream_draws_as_python_random():
    # a tiny first window and stream, so the window widens and the stream grows
    stream = RandomStream(seed=0, size=8)
    stream.WINDOW = 2
    n = np.array([1, 2, 3, 5, 9, 1000, 65537, 30000, 7, 4])
    starts = np.array([0, 4, 9, 100, 3, 0, 50, 1, 2, 1000])
    count = np.array([1, 5, 5, 1, 5, 5, 5, 1, 5, 5])
    values, used = stream.choices(starts, n, 32 - np.array([int(x).bit_length() for x in n]), count)
    expected, expected_used = [], []
    for start, size, k in zip(starts.tolist(), n.tolist(), count.tolist()):
        rng = _CountingRandom(0)
        if start:
            rng.getrandbits(32 * start)
        rng.words = 0
        expected += [rng.choice(range(size)) for _ in range(k)]
        expected_used.append(rng.words)
    assert values.tolist() == expected and used.tolist() == expected_used


@pytest.mark.parametrize("tagger, package", [("langdetect_doc_v1", "langdetect"), ("cld2_en_doc_v2", "pycld2"),
                                             ("cld2_doc_v2", "anyascii")])
def test_missing_library_fails_before_work(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, tagger: str, package: str):
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == package else real(name, *a))
    write_documents(tmp_path / "documents" / "t.jsonl.gz", ["text"])
    with pytest.raises(UserError, match=rf"needs the package {package}: pip install 'dolma-tools\[langid\]'"):
        run_tag(TagConfig(documents=[str(tmp_path / "documents" / "*.gz")], taggers=[tagger], experiment="e"),
                progress=False)
    assert not (tmp_path / "attributes").exists()
