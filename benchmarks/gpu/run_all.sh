#!/usr/bin/env bash
# Run both GPU benchmarks (kernels.py, train_throughput.py) and print a short table.
# Usage: benchmarks/gpu/run_all.sh [--quick | --cpu-check] [--out DIR]
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(cd "$here/../.." && pwd)"
py="${PYTHON:-$repo/.venv/bin/python}"
[ -x "$py" ] || py="$(command -v python3)"
exec "$py" "$here/run_all.py" "$@"
