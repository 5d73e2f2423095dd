"""Non-parametric LayerNorm (OLMo-1: no weight, no bias, eps 1e-5), optionally fused with the
residual add that precedes it: `s = x + residual; y = layer_norm(s)`.

Statistics are fp32 whatever the input dtype; inputs and outputs keep their dtype (bf16 in
training). A program normalises whole rows of `d_model` elements held in registers (how many
rows, and with how many warps, is autotuned per width), so the forward reads x (and the
residual) once and writes s and y once; the backward reads s and dy (and the incoming gradient
of s) once and writes one gradient shared by x and the residual.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from ._compat import kernel, next_pow2, rows_2d, tl, torch_op, triton, use_triton, warps_for

MAX_FUSED = 65536  # widest row held in registers; wider rows use the reference


def _ln_fwd(X, R, S, Y, MEAN, RSTD, stride_x, stride_r, stride_s, stride_y, M, N, eps,
            HAS_RES: tl.constexpr, BLOCK: tl.constexpr, ROWS: tl.constexpr):
    # a program normalises ROWS whole rows, each held in registers
    row_ids = tl.program_id(0).to(tl.int64) * ROWS + tl.arange(0, ROWS)
    rows = row_ids[:, None]
    cols = tl.arange(0, BLOCK)[None, :]
    mask = (rows < M) & (cols < N)
    x = tl.load(X + rows * stride_x + cols, mask=mask, other=0.0)
    if HAS_RES:
        r = tl.load(R + rows * stride_r + cols, mask=mask, other=0.0)
        # round the sum to the stream dtype first: the statistics are those of the stored s
        s = (x.to(tl.float32) + r.to(tl.float32)).to(S.dtype.element_ty)
        tl.store(S + rows * stride_s + cols, s, mask=mask)
        x = s
    x = x.to(tl.float32)
    mean = tl.sum(x, axis=1) / N
    xc = tl.where(mask, x - mean[:, None], 0.0)
    var = tl.sum(xc * xc, axis=1) / N
    rstd = 1.0 / tl.sqrt(var + eps)
    tl.store(Y + rows * stride_y + cols, (xc * rstd[:, None]).to(Y.dtype.element_ty), mask=mask)
    tl.store(MEAN + row_ids, mean, mask=row_ids < M)
    tl.store(RSTD + row_ids, rstd, mask=row_ids < M)


def _ln_bwd(S, DY, DS, DX, MEAN, RSTD, stride_s, stride_dy, stride_ds, stride_dx, M, N,
            HAS_DS: tl.constexpr, BLOCK: tl.constexpr, ROWS: tl.constexpr):
    row_ids = tl.program_id(0).to(tl.int64) * ROWS + tl.arange(0, ROWS)
    rows = row_ids[:, None]
    cols = tl.arange(0, BLOCK)[None, :]
    mask = (rows < M) & (cols < N)
    s = tl.load(S + rows * stride_s + cols, mask=mask, other=0.0).to(tl.float32)
    dy = tl.load(DY + rows * stride_dy + cols, mask=mask, other=0.0).to(tl.float32)
    mean = tl.load(MEAN + row_ids, mask=row_ids < M, other=0.0)[:, None]
    rstd = tl.load(RSTD + row_ids, mask=row_ids < M, other=0.0)[:, None]
    xhat = tl.where(mask, (s - mean) * rstd, 0.0)
    c1 = tl.sum(xhat * dy, axis=1)[:, None] / N
    c2 = tl.sum(dy, axis=1)[:, None] / N
    dx = (dy - (xhat * c1 + c2)) * rstd
    if HAS_DS:  # gradient reaching s directly (the residual stream) joins here
        dx += tl.load(DS + rows * stride_ds + cols, mask=mask, other=0.0).to(tl.float32)
    tl.store(DX + rows * stride_dx + cols, dx.to(DX.dtype.element_ty), mask=mask)


# Rows up to TUNED_WIDTH (OLMo-1B's 2,048 and 7B's 4,096) are autotuned over rows per program and
# warps (at most 64 fp32 values per thread, at most 16 warps: valid on CUDA and ROCm); wider rows
# take one row per program with warps by width.
TUNED_WIDTH = 4096
_ROW_CONFIGS = [
    triton.Config({"ROWS": rows}, num_warps=warps) for rows, warps in
    ((1, 4), (1, 8), (1, 16), (2, 4), (2, 8), (2, 16), (4, 8), (4, 16))
] if triton is not None else None
_ln_fwd_tuned = kernel(configs=_ROW_CONFIGS, key=["N", "HAS_RES"])(_ln_fwd)
_ln_bwd_tuned = kernel(configs=_ROW_CONFIGS, key=["N", "HAS_DS"])(_ln_bwd)
_ln_fwd_wide = kernel(_ln_fwd)
_ln_bwd_wide = kernel(_ln_bwd)


def _launch(tuned, wide, M, N, *args, **constexprs):
    block = next_pow2(N)
    if N <= TUNED_WIDTH:
        tuned[lambda meta: (triton.cdiv(M, meta["ROWS"]),)](*args, M, N, **constexprs, BLOCK=block)
    else:
        wide[(M,)](*args, M, N, **constexprs, BLOCK=block, ROWS=1, num_warps=warps_for(block))


def _forward_outputs(x2, r2):
    """(s or None, y, mean, rstd), allocated; also the operators' shape functions (under the
    compiler's fake tensors the same calls allocate nothing)."""
    M, N = x2.shape
    dtype = x2.dtype if r2 is None else torch.promote_types(x2.dtype, r2.dtype)
    s = None if r2 is None else torch.empty((M, N), dtype=dtype, device=x2.device)
    y = torch.empty((M, N), dtype=dtype, device=x2.device)
    mean = torch.empty(M, dtype=torch.float32, device=x2.device)
    rstd = torch.empty(M, dtype=torch.float32, device=x2.device)
    return s, y, mean, rstd


def _forward(x2, r2, eps):
    M, N = x2.shape
    s, y, mean, rstd = _forward_outputs(x2, r2)
    _launch(_ln_fwd_tuned, _ln_fwd_wide, M, N,
            x2, x2 if r2 is None else r2, y if s is None else s, y, mean, rstd,
            x2.stride(0), 0 if r2 is None else r2.stride(0), 0 if s is None else s.stride(0), y.stride(0),
            eps=eps, HAS_RES=r2 is not None)
    return s, y, mean, rstd


def _ln_fwd_launch(x2: torch.Tensor, eps: float) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    _, y, mean, rstd = _forward(x2, None, eps)
    return y, mean, rstd


def _add_ln_fwd_launch(x2: torch.Tensor, r2: torch.Tensor,
                       eps: float) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    return _forward(x2, r2, eps)


def _ln_bwd_launch(s2: torch.Tensor, dy: torch.Tensor, ds: torch.Tensor | None, mean: torch.Tensor,
                   rstd: torch.Tensor) -> torch.Tensor:
    M, N = s2.shape
    dx = torch.empty((M, N), dtype=s2.dtype, device=s2.device)
    _launch(_ln_bwd_tuned, _ln_bwd_wide, M, N,
            s2, dy, dy if ds is None else ds, dx, mean, rstd, s2.stride(0), dy.stride(0),
            0 if ds is None else ds.stride(0), dx.stride(0), HAS_DS=ds is not None)
    return dx


# the operators; named *_op because _ln_fwd / _ln_bwd are the Triton functions above
_ln_fwd_op = torch_op("layer_norm_fwd", _ln_fwd_launch, lambda x2, eps: _forward_outputs(x2, None)[1:])
_add_ln_fwd_op = torch_op("add_layer_norm_fwd", _add_ln_fwd_launch, lambda x2, r2, eps: _forward_outputs(x2, r2))
_ln_bwd_op = torch_op("layer_norm_bwd", _ln_bwd_launch, lambda s2, dy, ds, mean, rstd: s2.new_empty(s2.shape))


def _backward(s2, dy, ds, mean, rstd):
    return _ln_bwd_op(s2, rows_2d(dy), None if ds is None else rows_2d(ds), mean, rstd)


class LayerNormFunction(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, eps):
        x2 = rows_2d(x)
        y, mean, rstd = _ln_fwd_op(x2, eps)
        ctx.save_for_backward(x2, mean, rstd)
        return y.view(x.shape)

    @staticmethod
    def backward(ctx, dy):
        x2, mean, rstd = ctx.saved_tensors
        return _backward(x2, dy, None, mean, rstd).view(dy.shape), None


class AddLayerNormFunction(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, residual, eps):
        s, y, mean, rstd = _add_ln_fwd_op(rows_2d(x), rows_2d(residual), eps)
        ctx.save_for_backward(s, mean, rstd)
        ctx.dtypes = (x.dtype, residual.dtype)
        return s.view(x.shape), y.view(x.shape)

    @staticmethod
    def backward(ctx, ds, dy):
        s, mean, rstd = ctx.saved_tensors
        if dy is None:
            dx = rows_2d(ds).to(s.dtype)
        else:
            dx = _backward(s, dy, ds, mean, rstd)
        dx = dx.view(ds.shape if ds is not None else dy.shape)
        return dx.to(ctx.dtypes[0]), dx.to(ctx.dtypes[1]), None


def layer_norm(x: torch.Tensor, eps: float = 1e-5) -> torch.Tensor:
    """Non-parametric LayerNorm over the last dim; fp32 statistics; output in x.dtype."""
    if x.shape[-1] > MAX_FUSED or x.numel() == 0 or not use_triton(x):
        return layer_norm_reference(x, eps)
    return LayerNormFunction.apply(x, eps)


def add_layer_norm(x: torch.Tensor, residual: torch.Tensor, eps: float = 1e-5):
    """(s, y) with s = x + residual and y = layer_norm(s), in one pass over memory."""
    if x.shape != residual.shape:
        raise ValueError(f"add_layer_norm: x {tuple(x.shape)} and residual {tuple(residual.shape)} differ")
    if x.shape[-1] > MAX_FUSED or x.numel() == 0 or not use_triton(x):
        return add_layer_norm_reference(x, residual, eps)
    return AddLayerNormFunction.apply(x, residual, eps)


def layer_norm_reference(x: torch.Tensor, eps: float = 1e-5) -> torch.Tensor:
    compute = torch.promote_types(x.dtype, torch.float32)  # fp32 statistics (fp64 for a float64 check)
    return F.layer_norm(x.to(compute), (x.shape[-1],), eps=eps).to(x.dtype)


def add_layer_norm_reference(x: torch.Tensor, residual: torch.Tensor, eps: float = 1e-5):
    s = x + residual
    return s, layer_norm_reference(s, eps)
