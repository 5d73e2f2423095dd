#!/usr/bin/env bash
# Regenerate tests/taggers/data/dolma_url_taggers/dolma/ with Dolma 1.2.1 (run once; tests never call Dolma):
# the attributes of Dolma's 27 URL taggers (metadata.url against block/allow lists).
#   DOLMA=benchmarks/work/dolma-venv/bin/dolma bash tests/taggers/data/generate_dolma_url_taggers.sh
# Dolma downloads its lists; dolma_offline_url_lists/sitecustomize.py makes each tagger read the small
# files under dolma_url_taggers/lists/ named for it in dolma_url_taggers/lists.json instead (the test
# passes the same files with list=).
# dolma/entries.json holds the set each list format makes of its files (Dolma's `blocklist`), one
# tagger per format and file set. documents.jsonl runs through all 27; documents_raising.jsonl holds URLs on which Dolma's allowlist_*
# (IPv6 hosts) and ABP (hosts without a dot plus a port) taggers raise, so it runs through the others.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
data="$here/dolma_url_taggers"
DOLMA=${DOLMA:-benchmarks/work/dolma-venv/bin/dolma}
PYTHON=${PYTHON:-.venv/bin/python}
names() {  # the tagger names in lists.json; with an argument, those not matching that regex
  "$PYTHON" -c "import json, re, sys; print(' '.join(n for n in json.load(open(sys.argv[1]))
                if len(sys.argv) < 3 or not re.search(sys.argv[2], n)))" "$data/lists.json" "$@"
}
work=$(mktemp -d)
tag() {  # tag FILE TAGGERS...
  local name
  name=$(basename "$1" .jsonl)
  mkdir -p "$work/run_$name/documents" && gzip -nc "$data/$1" > "$work/run_$name/documents/$name.jsonl.gz"
  shift
  PYTHONPATH="$here/dolma_offline_url_lists${PYTHONPATH:+:$PYTHONPATH}" DOLMA_TOOLS_URL_LISTS="$data/lists.json" \
    "$DOLMA" tag --documents "$work/run_$name/documents/*.jsonl.gz" --experiment x --processes 1 --taggers "$@"
  cp "$work/run_$name/attributes/x/$name.jsonl.gz" "$data/dolma/"
}
rm -rf "$data/dolma" && mkdir -p "$data/dolma"
# shellcheck disable=SC2046  # one word per tagger name
tag documents.jsonl $(names)
# shellcheck disable=SC2046
tag documents_raising.jsonl $(names '^(allowlist|oisd|brave)_')
rm -rf "$work"
PYTHONPATH="$here/dolma_offline_url_lists${PYTHONPATH:+:$PYTHONPATH}" DOLMA_TOOLS_URL_LISTS="$data/lists.json" \
  "$(dirname "$DOLMA")/python" - "$data/dolma/entries.json" <<'PY'
import json, sys
from dolma.core.registry import TaggerRegistry
names = ["domain_blocklist_utp_v1", "domain_blocklist_phishing_v1", "link_blocklist_phishing_v1",
         "blocklist_project_social_v1", "blocklist_hosts_porn_v1", "allowlist_wikidata_v1"]
with open(sys.argv[1], "w") as f:
    json.dump({n: sorted(TaggerRegistry.get(n)().blocklist) for n in names}, f, indent=1, ensure_ascii=False)
PY
