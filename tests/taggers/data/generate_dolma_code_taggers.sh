#!/usr/bin/env bash
# Regenerate tests/taggers/data/dolma_code_taggers/attributes/ with Dolma 1.2.1 (run once; tests never call Dolma):
# its code_* taggers on documents/code.jsonl.gz and cc_re, cc_re_fast on documents/html.jsonl.gz (the
# documents come from make_dolma_code_taggers_inputs.py). Dolma's code taggers need its `code` extra:
#   benchmarks/work/dolma-venv/bin/pip install beautifulsoup4 detect-secrets==1.4.0   # (pygments is there)
#   DOLMA=benchmarks/work/dolma-venv/bin/dolma bash tests/taggers/data/generate_dolma_code_taggers.sh
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)/dolma_code_taggers"
DOLMA=${DOLMA:-benchmarks/work/dolma-venv/bin/dolma}
work=$(mktemp -d)
mkdir -p "$work/code/documents" "$work/html/documents"
cp "$here/documents/code.jsonl.gz" "$work/code/documents/"
cp "$here/documents/html.jsonl.gz" "$work/html/documents/"
"$DOLMA" tag --documents "$work/code/documents/*.jsonl.gz" --experiment x --processes 1 \
  --taggers code_copyright_comments_v1 code_redpajama_taggers_v1 code_starcoder_taggers_v1 \
            code_starcoder_taggers_v2 code_secrets_v1
"$DOLMA" tag --documents "$work/html/documents/*.jsonl.gz" --experiment x --processes 1 --taggers cc_re cc_re_fast
rm -rf "$here/attributes" && mkdir -p "$here/attributes"
cp "$work"/code/attributes/x/*.jsonl.gz "$work"/html/attributes/x/*.jsonl.gz "$here/attributes/"
rm -rf "$work"
