"""Checkpoints <-> Hugging Face `OlmoForCausalLM` (safetensors, config, tokenizer files).

Weight mapping (OLMo v1 -> transformers):
    wte.weight                 -> model.embed_tokens.weight
    blocks.i.att_proj.weight   -> model.layers.i.self_attn.{q,k,v}_proj.weight   (rows q | k | v)
    blocks.i.attn_out.weight   -> model.layers.i.self_attn.o_proj.weight
    blocks.i.ff_proj.weight    -> model.layers.i.mlp.{up,gate}_proj.weight        (rows up | gate)
    blocks.i.ff_out.weight     -> model.layers.i.mlp.down_proj.weight
    ff_out.weight (untied)     -> lm_head.weight                                  (tied: omitted)
The norms have no parameters, so no norm keys are written.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import torch

from dolma_tools.errors import UserError
from dolma_tools.train import checkpoint as ckpt
from dolma_tools.train.model import ModelConfig, OLMo


def to_hf_state_dict(state: dict[str, torch.Tensor], cfg: ModelConfig) -> dict[str, torch.Tensor]:
    d = cfg.d_model
    out = {"model.embed_tokens.weight": state["wte.weight"]}
    for i in range(cfg.n_layers):
        p, q = f"blocks.{i}.", f"model.layers.{i}."
        qw, kw, vw = state[p + "att_proj.weight"].split(d, dim=0)
        up, gate = state[p + "ff_proj.weight"].chunk(2, dim=0)
        out.update({q + "self_attn.q_proj.weight": qw, q + "self_attn.k_proj.weight": kw,
                    q + "self_attn.v_proj.weight": vw, q + "self_attn.o_proj.weight": state[p + "attn_out.weight"],
                    q + "mlp.up_proj.weight": up, q + "mlp.gate_proj.weight": gate,
                    q + "mlp.down_proj.weight": state[p + "ff_out.weight"]})
    if not cfg.weight_tying:
        out["lm_head.weight"] = state["ff_out.weight"]
    return {k: v.contiguous() for k, v in out.items()}


def from_hf_state_dict(state: dict[str, torch.Tensor], cfg: ModelConfig) -> dict[str, torch.Tensor]:
    out = {"wte.weight": state["model.embed_tokens.weight"]}
    for i in range(cfg.n_layers):
        p, q = f"blocks.{i}.", f"model.layers.{i}."
        out[p + "att_proj.weight"] = torch.cat([state[q + f"self_attn.{x}_proj.weight"] for x in "qkv"], dim=0)
        out[p + "attn_out.weight"] = state[q + "self_attn.o_proj.weight"]
        out[p + "ff_proj.weight"] = torch.cat([state[q + "mlp.up_proj.weight"], state[q + "mlp.gate_proj.weight"]], 0)
        out[p + "ff_out.weight"] = state[q + "mlp.down_proj.weight"]
    if not cfg.weight_tying:
        out["ff_out.weight"] = state.get("lm_head.weight", state["model.embed_tokens.weight"])
    return out


def hf_config(cfg: ModelConfig, tokens: dict):
    from transformers import OlmoConfig

    return OlmoConfig(
        vocab_size=cfg.vocab_size, hidden_size=cfg.d_model, intermediate_size=cfg.mlp_hidden_size // 2,
        num_hidden_layers=cfg.n_layers, num_attention_heads=cfg.n_heads, num_key_value_heads=cfg.n_heads,
        hidden_act="silu", max_position_embeddings=cfg.max_sequence_length,
        rope_parameters={"rope_type": "default", "rope_theta": cfg.rope_theta},
        attention_bias=False, attention_dropout=0.0, clip_qkv=cfg.clip_qkv,
        tie_word_embeddings=cfg.weight_tying, pad_token_id=tokens.get("pad_token_id", 1),
        eos_token_id=tokens.get("eos_token_id", 50279), bos_token_id=tokens.get("bos_token_id"),
        architectures=["OlmoForCausalLM"], torch_dtype="float32")


def _tokenizer_file(tokens: dict) -> Path | None:
    from dolma_tools.train.evaluate import resolve_tokenizer

    return resolve_tokenizer(tokens.get("tokenizer"))


def save_tokenizer(tokens: dict, out: Path, max_len: int) -> bool:
    path = _tokenizer_file(tokens)
    if path is None:
        return False
    from tokenizers import Tokenizer
    from transformers import PreTrainedTokenizerFast

    raw = Tokenizer.from_file(str(path))
    def token(i):
        return raw.id_to_token(i) if i is not None else None
    tok = PreTrainedTokenizerFast(tokenizer_file=str(path), eos_token=token(tokens.get("eos_token_id")),
                                  pad_token=token(tokens.get("pad_token_id")),
                                  bos_token=token(tokens.get("bos_token_id")), model_max_length=max_len)
    tok.save_pretrained(str(out))
    return True


def export_checkpoint(checkpoint: str | Path, out: str | Path) -> Path:
    """Write `out/` with model.safetensors, config.json, generation config and tokenizer files."""
    checkpoint, out = Path(checkpoint), Path(out)
    config = ckpt.read_checkpoint_config(checkpoint)
    cfg = ModelConfig(**config["model"])
    model = OLMo(cfg)
    ckpt.load_full_model_state(checkpoint, model)
    from transformers import OlmoForCausalLM

    hf = OlmoForCausalLM(hf_config(cfg, config.get("tokens", {})))
    missing, unexpected = hf.load_state_dict(to_hf_state_dict(model.state_dict(), cfg), strict=False)
    missing = [k for k in missing if not (cfg.weight_tying and k == "lm_head.weight")]
    if missing or unexpected:
        raise RuntimeError(f"HF export mapping is incomplete: missing {missing}, unexpected {unexpected}")
    tmp = out.with_name(out.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    hf.save_pretrained(str(tmp), safe_serialization=True)
    if not save_tokenizer(config.get("tokens", {}), tmp, cfg.max_sequence_length):
        print(f"[export] warning: tokenizer {config.get('tokens', {}).get('tokenizer')!r} not found; "
              f"no tokenizer files written")
    if out.exists():
        shutil.rmtree(out)
    tmp.rename(out)
    return out


def import_hf(source: str | Path, out: str | Path, seq_len: int | None = None) -> Path:
    """An HF OlmoForCausalLM folder -> a weights-only checkpoint folder usable as --load-path."""
    from transformers import AutoConfig, OlmoForCausalLM

    source = Path(source)
    hf_cfg = AutoConfig.from_pretrained(str(source))
    if hf_cfg.model_type != "olmo":
        raise UserError(f"{source} holds a {hf_cfg.model_type!r} model; only OLMo v1 (OlmoForCausalLM) imports")
    rope = (getattr(hf_cfg, "rope_parameters", None) or {}).get("rope_theta") or getattr(hf_cfg, "rope_theta", 10000.0)
    cfg = ModelConfig(d_model=hf_cfg.hidden_size, n_heads=hf_cfg.num_attention_heads,
                      n_layers=hf_cfg.num_hidden_layers, mlp_hidden_size=2 * hf_cfg.intermediate_size,
                      vocab_size=hf_cfg.vocab_size, max_sequence_length=seq_len or hf_cfg.max_position_embeddings,
                      rope_theta=float(rope), weight_tying=bool(hf_cfg.tie_word_embeddings),
                      clip_qkv=hf_cfg.clip_qkv)
    if (hf_cfg.num_key_value_heads or hf_cfg.num_attention_heads) != hf_cfg.num_attention_heads:
        raise UserError("grouped-query attention checkpoints are not supported (OLMo v1 has none)")
    hf = OlmoForCausalLM.from_pretrained(str(source), dtype=torch.float32)
    model = OLMo(cfg)
    model.load_state_dict(from_hf_state_dict(hf.state_dict(), cfg))
    tokenizer = None
    if (source / "tokenizer.json").exists():
        tokenizer = str((source / "tokenizer.json").resolve())
    tokens = {"tokenizer": tokenizer, "vocab_size": cfg.vocab_size, "padded_vocab_size": cfg.vocab_size,
              "eos_token_id": hf_cfg.eos_token_id, "pad_token_id": hf_cfg.pad_token_id,
              "bos_token_id": hf_cfg.bos_token_id}
    return ckpt.save_model_only(out, model, {"model": cfg.to_dict(), "model_name": "imported",
                                             "tokens": tokens, "source": str(source), "step": 0})


def check_export(checkpoint: str | Path, hf_dir: str | Path, input_ids: torch.Tensor) -> float:
    """Max |logits ours - logits transformers| in fp32 (the export's acceptance check)."""
    from transformers import AutoModelForCausalLM

    config = ckpt.read_checkpoint_config(checkpoint)
    cfg = ModelConfig(**config["model"])
    ours = OLMo(cfg)
    ckpt.load_full_model_state(checkpoint, ours)
    hf = AutoModelForCausalLM.from_pretrained(str(hf_dir), dtype=torch.float32)
    with torch.no_grad():
        a = ours(input_ids)
        b = hf(input_ids).logits
    return float((a - b).abs().max())


def describe(path: str | Path) -> str:
    return json.dumps(ckpt.read_checkpoint_config(path)["model"])
