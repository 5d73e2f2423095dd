"""The training loop: FSDP2 over one or more ranks, gradient accumulation, clipping, AdamW,
an lr schedule, sharded checkpoints, in-loop evaluation and metrics.jsonl.

One process per device. `run_train` launches N ranks through torch.distributed.run when
`--nproc-per-node N > 1`; under torchrun (RANK set) every rank runs `Trainer.fit`.

Precision: on GPU the fp32 parameters (the master weights) are sharded by FSDP2 and gathered in
bf16 for compute; gradients are reduced in fp32 (MixedPrecisionPolicy(bf16, fp32), OLMo's
"mixed"). On CPU everything is fp32, so runs are bit-reproducible (a resumed run repeats the
uninterrupted one exactly).

Loss: each micro-batch's summed cross-entropy is divided by the number of targets in the rank's
whole batch (OLMo); FSDP averages gradients over ranks, which makes the result the mean over the
global batch whatever the number of ranks or micro-batches.
"""

from __future__ import annotations

import json
import logging
import math
import os
import resource
import time
from dataclasses import asdict
from pathlib import Path

import numpy as np
import torch
import torch.distributed as dist
import yaml

from dolma_tools.errors import UserError
from dolma_tools.train import checkpoint as ckpt
from dolma_tools.train.config import TrainConfig
from dolma_tools.train.data import GlobalOrder, ShardInstances, expand_shards, rank_slice, read_manifest
from dolma_tools.train.flops import flops_per_token, mfu, peak_flops
from dolma_tools.train.model import OLMo, build_model, labels_for, model_config

log = logging.getLogger("dolma_tools.train")


# ----------------------------------------------------------------------------------------------
# Schedule


def learning_rate(step: int, cfg: TrainConfig, total_steps: int) -> float:
    """lr for optimizer step `step` (1-based): linear warmup, then the chosen decay."""
    peak, floor = cfg.lr, cfg.lr * cfg.min_lr_ratio
    warmup = max(cfg.warmup_steps, 0)
    if warmup and step <= warmup:
        return peak * step / warmup
    if cfg.scheduler == "constant":
        return peak
    if cfg.scheduler == "inverse_sqrt":
        return peak * math.sqrt(max(warmup, 1) / step)
    progress = min(max(step - warmup, 0) / max(total_steps - warmup, 1), 1.0)
    if cfg.scheduler == "linear":
        return peak - (peak - floor) * progress
    return floor + (peak - floor) * 0.5 * (1 + math.cos(math.pi * progress))


# ----------------------------------------------------------------------------------------------
# Distributed setup


def resolve_device(choice: str) -> torch.device:
    if choice == "cuda" or (choice == "auto" and torch.cuda.is_available()):
        if not torch.cuda.is_available():
            raise UserError("--device cuda: no CUDA/ROCm device is visible; use --device cpu")
        local = int(os.environ.get("LOCAL_RANK", 0))
        torch.cuda.set_device(local)
        return torch.device("cuda", local)
    return torch.device("cpu")


def _logged_step(line: str) -> float:
    """The step of a metrics.jsonl row; a blank row, or one cut short by a kill, sorts last (dropped)."""
    try:
        return json.loads(line).get("step", 0) if line.strip() else float("inf")
    except json.JSONDecodeError:
        return float("inf")


class Distributed:
    """A process group for this run (a one-rank group when not launched by torchrun)."""

    def __init__(self, device: torch.device):
        self.owned = False
        if not dist.is_initialized():
            backend = "nccl" if device.type == "cuda" else "gloo"  # nccl means RCCL on ROCm
            if "RANK" in os.environ and "WORLD_SIZE" in os.environ:
                dist.init_process_group(backend)
            else:
                dist.init_process_group(backend, store=dist.HashStore(), rank=0, world_size=1)
            self.owned = True
        self.rank, self.world_size = dist.get_rank(), dist.get_world_size()
        from torch.distributed.device_mesh import init_device_mesh

        self.mesh = init_device_mesh(device.type, (self.world_size,))

    def close(self) -> None:
        if self.owned and dist.is_initialized():
            if self.world_size > 1:
                # no rank may tear gloo down while a peer still talks to it (that aborts the peer)
                dist.barrier()
            dist.destroy_process_group()


def shard_model(model: OLMo, mesh, device: torch.device, compile_blocks: bool) -> OLMo:
    """FSDP2 per block, then the root (embedding, head); bf16 compute + fp32 reduce on GPU."""
    from torch.distributed.fsdp import MixedPrecisionPolicy, fully_shard

    if device.type == "cuda":
        mp = MixedPrecisionPolicy(param_dtype=torch.bfloat16, reduce_dtype=torch.float32)
    else:
        mp = MixedPrecisionPolicy()
    # with one rank there is nothing to free between forward and backward: keep the gathered
    # (bf16) block parameters instead of gathering them again in backward
    reshard = mesh.size() > 1
    for block in model.blocks:
        if compile_blocks:
            block.compile()  # in place: parameter names stay unchanged for checkpoints
        fully_shard(block, mesh=mesh, mp_policy=mp, reshard_after_forward=reshard)
    if compile_blocks and model.ops.name == "torch":
        # the plain-PyTorch head + cross-entropy materialises fp32 logits; compiling fuses them
        model.loss_fn = torch.compile(model.ops.linear_cross_entropy)
    fully_shard(model, mesh=mesh, mp_policy=mp, reshard_after_forward=reshard)
    return model


def build_optimizer(model: OLMo, cfg: TrainConfig, device: torch.device) -> torch.optim.Optimizer:
    decay, no_decay = [], []
    for name, p in model.named_parameters():
        is_embedding = name.startswith("wte.")
        (no_decay if p.ndim < 2 or (is_embedding and not cfg.decay_embeddings) else decay).append(p)
    groups = [{"params": decay, "weight_decay": cfg.weight_decay},
              {"params": no_decay, "weight_decay": 0.0}]
    kwargs = {"fused": True} if device.type == "cuda" else {}
    return torch.optim.AdamW([g for g in groups if g["params"]], lr=cfg.lr, betas=(cfg.beta1, cfg.beta2),
                             eps=cfg.eps, **kwargs)


def memory_gb(device: torch.device) -> float:
    if device.type == "cuda":
        return torch.cuda.max_memory_allocated(device) / 2**30
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20  # KiB -> GiB (peak RSS)


# ----------------------------------------------------------------------------------------------
# Trainer


class Trainer:
    def __init__(self, cfg: TrainConfig):
        self.cfg = cfg
        self.device = resolve_device(cfg.device)
        if self.device.type == "cpu" and cfg.cpu_threads:
            torch.set_num_threads(cfg.cpu_threads)
        self.dist = Distributed(self.device)
        try:
            self._setup()
        except BaseException:
            self.dist.close()
            raise

    def _setup(self) -> None:
        cfg, device = self.cfg, self.device
        cfg.validate(self.dist.world_size)
        from dolma_tools.kernels import get_ops

        kernels = cfg.kernels if cfg.kernels != "auto" else ("triton" if device.type == "cuda" else "torch")
        self.ops = get_ops(kernels)
        paths = expand_shards(cfg.shards)
        self.manifest = read_manifest(paths[0].parent)
        self.instances = ShardInstances(paths, cfg.seq_len, self.manifest)
        self.order = GlobalOrder(len(self.instances), cfg.order_seed)
        self.model_cfg = model_config(cfg.model, vocab_size=self.manifest.padded_vocab_size,
                                      max_sequence_length=cfg.seq_len, clip_qkv=cfg.clip_qkv)
        if self.manifest.padded_vocab_size < self.manifest.vocab_size:
            raise UserError(f"{self.manifest.path}: padded_vocab_size < vocab_size")
        init_device = cfg.init_device
        if init_device == "auto":
            init_device = "meta" if device.type == "cuda" and self.model_cfg.d_model >= 2048 else "cpu"
        model = build_model(self.model_cfg, self.ops, seed=cfg.seed, device=init_device)
        self.n_params = model.num_params()
        self.flops_per_token = flops_per_token(model.num_params(non_embedding=True), self.model_cfg.n_layers,
                                               self.model_cfg.d_model, cfg.seq_len)
        if init_device == "cpu":
            model.to(device)
        compile_blocks = cfg.compile and device.type == "cuda"
        self.model = shard_model(model, self.dist.mesh, device, compile_blocks)
        if init_device == "meta":  # initialise each rank's shards in place
            self.model.to_empty(device=device)
            torch.manual_seed(cfg.seed)
            self.model.reset_parameters()
        self.optimizer = build_optimizer(self.model, cfg, device)
        self.total_steps = cfg.total_steps()
        self.step, self.instances_seen = 0, 0
        self.save_folder = Path(cfg.save_folder)
        self.metrics_path = self.save_folder / "metrics.jsonl"
        self.peak = peak_flops(torch.cuda.get_device_name(device) if device.type == "cuda" else None)
        self._setup_eval()
        self._maybe_resume()

    # -- evaluation --------------------------------------------------------------------------
    def _setup_eval(self) -> None:
        from dolma_tools.train import evaluate

        cfg = self.cfg
        self.eval_instances = None
        self.byte_lengths = None
        self.tasks = {}
        tokenizer = evaluate.resolve_tokenizer(self.manifest.tokenizer)
        if cfg.eval_shards:
            self.eval_instances = ShardInstances(expand_shards(cfg.eval_shards), cfg.seq_len)
            if tokenizer is not None:
                self.byte_lengths = evaluate.token_byte_lengths(str(tokenizer), self.model_cfg.vocab_size)
        if cfg.eval_tasks:
            if tokenizer is None:
                raise UserError(f"--eval-tasks needs the tokenizer named in {self.manifest.path} "
                                f"({self.manifest.tokenizer!r}), which was not found")
            self.tasks = evaluate.build_tasks(cfg.eval_tasks, tokenizer, self.manifest.eos_token_id,
                                              self.manifest.pad_token_id, cfg.seq_len, cfg.eval_limit)

    def evaluate(self) -> dict[str, float]:
        from dolma_tools.train import evaluate

        out: dict[str, float] = {}
        self.model.eval()
        if self.eval_instances is not None:
            result = evaluate.validation_loss(self.model, self.eval_instances, self.cfg.micro_batch_size,
                                              self.cfg.eval_batches * self.cfg.global_batch_size, self.device,
                                              self.byte_lengths)
            out.update({f"eval/val/{k}": v for k, v in result.items()})
        for name, task in self.tasks.items():
            result = evaluate.rank_classification(self.model, task, self.device, self.cfg.micro_batch_size,
                                                  self.manifest.pad_token_id)
            out.update({f"eval/{name}/{k}": v for k, v in result.items()})
        self.model.train()
        return out

    # -- checkpoints -------------------------------------------------------------------------
    def checkpoint_config(self) -> dict:
        m = self.manifest
        return {"model": self.model_cfg.to_dict(), "model_name": self.cfg.model,
                "tokens": {"tokenizer": m.tokenizer, "vocab_size": m.vocab_size,
                           "padded_vocab_size": m.padded_vocab_size, "eos_token_id": m.eos_token_id,
                           "pad_token_id": m.pad_token_id, "bos_token_id": m.bos_token_id,
                           "manifest": str(m.path.resolve())},
                "train": asdict(self.cfg)}

    def save(self) -> Path:
        state = {"step": self.step, "instances_seen": self.instances_seen,
                 "world_size": self.dist.world_size, "torch_rng": torch.get_rng_state(),
                 "numpy_rng": np.random.get_state()}
        if self.device.type == "cuda":
            state["cuda_rng"] = torch.cuda.get_rng_state(self.device)
        path = ckpt.save_checkpoint(self.save_folder, self.step, self.model, self.optimizer, state,
                                    self.checkpoint_config(), keep=self.cfg.keep_checkpoints)
        self.log(f"saved {path}")
        return path

    def _maybe_resume(self) -> None:
        cfg = self.cfg
        path = Path(cfg.load_path) if cfg.load_path else None
        if path is None and not cfg.no_resume:
            path = ckpt.latest_checkpoint(self.save_folder)
        if path is None:
            if self.dist.rank == 0 and self.metrics_path.exists():  # a fresh run starts a fresh log
                os.replace(self.metrics_path, self.metrics_path.with_suffix(".jsonl.prev"))
            return
        stored = ckpt.read_checkpoint_config(path)
        shape = lambda m: {k: v for k, v in m.items() if k != "max_sequence_length"}  # noqa: E731
        if stored.get("model") and shape(stored["model"]) != shape(self.model_cfg.to_dict()):
            raise UserError(f"{path} holds a different model shape than --model {cfg.model} "
                            f"(vocabulary and clip_qkv included); pass matching options or --no-resume")
        state = ckpt.load_checkpoint(path, self.model, self.optimizer)
        if "step" in state and stored.get("has_optimizer", False):
            self.step, self.instances_seen = int(state["step"]), int(state["instances_seen"])
            torch.set_rng_state(state["torch_rng"])
            np.random.set_state(state["numpy_rng"])
            if "cuda_rng" in state and self.device.type == "cuda":
                torch.cuda.set_rng_state(state["cuda_rng"], self.device)
        self.log(f"resumed from {path} at step {self.step} ({self.instances_seen} instances seen)")
        if self.dist.rank == 0 and self.metrics_path.exists():  # drop rows logged after that checkpoint
            rows = [line for line in self.metrics_path.read_text().splitlines()
                    if _logged_step(line) <= self.step]
            self.metrics_path.write_text("".join(r + "\n" for r in rows))

    # -- logging -----------------------------------------------------------------------------
    def log(self, message: str) -> None:
        if self.dist.rank == 0:
            print(f"[train] {message}", flush=True)

    def write_metrics(self, row: dict) -> None:
        if self.dist.rank != 0:
            return
        self.save_folder.mkdir(parents=True, exist_ok=True)
        with open(self.metrics_path, "a") as fh:
            fh.write(json.dumps(row) + "\n")

    # -- the loop ----------------------------------------------------------------------------
    def train_step(self) -> dict[str, float]:
        cfg, world, rank = self.cfg, self.dist.world_size, self.dist.rank
        batch = rank_slice(self.order.batch(self.instances_seen, cfg.global_batch_size), rank, world)
        tokens = torch.from_numpy(self.instances.batch(batch))
        n_targets = tokens.shape[0] * (tokens.shape[1] - 1)  # OLMo: the rank's whole batch
        micro = list(tokens.split(cfg.micro_batch_size))
        ce_sum = torch.zeros((), dtype=torch.float64, device=self.device)
        z_sum = torch.zeros_like(ce_sum)
        for i, ids in enumerate(micro):
            self.model.set_requires_gradient_sync(i == len(micro) - 1)
            ids = ids.to(self.device, non_blocking=True)
            loss, z = self.model(ids, labels_for(ids), z_loss_multiplier=cfg.z_loss, reduction="sum")
            (loss / n_targets).backward()
            ce_sum += (loss.detach() - z).double()
            z_sum += z.double()
        max_norm = cfg.max_grad_norm if cfg.max_grad_norm > 0 else float("inf")
        grad_norm = torch.nn.utils.clip_grad_norm_(self.model.parameters(), max_norm)
        if hasattr(grad_norm, "full_tensor"):
            grad_norm = grad_norm.full_tensor()
        lr = learning_rate(self.step + 1, cfg, self.total_steps)
        for group in self.optimizer.param_groups:
            group["lr"] = lr
        self.optimizer.step()
        self.optimizer.zero_grad(set_to_none=True)
        self.step += 1
        self.instances_seen += cfg.global_batch_size
        totals = torch.stack([ce_sum, z_sum]) / (n_targets * world)
        if world > 1:
            dist.all_reduce(totals)
        return {"loss": float(totals[0]), "z_loss": float(totals[1]), "lr": lr, "grad_norm": float(grad_norm)}

    def fit(self) -> list[dict]:
        cfg = self.cfg
        rows: list[dict] = []
        try:
            self.log(f"{cfg.model}: {self.n_params / 1e6:.1f}M parameters, {len(self.instances)} instances of "
                     f"{cfg.seq_len} tokens, {self.dist.world_size} rank(s) on {self.device.type}, "
                     f"kernels {self.ops.name}, {self.total_steps} steps")
            if self.dist.rank == 0:
                self.save_folder.mkdir(parents=True, exist_ok=True)
                (self.save_folder / "config.yaml").write_text(yaml.safe_dump(asdict(cfg), sort_keys=False))
            tokens_per_step = cfg.global_batch_size * cfg.seq_len
            while self.step < self.total_steps:
                if self.device.type == "cuda":
                    torch.cuda.synchronize(self.device)
                start = time.perf_counter()
                row = self.train_step()
                if self.device.type == "cuda":
                    torch.cuda.synchronize(self.device)
                elapsed = time.perf_counter() - start
                tps = tokens_per_step / elapsed
                row = {"step": self.step, **row, "tokens": self.instances_seen * cfg.seq_len,
                       "tokens_per_second": tps,
                       "mfu": mfu(tps / self.dist.world_size, self.flops_per_token, self.peak),
                       "memory_gb": memory_gb(self.device), "step_seconds": elapsed}
                if cfg.eval_every and self.step % cfg.eval_every == 0 and (self.eval_instances or self.tasks):
                    row.update(self.evaluate())
                if self.step % cfg.log_every == 0 or self.step == self.total_steps or any(
                        k.startswith("eval/") for k in row):
                    self.write_metrics(row)
                    rows.append(row)
                    self.log(format_row(row))
                if (cfg.save_every and self.step % cfg.save_every == 0) or self.step == self.total_steps:
                    self.save()
            return rows
        finally:
            self.dist.close()


def format_row(row: dict) -> str:
    parts = [f"step {row['step']}", f"loss {row['loss']:.4f}", f"lr {row['lr']:.2e}",
             f"gnorm {row['grad_norm']:.3f}", f"{row['tokens_per_second']:,.0f} tok/s"]
    if row.get("mfu") is not None:
        parts.append(f"MFU {100 * row['mfu']:.1f}%")
    parts.append(f"mem {row['memory_gb']:.2f} GB")
    parts += [f"{k} {v:.4f}" for k, v in row.items() if k.startswith("eval/") and isinstance(v, float)]
    return " | ".join(parts)


# ----------------------------------------------------------------------------------------------
# Entry points


def run_train(cfg: TrainConfig) -> list[dict] | None:
    if cfg.nproc_per_node > 1 and "RANK" not in os.environ:
        from dolma_tools.train.launch import launch_ranks

        launch_ranks(cfg)
        return None
    return Trainer(cfg).fit()
