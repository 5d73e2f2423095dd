#!/usr/bin/env python
"""Run the GPU benchmarks in one call and print a short summary table.

    benchmarks/gpu/run_all.sh                 # kernels (1B and 7B shapes) + training throughput
    benchmarks/gpu/run_all.sh --quick         # kernels at 1B shapes only, 10 timed training steps
    benchmarks/gpu/run_all.sh --cpu-check     # no GPU: kernels under the Triton interpreter, tiny trainer

Runs benchmarks/gpu/kernels.py (--json) and benchmarks/gpu/train_throughput.py (--json) as
subprocesses, keeps their full output and JSON under --out (default benchmarks/work/gpu/), then
prints: per kernel and shape, ours vs the fastest other implementation (forward + backward ms)
and the bar verdicts; per kernel set, training tokens/s, MFU and peak memory.
Exit status: 0 when both ran, 1 otherwise (each script's own status is in the table).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]


def run(cmd: list[str], log: Path, timeout: float) -> tuple[int, float, str]:
    start = time.perf_counter()
    try:
        proc = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, timeout=timeout)
        out, rc = proc.stdout + proc.stderr, proc.returncode
    except subprocess.TimeoutExpired as exc:
        out, rc = f"{exc.stdout or ''}{exc.stderr or ''}\ntimed out after {timeout:.0f} s", 124
    log.write_text("$ " + " ".join(cmd) + "\n" + (out if isinstance(out, str) else out.decode(errors="replace")))
    return rc, time.perf_counter() - start, out if isinstance(out, str) else ""


def _total(r: dict) -> float | None:
    if r.get("fwd_ms") is None:
        return None
    return r["fwd_ms"] + (r.get("bwd_ms") or 0.0)


def kernel_table(data: dict) -> list[str]:
    groups: dict[tuple[str, str], dict[str, dict]] = {}
    for r in data.get("rows", []):
        groups.setdefault((r["kernel"], r["shape"]), {})[r["impl"]] = r
    lines = [f"{'kernel':<30} {'shape':<30} {'ours fwd+bwd ms':>15} {'best other':>24} {'speed-up':>8}  check"]
    for (kernel, shape), impls in groups.items():
        ours = next((r for name, r in impls.items() if name.startswith("ours")), None)
        others = [(name, _total(r)) for name, r in impls.items() if not name.startswith("ours") and _total(r)]
        best = min(others, key=lambda x: x[1]) if others else None
        t_ours = _total(ours) if ours else None
        speed = f"{best[1] / t_ours:.2f}x" if best and t_ours else "-"
        best_txt = f"{best[0]} {best[1]:.3f}" if best else "-"
        lines.append(f"{kernel:<30} {shape:<30} {t_ours if t_ours is None else round(t_ours, 3)!s:>15} "
                     f"{best_txt:>24} {speed:>8}  {ours.get('ok') if ours else '-'}")
    return lines


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--cpu-check", action="store_true", help="no GPU needed: interpreter kernels, tiny trainer")
    ap.add_argument("--quick", action="store_true", help="1B shapes only and fewer training steps")
    ap.add_argument("--out", default=str(REPO / "benchmarks" / "work" / "gpu"))
    ap.add_argument("--timeout", type=float, default=1800, help="seconds per script")
    args = ap.parse_args(argv)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    py = sys.executable

    kernels_cmd = [py, str(HERE / "kernels.py"), "--json", str(out / "kernels.json")]
    train_cmd = [py, str(HERE / "train_throughput.py"), "--json"]
    if args.cpu_check:
        kernels_cmd += ["--cpu-check"]
        train_cmd += ["--tiny", "--device", "cpu"]
    elif args.quick:
        kernels_cmd += ["--models", "1b"]
        train_cmd += ["--steps", "10", "--warmup", "3"]

    status = 0
    print(f"== kernels: {' '.join(kernels_cmd[1:])}", flush=True)
    (out / "kernels.json").unlink(missing_ok=True)
    rc, secs, _ = run(kernels_cmd, out / "kernels.log", args.timeout)
    print(f"   exit {rc} in {secs:.0f} s (full output: {out / 'kernels.log'})")
    if (out / "kernels.json").exists():
        data = json.loads((out / "kernels.json").read_text())
        print(f"   device {data.get('device')}, {data.get('dtype')}, copy bandwidth {data.get('copy_gbs', 0):.0f} GB/s")
        for line in kernel_table(data):
            print("   " + line)
        for verdict in data.get("bars", []):
            print("   " + verdict)
    else:
        print("   no results: " + _tail(out / "kernels.log"))
    status |= rc != 0

    print(f"\n== training throughput: {' '.join(train_cmd[1:])}", flush=True)
    rc, secs, text = run(train_cmd, out / "train_throughput.log", args.timeout)
    print(f"   exit {rc} in {secs:.0f} s (full output: {out / 'train_throughput.log'})")
    results = []
    for line in text.splitlines():
        line = line.strip()
        if line.startswith("{"):
            try:
                results.append(json.loads(line))
            except ValueError:
                pass
    if results:
        (out / "train_throughput.json").write_text(json.dumps(results, indent=1))
        print(f"   {'model':<10} {'kernels':<8} {'device':<28} {'tokens/s':>12} {'MFU':>7} {'peak GB':>8}")
        for r in results:
            mfu = f"{100 * r['mfu']:.1f}%" if r.get("mfu") is not None else "n/a"
            print(f"   {r['model']:<10} {r['kernels']:<8} {r['device'][:28]:<28} {r['tokens_per_second']:>12,.0f} "
                  f"{mfu:>7} {r['peak_memory_gb']:>8}")
    else:
        print("   no results: " + _tail(out / "train_throughput.log"))
    status |= rc != 0
    return int(status)


def _tail(path: Path) -> str:
    try:
        lines = [ln for ln in path.read_text().splitlines() if ln.strip()]
    except OSError:
        return "?"
    return lines[-1][:200] if lines else "?"


if __name__ == "__main__":
    sys.exit(main())
