"""Dolma's taggers whose model or tokenizer Dolma downloads, against Dolma 1.2.1.

`dclm-oh-eli5`, `dolma17-quality`, `code_composition` (fastText, `model=`) and
`tokenizers_EleutherAI_GPT_NeoX_20B`, `dolma_v2_tokenizer` (`tokenizer=`). The expected attribute
files in tests/taggers/data/dolma_model_taggers/ were written by Dolma 1.2.1 reading the same tiny
fastText models and stand-in tokenizer files instead of downloading
(`tests/taggers/data/generate_dolma_model_taggers.sh`): `x/` for the tagger corpus, the code
fixture and hand-written edge cases, `y/` for `dolma17-quality` (and `dolma_v2_tokenizer` with a
padding tokenizer) on the same documents without the blank ones, on which Dolma fails.
"""

from __future__ import annotations

import gzip
import importlib.util
import json
import re
from pathlib import Path

import pytest
from dolma_reference import read_lines

from dolma_tools.errors import UserError
from dolma_tools.taggers import Document, get_tagger
from dolma_tools.taggers.fasttext_models import Dolma17Quality
from dolma_tools.taggers.language import load_fasttext
from dolma_tools.taggers.runner import TagConfig, run_tag

HERE = Path(__file__).resolve().parent / "data"
DATA = HERE / "dolma_model_taggers"
MODELS = DATA / "models"
SOURCES = {**{p.name: p for p in (HERE.parents[1] / "data" / "taggers" / "documents").glob("*.jsonl.gz")},
           "code.jsonl.gz": HERE / "dolma_code_taggers" / "documents" / "code.jsonl.gz",
           "model_edge.jsonl.gz": DATA / "documents" / "model_edge.jsonl.gz"}
# the small files whole, and the first documents of the big ones: about 2 s on 2 cores
SUBSET = {"edge.jsonl.gz": None, "model_edge.jsonl.gz": None, "news.jsonl.gz": None, "web.jsonl.gz": None,
          "code.jsonl.gz": 40, "forums.jsonl.gz": 15, "reviews.jsonl.gz": 15, "books.jsonl.gz": 5,
          "multilingual.jsonl.gz": 10, "speeches.jsonl.gz": 3}


def _inputs_module():
    spec = importlib.util.spec_from_file_location("make_inputs", HERE / "make_dolma_model_taggers_inputs.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def tokenizers(tmp_path_factory) -> dict[str, str]:
    """The stand-in tokenizer files Dolma read, made again the same way."""
    return _inputs_module().write_standin_tokenizers(tmp_path_factory.mktemp("tokenizers"))


def _tag_as_dolma(tmp_path: Path, expected_dir: Path, experiment: str, taggers: list[str],
                  files: dict[str, int | None]) -> None:
    """Tag the documents Dolma tagged (the first `n` of each file; for `y/`, those it kept) and
    compare the attribute lines."""
    docs = tmp_path / "documents"
    docs.mkdir(parents=True)
    expected: dict[str, list[str]] = {}
    for name, n in files.items():
        expected[name] = read_lines(expected_dir / name)[:n]
        ids = {json.loads(line)["id"] for line in expected[name]}
        with gzip.open(docs / name, "wt", encoding="utf-8") as f:
            f.writelines(line + "\n" for line in read_lines(SOURCES[name]) if json.loads(line)["id"] in ids)
    run_tag(TagConfig(documents=[str(docs / "*.jsonl.gz")], taggers=taggers, experiment=experiment, debug=True),
            progress=False)
    for name in files:
        assert read_lines(tmp_path / "attributes" / experiment / name) == expected[name], name


def _x_taggers(tokenizers: dict[str, str]) -> list[str]:
    return [f"dclm-oh-eli5:model={MODELS / 'dclm.bin'}", f"code_composition:model={MODELS / 'code_composition.bin'}",
            f"tokenizers_EleutherAI_GPT_NeoX_20B:tokenizer={tokenizers['neox']}",
            f"dolma_v2_tokenizer:tokenizer={tokenizers['dolma2']}"]


def _y_taggers(tokenizers: dict[str, str]) -> list[str]:
    return [f"dolma17-quality:model={MODELS / 'dolma17.bin'}",
            f"dolma_v2_tokenizer:tokenizer={tokenizers['dolma2_padded']}"]


def test_dclm_code_composition_and_tokenizers_as_dolma(tmp_path: Path, tokenizers: dict[str, str]):
    _tag_as_dolma(tmp_path, DATA / "x", "x", _x_taggers(tokenizers), SUBSET)


def test_dolma17_quality_and_padded_tokenizer_as_dolma(tmp_path: Path, tokenizers: dict[str, str]):
    _tag_as_dolma(tmp_path, DATA / "y", "y", _y_taggers(tokenizers), SUBSET)


@pytest.mark.slow
def test_all_documents_as_dolma(tmp_path: Path, tokenizers: dict[str, str]):
    everything = {name: None for name in SOURCES}
    _tag_as_dolma(tmp_path / "x", DATA / "x", "x", _x_taggers(tokenizers), everything)
    _tag_as_dolma(tmp_path / "y", DATA / "y", "y", _y_taggers(tokenizers), everything)


def test_dolma17_classifies_a_text_without_words_as_the_empty_string():
    # Dolma 1.2.1 stops on these (it unpacks an empty token list); ours classify ""
    tagger = get_tagger("dolma17-quality", model=str(MODELS / "dolma17.bin"))
    labels, probs = load_fasttext(str(MODELS / "dolma17.bin")).predict("", k=-1)
    expected = {label.removeprefix("__label__"): float(p) for label, p in zip(labels, probs)}
    for text in ["", " \n\t", "\u3000\u2028\x85\xa0"]:
        result = tagger.tag_batch([Document(id="d", text=text)])[0]
        assert {t: spans[0][2] for t, spans in result.items()} == pytest.approx(expected, abs=0)
        assert all(spans == [(0, len(text), spans[0][2])] for spans in result.values())


def test_dolma17_splits_words_as_the_tokenizers_library():
    # Dolma 1.7 strips and splits with tokenizers' Strip and WhitespaceSplit (Unicode White_Space)
    from tokenizers import normalizers, pre_tokenizers

    strip, split = normalizers.Strip(), pre_tokenizers.WhitespaceSplit()
    candidates = [chr(c) for c in range(0x3100) if chr(c).isspace() or not chr(c).isprintable()]
    candidates += ["\u200b", "\u205f", "\u3000", "\ufeff"]
    for c in candidates:
        text = f"{c}a{c}{c}b {c}c{c}"
        words = [w for w, _ in split.pre_tokenize_str(strip.normalize_str(text))]
        assert Dolma17Quality.prepare(text) == " ".join(words), repr(c)


@pytest.mark.parametrize("spec, message", [
    ("dclm-oh-eli5", re.escape("needs the option model: --taggers dclm-oh-eli5:model=VALUE (a copy of the fastText "
                               "model Dolma downloads, https://huggingface.co/mlfoundations/fasttext-oh-eli5/")),
    ("dolma17-quality", "needs the option model.*dolma-artifacts.org/fasttext_models/dolma-1_7/"
                        "cc_wiki_wikiref_sw_pes2o_adult_fakenews_math_books_openhermes.bin"),
    ("code_composition:model=", "needs the option model.*hf://techarb/code-prose-composition/"
                                "code-comment-prose-model.bin"),
    ("code_composition:model=/no/such/model.bin", "fastText model not found: /no/such/model.bin"),
    ("tokenizers_EleutherAI_GPT_NeoX_20B", "needs the option tokenizer: --taggers "
                                           "tokenizers_EleutherAI_GPT_NeoX_20B:tokenizer=VALUE .*EleutherAI/gpt-neox-20B"),
    ("dolma_v2_tokenizer", "needs the option tokenizer.*allenai/dolma2-tokenizer's tokenizer.json"),
    ("dolma_v2_tokenizer:tokenizer=/no/tokenizer.json", "tokenizer file not found: /no/tokenizer.json "
                                                        r"\(Dolma downloads allenai/dolma2-tokenizer"),
])
def test_missing_model_or_tokenizer_fails_before_any_work(tmp_path: Path, spec: str, message: str):
    docs = tmp_path / "documents"
    docs.mkdir()
    (docs / "d.jsonl").write_text('{"id": "a", "text": "x"}\n')
    with pytest.raises(UserError, match=message):
        run_tag(TagConfig(documents=[str(docs / "*.jsonl")], taggers=[spec], experiment="e"), progress=False)
    assert not (tmp_path / "attributes").exists()


def test_model_and_tokenizer_on_s3(s3_server, tokenizers: dict[str, str]):
    s3_server.create_bucket(Bucket="artifacts")
    s3_server.put_object(Bucket="artifacts", Key="dclm.bin", Body=(MODELS / "dclm.bin").read_bytes())
    s3_server.put_object(Bucket="artifacts", Key="dolma2.json", Body=Path(tokenizers["dolma2"]).read_bytes())
    docs = [Document(id="a", text="The wheat exporter denied it.\nNo kickbacks were paid."), Document(id="b", text="")]
    for remote, local in [("dclm-oh-eli5:model=s3://artifacts/dclm.bin", f"dclm-oh-eli5:model={MODELS / 'dclm.bin'}"),
                          ("dolma_v2_tokenizer:tokenizer=s3://artifacts/dolma2.json",
                           f"dolma_v2_tokenizer:tokenizer={tokenizers['dolma2']}")]:
        assert get_tagger(remote).tag_batch(docs) == get_tagger(local).tag_batch(docs)
    with pytest.raises(UserError, match="tokenizer file not found: s3://artifacts/none.json"):
        get_tagger("dolma_v2_tokenizer:tokenizer=s3://artifacts/none.json")
