"""`dolma train`: train on token shards, or one of its subcommands.

    dolma train --shards 'tokens/*.npy' --model tiny --max-steps 100 ...     train (options = config keys)
    dolma train inspect-batch --step N [--save-folder RUN | training options] [--json]
    dolma train export CHECKPOINT --to DIR                                  -> HF OlmoForCausalLM
    dolma train import HF_DIR --to CHECKPOINT [--seq-len N]                 <- HF OlmoForCausalLM
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import click

from dolma_tools.cli.stage import CONTEXT, split_config_flag
from dolma_tools.config import build_config, describe_options
from dolma_tools.errors import UserError

SUBCOMMANDS = {
    "inspect-batch": "print the instances, shards and documents of the batch of step N",
    "export": "CHECKPOINT --to DIR: write a Hugging Face OlmoForCausalLM (safetensors + tokenizer)",
    "import": "HF_DIR --to CHECKPOINT: turn an OlmoForCausalLM into a weights-only checkpoint",
}


def _take(args: list[str], flag: str) -> tuple[str | None, list[str]]:
    """Remove `--flag VALUE` (or `--flag=VALUE`) from args."""
    out, value, i = [], None, 0
    names = {flag, flag.replace("-", "_")}
    while i < len(args):
        head = args[i].split("=", 1)[0]
        if head in names and "=" in args[i]:
            value = args[i].split("=", 1)[1]
        elif head in names and i + 1 < len(args):
            value = args[i + 1]
            i += 1
        else:
            out.append(args[i])
        i += 1
    return value, out


def run_training(config_path: str | None, args: list[str]) -> None:
    import os

    from dolma_tools.train.config import TrainConfig

    cfg = build_config(TrainConfig, config_path, args)
    if "RANK" not in os.environ:  # once, in the command the user ran
        from dolma_tools.runtime.locks import check_writable

        check_writable(cfg.save_folder)  # before minutes of set-up, not at the first checkpoint
    if cfg.nproc_per_node > 1 and "RANK" not in os.environ:
        from dolma_tools.train.launch import launch_ranks  # no torch import in the launcher

        cfg.validate(cfg.nproc_per_node)
        launch_ranks(cfg)
        return
    from dolma_tools.train.trainer import run_train

    run_train(cfg)


def run_inspect_batch(config_path: str | None, args: list[str]) -> None:
    from dolma_tools.train.config import InspectBatchConfig
    from dolma_tools.train.data import ShardInstances, describe_batch, expand_shards, format_batch

    save_folder, _ = _take(list(args), "--save-folder")
    if config_path is None and save_folder and (Path(save_folder) / "config.yaml").exists():
        config_path = str(Path(save_folder) / "config.yaml")  # the run's own options
    cfg = build_config(InspectBatchConfig, config_path, args)
    if cfg.step < 1:
        raise UserError("--step counts optimizer steps from 1")
    instances = ShardInstances(expand_shards(cfg.shards), cfg.seq_len)
    rows = describe_batch(instances, cfg.order_seed, cfg.global_batch_size, cfg.step,
                          cfg.ranks or cfg.nproc_per_node)
    if cfg.json:
        for row in rows:
            click.echo(json.dumps(row))
    else:
        click.echo(format_batch(rows), nl=False)


def run_export(args: list[str]) -> None:
    from dolma_tools.train.export import export_checkpoint

    out, rest = _take(args, "--to")
    if out is None or len(rest) != 1:
        raise UserError("usage: dolma train export CHECKPOINT --to DIR")
    click.echo(f"exported {rest[0]} -> {export_checkpoint(rest[0], out)}")


def run_import(args: list[str]) -> None:
    from dolma_tools.train.export import import_hf

    out, rest = _take(args, "--to")
    seq_len, rest = _take(rest, "--seq-len")
    if out is None or len(rest) != 1:
        raise UserError("usage: dolma train import HF_DIR --to CHECKPOINT [--seq-len N]")
    click.echo(f"imported {rest[0]} -> {import_hf(rest[0], out, int(seq_len) if seq_len else None)}")


class TrainCommand(click.Command):
    """Dispatches `inspect-batch`/`export`/`import`; anything else is a training run."""

    def format_options(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        from dolma_tools.train.config import TrainConfig

        with formatter.section("Subcommands"):
            formatter.write_dl(list(SUBCOMMANDS.items()))
        rows = [("-c, --config FILE", "YAML or JSON config file with the keys below")]
        rows += [(flag.replace("_", "-"), f"{help_} ({tp})") for flag, tp, help_ in describe_options(TrainConfig)]
        with formatter.section("Training options (config keys; flags override the file)"):
            formatter.write_dl(rows)


@click.pass_context
def _callback(ctx: click.Context, **_: Any) -> None:
    local_config, args = split_config_flag(list(ctx.args))
    config_path = local_config or (ctx.obj or {}).get("config")
    if args and args[0] == "inspect-batch":
        run_inspect_batch(config_path, args[1:])
    elif args and args[0] == "export":
        run_export(args[1:])
    elif args and args[0] == "import":
        run_import(args[1:])
    elif args and not args[0].startswith("-"):
        raise UserError(f"unknown `dolma train` subcommand {args[0]!r}: choose {', '.join(SUBCOMMANDS)} "
                        f"or give training options")
    else:
        run_training(config_path, args)


command = TrainCommand("train", callback=_callback, context_settings=CONTEXT,
                       help="Train an OLMo model on token shards (FSDP2), or inspect/export/import.")
