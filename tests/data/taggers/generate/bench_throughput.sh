#!/usr/bin/env bash
# Throughput of `char_length_v1 c4_v2 gopher_v1 pii_regex_with_counts_fast_v2`, one process each:
# Dolma 1.2.1 vs dolma-tools on ~20 MB of the dev corpus (books, news, reviews-0000, forums, multilingual).
#   bash tests/data/taggers/generate/bench_throughput.sh
set -euo pipefail
DOLMA=${DOLMA:-/work/dolma-venv/bin/dolma}
OURS=${OURS:-$(cd "$(dirname "$0")/../../../.." && pwd)/.venv/bin/dolma}
DEV=${DEV:-/work/shared/corpora/dev/documents}
work=$(mktemp -d)
mkdir -p "$work/documents"
for f in books/books-0000 news/news-0000 reviews/reviews-0000 forums/forums-0000 multilingual/udhr-0000; do
  cp "$DEV/$f.json.gz" "$work/documents/$(basename $f).json.gz"
done
echo "input: $(zcat "$work"/documents/*.gz | wc -c) bytes, $(zcat "$work"/documents/*.gz | wc -l) documents"
TAGGERS="char_length_v1 c4_v2 gopher_v1 pii_regex_with_counts_fast_v2"
# wall seconds and CPU seconds (user+sys, children included): CPU time is the fair number on a shared machine
measure() { python3 - "$@" <<'PY'
import resource, subprocess, sys, time
t = time.time()
subprocess.run(sys.argv[1:], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=True)
r = resource.getrusage(resource.RUSAGE_CHILDREN)
print(f"{time.time() - t:.2f} {r.ru_utime + r.ru_stime:.2f}")
PY
}
n=$(zcat "$work"/documents/*.gz | wc -l)
read dw dc < <(measure "$DOLMA" tag --documents "$work/documents/*.json.gz" --experiment dolma --processes 1 --taggers $TAGGERS)
read ow oc < <(measure "$OURS" tag --documents "$work/documents/*.json.gz" --experiment ours --debug --taggers $TAGGERS)
python3 - "$n" "$dw" "$dc" "$ow" "$oc" <<'PY'
import sys
n, dw, dc, ow, oc = map(float, sys.argv[1:])
print(f"dolma 1.2.1 : wall {dw:6.1f} s ({n / dw:5.0f} docs/s)   cpu {dc:6.1f} s ({n / dc:5.0f} docs/cpu-s)")
print(f"dolma-tools : wall {ow:6.1f} s ({n / ow:5.0f} docs/s)   cpu {oc:6.1f} s ({n / oc:5.0f} docs/cpu-s)")
print(f"speed-up    : wall {dw / ow:.2f}x   cpu {dc / oc:.2f}x")
PY
rm -rf "$work"
