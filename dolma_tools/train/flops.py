"""FLOPs per token and MFU (the dolma-tools convention, the same as OLMo-core's for dense models).

FLOPs/token = 6 · N + 12 · L · d · T, where N counts the non-embedding parameters including the
LM head (the tied embedding still does the head matmul) and the second term is full (not causally
halved) attention. MFU = tokens/s per device × FLOPs/token ÷ the device's dense bf16 peak.
"""

from __future__ import annotations

# dense bf16 peak FLOP/s; matched against torch.cuda.get_device_name()
PEAK_FLOPS = [
    ("H100 NVL", 835e12), ("H100 PCIe", 756e12), ("H200", 989e12), ("H100", 989e12), ("GH200", 989e12),
    ("A100", 312e12), ("B200", 2250e12), ("L40S", 362e12), ("A10", 125e12),
    ("MI300", 1300e12), ("MI325", 1300e12), ("MI250", 191.5e12), ("MI210", 181e12),
]


def flops_per_token(non_embedding_params: int, n_layers: int, d_model: int, seq_len: int) -> float:
    return 6.0 * non_embedding_params + 12.0 * n_layers * d_model * seq_len


def peak_flops(device_name: str | None) -> float | None:
    """The per-device peak for a CUDA/ROCm device name (per GCD on MI250); None when unknown (CPU)."""
    if not device_name:
        return None
    for key, value in PEAK_FLOPS:
        if key.lower() in device_name.lower():
            return value
    return None


def mfu(tokens_per_second_per_device: float, flops_token: float, peak: float | None) -> float | None:
    if not peak:
        return None
    return tokens_per_second_per_device * flops_token / peak
