import pytest
import torch

from dolma_tools.errors import UserError
from dolma_tools.kernels import KernelOps, default_backend, get_ops


def test_default_backend_on_cpu_is_torch():
    if torch.cuda.is_available():
        pytest.skip("a GPU is present")
    assert default_backend() == "torch"
    assert get_ops().name == "torch"


def test_unknown_backend():
    with pytest.raises(UserError, match="unknown kernels backend"):
        get_ops("cuda")


def test_triton_without_gpu_or_interpreter(monkeypatch):
    if torch.cuda.is_available():
        pytest.skip("a GPU is present")
    monkeypatch.setenv("TRITON_INTERPRET", "0")
    with pytest.raises(UserError, match="--kernels torch"):
        get_ops("triton")


def _block(ops: KernelOps, x, w_qkv, w_ff, w_lm, targets, n_heads, head_dim, clip):
    """One OLMo block + LM head, written against the ops interface as the trainer uses it."""
    B, T, d = x.shape
    cos, sin = ops.rope_cache(T, head_dim, device=x.device)
    h = ops.layer_norm(x)
    q, k, v = ops.rope_qkv(h @ w_qkv.t(), n_heads, head_dim, cos, sin, clip_qkv=clip)
    att = torch.nn.functional.scaled_dot_product_attention(q, k, v, is_causal=True)
    att = att.transpose(1, 2).reshape(B, T, d)
    x, h = ops.add_layer_norm(att, x)
    x = x + ops.swiglu(h @ w_ff.t()) @ w_ff[: w_ff.shape[0] // 2]  # down-projection reusing weights
    _, h = ops.add_layer_norm(x, torch.zeros_like(x))
    return ops.linear_cross_entropy(h.reshape(B * T, d), w_lm, targets.reshape(-1), z_loss_multiplier=1e-4)


def test_backends_agree_on_a_block():
    B, T, H, hd = 1, 5, 2, 8
    d = H * hd
    torch.manual_seed(0)
    x = torch.randn(B, T, d)
    params = [torch.randn(3 * d, d) * 0.3, torch.randn(4 * d, d) * 0.3, torch.randn(29, d) * 0.3]
    targets = torch.randint(0, 29, (B, T))
    targets[0, :2] = -100

    results = {}
    for name in ("torch", "triton"):
        ps = [p.clone().requires_grad_() for p in params]
        loss, z = _block(get_ops(name), x, *ps, targets, H, hd, clip=1.0)
        loss.backward()
        results[name] = (loss.detach(), z, [p.grad for p in ps])
    (l0, z0, g0), (l1, z1, g1) = results["torch"], results["triton"]
    torch.testing.assert_close(l1, l0, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(z1, z0, rtol=1e-5, atol=1e-8)
    for a, b in zip(g1, g0):
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-6)
