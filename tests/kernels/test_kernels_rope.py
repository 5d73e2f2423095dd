import pytest
import torch

from dolma_tools.kernels.rope import rope_cache, rope_qkv, rope_qkv_reference

B, T, H, HD = 2, 5, 3, 16


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
@pytest.mark.parametrize("clip", [None, 1.5])
def test_rope_qkv_forward_backward(dtype, clip, assert_close):
    qkv = (torch.randn(B, T, 3 * H * HD, dtype=torch.float64) * 1.5).to(dtype).requires_grad_()
    cos, sin = rope_cache(T + 3, HD)  # a cache longer than the sequence
    q, k, v = rope_qkv(qkv, H, HD, cos, sin, clip_qkv=clip)
    qkv64 = qkv.detach().double().requires_grad_()
    outs64 = rope_qkv_reference(qkv64, H, HD, cos.double(), sin.double(), clip_qkv=clip)
    for out, out64, name in zip((q, k, v), outs64, "qkv"):
        assert out.shape == (B, H, T, HD) and out.dtype == dtype
        assert_close(out, out64, dtype, name)
    grads = [torch.randn(B, H, T, HD, dtype=torch.float64) for _ in range(3)]
    (g,) = torch.autograd.grad((q, k, v), qkv, [t.to(dtype) for t in grads])
    (g64,) = torch.autograd.grad(outs64, qkv64, grads)
    assert_close(g, g64, dtype, "dqkv")
    if clip is not None:
        outside = qkv.detach().abs() > clip
        assert outside.any()
        assert (g[outside] == 0).all()


def test_rope_matches_rotate_half_by_hand():
    hd = 4
    cos, sin = rope_cache(2, hd, theta=10000.0)
    # position 1, frequencies [1, 1/100] repeated twice
    ang = torch.tensor([1.0, 0.01, 1.0, 0.01])
    torch.testing.assert_close(cos[1], ang.cos())
    qkv = torch.zeros(1, 2, 3 * hd)
    qkv[0, 1, :hd] = torch.tensor([1.0, 2.0, 3.0, 4.0])
    q, _, _ = rope_qkv(qkv, 1, hd, cos, sin)
    x1, x2 = torch.tensor([1.0, 2.0]), torch.tensor([3.0, 4.0])
    c, s = ang[:2].cos(), ang[:2].sin()
    torch.testing.assert_close(q[0, 0, 1], torch.cat([x1 * c - x2 * s, x2 * c + x1 * s]))
    torch.testing.assert_close(q[0, 0, 0], qkv[0, 0, :hd])  # position 0: identity


def test_rope_non_contiguous_grads(assert_close):
    # SDPA's backward may hand back gradients in any layout
    qkv = torch.randn(B, T, 3 * H * HD, dtype=torch.float64).float().requires_grad_()
    cos, sin = rope_cache(T, HD)
    q, k, v = rope_qkv(qkv, H, HD, cos, sin)
    gq = torch.randn(B, T, H, HD).transpose(1, 2)  # [B, H, T, hd] view, non-contiguous
    (g,) = torch.autograd.grad(q, qkv, gq)
    qkv64 = qkv.detach().double().requires_grad_()
    q64, _, _ = rope_qkv_reference(qkv64, H, HD, cos.double(), sin.double())
    (g64,) = torch.autograd.grad(q64, qkv64, gq.double())
    assert_close(g, g64, torch.float32, "dqkv")


def test_rope_shape_errors():
    cos, sin = rope_cache(4, 8)
    with pytest.raises(ValueError, match="qkv must be"):
        rope_qkv(torch.randn(1, 4, 10), 2, 8, cos, sin)
    with pytest.raises(ValueError, match="cos/sin"):
        rope_qkv(torch.randn(1, 6, 3 * 2 * 8), 2, 8, cos, sin)


def test_v_is_a_view_of_qkv_unless_clamped():
    # without clip_qkv, v's bytes are never moved (SDPA takes the strided view); with it, v is clamped into a copy
    qkv = torch.randn(B, T, 3 * H * HD) * 3
    cos, sin = rope_cache(T, HD)
    _, _, v = rope_qkv(qkv, H, HD, cos, sin)
    assert v.data_ptr() == qkv[..., 2 * H * HD:].data_ptr()
    torch.testing.assert_close(v, qkv[..., 2 * H * HD:].view(B, T, H, HD).transpose(1, 2), rtol=0, atol=0)
    _, _, v_clipped = rope_qkv(qkv, H, HD, cos, sin, clip_qkv=1.0)
    assert v_clipped.data_ptr() != qkv.data_ptr() + 2 * H * HD * qkv.element_size()
    assert float(v_clipped.abs().max()) == 1.0
    assert v_clipped.is_contiguous()


@pytest.mark.parametrize("clip_qkv", [None, 0.8])
@pytest.mark.parametrize("config", range(5))
def test_rope_every_autotuned_config(config, clip_qkv, monkeypatch, assert_close):
    # the autotuner may pick any tokens-per-program / warps config on a GPU: check each; 3 x 5
    # tokens leave the last program's tile part-empty for 2 and 4 tokens per program
    from dolma_tools.kernels import rope as mod

    assert len(mod._FWD_CONFIGS) == 5
    monkeypatch.setattr(mod._rope_fwd_kernel, "interpret_config", config)
    B, T, H, hd = 3, 5, 2, 8
    cos, sin = mod.rope_cache(T, hd)
    qkv = (torch.randn((B, T, 3 * H * hd), dtype=torch.float64)).float().requires_grad_()
    qkv64 = qkv.detach().double().requires_grad_()
    got = mod.rope_qkv(qkv, H, hd, cos, sin, clip_qkv)
    want = mod.rope_qkv_reference(qkv64, H, hd, cos, sin, clip_qkv)
    for g, w, name in zip(got, want, "qkv"):
        assert_close(g, w, torch.float32, name)
    grads_out = [torch.randn_like(w) for w in want]
    assert_close(torch.autograd.grad(got, qkv, [g.float() for g in grads_out])[0],
                 torch.autograd.grad(want, qkv64, grads_out)[0], torch.float32, "dqkv")
