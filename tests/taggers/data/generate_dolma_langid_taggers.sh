#!/usr/bin/env bash
# Regenerate tests/taggers/data/dolma_langid_taggers/ with Dolma 1.2.1 (run once; tests never call Dolma):
# its langdetect_* and cld2_* attributes for tests/data/taggers/documents. Dolma's venv needs the
# libraries: benchmarks/work/dolma-venv/bin/pip install langdetect==1.0.9 pycld2==0.42
#   DOLMA=benchmarks/work/dolma-venv/bin/dolma bash tests/taggers/data/generate_dolma_langid_taggers.sh
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
DOLMA=${DOLMA:-benchmarks/work/dolma-venv/bin/dolma}
work=$(mktemp -d)
mkdir -p "$work/documents" && cp "$here"/../../data/taggers/documents/*.jsonl.gz "$work/documents/"
"$DOLMA" tag --documents "$work/documents/*.jsonl.gz" --experiment x --processes 2 \
  --taggers langdetect_doc_v1 langdetect_doc_en_v1 langdetect_paragraph_v1 langdetect_en_paragraph_v1 \
            cld2_doc_v2 cld2_paragraph_v2 cld2_en_doc_v2 cld2_en_paragraph_v2 cld2_en_paragraph_with_doc_score_v2
rm -rf "$here/dolma_langid_taggers" && mkdir -p "$here/dolma_langid_taggers"
cp "$work"/attributes/x/*.jsonl.gz "$here/dolma_langid_taggers/"
rm -rf "$work"
