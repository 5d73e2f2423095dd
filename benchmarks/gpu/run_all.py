#!/usr/bin/env python
"""Run the GPU benchmarks in one call and print a short summary table.

    benchmarks/gpu/run_all.sh                 # kernels (1B and 7B shapes) + training throughput
    benchmarks/gpu/run_all.sh --quick         # kernels at 1B shapes only, 10 timed training steps
    benchmarks/gpu/run_all.sh --cpu-check     # no GPU: kernels under the Triton interpreter, tiny trainer
    benchmarks/gpu/run_all.sh --tokens part-0-00000.npy --parity 200 --save   # + loss curves, filed in docs

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
    ap.add_argument("--tokens", help="a raw uint16 token file (a `dolma tokens` .npy shard) for the training runs; "
                                     "random tokens otherwise")
    ap.add_argument("--parity", type=int, default=0, metavar="STEPS",
                    help="also train STEPS steps with torch (compiled), torch (eager) and triton on the same "
                         "batches and compare the loss curves (needs --tokens)")
    ap.add_argument("--save", action="store_true",
                    help="file the results under benchmarks/results/gpu-<date>/ and refresh docs/benchmarks.md")
    ap.add_argument("--out", default=str(REPO / "benchmarks" / "work" / "gpu"))
    ap.add_argument("--timeout", type=float, default=1800, help="seconds per script")
    args = ap.parse_args(argv)
    if args.parity and not args.tokens:
        ap.error("--parity needs --tokens (on random tokens the loss cannot fall)")
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    py = sys.executable

    kernels_cmd = [py, str(HERE / "kernels.py"), "--json", str(out / "kernels.json")]
    train_base = [py, str(HERE / "train_throughput.py"), "--json"] + (["--tokens", args.tokens] if args.tokens else [])
    train_cmds = [train_base + ["--micro-batch-size", "8", "--grad-accum", "1"],
                  train_base + ["--kernels", "triton", "--micro-batch-size", "8", "--grad-accum", "4",
                                "--steps", "8", "--warmup", "2"]]
    if args.cpu_check:
        kernels_cmd += ["--cpu-check"]
        train_cmds = [train_base + ["--tiny", "--device", "cpu"]]
    elif args.quick:
        kernels_cmd += ["--models", "1b"]
        train_cmds = [train_base + ["--micro-batch-size", "8", "--grad-accum", "1", "--steps", "10", "--warmup", "3"]]

    status = 0
    print(f"== kernels: {' '.join(kernels_cmd[1:])}", flush=True)
    (out / "kernels.json").unlink(missing_ok=True)
    rc, secs, _ = run(kernels_cmd, out / "kernels.log", args.timeout)
    print(f"   exit {rc} in {secs:.0f} s (full output: {out / 'kernels.log'})")
    kernels = None
    if (out / "kernels.json").exists():
        kernels = json.loads((out / "kernels.json").read_text())
        print(f"   device {kernels.get('device')}, {kernels.get('dtype')}, copy bandwidth {kernels.get('copy_gbs', 0):.0f} GB/s")
        for line in kernel_table(kernels):
            print("   " + line)
        for verdict in kernels.get("bars", []):
            print("   " + verdict)
    else:
        print("   no results: " + _tail(out / "kernels.log"))
    status |= rc != 0

    results = []
    for i, cmd in enumerate(train_cmds):
        print(f"\n== training throughput: {' '.join(cmd[1:])}", flush=True)
        rc, secs, text = run(cmd, out / f"train_throughput-{i}.log", args.timeout)
        print(f"   exit {rc} in {secs:.0f} s (full output: {out / f'train_throughput-{i}.log'})")
        found = _json_lines(text)
        if not found:
            print("   no results: " + _tail(out / f"train_throughput-{i}.log"))
        results += found
        status |= rc != 0
    if results:
        (out / "train.jsonl").write_text("".join(json.dumps(r) + "\n" for r in results))
        print(f"\n   {'model':<10} {'kernels':<8} {'blocks':<8} {'mbs x acc':>9} {'tokens/s':>12} {'MFU':>7} {'peak GB':>8}")
        for r in results:
            mfu = f"{100 * r['mfu']:.1f}%" if r.get("mfu") is not None else "n/a"
            print(f"   {r['model']:<10} {r['kernels']:<8} {'compile' if r.get('compile') else 'eager':<8} "
                  f"{str(r['micro_batch_size']) + ' x ' + str(r['grad_accum']):>9} {r['tokens_per_second']:>12,.0f} "
                  f"{mfu:>7} {r['peak_memory_gb']:>8}")

    parity = None
    if args.parity:
        parity, rc = loss_parity(py, train_base, args, out)
        status |= rc != 0
    if args.save and not args.cpu_check:
        folder = save(out, kernels, results, parity)
        print(f"\nsaved to {folder}; docs/benchmarks.md refreshed")
    return int(status)


PARITY_RUNS = {"torch, compiled blocks": ["--kernels", "torch"],
               "torch, eager": ["--kernels", "torch", "--no-compile"],
               "triton, compiled blocks": ["--kernels", "triton"]}


def loss_parity(py: str, train_base: list[str], args, out: Path) -> tuple[dict | None, int]:
    """Train the same batches from the same init with each kernel set; compare the loss curves.
    The two plain-PyTorch runs differ only by rounding, so their gap is the bf16 noise floor."""
    import statistics

    curves, status = {}, 0
    for name, extra in PARITY_RUNS.items():
        cmd = train_base + extra + ["--micro-batch-size", "8", "--grad-accum", "1", "--steps", str(args.parity),
                                    "--warmup", "0", "--losses"]
        print(f"\n== loss parity, {name}: {' '.join(cmd[1:])}", flush=True)
        rc, secs, text = run(cmd, out / f"parity-{len(curves)}.log", args.timeout)
        status |= rc
        found = _json_lines(text)
        if found:
            curves[name] = found[0]
    if len(curves) < 2:
        return None, status or 1

    def compare(a: list[float], b: list[float]) -> dict:
        d = [abs(x - y) for x, y in zip(a, b)]
        return {"mean_abs_diff": round(statistics.mean(d), 4), "max_abs_diff": round(max(d), 3),
                "last50_mean": [round(statistics.mean(a[-50:]), 4), round(statistics.mean(b[-50:]), 4)]}

    names = list(curves)
    pairs = [{"a": a, "b": b, **compare(curves[a]["losses"], curves[b]["losses"])}
             for i, a in enumerate(names) for b in names[i + 1:]]
    for p in pairs:
        print(f"   {p['a']} vs {p['b']}: mean |diff| {p['mean_abs_diff']}, max {p['max_abs_diff']}, "
              f"last 50 {p['last50_mean']}")
    parity = {"steps": args.parity, "micro_batch_size": 8, "grad_accum": 1, "seq_len": 2048,
              "data": f"{args.tokens}, the same batches and initial weights for every run", "pairs": pairs,
              "curves": {k: {"tokens_per_second": v["tokens_per_second"], "losses": v["losses"]}
                         for k, v in curves.items()}}
    (out / "loss_parity.json").write_text(json.dumps(parity, indent=1))
    return parity, status


def save(out: Path, kernels: dict | None, results: list[dict], parity: dict | None) -> Path:
    import datetime
    import platform
    import shutil

    sys.path.insert(0, str(REPO))
    from benchmarks.report import refresh_markdown

    date = datetime.date.today().isoformat()
    folder = REPO / "benchmarks" / "results" / f"gpu-{date}"
    folder.mkdir(parents=True, exist_ok=True)
    for name in ("kernels.json", "kernels.log", "train.jsonl", "loss_parity.json"):
        if (out / name).exists():
            shutil.copy(out / name, folder / name)
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=REPO, capture_output=True,
                            text=True).stdout.strip() or "?"
    try:
        import torch
        import triton

        software = f"torch {torch.__version__}, triton {triton.__version__}, Python {platform.python_version()}"
    except ImportError:
        software = f"Python {platform.python_version()}"
    meta = {"date": date, "commit": commit, "device": (kernels or {}).get("device") or
            (results[0]["device"] if results else "?"), "software": software}
    (folder / "meta.json").write_text(json.dumps(meta, indent=1))
    refresh_markdown(REPO, REPO / "docs" / "benchmarks.md", REPO / "benchmarks" / "results")
    return folder


def _json_lines(text: str) -> list[dict]:
    found = []
    for line in text.splitlines():
        line = line.strip()
        if line.startswith("{"):
            try:
                found.append(json.loads(line))
            except ValueError:
                pass
    return found


def _tail(path: Path) -> str:
    try:
        lines = [ln for ln in path.read_text().splitlines() if ln.strip()]
    except OSError:
        return "?"
    return lines[-1][:200] if lines else "?"


if __name__ == "__main__":
    sys.exit(main())
