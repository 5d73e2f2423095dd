"""Training throughput of the dolma-tools trainer on one device: tokens/s, MFU, peak memory.

    python benchmarks/gpu/train_throughput.py                          # OLMo-1B, seq 2048, torch vs triton
    python benchmarks/gpu/train_throughput.py --kernels torch --micro-batch-size 8
    python benchmarks/gpu/train_throughput.py --tiny --device cpu      # smoke check without a GPU

It runs the trainer's own pieces (the OLMo model, FSDP2 with bf16 params and fp32 reduce, block-wise
torch.compile, fused AdamW, clipping) on random tokens, so no shards are needed, and reports the
steady-state rate after `--warmup` steps. MFU uses 6N + 12·L·d·T FLOPs/token over the device's
dense bf16 peak (989 TF on H100 SXM; see dolma_tools/train/flops.py).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

import torch  # noqa: E402
import torch.distributed as dist  # noqa: E402

from dolma_tools.kernels import get_ops  # noqa: E402
from dolma_tools.train.config import TrainConfig  # noqa: E402
from dolma_tools.train.flops import flops_per_token, mfu, peak_flops  # noqa: E402
from dolma_tools.train.model import build_model, labels_for, model_config  # noqa: E402
from dolma_tools.train.trainer import Distributed, build_optimizer, memory_gb, shard_model  # noqa: E402


def run(args, kernels: str) -> dict:
    device = torch.device(args.device)
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
        torch.backends.cuda.matmul.allow_tf32 = True
    ops = get_ops(kernels)
    cfg = model_config(args.model, max_sequence_length=args.seq_len)
    init = "meta" if device.type == "cuda" and cfg.d_model >= 2048 else "cpu"
    model = build_model(cfg, ops, seed=0, device=init)
    n_params, n_flops = model.num_params(), flops_per_token(model.num_params(non_embedding=True), cfg.n_layers,
                                                           cfg.d_model, args.seq_len)
    if init == "cpu":
        model.to(device)
    model = shard_model(model, args.mesh, device, compile_blocks=args.compile and device.type == "cuda")
    if init == "meta":
        model.to_empty(device=device)
        torch.manual_seed(0)  # the same weights for every kernel set (loss curves are compared)
        model.reset_parameters()
    train_cfg = TrainConfig(shards=["synthetic"], max_steps=args.steps)
    optimizer = build_optimizer(model, train_cfg, device)
    gen = torch.Generator(device="cpu").manual_seed(0)
    tokens_per_step = args.micro_batch_size * args.grad_accum * args.seq_len
    data = TokenBatches(args.tokens, args.seq_len, seed=0) if args.tokens else None
    times, losses = [], []
    for step in range(args.warmup + args.steps):
        shape = (args.grad_accum, args.micro_batch_size, args.seq_len)
        batch = data.next(shape) if data else torch.randint(0, cfg.vocab_size, shape, generator=gen)
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        start = time.perf_counter()
        for i in range(args.grad_accum):
            model.set_requires_gradient_sync(i == args.grad_accum - 1)
            ids = batch[i].to(device, non_blocking=True)
            loss, _ = model(ids, labels_for(ids), reduction="sum")
            (loss / (args.grad_accum * ids.numel())).backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        if step >= args.warmup:
            times.append(time.perf_counter() - start)
        losses.append(step_loss(loss, ids))
    tps = tokens_per_step * len(times) / sum(times)
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu"
    result = {"model": args.model, "kernels": ops.name, "compile": args.compile and device.type == "cuda",
              "device": name, "params": n_params, "seq_len": args.seq_len,
              "micro_batch_size": args.micro_batch_size, "grad_accum": args.grad_accum,
              "tokens_per_second": round(tps, 1), "mfu": mfu(tps, n_flops, peak_flops(name)),
              "peak_memory_gb": round(memory_gb(device), 2), "flops_per_token": n_flops,
              "final_loss": round(losses[-1], 4), "data": args.tokens or "random tokens"}
    if args.losses:
        result["losses"] = [round(x, 5) for x in losses]
    del model, optimizer
    if device.type == "cuda":
        torch.cuda.empty_cache()
    return result


def step_loss(loss: torch.Tensor, ids: torch.Tensor) -> float:
    """Mean loss per predicted token of the last micro-batch (the last position predicts nothing)."""
    return float(loss.detach()) / (ids.shape[0] * (ids.shape[1] - 1))


class TokenBatches:
    """Fixed-length instances from a raw uint16 token file (a `dolma tokens` shard), in a seeded order."""

    def __init__(self, path: str, seq_len: int, seed: int):
        import numpy as np

        self.tokens = np.memmap(path, dtype=np.uint16, mode="r")
        n = len(self.tokens) // seq_len
        if n == 0:
            raise SystemExit(f"{path}: fewer than {seq_len} tokens")
        self.seq_len, self.order = seq_len, np.random.default_rng(seed).permutation(n)
        self.pos = 0

    def next(self, shape: tuple[int, ...]) -> torch.Tensor:
        import numpy as np

        count = int(np.prod(shape[:-1]))
        idx = [self.order[(self.pos + i) % len(self.order)] for i in range(count)]
        self.pos += count
        rows = np.stack([self.tokens[i * self.seq_len:(i + 1) * self.seq_len] for i in idx]).astype(np.int64)
        return torch.from_numpy(rows).view(shape)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", default="olmo-1b")
    p.add_argument("--seq-len", type=int, default=2048)
    p.add_argument("--micro-batch-size", type=int, default=8)
    p.add_argument("--grad-accum", type=int, default=1)
    p.add_argument("--steps", type=int, default=20, help="timed steps")
    p.add_argument("--warmup", type=int, default=5, help="untimed steps first (compilation)")
    p.add_argument("--kernels", choices=["torch", "triton", "both"], default="both")
    p.add_argument("--compile", action=argparse.BooleanOptionalAction, default=True,
                   help="torch.compile each block (GPU only)")
    p.add_argument("--device", choices=["cuda", "cpu"], default="cuda" if torch.cuda.is_available() else "cpu")
    p.add_argument("--tiny", action="store_true", help="tiny model, seq 64, 3 steps: a smoke check")
    p.add_argument("--json", action="store_true", help="one JSON object per line")
    p.add_argument("--tokens", help="train on this raw uint16 token file (a `dolma tokens` .npy shard) instead of "
                                    "random tokens, so the loss falls and curves can be compared")
    p.add_argument("--losses", action="store_true", help="include every step's loss in the JSON")
    args = p.parse_args()
    if args.tiny:
        args.model, args.seq_len, args.micro_batch_size, args.grad_accum = "tiny", 64, 2, 2
        args.steps, args.warmup = 3, 1
    if args.device == "cuda" and not torch.cuda.is_available():
        p.error("no CUDA/ROCm device; use --device cpu (with --tiny)")
    kernels = ["torch", "triton"] if args.kernels == "both" else [args.kernels]
    if args.device == "cpu" and args.kernels == "both":
        kernels = ["torch"]  # Triton on CPU only under TRITON_INTERPRET=1, and only when asked for
    if args.device == "cuda":
        torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", 0)))
    dist_ = Distributed(torch.device(args.device))
    args.mesh = dist_.mesh
    failed = False
    try:
        for k in kernels:
            try:
                r = run(args, k)
            except Exception as exc:  # one variant failing (OOM, a kernel) must not hide the other
                failed = True
                print(f"kernels={k}: failed: {type(exc).__name__}: {exc}", file=sys.stderr, flush=True)
                if args.device == "cuda":
                    torch.cuda.empty_cache()
                continue
            if args.json:
                print(json.dumps(r), flush=True)
            else:
                m = f"{100 * r['mfu']:.1f}%" if r["mfu"] is not None else "n/a"
                print(f"{r['model']} seq {r['seq_len']} mbs {r['micro_batch_size']}x{r['grad_accum']} "
                      f"kernels={r['kernels']} compile={r['compile']} on {r['device']}: "
                      f"{r['tokens_per_second']:,.0f} tokens/s, MFU {m}, peak memory {r['peak_memory_gb']} GB "
                      f"(loss {r['final_loss']})", flush=True)
    finally:
        dist_.close()
    if failed:
        sys.exit(1)


if __name__ == "__main__":
    if not dist.is_available():
        sys.exit("torch.distributed is not available in this build")
    main()
