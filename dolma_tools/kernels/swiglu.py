"""SwiGLU straight from OLMo's fused `ff_proj` output.

`ff` is [..., 2h]: the first half is "up" (the value), the second half is "gate", and
`y = silu(gate) * up`. The kernels index the two halves of each row in place, so neither half
is ever copied out, and the backward writes the gradient of `ff` as one [..., 2h] tensor, the
layout `ff_proj`'s backward wants. Only `ff` is saved for the backward (eager PyTorch also
keeps silu(gate)). Math is fp32 in registers; one rounding to the output dtype.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from ._compat import kernel, rows_2d, tl, torch_op, triton, use_triton

# Elementwise, memory-bound: tune the tile per GPU; every config is valid on CUDA and ROCm.
# Two ways to cut the [M, H] output into programs, both autotuned: ROW_TILES (a program is one
# tile of one row: no index division, but the last tile of each row runs part-empty when BLOCK
# does not divide H, as with OLMo-7B's 11,008) and FLAT (a program is BLOCK consecutive elements
# of the whole output, rows found by division: no empty lanes, and neighbouring programs touch
# neighbouring memory).
_ROW_TILES, _FLAT = 0, 1
_CONFIGS = [
    triton.Config({"BLOCK": 1024, "LAYOUT": _ROW_TILES}, num_warps=4),
    triton.Config({"BLOCK": 2048, "LAYOUT": _ROW_TILES}, num_warps=8),
    triton.Config({"BLOCK": 4096, "LAYOUT": _ROW_TILES}, num_warps=8),
    triton.Config({"BLOCK": 512, "LAYOUT": _ROW_TILES}, num_warps=2),
    triton.Config({"BLOCK": 1024, "LAYOUT": _FLAT}, num_warps=4),
    triton.Config({"BLOCK": 2048, "LAYOUT": _FLAT}, num_warps=4),
    triton.Config({"BLOCK": 2048, "LAYOUT": _FLAT}, num_warps=8),
    triton.Config({"BLOCK": 4096, "LAYOUT": _FLAT}, num_warps=8),
] if triton is not None else None


@triton.jit if triton is not None else (lambda fn: fn)
def _tile(M, H, BLOCK: tl.constexpr, LAYOUT: tl.constexpr, WIDE: tl.constexpr):
    """(row, col, mask) of this program's elements of the [M, H] output; WIDE: M*H >= 2**31."""
    pid = tl.program_id(0)
    if LAYOUT == 1:  # FLAT
        if WIDE:
            pid = pid.to(tl.int64)
        offs = pid * BLOCK + tl.arange(0, BLOCK)
        row = offs // H
        col = offs % H
        mask = offs < M * H
    else:  # ROW_TILES: grid = (M * tiles per row)
        tiles = tl.cdiv(H, BLOCK)
        row = pid // tiles
        col = (pid % tiles) * BLOCK + tl.arange(0, BLOCK)
        mask = col < H
    return row.to(tl.int64), col, mask


@kernel(configs=_CONFIGS, key=["H"])
def _swiglu_fwd_kernel(FF, Y, stride_ff, stride_y, M, H, WIDE: tl.constexpr, BLOCK: tl.constexpr,
                       LAYOUT: tl.constexpr):
    row, col, mask = _tile(M, H, BLOCK, LAYOUT, WIDE)
    up = tl.load(FF + row * stride_ff + col, mask=mask, other=0.0).to(tl.float32)
    gate = tl.load(FF + row * stride_ff + H + col, mask=mask, other=0.0).to(tl.float32)
    sig = 1.0 / (1.0 + tl.exp(-gate))
    tl.store(Y + row * stride_y + col, (gate * sig * up).to(Y.dtype.element_ty), mask=mask)


@kernel(configs=_CONFIGS, key=["H"])
def _swiglu_bwd_kernel(FF, DY, DFF, stride_ff, stride_dy, stride_dff, M, H, WIDE: tl.constexpr,
                       BLOCK: tl.constexpr, LAYOUT: tl.constexpr):
    row, col, mask = _tile(M, H, BLOCK, LAYOUT, WIDE)
    up = tl.load(FF + row * stride_ff + col, mask=mask, other=0.0).to(tl.float32)
    gate = tl.load(FF + row * stride_ff + H + col, mask=mask, other=0.0).to(tl.float32)
    dy = tl.load(DY + row * stride_dy + col, mask=mask, other=0.0).to(tl.float32)
    sig = 1.0 / (1.0 + tl.exp(-gate))
    d_up = dy * gate * sig
    d_gate = dy * up * sig * (1.0 + gate * (1.0 - sig))
    tl.store(DFF + row * stride_dff + col, d_up.to(DFF.dtype.element_ty), mask=mask)
    tl.store(DFF + row * stride_dff + H + col, d_gate.to(DFF.dtype.element_ty), mask=mask)


def _grid(M, H):
    def programs(meta):
        if meta["LAYOUT"] == _FLAT:
            return (triton.cdiv(M * H, meta["BLOCK"]),)
        return (M * triton.cdiv(H, meta["BLOCK"]),)

    return programs


def _wide(M, H) -> bool:
    return M * H >= 2**31 - 4096  # element offsets (plus a tile) would overflow int32


def _swiglu_fwd_launch(ff2: torch.Tensor) -> torch.Tensor:
    M, H = ff2.shape[0], ff2.shape[1] // 2
    y = torch.empty((M, H), dtype=ff2.dtype, device=ff2.device)
    _swiglu_fwd_kernel[_grid(M, H)](ff2, y, ff2.stride(0), y.stride(0), M, H, WIDE=_wide(M, H))
    return y


def _swiglu_bwd_launch(ff2: torch.Tensor, dy2: torch.Tensor) -> torch.Tensor:
    M, H = ff2.shape[0], ff2.shape[1] // 2
    dff = torch.empty((M, 2 * H), dtype=ff2.dtype, device=ff2.device)
    _swiglu_bwd_kernel[_grid(M, H)](ff2, dy2, dff, ff2.stride(0), dy2.stride(0), dff.stride(0), M, H,
                                    WIDE=_wide(M, H))
    return dff


_swiglu_fwd = torch_op("swiglu_fwd", _swiglu_fwd_launch,
                       lambda ff2: ff2.new_empty((ff2.shape[0], ff2.shape[1] // 2)))
_swiglu_bwd = torch_op("swiglu_bwd", _swiglu_bwd_launch, lambda ff2, dy2: ff2.new_empty(ff2.shape))


class SwiGLUFunction(torch.autograd.Function):
    @staticmethod
    def forward(ctx, ff):
        ff2 = rows_2d(ff)
        y = _swiglu_fwd(ff2)
        ctx.save_for_backward(ff2)
        ctx.shape = ff.shape
        return y.view(*ff.shape[:-1], y.shape[-1])

    @staticmethod
    def backward(ctx, dy):
        (ff2,) = ctx.saved_tensors
        return _swiglu_bwd(ff2, rows_2d(dy)).view(ctx.shape)


def swiglu(ff: torch.Tensor) -> torch.Tensor:
    """silu(gate) * up for ff = [up | gate] along the last dim (OLMo's halves)."""
    if ff.shape[-1] % 2:
        raise ValueError(f"swiglu: the last dim of ff must be even (up | gate), got {ff.shape[-1]}")
    if ff.numel() == 0 or not use_triton(ff):
        return swiglu_reference(ff)
    return SwiGLUFunction.apply(ff)


def swiglu_reference(ff: torch.Tensor) -> torch.Tensor:
    up, gate = ff.chunk(2, dim=-1)
    return F.silu(gate) * up
