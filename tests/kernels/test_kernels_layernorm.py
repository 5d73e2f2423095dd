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


@pytest.mark.parametrize("config", range(8))
def test_layer_norm_every_autotuned_config(config, monkeypatch, assert_close):
    # on a GPU the autotuner may pick any rows-per-program / warps config: check each, with a row
    # count (7) that leaves the last program's tile part-empty
    from dolma_tools.kernels import layernorm as mod

    assert len(mod._ROW_CONFIGS) == 8
    for k in (mod._ln_fwd_tuned, mod._ln_bwd_tuned):
        monkeypatch.setattr(k, "interpret_config", config)
    x = (torch.randn((7, 96), dtype=torch.float64) * 3 + 1).float().requires_grad_()
    r = torch.randn((7, 96), dtype=torch.float64).float().requires_grad_()
    x64, r64 = (t.detach().double().requires_grad_() for t in (x, r))
    s, y = add_layer_norm(x, r)
    s64, y64 = add_layer_norm_reference(x64, r64)
    assert_close(s, s64, torch.float32, "s")
    assert_close(y, y64, torch.float32, "y")
    ds, dy = torch.randn_like(s64), torch.randn_like(y64)
    got = torch.autograd.grad((s, y), (x, r), (ds.float(), dy.float()))
    want = torch.autograd.grad((s64, y64), (x64, r64), (ds, dy))
    for g, w, name in zip(got, want, ("dx", "dresidual")):
        assert_close(g, w, torch.float32, name)
    y1 = layer_norm(x)
    assert_close(y1, layer_norm_reference(x64), torch.float32, "layer_norm y")
    assert_close(torch.autograd.grad(y1, x, dy.float())[0],
                 torch.autograd.grad(layer_norm_reference(x64), x64, dy)[0], torch.float32, "layer_norm dx")


def test_layer_norm_rows_wider_than_the_tuned_width(monkeypatch, assert_close):
    # rows wider than TUNED_WIDTH (8,192 for a 7B+ model, say) take the one-row-per-program kernel
    from dolma_tools.kernels import layernorm as mod

    monkeypatch.setattr(mod, "TUNED_WIDTH", 32)
    x = _rand((5, 100), torch.float32, scale=2.0, shift=0.5)
    x64 = x.detach().double().requires_grad_()
    y, y64 = layer_norm(x), layer_norm_reference(x64)
    assert_close(y, y64, torch.float32, "y")
    dy = torch.randn((5, 100), dtype=torch.float64)
    assert_close(torch.autograd.grad(y, x, dy.float())[0], torch.autograd.grad(y64, x64, dy)[0], torch.float32, "dx")
