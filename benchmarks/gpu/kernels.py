#!/usr/bin/env python
"""Check and time every fused kernel of `dolma_tools.kernels` on one GPU (CUDA or ROCm).

    python benchmarks/gpu/kernels.py                    # OLMo-1B and OLMo-7B shapes, bf16
    python benchmarks/gpu/kernels.py --models 1b --json kernels.json
    python benchmarks/gpu/kernels.py --cpu-check        # tiny shapes, Triton interpreter, no GPU needed

For each kernel and shape: correctness of ours, eager, torch.compile and Liger-Kernel (when
installed) against a float64 reference; forward and backward times (median of CUDA-event
timings; backward = forward+backward - forward); our achieved bandwidth against the measured
device-to-device copy bandwidth; and for the fused linear cross-entropy, the peak memory of
forward+backward against the unfused computation at the same shape. Bars (see docs/kernels.md):
memory-bound kernels >= 1.0x torch.compile and >= 75% of copy bandwidth, forward and backward;
fused linear-CE <= 25% of the unfused peak memory at >= 1.0x its speed.

Exit status: 1 if any correctness check of ours fails, 3 if --strict-bars and a bar is missed.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

# name: d_model, heads, ff_proj width (2 x SwiGLU inner), padded vocab, clip_qkv
MODELS = {
    "1b": (2048, 16, 16384, 50304, None),
    "7b": (4096, 32, 22016, 50304, 8.0),
    "tiny": (32, 2, 96, 96, 2.0),  # --cpu-check
}
TOLERANCE = {"bf16": 1e-2, "fp32": 1e-5}


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--models", nargs="+", default=["1b", "7b"], choices=["1b", "7b"])
    p.add_argument("--dtype", default="bf16", choices=["bf16", "fp32"])
    p.add_argument("--batch", type=int, default=8, help="sequences per micro-batch (8, as the training benchmark)")
    p.add_argument("--seq", type=int, default=2048, help="sequence length")
    p.add_argument("--reps", type=int, default=50, help="timed repetitions per measurement")
    p.add_argument("--warmup", type=int, default=10)
    p.add_argument("--rounds", type=int, default=5,
                   help="time the implementations of a case in this many interleaved rounds and keep each one's "
                        "median: ours and torch.compile both sit near the copy roofline, where one round's drift "
                        "(clocks, heat) is as large as their difference")
    p.add_argument("--no-compile", action="store_true", help="skip the torch.compile baseline")
    p.add_argument("--eager-timing", action="store_true",
                   help="time wall clock between CUDA events around eager calls instead of summing the GPU time "
                        "of the kernels (adds each implementation's Python launch cost)")
    p.add_argument("--no-liger", action="store_true", help="skip Liger-Kernel even if installed")
    p.add_argument("--cpu-check", action="store_true",
                   help="tiny shapes on CPU under TRITON_INTERPRET=1: proves the script runs (no timings worth reading)")
    p.add_argument("--compile-on-cpu", action="store_true", help="with --cpu-check, also run torch.compile (slow)")
    p.add_argument("--json", type=Path, help="also write the results here")
    p.add_argument("--strict-bars", action="store_true", help="exit 3 when a speed or memory bar is missed")
    return p.parse_args(argv)


@dataclass
class Row:
    kernel: str
    shape: str
    impl: str
    ok: str = "-"  # correctness vs float64: "ok", "ERR <err>", or "n/a <why>"
    fwd_ms: float | None = None
    bwd_ms: float | None = None
    fwd_gbs: float | None = None
    bwd_gbs: float | None = None
    peak_mib: float | None = None
    notes: list[str] = field(default_factory=list)


def main(argv=None) -> int:
    args = parse_args(argv)
    if args.cpu_check:
        # must precede the first import of triton (triton decorates its library at import)
        os.environ["TRITON_INTERPRET"] = "1"
        args.models, args.batch, args.seq, args.reps, args.warmup, args.rounds = ["tiny"], 1, 4, 1, 0, 1
        args.no_liger = True
        args.no_compile = args.no_compile or not args.compile_on_cpu
    import torch

    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
    from dolma_tools.kernels import cross_entropy as ce_mod
    from dolma_tools.kernels import layernorm as ln_mod
    from dolma_tools.kernels import rope as rope_mod
    from dolma_tools.kernels import swiglu as swiglu_mod

    if args.cpu_check:
        device = "cpu"
    elif not torch.cuda.is_available():
        print("no CUDA/ROCm device: run with --cpu-check for the CPU dry run", file=sys.stderr)
        return 2
    else:
        device = "cuda"
    dtype = {"bf16": torch.bfloat16, "fp32": torch.float32}[args.dtype]
    bench = Bench(torch, device, args)
    liger = load_liger() if not args.no_liger else None

    print(f"device: {bench.device_name}; dtype {args.dtype}; tokens per micro-batch {args.batch * args.seq}")
    copy_gbs = bench.copy_bandwidth()
    print(f"measured copy bandwidth: {copy_gbs:.0f} GB/s (read + write)\n")

    rows: list[Row] = []
    failures: list[str] = []
    for model in args.models:
        d, H, ff_width, V, clip = MODELS[model]
        hd = d // H
        B, T = args.batch, args.seq
        N = B * T
        es = torch.finfo(dtype).bits // 8
        cos, sin = rope_mod.rope_cache(T, hd, device=device)
        shape_ln = f"{model} [{N}, {d}]"

        def rand(*shape, scale=1.0):
            return (torch.randn(shape, device=device, dtype=torch.float32) * scale).to(dtype)

        cases = [
            Case("layer_norm", shape_ln, lambda: [rand(B, T, d, scale=2.0)],
                 ours=ln_mod.layer_norm, ref=ln_mod.layer_norm_reference,
                 liger=liger and liger.layer_norm(d, device, dtype),
                 bytes_fwd=2 * N * d * es, bytes_bwd=3 * N * d * es),
            Case("add_layer_norm", shape_ln, lambda: [rand(B, T, d), rand(B, T, d, scale=4.0)],
                 ours=ln_mod.add_layer_norm, ref=ln_mod.add_layer_norm_reference,
                 liger=liger and liger.add_layer_norm(d, device, dtype),
                 bytes_fwd=4 * N * d * es, bytes_bwd=4 * N * d * es),
            Case("swiglu", f"{model} [{N}, {ff_width}]", lambda: [rand(B, T, ff_width, scale=2.0)],
                 ours=swiglu_mod.swiglu, ref=swiglu_mod.swiglu_reference,
                 liger=liger and liger.swiglu(),
                 bytes_fwd=3 * N * ff_width // 2 * es, bytes_bwd=5 * N * ff_width // 2 * es),
            Case("rope_qkv" + (f" clip {clip:g}" if clip else ""), f"{model} [{B}, {T}, 3x{d}] hd {hd}",
                 lambda: [rand(B, T, 3 * d, scale=4.0)],
                 ours=lambda qkv: rope_mod.rope_qkv(qkv, H, hd, cos, sin, clip),
                 ref=lambda qkv: rope_mod.rope_qkv_reference(qkv, H, hd, cos, sin, clip),
                 liger=liger and liger.rope(H, hd, cos, sin, clip),
                 # without a clamp v is a view of qkv: only q and k are read and written
                 bytes_fwd=(6 if clip else 4) * N * d * es, bytes_bwd=(6 + (3 if clip else 0)) * N * d * es),
        ]
        for case in cases:
            rows += bench.run_case(case, copy_gbs, failures)
        rows += bench.run_linear_ce(model, N, d, V, dtype, ce_mod, liger, failures)

    print_table(rows, copy_gbs)
    tuned = autotuner_choices(ln_mod, swiglu_mod, rope_mod)
    if tuned:
        print("\nautotuner's choices on this GPU (kernel, key -> config):")
        for name, choices in tuned.items():
            for key, config in choices.items():
                print(f"  {name:<22} {key:<28} -> {config}")
    verdicts = judge(rows, copy_gbs, device)
    timing = "wall clock of eager calls (median)" if args.eager_timing or not bench.cuda else \
        "GPU time of the kernels launched (profiler, mean)"
    print(f"\ntimes: {timing} over {args.reps} calls; median of {args.rounds} interleaved rounds")
    for line in verdicts:
        print(line)
    if args.json:
        args.json.write_text(json.dumps({"device": bench.device_name, "dtype": args.dtype, "copy_gbs": copy_gbs,
                                         "timing": timing, "batch": args.batch, "seq": args.seq,
                                         "rows": [r.__dict__ for r in rows], "bars": verdicts,
                                         "rounds": args.rounds, "autotuned": tuned}, indent=1))
    if failures:
        print("\nCORRECTNESS FAILURES:\n  " + "\n  ".join(failures))
        return 1
    if args.strict_bars and any(v.startswith("FAIL") for v in verdicts):
        return 3
    return 0


@dataclass
class Case:
    name: str
    shape: str
    make: object  # () -> list of input tensors (leaves get requires_grad here)
    ours: object
    ref: object
    liger: object
    bytes_fwd: int
    bytes_bwd: int


class Bench:
    def __init__(self, torch, device, args):
        self.torch, self.device, self.args = torch, device, args
        self.cuda = device == "cuda"
        if self.cuda:
            props = torch.cuda.get_device_properties(0)
            hip = f" (ROCm {torch.version.hip})" if torch.version.hip else ""
            self.device_name = f"{props.name}{hip}"
        else:
            self.device_name = "CPU (Triton interpreter)"

    def sync(self):
        if self.cuda:
            self.torch.cuda.synchronize()

    def time_ms(self, fn) -> float:
        """Milliseconds of GPU time per call of `fn`: the summed durations of the kernels (and copies)
        it launches, read from the profiler, so each implementation is timed on the device without
        its Python launch overhead (which dominates at these sizes and is not what the bandwidth bar
        is about). With --eager-timing: CUDA events around eager calls (`_time_eager`)."""
        if self.cuda and not self.args.eager_timing:
            return self._time_device(fn)
        return self._time_eager(fn)

    def _time_device(self, fn) -> float:
        torch = self.torch
        from torch.autograd import DeviceType
        from torch.profiler import ProfilerActivity, profile

        for _ in range(max(3, self.args.warmup)):  # autotuning and compilation stay outside
            fn()
        torch.cuda.synchronize()
        with profile(activities=[ProfilerActivity.CUDA]) as prof:
            for _ in range(self.args.reps):
                fn()
            torch.cuda.synchronize()
        device_us = sum(e.time_range.elapsed_us() for e in prof.events() if e.device_type == DeviceType.CUDA)
        return device_us / 1e3 / self.args.reps

    def _time_eager(self, fn) -> float:
        torch = self.torch
        for _ in range(self.args.warmup):
            fn()
        self.sync()
        times = []
        for _ in range(self.args.reps):
            if self.cuda:
                start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
                start.record()
                fn()
                end.record()
                end.synchronize()
                times.append(start.elapsed_time(end))
            else:
                t0 = time.perf_counter()
                fn()
                times.append((time.perf_counter() - t0) * 1e3)
        return statistics.median(times)

    def copy_bandwidth(self) -> float:
        torch = self.torch
        n = (1 << 30 if self.cuda else 1 << 24) // 4
        src = torch.randn(n, device=self.device)
        dst = torch.empty_like(src)
        ms = self.time_ms(lambda: dst.copy_(src))
        return 2 * src.numel() * 4 / (ms * 1e-3) / 1e9

    def compiled(self, fn):
        if self.args.no_compile:
            return None
        try:
            return self.torch.compile(fn, dynamic=False)
        except Exception as e:  # noqa: BLE001 - a baseline we cannot build is reported, not fatal
            print(f"  torch.compile unavailable: {e}", file=sys.stderr)
            return None

    # -- memory-bound kernels -------------------------------------------------------------
    def run_case(self, case: Case, copy_gbs: float, failures: list[str]) -> list[Row]:
        torch = self.torch
        tol = TOLERANCE[self.args.dtype]
        inputs = [t.requires_grad_() for t in case.make()]
        inputs64 = [t.detach().double().requires_grad_() for t in inputs]
        outs64 = _as_tuple(case.ref(*inputs64))
        grads64_out = [torch.randn_like(o) for o in outs64]
        grads64_in = torch.autograd.grad(outs64, inputs64, grads64_out)
        grads_out = [g.to(inputs[0].dtype) for g in grads64_out]
        impls = [("ours (triton)", case.ours), ("torch eager", case.ref),
                 ("torch.compile", self.compiled(case.ref)), ("liger", case.liger)]
        rows, timed = [], []
        for impl, fn in impls:
            row = Row(case.name, case.shape, impl)
            rows.append(row)
            if fn is None:
                row.ok = "n/a"
                continue
            try:
                outs = _as_tuple(fn(*inputs))
                grads_in = torch.autograd.grad(outs, inputs, grads_out)
                errs = [_rel_err(a, b) for a, b in zip(outs + tuple(grads_in), outs64 + tuple(grads64_in))]
                worst = max(errs)
                row.ok = "ok" if worst < tol else f"ERR {worst:.2g}"
                if worst >= tol and impl.startswith("ours"):
                    failures.append(f"{case.name} {case.shape}: relative error {worst:.3g} >= {tol}")
                timed.append((row, fn))
            except Exception as e:  # noqa: BLE001 - a failing baseline is reported in the table
                self._failed(row, impl, e, f"{case.name} {case.shape}", failures)
        fwd_ms: dict[int, list[float]] = {id(row): [] for row, _ in timed}
        fwd_bwd_ms: dict[int, list[float]] = {id(row): [] for row, _ in timed}
        for _ in range(self.args.rounds):  # interleaved: slow drift of the GPU hits every implementation alike
            for row, fn in list(timed):
                try:
                    fwd_ms[id(row)].append(self.time_ms(lambda fn=fn: fn(*inputs)))
                    fwd_bwd_ms[id(row)].append(self.time_ms(
                        lambda fn=fn: torch.autograd.grad(_as_tuple(fn(*inputs)), inputs, grads_out)))
                except Exception as e:  # noqa: BLE001
                    timed.remove((row, fn))
                    self._failed(row, row.impl, e, f"{case.name} {case.shape}", failures)
        for row, _ in timed:
            row.fwd_ms = statistics.median(fwd_ms[id(row)])
            row.bwd_ms = max(statistics.median(fwd_bwd_ms[id(row)]) - row.fwd_ms, 0.0)
            row.fwd_gbs = case.bytes_fwd / (row.fwd_ms * 1e-3) / 1e9
            row.bwd_gbs = case.bytes_bwd / (row.bwd_ms * 1e-3) / 1e9 if row.bwd_ms else None
            if self.args.rounds > 1:
                spread = max(fwd_ms[id(row)]) / min(fwd_ms[id(row)]) - 1
                row.notes.append(f"fwd spread over {self.args.rounds} rounds {spread:.1%}")
        return rows

    @staticmethod
    def _failed(row: Row, impl: str, error: Exception, what: str, failures: list[str]) -> None:
        row.ok = f"n/a ({type(error).__name__})"
        row.notes.append(str(error).splitlines()[0][:120] if str(error) else type(error).__name__)
        if impl.startswith("ours"):
            failures.append(f"{what}: {type(error).__name__}: {error}")

    # -- fused linear cross-entropy ----------------------------------------------------------
    def run_linear_ce(self, model, N, d, V, dtype, ce_mod, liger, failures) -> list[Row]:
        torch = self.torch
        tol = TOLERANCE[self.args.dtype]
        shape = f"{model} N {N}, d {d}, V {V}"
        z = 1e-4
        h = (torch.randn(N, d, device=self.device) * 1.0).to(dtype).requires_grad_()
        w = (torch.randn(V, d, device=self.device) * (2 * d ** -0.5)).to(dtype).requires_grad_()
        y = torch.randint(0, V, (N,), device=self.device)
        y[::11] = -100

        def unfused(h, w, y):
            return ce_mod.linear_cross_entropy_reference(h, w, y, z_loss_multiplier=z)[0]

        impls = [("ours (fused)", lambda h, w, y: ce_mod.linear_cross_entropy(h, w, y, z_loss_multiplier=z)[0]),
                 ("unfused eager", unfused), ("unfused compile", self.compiled(unfused)),
                 ("liger FLCE", liger and liger.flce(z))]
        # the float64 reference at full shape costs N*V*8 bytes: check on a slice of tokens
        n_chk = min(N, 1024)
        h64, w64 = h[:n_chk].detach().double().requires_grad_(), w.detach().double().requires_grad_()
        loss64 = unfused(h64, w64, y[:n_chk])
        g64 = torch.autograd.grad(loss64, (h64, w64))
        rows = []
        for impl, fn in impls:
            row = Row("linear_cross_entropy z 1e-4", shape, impl)
            rows.append(row)
            if impl.startswith("ours"):
                row.notes.append("gradients computed in the forward; backward only scales them")
            if fn is None:
                row.ok = "n/a"
                continue
            try:
                hc = h[:n_chk].detach().requires_grad_()
                loss = fn(hc, w, y[:n_chk])
                g = torch.autograd.grad(loss, (hc, w))
                worst = max(_rel_err(a, b) for a, b in zip((loss.reshape(1),) + g, (loss64.reshape(1),) + g64))
                row.ok = "ok" if worst < tol else f"ERR {worst:.2g}"
                if worst >= tol and impl.startswith("ours"):
                    failures.append(f"linear_cross_entropy {shape}: relative error {worst:.3g} >= {tol}")
                del g, loss

                def fwd():
                    return fn(h, w, y)

                def fwd_bwd():
                    torch.autograd.grad(fn(h, w, y), (h, w))

                row.fwd_ms = self.time_ms(fwd)
                row.bwd_ms = max(self.time_ms(fwd_bwd) - row.fwd_ms, 0.0)
                if self.cuda:
                    self.sync()
                    torch.cuda.empty_cache()
                    torch.cuda.reset_peak_memory_stats()
                    base = torch.cuda.memory_allocated()
                    fwd_bwd()
                    self.sync()
                    row.peak_mib = (torch.cuda.max_memory_allocated() - base) / 2**20
            except Exception as e:  # noqa: BLE001
                self._failed(row, impl, e, f"linear_cross_entropy {shape}", failures)
        return rows


def _as_tuple(x):
    return tuple(x) if isinstance(x, (tuple, list)) else (x,)


def _rel_err(a, b) -> float:
    a, b = a.detach().double(), b.detach().double()
    return ((a - b).norm() / b.norm().clamp(min=1e-30)).item()


# -- optional Liger-Kernel baselines --------------------------------------------------------
class load_liger:  # noqa: N801 - a namespace of adapters, None when Liger is missing
    def __new__(cls):
        try:
            import liger_kernel  # noqa: F401
        except ImportError:
            return None
        return super().__new__(cls)

    @staticmethod
    def layer_norm(d, device, dtype):
        # Liger's LayerNorm is affine only: frozen ones/zeros stand in for OLMo's non-parametric norm
        try:
            import torch
            from liger_kernel.ops.layer_norm import LigerLayerNormFunction

            w, b = torch.ones(d, device=device, dtype=dtype), torch.zeros(d, device=device, dtype=dtype)
            return lambda x: LigerLayerNormFunction.apply(x, w, b, 1e-5)
        except ImportError:
            return None

    @classmethod
    def add_layer_norm(cls, d, device, dtype):
        ln = cls.layer_norm(d, device, dtype)  # Liger has no fused add + LayerNorm: add, then LayerNorm
        if ln is None:
            return None

        def fn(x, r):
            s = x + r
            return s, ln(s)

        return fn

    @staticmethod
    def swiglu():
        try:
            from liger_kernel.ops.swiglu import LigerSiLUMulFunction
        except ImportError:
            return None

        def fn(ff):  # OLMo halves: a = gate = second half, b = up = first half
            h = ff.shape[-1] // 2
            return LigerSiLUMulFunction.apply(ff[..., h:], ff[..., :h])

        return fn

    @staticmethod
    def rope(H, hd, cos, sin, clip):
        try:
            from liger_kernel.ops.rope import LigerRopeFunction
        except ImportError:
            return None

        def fn(qkv):
            B, T, _ = qkv.shape
            if clip is not None:
                qkv = qkv.clamp(-clip, clip)
            q, k, v = (t.view(B, T, H, hd).transpose(1, 2) for t in qkv.split(H * hd, dim=-1))
            q, k = LigerRopeFunction.apply(q, k, cos[None], sin[None])
            return q, k, v

        return fn

    @staticmethod
    def flce(z):
        try:
            from liger_kernel.transformers import LigerFusedLinearCrossEntropyLoss
        except ImportError:
            return None
        loss_fn = LigerFusedLinearCrossEntropyLoss(ignore_index=-100, lse_square_scale=z, reduction="mean")
        return lambda h, w, y: _as_tuple(loss_fn(w, h, y))[0]


# -- report ----------------------------------------------------------------------------------
def _fmt(x, spec):
    width = int(spec.split(".")[0] or 0)
    return "-".rjust(width) if x is None else format(x, spec)


def autotuner_choices(ln_mod, swiglu_mod, rope_mod) -> dict[str, dict[str, str]]:
    """The configs the autotuner picked for our tuned kernels (empty on the CPU dry run)."""
    kernels = {"layer_norm fwd": ln_mod._ln_fwd_tuned, "layer_norm bwd": ln_mod._ln_bwd_tuned,
               "swiglu fwd": swiglu_mod._swiglu_fwd_kernel, "swiglu bwd": swiglu_mod._swiglu_bwd_kernel,
               "rope_qkv fwd": rope_mod._rope_fwd_kernel}
    return {name: k.chosen_configs() for name, k in kernels.items() if k.chosen_configs()}


def print_table(rows: list[Row], copy_gbs: float) -> None:
    head = f"{'kernel':<30} {'shape':<32} {'impl':<16} {'check':<10} {'fwd ms':>8} {'bwd ms':>8} " \
           f"{'fwd GB/s':>9} {'bwd GB/s':>9} {'%copy f/b':>10} {'peak MiB':>9}"
    print(head)
    print("-" * len(head))
    for r in rows:
        pct = "-" if r.fwd_gbs is None or not copy_gbs else \
            f"{100 * r.fwd_gbs / copy_gbs:.0f}/{_fmt(r.bwd_gbs and 100 * r.bwd_gbs / copy_gbs, '.0f')}"
        print(f"{r.kernel:<30} {r.shape:<32} {r.impl:<16} {r.ok:<10} {_fmt(r.fwd_ms, '8.3f')} {_fmt(r.bwd_ms, '8.3f')} "
              f"{_fmt(r.fwd_gbs, '9.0f')} {_fmt(r.bwd_gbs, '9.0f')} {pct:>10} {_fmt(r.peak_mib, '9.0f')}"
              + (f"  {'; '.join(r.notes)}" if r.notes else ""))


def judge(rows: list[Row], copy_gbs: float, device: str) -> list[str]:
    """One verdict line per (kernel, shape): PASS / FAIL / pending against the bars."""
    if device != "cuda":
        return ["bars: pending (CPU dry run; the interpreter's timings mean nothing)"]
    out = []
    groups: dict[tuple[str, str], dict[str, Row]] = {}
    for r in rows:
        groups.setdefault((r.kernel, r.shape), {})[r.impl] = r
    for (kernel, shape), g in groups.items():
        if kernel.startswith("linear_cross_entropy"):
            ours, base = g.get("ours (fused)"), g.get("unfused eager")
            if not (ours and base and ours.peak_mib and base.peak_mib and ours.fwd_ms and base.fwd_ms):
                out.append(f"pending  {kernel} {shape}: missing measurements")
                continue
            mem = ours.peak_mib / base.peak_mib
            speed = (base.fwd_ms + base.bwd_ms) / (ours.fwd_ms + ours.bwd_ms)
            ok = mem <= 0.25 and speed >= 1.0
            out.append(f"{'PASS' if ok else 'FAIL'}     {kernel} {shape}: peak {100 * mem:.0f}% of unfused "
                       f"(bar <= 25%), speed {speed:.2f}x unfused (bar >= 1.0x)")
            continue
        ours, comp = g.get("ours (triton)"), g.get("torch.compile")
        if not ours or ours.fwd_ms is None:
            out.append(f"pending  {kernel} {shape}: ours not measured")
            continue
        parts, ok = [], True
        for phase in ("fwd", "bwd"):
            t_ours, gbs = getattr(ours, f"{phase}_ms"), getattr(ours, f"{phase}_gbs")
            if not t_ours:
                ok = False
                parts.append(f"{phase} not measured")
                continue
            bw = 100 * (gbs or 0) / copy_gbs
            ok &= bw >= 75
            part = f"{phase} {bw:.0f}% of copy"
            t_comp = comp and getattr(comp, f"{phase}_ms")
            if t_comp and t_ours:
                ok &= t_comp / t_ours >= 1.0
                part += f", {t_comp / t_ours:.2f}x compile"
            else:
                part += ", compile n/a"
            parts.append(part)
        out.append(f"{'PASS' if ok else 'FAIL'}     {kernel} {shape}: " + "; ".join(parts)
                   + " (bars >= 75%, >= 1.0x)")
    return out


if __name__ == "__main__":
    sys.exit(main())
