"""The kernels at OLMo-1B and OLMo-7B shapes on a GPU (CUDA or ROCm), against float64 references.

Skipped without a GPU. Run: `pytest tests/kernels -m gpu -q`.
"""

import pytest
import torch

from dolma_tools.kernels.cross_entropy import linear_cross_entropy, linear_cross_entropy_reference
from dolma_tools.kernels.layernorm import add_layer_norm, add_layer_norm_reference, layer_norm, layer_norm_reference
from dolma_tools.kernels.rope import rope_cache, rope_qkv, rope_qkv_reference
from dolma_tools.kernels.swiglu import swiglu, swiglu_reference

pytestmark = [pytest.mark.gpu, pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA/ROCm GPU")]

# name: d_model, heads, ff_proj width (2 x SwiGLU inner), vocab (padded), clip_qkv
SHAPES = {
    "olmo-1b": (2048, 16, 16384, 50304, None),
    "olmo-7b": (4096, 32, 22016, 50304, 8.0),
}
B, T = 2, 2048
DTYPES = [torch.bfloat16, torch.float32]


def _rand(shape, dtype, scale=1.0):
    return (torch.randn(shape, dtype=torch.float64, device="cuda") * scale).to(dtype).requires_grad_()


def _to64(*ts):
    return [t.detach().double().requires_grad_() for t in ts]


@pytest.mark.parametrize("model", SHAPES)
@pytest.mark.parametrize("dtype", DTYPES)
def test_gpu_layer_norms(model, dtype, assert_close):
    d = SHAPES[model][0]
    x, r = _rand((B, T, d), dtype), _rand((B, T, d), dtype, 4.0)
    (x64, r64) = _to64(x, r)
    y = layer_norm(x)
    y64 = layer_norm_reference(x64)
    assert_close(y, y64, dtype, "layer_norm")
    dy = torch.randn_like(y64)
    assert_close(torch.autograd.grad(y, x, dy.to(dtype))[0], torch.autograd.grad(y64, x64, dy)[0], dtype, "dx")
    s, y = add_layer_norm(x, r)
    s64, y64 = add_layer_norm_reference(x64, r64)
    assert_close(s, s64, dtype, "s")
    assert_close(y, y64, dtype, "y")
    ds = torch.randn_like(s64)
    g = torch.autograd.grad((s * ds.to(dtype)).sum() + (y * dy.to(dtype)).sum(), (x, r))
    g64 = torch.autograd.grad((s64 * ds).sum() + (y64 * dy).sum(), (x64, r64))
    assert_close(g[0], g64[0], dtype, "dx")
    assert_close(g[1], g64[1], dtype, "dresidual")


@pytest.mark.parametrize("model", SHAPES)
@pytest.mark.parametrize("dtype", DTYPES)
def test_gpu_swiglu(model, dtype, assert_close):
    ff = _rand((B, T, SHAPES[model][2]), dtype, 2.0)
    (ff64,) = _to64(ff)
    y, y64 = swiglu(ff), swiglu_reference(ff64)
    assert_close(y, y64, dtype, "y")
    dy = torch.randn_like(y64)
    assert_close(torch.autograd.grad(y, ff, dy.to(dtype))[0], torch.autograd.grad(y64, ff64, dy)[0], dtype, "dff")


@pytest.mark.parametrize("model", SHAPES)
@pytest.mark.parametrize("dtype", DTYPES)
def test_gpu_rope_qkv(model, dtype, assert_close):
    d, H, _, _, clip = SHAPES[model]
    hd = d // H
    qkv = _rand((B, T, 3 * d), dtype, 4.0)  # wide enough that clip 8.0 bites
    (qkv64,) = _to64(qkv)
    cos, sin = rope_cache(T, hd, device="cuda")
    outs = rope_qkv(qkv, H, hd, cos, sin, clip_qkv=clip)
    outs64 = rope_qkv_reference(qkv64, H, hd, cos.double(), sin.double(), clip_qkv=clip)
    for o, o64, name in zip(outs, outs64, "qkv"):
        assert_close(o, o64, dtype, name)
    gs = [torch.randn_like(o) for o in outs64]
    g = torch.autograd.grad(outs, qkv, [t.to(dtype) for t in gs])[0]
    g64 = torch.autograd.grad(outs64, qkv64, gs)[0]
    assert_close(g, g64, dtype, "dqkv")


@pytest.mark.parametrize("model", SHAPES)
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("reduction", ["mean", "sum"])
def test_gpu_linear_cross_entropy(model, dtype, reduction, assert_close):
    d, _, _, V, _ = SHAPES[model]
    n = 2048
    h = _rand((n, d), dtype)
    w = _rand((V, d), dtype, d ** -0.5 * 2)
    y = torch.randint(0, V, (n,), device="cuda")
    y[::7] = -100
    loss, z = linear_cross_entropy(h, w, y, z_loss_multiplier=1e-4, reduction=reduction)
    h64, w64 = _to64(h, w)
    loss64, z64 = linear_cross_entropy_reference(h64, w64, y, z_loss_multiplier=1e-4, reduction=reduction)
    assert_close(loss.reshape(1), loss64.reshape(1), dtype, "loss")
    assert_close(z.reshape(1), z64.reshape(1), dtype, "z_loss")
    g = torch.autograd.grad(loss * 0.5, (h, w))
    g64 = torch.autograd.grad(loss64 * 0.5, (h64, w64))
    assert_close(g[0], g64[0], dtype, "grad_hidden")
    assert_close(g[1], g64[1], dtype, "grad_weight")
