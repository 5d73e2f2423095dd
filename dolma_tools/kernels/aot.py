"""Compile every kernel, in every launch config, for a GPU that is not here.

Triton compiles for any target it has a backend for, no device needed: NVIDIA (PTX, then a cubin
through the bundled ptxas) and AMD (AMDGCN, then an HSA code object through the bundled lld). So
on a CPU-only machine we can check that each kernel builds for an H100 (sm_90) and an MI250
(gfx90a), and read what the hardware would run: registers per thread, spills to local memory
(the thing that ruins a memory-bound kernel), and the width of each global load and store
(128-bit on NVIDIA, what a roofline kernel needs).

The launches are the real ones: each launcher of the kernel modules is called on `meta` tensors
of OLMo's shapes, with `kernel.__getitem__` patched to record the call instead of running it, so
the argument types, the integer specialisations (Triton's "divisible by 16") and the launch
settings (ROCm's warp caps included, by patching `torch.version.hip`) are what a GPU run gets.
Autotuned kernels are compiled in each of their configs.

    python -m dolma_tools.kernels.aot                     # H100 and MI250, OLMo-1B and 7B shapes
    python -m dolma_tools.kernels.aot --targets sm_90 --json aot.json

Run it without TRITON_INTERPRET (the interpreter replaces the functions this compiles).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import re
import subprocess
import sys
import tempfile
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable, Iterator

import torch

# name on the command line -> (backend, arch, warp size)
TARGETS = {
    "sm_90": ("cuda", 90, 32),      # H100
    "gfx90a": ("hip", "gfx90a", 64),  # MI250 / MI250X
    "gfx942": ("hip", "gfx942", 64),  # MI300X
}
# d_model, heads, ff_proj width, padded vocab, clip_qkv: as benchmarks/gpu/kernels.py
MODELS = {
    "1b": (2048, 16, 16384, 50304, None),
    "7b": (4096, 32, 22016, 50304, 8.0),
}
TOKENS = 8 * 2048  # one micro-batch of the training benchmark


@dataclass
class Launch:
    """One recorded kernel launch: the kernel wrapper, its arguments, its launch keywords."""
    name: str
    kernel: object
    args: tuple
    kwargs: dict


@dataclass
class Build:
    kernel: str
    shape: str
    target: str
    config: str
    ok: bool
    registers: int | None = None       # per thread (NVIDIA REG, AMD VGPRs)
    spill_bytes: int | None = None     # stack / scratch per thread: 0 for a healthy kernel
    load_bits: int | None = None       # widest global load instruction
    store_bits: int | None = None      # widest global store instruction
    error: str = ""
    notes: list[str] = field(default_factory=list)


@contextlib.contextmanager
def recording(hip: bool) -> Iterator[list[Launch]]:
    """Within: kernel launches are recorded, not run; `torch.version.hip` says what the target is."""
    from . import _compat

    launches: list[Launch] = []
    original_getitem = _compat.kernel.__getitem__
    original_hip = torch.version.hip

    def record(self, grid):
        return lambda *args, **kwargs: launches.append(Launch(self._fn.__name__, self, args, kwargs))

    _compat.kernel.__getitem__ = record
    torch.version.hip = "6.2.0" if hip else None
    try:
        yield launches
    finally:
        _compat.kernel.__getitem__ = original_getitem
        torch.version.hip = original_hip


def olmo_launches(model: str, dtype: torch.dtype = torch.bfloat16) -> list[tuple[str, Callable[[], object]]]:
    """(shape label, thunk) for every kernel launch of one training step at the model's shape."""
    from . import cross_entropy, layernorm, rope, swiglu

    d, H, ff_width, V, clip = MODELS[model]
    hd, N = d // H, TOKENS

    def meta(*shape, dt=dtype):
        return torch.empty(shape, dtype=dt, device="meta")

    stats = (meta(N, dt=torch.float32), meta(N, dt=torch.float32))
    cos = meta(2048, hd, dt=torch.float32)
    B, T = 8, N // 8
    chunk = cross_entropy.default_chunk_size(N, V, torch.finfo(dtype).bits // 8)
    scale = meta(1, dt=torch.float32)
    ce_rows = (meta(chunk, V), torch.empty(chunk, dtype=torch.int64, device="meta"),
               meta(chunk, dt=torch.float32), meta(chunk, dt=torch.float32), scale, -100, 1e-4)
    return [
        (f"{model} [{N}, {d}]", lambda: layernorm._ln_fwd_launch(meta(N, d), 1e-5)),
        (f"{model} [{N}, {d}] +res", lambda: layernorm._add_ln_fwd_launch(meta(N, d), meta(N, d), 1e-5)),
        (f"{model} [{N}, {d}]", lambda: layernorm._ln_bwd_launch(meta(N, d), meta(N, d), None, *stats)),
        (f"{model} [{N}, {d}] +ds", lambda: layernorm._ln_bwd_launch(meta(N, d), meta(N, d), meta(N, d), *stats)),
        (f"{model} [{N}, {ff_width}]", lambda: swiglu._swiglu_fwd_launch(meta(N, ff_width))),
        (f"{model} [{N}, {ff_width}]", lambda: swiglu._swiglu_bwd_launch(meta(N, ff_width), meta(N, ff_width // 2))),
        (f"{model} qkv [{B}, {T}, 3x{d}]" + (f" clip {clip:g}" if clip else ""),
         lambda: rope._rope_fwd_launch(meta(B, T, 3 * d), cos, cos, H, hd, clip)),
        (f"{model} qkv [{B}, {T}, 3x{d}]" + (f" clip {clip:g}" if clip else ""),
         lambda: rope._rope_bwd_launch(*(meta(B, H, T, hd) for _ in range(3)), meta(B, T, 3 * d) if clip else None,
                                       cos, cos, clip)),
        (f"{model} logits [{chunk}, {V}]", lambda: cross_entropy._ce_rows(*ce_rows, True)),
    ]


_DTYPES = {torch.bfloat16: "bf16", torch.float16: "fp16", torch.float32: "fp32", torch.float64: "fp64",
           torch.int64: "i64", torch.int32: "i32"}


def signature(launch: Launch, params) -> tuple[dict, dict, list[int]]:
    """(signature, constexprs, indices specialised as divisible by 16) as a GPU launch would make them;
    `params` are the jitted kernel's parameters (`JITFunction.params`)."""
    names = [p.name for p in params]
    constexpr_names = {p.name for p in params if p.is_constexpr}
    values = dict(zip(names, launch.args))
    values.update({k: v for k, v in launch.kwargs.items() if k in names})
    sig, constexprs, divisible = {}, {}, []
    for i, name in enumerate(names):
        if name in constexpr_names:
            sig[name] = "constexpr"
            constexprs[name] = values.get(name)
            continue
        value = values[name]
        if isinstance(value, torch.Tensor):
            sig[name] = "*" + _DTYPES[value.dtype]
            divisible.append(i)  # torch allocations are 256-byte aligned
        elif isinstance(value, bool):
            sig[name] = "i1"
        elif isinstance(value, int):
            sig[name] = "i32" if -2**31 <= value < 2**31 else "i64"
            if value % 16 == 0:
                divisible.append(i)
        elif isinstance(value, float):
            sig[name] = "fp32"
        else:
            raise TypeError(f"{launch.name}: cannot type argument {name}={value!r}")
    return sig, constexprs, divisible


def configs_of(launch: Launch) -> list[tuple[str, dict, int]]:
    """(label, constexpr overrides, num_warps) for each config this launch may run with."""
    if launch.kernel.configs:
        return [(", ".join(f"{k}={v}" for k, v in c.kwargs.items()) + f", warps={c.num_warps}", dict(c.kwargs),
                 c.num_warps) for c in launch.kernel.configs]
    warps = launch.kwargs.get("num_warps", 4)
    return [(f"warps={warps}", {}, warps)]


def compile_launch(launch: Launch, target_name: str, shape: str) -> list[Build]:
    import triton
    from triton.backends.compiler import GPUTarget
    from triton.compiler import ASTSource, make_backend

    backend, arch, warp_size = TARGETS[target_name]
    target = GPUTarget(backend, arch, warp_size)
    jit_backend = make_backend(target)
    fn = triton.jit(launch.kernel._fn)
    builds = []
    for label, overrides, warps in configs_of(launch):
        launch_cfg = Launch(launch.name, launch.kernel, launch.args, {**launch.kwargs, **overrides})
        build = Build(launch.name, shape, target_name, label, ok=False)
        builds.append(build)
        try:
            sig, constexprs, divisible = signature(launch_cfg, fn.params)
            attrs = {(i,): jit_backend.parse_attr("D") for i in divisible}
            src = ASTSource(fn, sig, constexprs=constexprs, attrs=attrs)
            compiled = triton.compile(src, target=target, options={"num_warps": warps})
        except Exception as e:  # noqa: BLE001 - a config that does not build is the finding
            build.error = f"{type(e).__name__}: {str(e).strip().splitlines()[-1][:200] if str(e).strip() else ''}"
            continue
        build.ok = True
        if backend == "cuda":
            _inspect_cuda(compiled, build)
        else:
            _inspect_amd(compiled, build)
    return builds


def _bits_of(instrs: list[str], widths: dict[str, int]) -> int | None:
    found = [widths[m] for line in instrs for m in widths if m in line]
    return max(found) if found else None


def _inspect_cuda(compiled, build: Build) -> None:
    ptx = compiled.asm["ptx"]
    build.load_bits = _ptx_width(ptx, "ld.global")
    build.store_bits = _ptx_width(ptx, "st.global")
    tool = Path(_triton_dir()) / "backends" / "nvidia" / "bin" / "cuobjdump"
    if not tool.exists():
        build.notes.append("no cuobjdump: registers unknown")
        return
    with tempfile.TemporaryDirectory() as tmp:
        cubin = Path(tmp) / "kernel.cubin"
        cubin.write_bytes(compiled.asm["cubin"])
        out = subprocess.run([str(tool), "--dump-resource-usage", str(cubin)], capture_output=True, text=True)
    match = re.search(r"REG:(\d+) STACK:(\d+)", out.stdout)
    if match:
        build.registers, build.spill_bytes = int(match.group(1)), int(match.group(2))


def _ptx_width(ptx: str, op: str) -> int | None:
    """Widest access of `op` (ld.global / st.global) in bits: vector count x element bits."""
    widest = None
    for m in re.finditer(rf"{re.escape(op)}(?:\.[a-z0-9_:]+)*?(?:\.v(\d))?\.[bfsu](\d+)\s", ptx):
        bits = int(m.group(1) or 1) * int(m.group(2))
        widest = bits if widest is None else max(widest, bits)
    return widest


_AMD_LOADS = {"global_load_dwordx4": 128, "global_load_dwordx3": 96, "global_load_dwordx2": 64,
              "global_load_dword ": 32, "global_load_short": 16, "global_load_ushort": 16,
              "buffer_load_dwordx4": 128, "buffer_load_dwordx2": 64, "buffer_load_dword ": 32,
              "buffer_load_ushort": 16, "buffer_load_short": 16}
_AMD_STORES = {"global_store_dwordx4": 128, "global_store_dwordx3": 96, "global_store_dwordx2": 64,
               "global_store_dword ": 32, "global_store_short": 16,
               "buffer_store_dwordx4": 128, "buffer_store_dwordx2": 64, "buffer_store_dword ": 32,
               "buffer_store_short": 16}


def _inspect_amd(compiled, build: Build) -> None:
    asm = compiled.asm["amdgcn"]
    lines = [line.strip() + " " for line in asm.splitlines()]
    build.load_bits = _bits_of(lines, _AMD_LOADS)
    build.store_bits = _bits_of(lines, _AMD_STORES)
    vgprs = re.search(r"\.vgpr_count:\s+(\d+)", asm)
    scratch = re.search(r"\.private_segment_fixed_size:\s+(\d+)", asm)
    build.registers = int(vgprs.group(1)) if vgprs else None
    build.spill_bytes = int(scratch.group(1)) if scratch else None


def _triton_dir() -> str:
    import triton

    return os.path.dirname(triton.__file__)


def check(models: list[str], targets: list[str]) -> list[Build]:
    builds: list[Build] = []
    for target in targets:
        for model in models:
            for shape, thunk in olmo_launches(model):
                with recording(hip=TARGETS[target][0] == "hip") as launches:
                    thunk()
                for launch in launches:
                    builds += compile_launch(launch, target, shape)
    return builds


def print_builds(builds: list[Build]) -> None:
    head = f"{'kernel':<18} {'shape':<34} {'target':<7} {'config':<40} {'regs':>5} {'spill':>6} {'ld bits':>7} {'st bits':>7}"
    print(head)
    print("-" * len(head))
    for b in builds:
        if not b.ok:
            print(f"{b.kernel:<18} {b.shape:<34} {b.target:<7} {b.config:<40} BUILD FAILED: {b.error}")
            continue
        print(f"{b.kernel:<18} {b.shape:<34} {b.target:<7} {b.config:<40} {_fmt(b.registers):>5} "
              f"{_fmt(b.spill_bytes):>6} {_fmt(b.load_bits):>7} {_fmt(b.store_bits):>7}"
              + (f"  {'; '.join(b.notes)}" if b.notes else ""))


def _fmt(value) -> str:
    return "-" if value is None else str(value)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--models", nargs="+", default=list(MODELS), choices=list(MODELS))
    p.add_argument("--targets", nargs="+", default=["sm_90", "gfx90a"], choices=list(TARGETS))
    p.add_argument("--json", type=Path, help="also write the builds here")
    args = p.parse_args(argv)
    if os.environ.get("TRITON_INTERPRET") == "1":
        print("unset TRITON_INTERPRET: the interpreter replaces what this compiles", file=sys.stderr)
        return 2
    builds = check(args.models, args.targets)
    print_builds(builds)
    failed = [b for b in builds if not b.ok]
    spilled = [b for b in builds if b.ok and b.spill_bytes]
    print(f"\n{len(builds)} builds: {len(failed)} failed, {len(spilled)} spill to local memory "
          f"(an autotuned config that spills is only ever slower; the autotuner passes it by)")
    if args.json:
        args.json.write_text(json.dumps([asdict(b) for b in builds], indent=1))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
