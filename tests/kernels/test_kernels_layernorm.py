import pytest
import torch

from dolma_tools.kernels.layernorm import add_layer_norm, add_layer_norm_reference, layer_norm, layer_norm_reference

DTYPES = [torch.float32, torch.bfloat16]


def _rand(shape, dtype, scale=1.0, shift=0.0):
    return (torch.randn(shape, dtype=torch.float64) * scale + shift).to(dtype).requires_grad_()


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape", [(3, 5, 64), (7, 100)])  # a power of two and a ragged row
def test_layer_norm_forward_backward(dtype, shape, assert_close):
    x = _rand(shape, dtype, scale=2.0, shift=0.5)  # a non-zero mean exercises the centring
    y = layer_norm(x)
    assert y.dtype == dtype
    x64 = x.detach().double().requires_grad_()
    y64 = layer_norm_reference(x64)
    assert_close(y, y64, dtype, "y")
    dy = torch.randn(shape, dtype=torch.float64)
    (gx,) = torch.autograd.grad(y, x, dy.to(dtype))
    (gx64,) = torch.autograd.grad(y64, x64, dy)
    assert_close(gx, gx64, dtype, "dx")


@pytest.mark.parametrize("dtype", DTYPES)
def test_add_layer_norm_forward_backward(dtype, assert_close):
    shape = (2, 6, 96)
    x, r = _rand(shape, dtype), _rand(shape, dtype, scale=3.0)
    s, y = add_layer_norm(x, r)
    x64, r64 = (t.detach().double().requires_grad_() for t in (x, r))
    s64, y64 = add_layer_norm_reference(x64, r64)
    assert_close(s, s64, dtype, "s")
    assert_close(y, y64, dtype, "y")
    ds, dy = torch.randn(shape, dtype=torch.float64), torch.randn(shape, dtype=torch.float64)
    grads = torch.autograd.grad((s * ds.to(dtype)).sum() + (y * dy.to(dtype)).sum(), (x, r))
    grads64 = torch.autograd.grad((s64 * ds).sum() + (y64 * dy).sum(), (x64, r64))
    for g, g64, name in zip(grads, grads64, ("dx", "dresidual")):
        assert g.dtype == dtype
        assert_close(g, g64, dtype, name)


def test_add_layer_norm_only_normalised_output_used(assert_close):
    x, r = _rand((4, 32), torch.float32), _rand((4, 32), torch.float32)
    _, y = add_layer_norm(x, r)
    x64, r64 = (t.detach().double().requires_grad_() for t in (x, r))
    _, y64 = add_layer_norm_reference(x64, r64)
    dy = torch.randn(4, 32, dtype=torch.float64)
    gx, _ = torch.autograd.grad(y, (x, r), dy.float())
    gx64, _ = torch.autograd.grad(y64, (x64, r64), dy)
    assert_close(gx, gx64, torch.float32, "dx")


def test_layer_norm_statistics_are_fp32():
    # a large offset with a small spread: bf16 statistics would lose the spread entirely
    x = (1000.0 + torch.randn(4, 256, dtype=torch.float64)).float()
    y = layer_norm(x)
    y64 = layer_norm_reference(x.double())
    assert ((y.double() - y64).norm() / y64.norm()).item() < 1e-3


def test_non_contiguous_input(assert_close):
    base = _rand((8, 64), torch.float32)
    x = base.t().contiguous().t()  # last dim stride != 1
    y = layer_norm(x)
    assert_close(y, layer_norm_reference(x.detach().double()), torch.float32, "y")
