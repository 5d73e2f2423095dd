"""RoPE (NeoX / HF "rotate half" layout, fp32) fused with OLMo's `clip_qkv` clamp and the q/k/v
split of the fused `att_proj` output.

Forward: one read of the q and k parts of qkv [B, T, 3*H*hd], one write of q and k as contiguous
[B, H, T, hd]. Without a clamp, v is returned as a strided view of qkv (SDPA takes any strides
with a contiguous last dim), so its bytes are never moved; with `clip_qkv` v is clamped and
written like q and k. The clamp applies to the whole fused qkv, before the split and before
RoPE, as in OLMo. Backward: one read of dq, dk, dv, one write of d(qkv);
the clamp's gradient is zero where the input was outside [-clip, clip] (qkv is saved only when
clipping). cos and sin are [T, hd] fp32 tables (`rope_cache`).
"""

from __future__ import annotations

import torch

from ._compat import kernel, next_pow2, per_lane_warps, tl, torch_op, triton, use_triton


def rope_cache(seq_len: int, head_dim: int, theta: float = 10000.0, device=None):
    """(cos, sin), each [seq_len, head_dim] fp32; the frequencies repeat twice along head_dim."""
    inv_freq = 1.0 / (theta ** (torch.arange(0, head_dim, 2, device=device, dtype=torch.float32) / head_dim))
    t = torch.arange(seq_len, device=device, dtype=torch.float32)
    freqs = torch.outer(t, inv_freq)
    emb = torch.cat((freqs, freqs), dim=-1)
    return emb.cos(), emb.sin()


# TOKENS tokens x BLOCK_H heads per program, autotuned with the warps (all valid on CUDA and ROCm)
_FWD_CONFIGS = [
    triton.Config({"TOKENS": tokens}, num_warps=warps) for tokens, warps in
    ((1, 4), (1, 8), (2, 4), (2, 8), (4, 8))
] if triton is not None else None


@kernel(configs=_FWD_CONFIGS, key=["H", "HALF", "HAS_CLIP"])
def _rope_fwd_kernel(QKV, Q, K, V, COS, SIN, stride_b, stride_t, stride_cos, BT, T, H, clip,
                     HAS_CLIP: tl.constexpr, HALF: tl.constexpr, BLOCK_H: tl.constexpr, BLOCK_D: tl.constexpr,
                     TOKENS: tl.constexpr):
    # rows of the tile: TOKENS (b, t) tokens x BLOCK_H heads; columns: one half of a head
    i = tl.arange(0, TOKENS * BLOCK_H)[:, None]
    tok = tl.program_id(0).to(tl.int64) * TOKENS + i // BLOCK_H
    heads = tl.program_id(1) * BLOCK_H + i % BLOCK_H
    b = tok // T
    t = tok % T
    d = tl.arange(0, BLOCK_D)[None, :]
    in_tok = (tok < BT) & (d < HALF)
    mask = in_tok & (heads < H)
    hd = 2 * HALF
    src = QKV + b * stride_b + t * stride_t + heads * hd + d
    dst = ((b * H + heads) * T + t) * hd + d  # [B, H, T, hd] contiguous
    # every load is issued before any store: the compiler cannot move loads past stores to
    # outputs that might alias the input, and a program with all its reads in flight at once
    # keeps more bytes moving
    q1 = tl.load(src, mask=mask, other=0.0).to(tl.float32)
    q2 = tl.load(src + HALF, mask=mask, other=0.0).to(tl.float32)
    k1 = tl.load(src + H * hd, mask=mask, other=0.0).to(tl.float32)
    k2 = tl.load(src + H * hd + HALF, mask=mask, other=0.0).to(tl.float32)
    if HAS_CLIP:
        v1 = tl.load(src + 2 * H * hd, mask=mask, other=0.0)
        v2 = tl.load(src + 2 * H * hd + HALF, mask=mask, other=0.0)
    cos1 = tl.load(COS + t * stride_cos + d, mask=in_tok, other=0.0)
    cos2 = tl.load(COS + t * stride_cos + HALF + d, mask=in_tok, other=0.0)
    sin1 = tl.load(SIN + t * stride_cos + d, mask=in_tok, other=0.0)
    sin2 = tl.load(SIN + t * stride_cos + HALF + d, mask=in_tok, other=0.0)
    if HAS_CLIP:  # exact in fp32; the cast back gives what a clamp in the input dtype gives
        q1 = tl.minimum(tl.maximum(q1, -clip), clip)
        q2 = tl.minimum(tl.maximum(q2, -clip), clip)
        k1 = tl.minimum(tl.maximum(k1, -clip), clip)
        k2 = tl.minimum(tl.maximum(k2, -clip), clip)
        v1 = tl.minimum(tl.maximum(v1.to(tl.float32), -clip), clip)
        v2 = tl.minimum(tl.maximum(v2.to(tl.float32), -clip), clip)
        tl.store(V + dst, v1.to(V.dtype.element_ty), mask=mask)
        tl.store(V + dst + HALF, v2.to(V.dtype.element_ty), mask=mask)
    tl.store(Q + dst, (q1 * cos1 - q2 * sin1).to(Q.dtype.element_ty), mask=mask)
    tl.store(Q + dst + HALF, (q2 * cos2 + q1 * sin2).to(Q.dtype.element_ty), mask=mask)
    tl.store(K + dst, (k1 * cos1 - k2 * sin1).to(K.dtype.element_ty), mask=mask)
    tl.store(K + dst + HALF, (k2 * cos2 + k1 * sin2).to(K.dtype.element_ty), mask=mask)


@kernel
def _rope_bwd_kernel(DQ, DK, DV, QKV, DQKV, COS, SIN, sq_b, sq_h, sq_t, sk_b, sk_h, sk_t, sv_b, sv_h, sv_t,
                     stride_b, stride_t, stride_cos, T, H, clip,
                     HAS_CLIP: tl.constexpr, HALF: tl.constexpr, BLOCK_H: tl.constexpr, BLOCK_D: tl.constexpr):
    pid = tl.program_id(0).to(tl.int64)
    b = pid // T
    t = pid % T
    heads = tl.program_id(1) * BLOCK_H + tl.arange(0, BLOCK_H)[:, None]
    d = tl.arange(0, BLOCK_D)[None, :]
    mask = (heads < H) & (d < HALF)
    hd = 2 * HALF
    cos1 = tl.load(COS + t * stride_cos + d, mask=d < HALF, other=0.0)
    cos2 = tl.load(COS + t * stride_cos + HALF + d, mask=d < HALF, other=0.0)
    sin1 = tl.load(SIN + t * stride_cos + d, mask=d < HALF, other=0.0)
    sin2 = tl.load(SIN + t * stride_cos + HALF + d, mask=d < HALF, other=0.0)
    row = b * stride_b + t * stride_t + heads * hd + d  # offset in qkv and d(qkv) (same strides)
    for which in tl.static_range(3):
        if which == 0:
            g = DQ + b * sq_b + heads * sq_h + t * sq_t + d
        elif which == 1:
            g = DK + b * sk_b + heads * sk_h + t * sk_t + d
        else:
            g = DV + b * sv_b + heads * sv_h + t * sv_t + d
        g1 = tl.load(g, mask=mask, other=0.0).to(tl.float32)
        g2 = tl.load(g + HALF, mask=mask, other=0.0).to(tl.float32)
        if which != 2:  # transpose of the rotation
            r1 = g1 * cos1 + g2 * sin2
            r2 = g2 * cos2 - g1 * sin1
            g1 = r1
            g2 = r2
        if HAS_CLIP:
            x1 = tl.load(QKV + row + which * H * hd, mask=mask, other=0.0).to(tl.float32)
            x2 = tl.load(QKV + row + which * H * hd + HALF, mask=mask, other=0.0).to(tl.float32)
            g1 = tl.where((x1 >= -clip) & (x1 <= clip), g1, 0.0)
            g2 = tl.where((x2 >= -clip) & (x2 <= clip), g2, 0.0)
        tl.store(DQKV + row + which * H * hd, g1.to(DQKV.dtype.element_ty), mask=mask)
        tl.store(DQKV + row + which * H * hd + HALF, g2.to(DQKV.dtype.element_ty), mask=mask)


def _blocks(n_heads: int, head_dim: int):
    block_d = next_pow2(head_dim // 2)
    block_h = max(1, min(next_pow2(n_heads), 2048 // (2 * block_d)))  # ~2k elements of q per program
    warps = per_lane_warps(4 if block_h * block_d * 2 <= 2048 else 8)
    return block_h, block_d, warps


def _last_dim_contiguous(t: torch.Tensor) -> torch.Tensor:
    return t if t.stride(-1) == 1 else t.contiguous()


def _rope_fwd_outputs(qkv, n_heads, head_dim, clip_qkv):
    """(q, k, v) allocated as [B, H, T, hd]; v is empty without a clamp (the caller takes it as a
    view of qkv: an operator's outputs may not alias its inputs). Also the operator's shape
    function: under the compiler's fake tensors these calls allocate nothing."""
    B, T, _ = qkv.shape
    q, k = (torch.empty((B, n_heads, T, head_dim), dtype=qkv.dtype, device=qkv.device) for _ in range(2))
    v_shape = (B, n_heads, T, head_dim) if clip_qkv is not None else (0,)
    return q, k, torch.empty(v_shape, dtype=qkv.dtype, device=qkv.device)


def _rope_fwd_launch(qkv: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor, n_heads: int, head_dim: int,
                     clip_qkv: float | None) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(q, k, v) as [B, H, T, hd]; v is written only when clamped (see `_rope_fwd_outputs`)."""
    B, T, _ = qkv.shape
    q, k, v = _rope_fwd_outputs(qkv, n_heads, head_dim, clip_qkv)
    block_h, block_d, _ = _blocks(n_heads, head_dim)
    clip = 0.0 if clip_qkv is None else float(clip_qkv)
    grid = lambda meta: (triton.cdiv(B * T, meta["TOKENS"]), triton.cdiv(n_heads, block_h))  # noqa: E731
    _rope_fwd_kernel[grid](qkv, q, k, v, cos, sin, qkv.stride(0), qkv.stride(1), cos.stride(0), B * T, T, n_heads,
                           clip, HAS_CLIP=clip_qkv is not None, HALF=head_dim // 2, BLOCK_H=block_h,
                           BLOCK_D=block_d)
    return q, k, v


def _rope_bwd_launch(dq: torch.Tensor, dk: torch.Tensor, dv: torch.Tensor, qkv: torch.Tensor | None,
                     cos: torch.Tensor, sin: torch.Tensor, clip_qkv: float | None) -> torch.Tensor:
    """d(qkv) [B, T, 3*H*hd]; `qkv` (the forward's input) is needed only with a clamp."""
    B, n_heads, T, head_dim = dq.shape
    dqkv = torch.empty((B, T, 3 * n_heads * head_dim), dtype=dq.dtype, device=dq.device)
    block_h, block_d, warps = _blocks(n_heads, head_dim)
    grid = (B * T, -(-n_heads // block_h))
    clip = 0.0 if clip_qkv is None else float(clip_qkv)
    _rope_bwd_kernel[grid](dq, dk, dv, dqkv if qkv is None else qkv, dqkv, cos, sin,
                           dq.stride(0), dq.stride(1), dq.stride(2), dk.stride(0), dk.stride(1), dk.stride(2),
                           dv.stride(0), dv.stride(1), dv.stride(2), dqkv.stride(0), dqkv.stride(1),
                           cos.stride(0), T, n_heads, clip, HAS_CLIP=qkv is not None, HALF=head_dim // 2,
                           BLOCK_H=block_h, BLOCK_D=block_d, num_warps=warps)
    return dqkv


def _rope_fwd_fake(qkv, cos, sin, n_heads, head_dim, clip_qkv):
    return _rope_fwd_outputs(qkv, n_heads, head_dim, clip_qkv)


def _rope_bwd_fake(dq, dk, dv, qkv, cos, sin, clip_qkv):
    B, n_heads, T, head_dim = dq.shape
    return dq.new_empty((B, T, 3 * n_heads * head_dim))


_rope_fwd = torch_op("rope_qkv_fwd", _rope_fwd_launch, _rope_fwd_fake)
_rope_bwd = torch_op("rope_qkv_bwd", _rope_bwd_launch, _rope_bwd_fake)


class RopeQKVFunction(torch.autograd.Function):
    @staticmethod
    def forward(ctx, qkv, n_heads, head_dim, cos, sin, clip_qkv):
        B, T, _ = qkv.shape
        qkv = _last_dim_contiguous(qkv)
        cos = cos.float().contiguous()
        sin = sin.float().contiguous()
        q, k, v = _rope_fwd(qkv, cos, sin, n_heads, head_dim, clip_qkv)
        if clip_qkv is None:  # a view: the v part of qkv is used as it is
            d = n_heads * head_dim
            v = qkv[:, :, 2 * d:].view(B, T, n_heads, head_dim).transpose(1, 2)
            ctx.save_for_backward(cos, sin)
        else:
            ctx.save_for_backward(cos, sin, qkv)
        ctx.meta = (B, T, n_heads, head_dim, clip_qkv, qkv.dtype)
        return q, k, v

    @staticmethod
    def backward(ctx, dq, dk, dv):
        cos, sin, *rest = ctx.saved_tensors
        B, T, n_heads, head_dim, clip_qkv, dtype = ctx.meta
        dq, dk, dv = (torch.zeros((B, n_heads, T, head_dim), dtype=dtype, device=cos.device) if g is None
                      else _last_dim_contiguous(g) for g in (dq, dk, dv))
        dqkv = _rope_bwd(dq, dk, dv, rest[0] if rest else None, cos, sin, clip_qkv)
        return dqkv, None, None, None, None, None


def _check(qkv, n_heads, head_dim, cos, sin):
    if qkv.dim() != 3 or qkv.shape[-1] != 3 * n_heads * head_dim:
        raise ValueError(f"rope_qkv: qkv must be [B, T, 3*{n_heads}*{head_dim}], got {tuple(qkv.shape)}")
    if head_dim % 2:
        raise ValueError(f"rope_qkv: head_dim must be even, got {head_dim}")
    T = qkv.shape[1]
    if cos.shape[0] < T or cos.shape[-1] != head_dim or sin.shape != cos.shape:
        raise ValueError(f"rope_qkv: cos/sin must be [>= {T}, {head_dim}], got {tuple(cos.shape)} / {tuple(sin.shape)}")


def rope_qkv(qkv, n_heads: int, head_dim: int, cos, sin, clip_qkv: float | None = None):
    """(q, k, v), each [B, H, T, hd]: optional clamp of qkv to ±clip_qkv, split, RoPE on q and k."""
    _check(qkv, n_heads, head_dim, cos, sin)
    if qkv.numel() == 0 or not use_triton(qkv):
        return rope_qkv_reference(qkv, n_heads, head_dim, cos, sin, clip_qkv)
    return RopeQKVFunction.apply(qkv, n_heads, head_dim, cos, sin, clip_qkv)


def _rotate_half(x: torch.Tensor) -> torch.Tensor:
    x1, x2 = x.chunk(2, dim=-1)
    return torch.cat((-x2, x1), dim=-1)


def rope_qkv_reference(qkv, n_heads: int, head_dim: int, cos, sin, clip_qkv: float | None = None):
    _check(qkv, n_heads, head_dim, cos, sin)
    B, T, _ = qkv.shape
    if clip_qkv is not None:
        qkv = qkv.clamp(min=-clip_qkv, max=clip_qkv)
    q, k, v = (t.view(B, T, n_heads, head_dim).transpose(1, 2) for t in qkv.split(n_heads * head_dim, dim=-1))
    compute = torch.promote_types(qkv.dtype, torch.float32)  # fp32, or fp64 for a float64 check
    cos, sin = cos[:T].to(compute), sin[:T].to(compute)

    def rotate(t):
        t32 = t.to(compute)
        return (t32 * cos + _rotate_half(t32) * sin).to(t.dtype)

    return rotate(q), rotate(k), v
