"""Fused LM head + cross-entropy (+ z-loss), chunked over tokens.

For each chunk of tokens: `logits = hidden_chunk @ W^T` (torch matmul, in the compute dtype,
bf16 in training), then one Triton program per token computes logsumexp with an online max in
fp32, the CE and z-loss terms, and overwrites the logits row *in place* with d(loss)/d(logits),
already scaled for the reduction. Two more matmuls turn that into the chunk's grad_hidden and its
contribution to grad_weight (accumulated in fp32). So the full [N, V] logits never exist, in fp32
or otherwise; the peak is one [chunk, V] buffer plus grad_weight.

Because the gradients are produced in the forward, the backward only multiplies them by the
incoming gradient. That makes gradient accumulation exact: with `reduction="sum"` the loss is a
plain sum over unmasked tokens, and the caller divides by its global unmasked-token count (or
passes `loss * (1 / n_global)` to backward); with `"mean"` the scale is 1 / (unmasked tokens in
this call), computed on the device (no host sync). The z-loss is `multiplier * lse**2` per
unmasked token, reduced the same way, and included in `loss`; `z_loss` is returned detached, for
logging. The weight may be a tied embedding: autograd adds this gradient to the embedding's.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from ._compat import is_hip, kernel, next_pow2, per_lane_warps, tl, use_triton

CHUNK_BYTES = 512 * 1024 * 1024  # target size of one chunk of logits (fewer chunks: less grad_weight traffic)


@kernel
def _ce_kernel(LOGITS, stride_l, TARGETS, LOSS, ZLOSS, SCALE, V, ignore_index, z_mult,
               COMPUTE_GRAD: tl.constexpr, BLOCK: tl.constexpr):
    row = tl.program_id(0).to(tl.int64)
    ptr = LOGITS + row * stride_l
    y = tl.load(TARGETS + row).to(tl.int64)
    cols = tl.arange(0, BLOCK)
    if y == ignore_index:
        tl.store(LOSS + row, 0.0)
        tl.store(ZLOSS + row, 0.0)
        if COMPUTE_GRAD:
            for start in range(0, V, BLOCK):
                tl.store(ptr + start + cols, tl.zeros([BLOCK], dtype=tl.float32).to(LOGITS.dtype.element_ty),
                         mask=start + cols < V)
    else:
        # pass 1: online max and sum of exp, in fp32
        m = float("-inf")
        acc = 0.0
        for start in range(0, V, BLOCK):
            x = tl.load(ptr + start + cols, mask=start + cols < V, other=float("-inf")).to(tl.float32)
            m_new = tl.maximum(m, tl.max(x, axis=0))
            acc = acc * tl.exp(m - m_new) + tl.sum(tl.exp(x - m_new), axis=0)
            m = m_new
        lse = m + tl.log(acc)
        valid = (y >= 0) & (y < V)  # an out-of-range target gives a NaN loss, never a wild read
        x_y = tl.load(ptr + tl.where(valid, y, 0)).to(tl.float32)
        loss = tl.where(valid, lse - x_y, float("nan"))
        tl.store(LOSS + row, loss)
        tl.store(ZLOSS + row, z_mult * lse * lse)
        if COMPUTE_GRAD:
            # pass 2: d/dx_j [lse - x_y + z*lse^2] = p_j * (1 + 2 z lse) - [j == y], times the reduction scale
            scale = tl.load(SCALE)
            coef = 1.0 + 2.0 * z_mult * lse
            for start in range(0, V, BLOCK):
                idx = start + cols
                x = tl.load(ptr + idx, mask=idx < V, other=float("-inf")).to(tl.float32)
                g = tl.exp(x - lse) * coef
                g = tl.where(idx == y, g - 1.0, g) * scale
                tl.store(ptr + idx, g.to(LOGITS.dtype.element_ty), mask=idx < V)


def _ce_rows(logits, targets, loss, zloss, scale, ignore_index, z_mult, compute_grad):
    C, V = logits.shape
    block = min(next_pow2(V), 32768 if not is_hip() else 16384)
    warps = per_lane_warps(16 if block >= 8192 else 8)
    _ce_kernel[(C,)](logits, logits.stride(0), targets, loss, zloss, scale, V, ignore_index, z_mult,
                     COMPUTE_GRAD=compute_grad, BLOCK=block, num_warps=warps)


_OUT_DTYPE_MM = True  # torch.addmm(..., out_dtype=fp32) on bf16 inputs: CUDA/ROCm only (torch >= 2.8)


def _accumulate_mm(acc: torch.Tensor, a: torch.Tensor, b: torch.Tensor) -> None:
    """acc += a @ b with acc fp32 and a, b possibly bf16, avoiding a bf16 rounding of the product."""
    global _OUT_DTYPE_MM
    if acc.dtype == a.dtype:
        acc.addmm_(a, b)
        return
    if acc.is_cuda and _OUT_DTYPE_MM:
        try:
            torch.addmm(acc, a, b, out_dtype=acc.dtype, out=acc)
            return
        except (RuntimeError, TypeError):
            _OUT_DTYPE_MM = False
    acc.add_(a @ b)


def default_chunk_size(n_tokens: int, vocab: int, itemsize: int) -> int:
    chunk = max(16, CHUNK_BYTES // max(1, vocab * itemsize))
    chunk = 1 << (chunk.bit_length() - 1)  # a power of two keeps the matmul shapes friendly
    return max(1, min(chunk, next_pow2(n_tokens)))


class LinearCrossEntropyFunction(torch.autograd.Function):
    @staticmethod
    def forward(ctx, hidden, weight, targets, ignore_index, z_mult, reduction, chunk_size, compute_grad):
        shape = hidden.shape
        h = hidden.reshape(-1, shape[-1])
        y = targets.reshape(-1)
        N, d = h.shape
        V = weight.shape[0]
        dtype = torch.get_autocast_dtype(h.device.type) if torch.is_autocast_enabled(h.device.type) else h.dtype
        h_c = h.to(dtype)
        w_c = weight.to(dtype)
        y = y.contiguous()
        mask = y != ignore_index
        n_valid = mask.sum()
        scale = (1.0 / n_valid.clamp(min=1).float()) if reduction == "mean" else torch.ones((), device=h.device)
        scale = scale.reshape(1).to(torch.float32)
        loss_rows = torch.empty(N, dtype=torch.float32, device=h.device)
        z_rows = torch.empty(N, dtype=torch.float32, device=h.device)
        need_gh = compute_grad and hidden.requires_grad
        need_gw = compute_grad and weight.requires_grad
        grad_h = torch.empty((N, d), dtype=hidden.dtype, device=h.device) if need_gh else None
        grad_w = torch.zeros((V, d), dtype=torch.float32, device=h.device) if need_gw else None
        chunk = chunk_size or default_chunk_size(N, V, h_c.element_size())
        with torch.autocast(h.device.type, enabled=False):
            for start in range(0, N, chunk):
                end = min(start + chunk, N)
                logits = h_c[start:end] @ w_c.t()
                _ce_rows(logits, y[start:end], loss_rows[start:end], z_rows[start:end], scale,
                         ignore_index, z_mult, need_gh or need_gw)
                if need_gh:  # logits now holds d(loss)/d(logits) for this chunk
                    if grad_h.dtype == dtype:
                        torch.mm(logits, w_c, out=grad_h[start:end])
                    else:
                        grad_h[start:end] = logits @ w_c
                if need_gw:
                    _accumulate_mm(grad_w, logits.t(), h_c[start:end])
                del logits
        ce = loss_rows.sum()
        z = z_rows.sum()
        if reduction == "mean":
            ce, z = ce * scale[0], z * scale[0]
        ctx.grads = (grad_h.view(shape) if need_gh else None, grad_w.to(weight.dtype) if need_gw else None)
        del grad_w
        z_loss = z.detach()
        ctx.mark_non_differentiable(z_loss)
        return ce + z, z_loss

    @staticmethod
    def backward(ctx, grad_loss, grad_z):
        if ctx.grads is None:
            raise RuntimeError("linear_cross_entropy: backward called twice (the gradients are used in place)")
        grad_h, grad_w = ctx.grads
        ctx.grads = None
        if grad_h is not None:
            grad_h.mul_(grad_loss.to(grad_h.dtype))
        if grad_w is not None:
            grad_w.mul_(grad_loss.to(grad_w.dtype))
        return grad_h, grad_w, None, None, None, None, None, None


def linear_cross_entropy(hidden, weight, targets, ignore_index: int = -100, z_loss_multiplier: float = 0.0,
                         reduction: str = "mean", chunk_size: int | None = None):
    """(loss, z_loss) of `hidden @ weight.T` against `targets`, without materialising the logits.

    hidden [..., d], weight [V, d], targets [...] (int). `loss` includes the z-loss and is the
    value to backpropagate; `z_loss` is detached. reduction "mean" divides by the number of
    unmasked tokens of this call, "sum" does not divide (gradient accumulation: divide by the
    global count yourself).
    """
    if reduction not in ("mean", "sum"):
        raise ValueError(f"reduction must be 'mean' or 'sum', not {reduction!r}")
    if hidden.shape[:-1] != targets.shape:
        raise ValueError(f"linear_cross_entropy: hidden {tuple(hidden.shape)} and targets {tuple(targets.shape)} "
                         "disagree")
    if hidden.numel() == 0 or not use_triton(hidden):
        return linear_cross_entropy_reference(hidden, weight, targets, ignore_index, z_loss_multiplier, reduction)
    compute_grad = torch.is_grad_enabled() and (hidden.requires_grad or weight.requires_grad)
    return LinearCrossEntropyFunction.apply(hidden, weight, targets, ignore_index, float(z_loss_multiplier),
                                            reduction, chunk_size, compute_grad)


def linear_cross_entropy_reference(hidden, weight, targets, ignore_index: int = -100,
                                   z_loss_multiplier: float = 0.0, reduction: str = "mean"):
    """The unfused computation: full logits, upcast to fp32 (fp64 for a float64 check)."""
    if reduction not in ("mean", "sum"):
        raise ValueError(f"reduction must be 'mean' or 'sum', not {reduction!r}")
    h = hidden.reshape(-1, hidden.shape[-1])
    y = targets.reshape(-1)
    logits = h @ weight.t()
    logits = logits.to(torch.promote_types(logits.dtype, torch.float32))
    mask = y != ignore_index
    ce = F.cross_entropy(logits, y, ignore_index=ignore_index, reduction="sum")
    lse = torch.logsumexp(logits, dim=-1)
    z = z_loss_multiplier * (lse.pow(2) * mask).sum()
    if reduction == "mean":
        n = mask.sum().clamp(min=1)
        ce, z = ce / n, z / n
    return ce + z, z.detach()
