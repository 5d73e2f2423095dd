import pytest
import torch

from dolma_tools.kernels.swiglu import swiglu, swiglu_reference


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
@pytest.mark.parametrize("shape", [(2, 3, 2 * 64), (5, 2 * 700)])  # 700: not a multiple of the tile
def test_swiglu_forward_backward(dtype, shape, assert_close):
    ff = (torch.randn(shape, dtype=torch.float64) * 2).to(dtype).requires_grad_()
    y = swiglu(ff)
    assert y.shape == (*shape[:-1], shape[-1] // 2) and y.dtype == dtype
    ff64 = ff.detach().double().requires_grad_()
    y64 = swiglu_reference(ff64)
    assert_close(y, y64, dtype, "y")
    dy = torch.randn(y64.shape, dtype=torch.float64)
    (g,) = torch.autograd.grad(y, ff, dy.to(dtype))
    (g64,) = torch.autograd.grad(y64, ff64, dy)
    assert_close(g, g64, dtype, "dff")


def test_swiglu_halves_follow_olmo():
    # first half is "up" (value), second half is "gate": y = silu(gate) * up
    up = torch.tensor([[1.0, 2.0]])
    gate = torch.tensor([[0.0, 3.0]])
    y = swiglu(torch.cat([up, gate], dim=-1))
    expected = torch.nn.functional.silu(gate) * up
    torch.testing.assert_close(y, expected)
    assert y[0, 0].item() == 0.0  # silu(0) = 0 kills the first value


def test_swiglu_rejects_odd_width():
    with pytest.raises(ValueError, match="even"):
        swiglu(torch.randn(2, 5))


@pytest.mark.parametrize("config", range(8))
def test_swiglu_every_autotuned_config(config, monkeypatch, assert_close):
    # the interpreter runs one config; on a GPU the autotuner may pick any of them, so check each:
    # rows of 700 leave the last tile of each row part-empty, and a flat tile spans rows
    from dolma_tools.kernels import swiglu as mod

    assert len(mod._CONFIGS) == 8
    monkeypatch.setattr(mod._swiglu_fwd_kernel, "interpret_config", config)
    monkeypatch.setattr(mod._swiglu_bwd_kernel, "interpret_config", config)
    ff = (torch.randn((3, 2 * 700), dtype=torch.float64) * 2).float().requires_grad_()
    ff64 = ff.detach().double().requires_grad_()
    y, y64 = swiglu(ff), swiglu_reference(ff64)
    assert_close(y, y64, torch.float32, "y")
    dy = torch.randn(y64.shape, dtype=torch.float64)
    assert_close(torch.autograd.grad(y, ff, dy.float())[0], torch.autograd.grad(y64, ff64, dy)[0],
                 torch.float32, "dff")


def test_swiglu_flat_tiles_with_64_bit_offsets(monkeypatch, assert_close):
    # outputs of 2**31 elements and more switch the flat layout to 64-bit offsets; same results
    from dolma_tools.kernels import swiglu as mod

    flat = next(i for i, c in enumerate(mod._CONFIGS) if c.kwargs["LAYOUT"] == mod._FLAT)
    monkeypatch.setattr(mod, "_wide", lambda M, H: True)
    monkeypatch.setattr(mod._swiglu_fwd_kernel, "interpret_config", flat)
    ff = torch.randn((5, 2 * 300), dtype=torch.float64).float()
    assert_close(swiglu(ff), swiglu_reference(ff.double()), torch.float32, "y")
