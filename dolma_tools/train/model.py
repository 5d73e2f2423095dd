"""OLMo v1, read top to bottom.

    x = wte[input_ids]
    for each block:                                   (pre-norm, sequential)
        q, k, v = rope(clip(att_proj(LN(x))))          fused qkv, RoPE rotate-half in fp32
        x = x + attn_out(SDPA(q, k, v, causal))
        x = x + ff_out(silu(gate) * up)                [up | gate] = ff_proj(LN(x))
    logits = LN(x) @ (wte if tied else ff_out).T

LN is OLMo-1's non-parametric LayerNorm (no weight, no bias, eps 1e-5, fp32 statistics).
There are no biases. Weights use OLMo's "mitchell" init: normal truncated at ±3σ with std
1/√d, and output projections scaled down by depth. The element-wise ops (norms, SwiGLU, RoPE,
the fused LM head + cross-entropy) come from `dolma_tools.kernels.get_ops`, so the same module
runs on the torch reference ops or on the Triton kernels. Parameter names follow OLMo's
(`transformer.blocks.{i}.att_proj.weight`, ...) minus the `transformer.` prefix.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, replace

import torch
import torch.nn as nn
import torch.nn.functional as F


@dataclass(frozen=True)
class ModelConfig:
    d_model: int
    n_heads: int
    n_layers: int
    mlp_hidden_size: int  # the fused ff_proj width (2 × the SwiGLU inner size), as OLMo's config
    vocab_size: int = 50304  # the padded embedding size
    max_sequence_length: int = 2048
    rope_theta: float = 10000.0
    weight_tying: bool = False
    clip_qkv: float | None = None
    layer_norm_eps: float = 1e-5
    init_cutoff_factor: float = 3.0

    @property
    def head_dim(self) -> int:
        return self.d_model // self.n_heads

    def to_dict(self) -> dict:
        return asdict(self)


# d_model / heads / layers / fused MLP width. olmo-1b and olmo-7b are the official OLMo v1 shapes;
# the small ones follow OLMo's model ladder (mlp_ratio 8, untied).
MODEL_SHAPES: dict[str, ModelConfig] = {
    "tiny": ModelConfig(d_model=64, n_heads=4, n_layers=2, mlp_hidden_size=8 * 64),
    "olmo-60m": ModelConfig(d_model=512, n_heads=8, n_layers=8, mlp_hidden_size=8 * 512),
    "olmo-150m": ModelConfig(d_model=768, n_heads=12, n_layers=12, mlp_hidden_size=8 * 768),
    "olmo-300m": ModelConfig(d_model=1024, n_heads=16, n_layers=16, mlp_hidden_size=8 * 1024),
    "olmo-1b": ModelConfig(d_model=2048, n_heads=16, n_layers=16, mlp_hidden_size=8 * 2048, weight_tying=True),
    "olmo-7b": ModelConfig(d_model=4096, n_heads=32, n_layers=32, mlp_hidden_size=22016),
}


def model_config(name: str, **overrides) -> ModelConfig:
    from dolma_tools.errors import ConfigError

    if name not in MODEL_SHAPES:
        raise ConfigError(f"unknown model {name!r}: choose one of {', '.join(MODEL_SHAPES)}")
    return replace(MODEL_SHAPES[name], **{k: v for k, v in overrides.items() if v is not None})


def _ops(ops):
    if ops is None:
        from dolma_tools.kernels import get_ops

        ops = get_ops("torch")
    return ops


class OLMoBlock(nn.Module):
    def __init__(self, cfg: ModelConfig, layer_id: int, ops=None):
        super().__init__()
        self.cfg, self.layer_id, self.ops = cfg, layer_id, _ops(ops)
        d = cfg.d_model
        self.att_proj = nn.Linear(d, 3 * d, bias=False)       # rows: q, k, v
        self.attn_out = nn.Linear(d, d, bias=False)
        self.ff_proj = nn.Linear(d, cfg.mlp_hidden_size, bias=False)  # rows: up, gate
        self.ff_out = nn.Linear(cfg.mlp_hidden_size // 2, d, bias=False)

    def forward(self, x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
        B, T, d = x.shape
        cfg, ops = self.cfg, self.ops
        h = ops.layer_norm(x, cfg.layer_norm_eps)
        q, k, v = ops.rope_qkv(self.att_proj(h), cfg.n_heads, cfg.head_dim, cos, sin, cfg.clip_qkv)
        att = F.scaled_dot_product_attention(q, k, v, is_causal=True)
        att = self.attn_out(att.transpose(1, 2).reshape(B, T, d))
        x, h = ops.add_layer_norm(att, x, cfg.layer_norm_eps)
        return x + self.ff_out(ops.swiglu(self.ff_proj(h)))

    @torch.no_grad()
    def reset_parameters(self) -> None:
        d, cutoff = self.cfg.d_model, self.cfg.init_cutoff_factor
        depth = self.layer_id + 1
        trunc_normal(self.att_proj.weight, 1 / math.sqrt(d), cutoff)
        trunc_normal(self.ff_proj.weight, 1 / math.sqrt(d), cutoff)
        trunc_normal(self.attn_out.weight, 1 / math.sqrt(2 * d * depth), cutoff)
        trunc_normal(self.ff_out.weight, 1 / math.sqrt(2 * self.ff_out.in_features * depth), cutoff)


class OLMo(nn.Module):
    def __init__(self, cfg: ModelConfig, ops=None):
        super().__init__()
        self.cfg, self.ops = cfg, _ops(ops)
        self.wte = nn.Embedding(cfg.vocab_size, cfg.d_model)
        self.blocks = nn.ModuleList(OLMoBlock(cfg, i, self.ops) for i in range(cfg.n_layers))
        if not cfg.weight_tying:
            self.ff_out = nn.Linear(cfg.d_model, cfg.vocab_size, bias=False)
        self.loss_fn = None  # the trainer may set a compiled ops.linear_cross_entropy
        # cos/sin live outside the state dict and outside FSDP's buffer handling (OLMo does the same)
        self._rope: dict[tuple, tuple[torch.Tensor, torch.Tensor]] = {}

    def set_ops(self, ops) -> None:
        self.ops = ops
        for block in self.blocks:
            block.ops = ops

    def head_weight(self) -> torch.Tensor:
        return self.wte.weight if self.cfg.weight_tying else self.ff_out.weight

    def rope(self, seq_len: int, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
        key = (max(seq_len, self.cfg.max_sequence_length), str(device))
        if key not in self._rope:
            self._rope = {key: self.ops.rope_cache(key[0], self.cfg.head_dim, self.cfg.rope_theta, device)}
        return self._rope[key]

    def hidden_states(self, input_ids: torch.Tensor) -> torch.Tensor:
        x = self.wte(input_ids)
        cos, sin = self.rope(input_ids.shape[1], input_ids.device)
        for block in self.blocks:
            x = block(x, cos, sin)
        return self.ops.layer_norm(x, self.cfg.layer_norm_eps)

    def forward(self, input_ids: torch.Tensor, labels: torch.Tensor | None = None,
                z_loss_multiplier: float = 0.0, reduction: str = "sum"):
        """Logits [B, T, V] without labels; with labels [B, T] (-100 = ignore), (loss, z_loss).

        The loss is the sum over unmasked targets (reduction "sum"), so a trainer can divide by the
        token count of the whole batch as OLMo does; it includes the z-loss.
        """
        h = self.hidden_states(input_ids)
        w = self.head_weight()
        if labels is None:
            return F.linear(h, w)
        loss_fn = self.loss_fn or self.ops.linear_cross_entropy
        return loss_fn(h.reshape(-1, h.shape[-1]), w, labels.reshape(-1), ignore_index=-100,
                       z_loss_multiplier=z_loss_multiplier, reduction=reduction)

    @torch.no_grad()
    def reset_parameters(self) -> None:
        std = 1 / math.sqrt(self.cfg.d_model)
        trunc_normal(self.wte.weight, std, self.cfg.init_cutoff_factor)
        if not self.cfg.weight_tying:
            trunc_normal(self.ff_out.weight, std, self.cfg.init_cutoff_factor)
        for block in self.blocks:
            block.reset_parameters()

    def num_params(self, non_embedding: bool = False) -> int:
        n = sum(p.numel() for p in self.parameters())
        if non_embedding:
            n -= self.wte.weight.numel()
            if self.cfg.weight_tying:  # the tied matrix still does the LM-head matmul
                n += self.wte.weight.numel()
        return n


def trunc_normal(w: torch.Tensor, std: float, cutoff: float) -> None:
    nn.init.trunc_normal_(w, mean=0.0, std=std, a=-cutoff * std, b=cutoff * std)


def build_model(cfg: ModelConfig, ops=None, seed: int | None = None, device: str | torch.device = "cpu") -> OLMo:
    """A freshly initialised model (same weights for the same seed on any number of ranks)."""
    with torch.device(device):
        model = OLMo(cfg, ops)
    if str(device) != "meta":
        if seed is not None:
            with torch.random.fork_rng(devices=[]):
                torch.manual_seed(seed)
                model.reset_parameters()
        else:
            model.reset_parameters()
    return model


def labels_for(input_ids: torch.Tensor) -> torch.Tensor:
    """OLMo-core's shift: position t predicts token t+1; the last position is ignored (-100)."""
    labels = torch.full_like(input_ids, -100)
    labels[:, :-1] = input_ids[:, 1:]
    return labels
