"""Triton plumbing shared by the kernel files: optional import, launch-time choice of the
interpreter, portable launch settings for CUDA and ROCm.

CPU runs need `TRITON_INTERPRET=1` set before triton is first imported (triton decorates its own
library functions, `tl.sum` and friends, once at import). `kernel` wraps `triton.jit` so that a
GPU launch can be autotuned while the interpreter runs only the first config (fast CPU checks).
"""

from __future__ import annotations

import functools
import os
import sys
from typing import Callable

import torch

try:  # triton is an optional dependency (the `train` extra); the torch references work without it
    import triton
    import triton.language as tl

    HAS_TRITON = True
except ImportError:  # pragma: no cover - exercised only where triton is missing
    HAS_TRITON = False

    class _Constexpr:  # stands in for `tl.constexpr` in annotations so the kernel files still import
        pass

    class _TL:
        constexpr = _Constexpr

    tl = _TL()
    triton = None


def interpreting() -> bool:
    return os.environ.get("TRITON_INTERPRET", "0") == "1"


def use_triton(t: torch.Tensor) -> bool:
    """Launch a Triton kernel on this tensor? On a GPU, or on CPU under the interpreter;
    anything else (CPU without TRITON_INTERPRET) takes the torch reference instead."""
    return HAS_TRITON and (t.is_cuda or (t.device.type == "cpu" and interpreting()))


def torch_op(name: str, launch: Callable, fake: Callable):
    """`launch` (a kernel launcher with annotated tensor arguments, returning fresh tensors) as the
    torch operator `dolma_tools::<name>`.

    Why: torch.compile cannot trace a Triton launch, so each call would split the compiled graph;
    an operator is opaque to it (its shapes come from `fake`), and a compiled block is one graph.
    The operator calls the launcher through its module, so a module imported afresh (the kernel
    tests re-import them under the Triton interpreter) serves the operator registered first.
    """
    namespace = torch.ops.dolma_tools
    if hasattr(namespace, name):  # registered by an earlier import of the kernel module
        return getattr(namespace, name)
    module, attr = launch.__module__, launch.__name__

    @functools.wraps(launch)
    def current_launch(*args):
        return getattr(sys.modules[module], attr)(*args)

    op = torch.library.custom_op(f"dolma_tools::{name}", current_launch, mutates_args=())
    op.register_fake(fake)
    return op


def is_hip() -> bool:
    return torch.version.hip is not None


def max_warps() -> int:
    """Largest num_warps for a 1024-thread block: 32 warps of 32 on CUDA, 16 wavefronts of 64 on ROCm."""
    return 16 if is_hip() else 32


def lanes_per_warp() -> int:
    return 64 if is_hip() else 32


def per_lane_warps(cuda_warps: int) -> int:
    """The num_warps that gives each lane as many elements as `cuda_warps` warps of 32 do.

    A ROCm wavefront has 64 lanes: the same warp count spreads a tile over twice the lanes, so
    each lane loads half as much, and a 16-byte (128-bit) access becomes an 8-byte one (seen in
    the gfx90a builds of `kernels.aot`). Halving the warps there keeps the access width."""
    return max(1, min(cuda_warps * 32 // lanes_per_warp(), max_warps()))


def warps_for(block: int) -> int:
    """num_warps for a row kernel over `block` elements (about 8-16 elements per lane)."""
    return per_lane_warps(4 if block < 2048 else 8 if block < 8192 else 16 if block < 32768 else 32)


def rows_2d(t: torch.Tensor) -> torch.Tensor:
    """t as [rows, last dim] with unit stride along the last dim (a view when it already has one):
    the layout every row kernel indexes with one row stride."""
    t = t.reshape(-1, t.shape[-1])
    return t if t.stride(-1) == 1 else t.contiguous()


def next_pow2(n: int) -> int:
    return 1 << max(0, int(n) - 1).bit_length()


class kernel:  # noqa: N801 - used like a decorator, as `triton.jit` is
    """`@kernel` or `@kernel(configs=[triton.Config(...)], key=[...])`, launched as `fn[grid](...)`.

    With configs, a GPU launch is autotuned over them; the interpreter runs one of them only,
    `interpret_config` (the first unless a test picks another), so CPU checks stay fast. Configs
    must be valid on CUDA and ROCm (num_warps <= 16).
    """

    def __init__(self, fn=None, *, configs=None, key=None):
        self.configs, self.key = configs, key or []
        self.interpret_config = 0
        self._fn = None
        self._built = {}
        if fn is not None:
            self._fn = fn

    def __call__(self, fn):  # decorator-with-arguments form
        self._fn = fn
        return self

    def _build(self, interp: bool):
        if not HAS_TRITON:
            raise RuntimeError("triton is not installed: use the torch kernels (--kernels torch)")
        if interp not in self._built:
            built = triton.jit(self._fn)  # reads TRITON_INTERPRET now, at the first launch
            if self.configs and not interp:
                built = triton.autotune(self.configs, key=self.key)(built)
            self._built[interp] = built
        return self._built[interp]

    def __getitem__(self, grid):
        interp = interpreting()
        built = self._build(interp)
        if interp and self.configs:
            meta = dict(self.configs[self.interpret_config].kwargs)
            launcher = built[grid(meta) if callable(grid) else grid]
            return lambda *args, **kwargs: launcher(*args, **meta, **kwargs)
        return built[grid]

    def chosen_configs(self) -> dict[str, str]:
        """What the autotuner picked on this GPU, by tuning key (empty before a launch or untuned)."""
        built = self._built.get(False)
        cache = getattr(built, "cache", {}) or {}
        return {str(key): str(config) for key, config in cache.items()}
