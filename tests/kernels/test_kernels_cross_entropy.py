import pytest
import torch

from dolma_tools.kernels.cross_entropy import linear_cross_entropy, linear_cross_entropy_reference

N, D, V = 19, 16, 53  # V, N: not powers of two; chunk 8 leaves a ragged last chunk


def _inputs(dtype, n=N):
    h = torch.randn(n, D, dtype=torch.float64).to(dtype).requires_grad_()
    w = (torch.randn(V, D, dtype=torch.float64) * 0.5).to(dtype).requires_grad_()
    y = torch.randint(0, V, (n,))
    y[::5] = -100
    return h, w, y


def _to64(*ts):
    return [t.detach().double().requires_grad_() for t in ts]


@pytest.mark.parametrize("dtype,reduction,z", [
    (torch.float32, "mean", 1e-2), (torch.float32, "sum", 0.0),
    (torch.bfloat16, "mean", 0.0), (torch.bfloat16, "sum", 1e-2),
])
def test_linear_cross_entropy_matches_reference(dtype, reduction, z, assert_close):
    h, w, y = _inputs(dtype)
    loss, z_loss = linear_cross_entropy(h, w, y, z_loss_multiplier=z, reduction=reduction, chunk_size=8)
    h64, w64 = _to64(h, w)
    loss64, z64 = linear_cross_entropy_reference(h64, w64, y, z_loss_multiplier=z, reduction=reduction)
    assert_close(loss.reshape(1), loss64.reshape(1), dtype, "loss")
    if z:
        assert_close(z_loss.reshape(1), z64.reshape(1), dtype, "z_loss")
    else:
        assert z_loss.item() == 0.0
    assert not z_loss.requires_grad
    # a non-unit upstream gradient: the backward must scale the precomputed gradients
    gh, gw = torch.autograd.grad(loss * 0.37, (h, w))
    gh64, gw64 = torch.autograd.grad(loss64 * 0.37, (h64, w64))
    assert gh.dtype == dtype and gw.dtype == dtype
    assert_close(gh, gh64, dtype, "grad_hidden")
    assert_close(gw, gw64, dtype, "grad_weight")
    assert (gh[y == -100] == 0).all()


def test_gradient_accumulation_sum_over_global_count(assert_close):
    # two micro-batches with reduction="sum", each divided by the global unmasked count,
    # equal one big batch with reduction="mean" (the Liger FLCE pitfall: per-micro-batch means)
    h, w, y = _inputs(torch.float32, n=24)
    y[:5] = -100  # micro-batches with different unmasked counts
    n_global = (y != -100).sum()
    total = 0.0
    for part in (slice(0, 12), slice(12, 24)):
        loss, _ = linear_cross_entropy(h[part], w, y[part], reduction="sum", z_loss_multiplier=1e-3, chunk_size=8)
        (loss / n_global).backward()
        total += loss.item() / n_global.item()
    h64, w64 = _to64(h, w)
    loss64, _ = linear_cross_entropy_reference(h64, w64, y, reduction="mean", z_loss_multiplier=1e-3)
    loss64.backward()
    assert abs(total - loss64.item()) / loss64.item() < 1e-5
    assert_close(h.grad, h64.grad, torch.float32, "grad_hidden")
    assert_close(w.grad, w64.grad, torch.float32, "grad_weight")


def test_tied_embedding_gradient(assert_close):
    # the LM head is the input embedding: both uses contribute to one gradient
    emb = (torch.randn(V, D, dtype=torch.float64) * 0.5).float().requires_grad_()
    ids = torch.randint(0, V, (N,))
    y = torch.randint(0, V, (N,))
    emb64 = emb.detach().double().requires_grad_()
    hidden = torch.tanh(emb[ids])
    loss, _ = linear_cross_entropy(hidden, emb, y, chunk_size=8)
    loss.backward()
    loss64, _ = linear_cross_entropy_reference(torch.tanh(emb64[ids]), emb64, y)
    loss64.backward()
    assert_close(emb.grad, emb64.grad, torch.float32, "grad_embedding")


def test_all_tokens_ignored_gives_zero():
    h, w, _ = _inputs(torch.float32, n=6)
    y = torch.full((6,), -100)
    loss, z = linear_cross_entropy(h, w, y, z_loss_multiplier=1e-4)
    assert loss.item() == 0.0 and z.item() == 0.0
    loss.backward()
    assert (h.grad == 0).all() and (w.grad == 0).all()


def test_batched_hidden_and_no_grad(assert_close):
    h, w, y = _inputs(torch.float32, n=12)
    h3, y3 = h.detach().view(3, 4, D), y.view(3, 4)
    with torch.no_grad():
        loss, _ = linear_cross_entropy(h3, w, y3)
    loss64, _ = linear_cross_entropy_reference(h.detach().double(), w.detach().double(), y)
    assert_close(loss.reshape(1), loss64.reshape(1), torch.float32, "loss")
    h3 = h3.clone().requires_grad_()
    loss, _ = linear_cross_entropy(h3, w, y3)
    loss.backward()
    assert h3.grad.shape == (3, 4, D)


def test_bad_reduction():
    h, w, y = _inputs(torch.float32, n=4)
    with pytest.raises(ValueError, match="reduction"):
        linear_cross_entropy(h, w, y, reduction="none")


def test_autocast_runs_the_head_in_bf16(assert_close):
    # fp32 master weights under bf16 autocast: the matmul runs in bf16, gradients come back fp32
    h, w, y = _inputs(torch.float32, n=8)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        loss, _ = linear_cross_entropy(h, w, y, chunk_size=4)
    gh, gw = torch.autograd.grad(loss, (h, w))
    assert gh.dtype == torch.float32 and gw.dtype == torch.float32
    h64, w64 = (t.detach().to(torch.bfloat16).double().requires_grad_() for t in (h, w))
    loss64, _ = linear_cross_entropy_reference(h64, w64, y)
    g64 = torch.autograd.grad(loss64, (h64, w64))
    assert_close(loss.reshape(1), loss64.reshape(1), torch.bfloat16, "loss")
    assert_close(gh, g64[0], torch.bfloat16, "grad_hidden")
    assert_close(gw, g64[1], torch.bfloat16, "grad_weight")
