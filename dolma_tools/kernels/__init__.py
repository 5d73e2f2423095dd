"""Fused kernels for the OLMo training inner loop, selected with `get_ops("triton" | "torch")`.

Interface (both backends):
  layer_norm(x, eps=1e-5) -> y
  add_layer_norm(x, residual, eps=1e-5) -> (s, y)          s = x + residual, y = layer_norm(s)
  swiglu(ff) -> y                                           ff [..., 2h] = [up | gate]; y = silu(gate) * up
  rope_qkv(qkv, n_heads, head_dim, cos, sin, clip_qkv=None) -> (q, k, v), each [B, H, T, hd]
  rope_cache(seq_len, head_dim, theta=10000.0, device=None) -> (cos, sin), [T, hd] fp32
  linear_cross_entropy(hidden, weight, targets, ignore_index=-100, z_loss_multiplier=0.0, reduction="mean")
      -> (loss, z_loss): `loss` is the value to backpropagate and INCLUDES the z-loss; `z_loss` is
      the z-loss part, detached, for logging (plain CE = loss - z_loss). "mean" divides by the number
      of unmasked tokens; "sum" returns sums so the caller can divide by a global token count.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Callable

from dolma_tools.errors import UserError


@dataclass(frozen=True)
class KernelOps:
    name: str
    layer_norm: Callable
    add_layer_norm: Callable
    swiglu: Callable
    rope_qkv: Callable
    rope_cache: Callable
    linear_cross_entropy: Callable


def default_backend() -> str:
    """`triton` when a CUDA/ROCm device and triton are present, else `torch`."""
    import torch

    from ._compat import HAS_TRITON

    return "triton" if torch.cuda.is_available() and HAS_TRITON else "torch"


def get_ops(backend: str | None = None) -> KernelOps:
    backend = backend or default_backend()
    if backend == "auto":
        backend = default_backend()
    from .cross_entropy import linear_cross_entropy_reference
    from .layernorm import add_layer_norm_reference, layer_norm_reference
    from .rope import rope_cache, rope_qkv_reference
    from .swiglu import swiglu_reference

    if backend == "torch":
        return KernelOps("torch", layer_norm_reference, add_layer_norm_reference, swiglu_reference,
                         rope_qkv_reference, rope_cache, linear_cross_entropy_reference)
    if backend == "triton":
        import torch

        from ._compat import HAS_TRITON

        if not HAS_TRITON:
            raise UserError("--kernels triton needs the triton package (pip install 'dolma-tools[train]'); "
                            "or use --kernels torch")
        if not torch.cuda.is_available() and os.environ.get("TRITON_INTERPRET") != "1":
            raise UserError("--kernels triton needs a CUDA/ROCm GPU (or TRITON_INTERPRET=1 for a slow CPU check); "
                            "use --kernels torch on CPU")
        from .cross_entropy import linear_cross_entropy
        from .layernorm import add_layer_norm, layer_norm
        from .rope import rope_qkv
        from .swiglu import swiglu

        return KernelOps("triton", layer_norm, add_layer_norm, swiglu, rope_qkv, rope_cache, linear_cross_entropy)
    raise UserError(f"unknown kernels backend {backend!r}: choose 'triton' or 'torch'")


__all__ = ["KernelOps", "get_ops", "default_backend"]
