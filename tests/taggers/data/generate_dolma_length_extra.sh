#!/usr/bin/env bash
# Regenerate tests/taggers/data/dolma_length_extra/ with Dolma 1.2.1 (run once; tests never call Dolma):
# its uniseg_*, olmo_pretokenizer_* and not_alphanum_paragraph_v1 attributes for tests/data/taggers/documents.
#   DOLMA=benchmarks/work/dolma-venv/bin/dolma bash tests/taggers/data/generate_dolma_length_extra.sh
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
DOLMA=${DOLMA:-benchmarks/work/dolma-venv/bin/dolma}
work=$(mktemp -d)
mkdir -p "$work/documents" && cp "$here"/../../data/taggers/documents/*.jsonl.gz "$work/documents/"
"$DOLMA" tag --documents "$work/documents/*.jsonl.gz" --experiment x --processes 2 \
  --taggers uniseg_length_v1 uniseg_length_paragraphs_v1 uniseg_length_paragraphs_with_empty_v1 \
            uniseg_length_paragraphs_with_doc_length_v1 olmo_pretokenizer_v1 olmo_pretokenizer_with_paragraphs_v1 \
            not_alphanum_paragraph_v1
rm -rf "$here/dolma_length_extra" && mkdir -p "$here/dolma_length_extra"
cp "$work"/attributes/x/*.jsonl.gz "$here/dolma_length_extra/"
rm -rf "$work"
