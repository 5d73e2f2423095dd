#!/usr/bin/env bash
# Throughput of the langdetect_* and cld2_* taggers, one process each: Dolma 1.2.1 vs dolma-tools on
# the tagger test corpus (313 documents, 2.4 M characters, 14,616 paragraphs).
#   bash tests/taggers/data/bench_langid_taggers.sh
set -euo pipefail
root="$(cd "$(dirname "$0")/../../.." && pwd)"
DOLMA=${DOLMA:-$root/benchmarks/work/dolma-venv/bin/dolma}
OURS=${OURS:-$root/.venv/bin/dolma}
work=$(mktemp -d)
mkdir -p "$work/documents" && cp "$root"/tests/data/taggers/documents/*.jsonl.gz "$work/documents/"
n=$(zcat "$work"/documents/*.gz | wc -l)
# wall seconds and CPU seconds (user+sys, children included): CPU time is the fair number on a shared machine
measure() { python3 - "$@" <<'PY'
import resource, subprocess, sys, time
t = time.time()
subprocess.run(sys.argv[1:], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=True)
r = resource.getrusage(resource.RUSAGE_CHILDREN)
print(f"{time.time() - t:.2f} {r.ru_utime + r.ru_stime:.2f}")
PY
}
for group in "langdetect_doc_v1 langdetect_doc_en_v1 langdetect_paragraph_v1 langdetect_en_paragraph_v1" \
             "cld2_doc_v2 cld2_paragraph_v2 cld2_en_doc_v2 cld2_en_paragraph_v2 cld2_en_paragraph_with_doc_score_v2"; do
  rm -rf "$work/attributes"
  read dw dc < <(measure "$DOLMA" tag --documents "$work/documents/*.jsonl.gz" --experiment dolma --processes 1 --taggers $group)
  read ow oc < <(measure "$OURS" tag --documents "$work/documents/*.jsonl.gz" --experiment ours --debug --taggers $group)
  cmp <(zcat "$work"/attributes/dolma/*.gz | sed 's/"dolma__/"X__/g') <(zcat "$work"/attributes/ours/*.gz | sed 's/"ours__/"X__/g') \
    && same="identical" || same="DIFFERENT"
  python3 - "$group" "$n" "$dw" "$dc" "$ow" "$oc" "$same" <<'PY'
import sys
group, (n, dw, dc, ow, oc), same = sys.argv[1], map(float, sys.argv[2:7]), sys.argv[7]
print(group)
print(f"  dolma 1.2.1 : wall {dw:6.1f} s ({n / dw:5.1f} docs/s)   cpu {dc:6.1f} s ({n / dc:5.1f} docs/cpu-s)")
print(f"  dolma-tools : wall {ow:6.1f} s ({n / ow:5.1f} docs/s)   cpu {oc:6.1f} s ({n / oc:5.1f} docs/cpu-s)")
print(f"  speed-up    : wall {dw / ow:.1f}x   cpu {dc / oc:.1f}x   attributes {same}")
PY
done
rm -rf "$work"
