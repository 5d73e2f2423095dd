"""Sharded checkpoints with torch.distributed.checkpoint (DCP), written atomically.

Layout (OLMo-core's):
    SAVE_FOLDER/step{N}/model_and_optim/   DCP files (.metadata, __{rank}_{i}.distcp)
    SAVE_FOLDER/step{N}/train/rank{R}.pt   step, instances consumed, RNG states (one per rank)
    SAVE_FOLDER/step{N}/config.json        model shape, tokens manifest summary, run config

Every rank writes into `step{N}.tmp/`; when all are done, rank 0 renames it to `step{N}/`, so a
folder named `step{N}` is always complete. DCP reshards on load, so a run may resume with a
different number of ranks. The save folder must be shared by all ranks (one node, or a shared
filesystem).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import warnings
from pathlib import Path

import torch
import torch.distributed as dist
import torch.distributed.checkpoint as dcp
from torch.distributed.checkpoint.state_dict import (
    get_model_state_dict,
    get_optimizer_state_dict,
    set_model_state_dict,
    set_optimizer_state_dict,
)

from dolma_tools.errors import UserError

STEP_DIR = re.compile(r"^step(\d+)$")


def _rank() -> int:
    return dist.get_rank() if dist.is_initialized() else 0


def _barrier() -> None:
    if dist.is_initialized():
        dist.barrier()


def list_checkpoints(save_folder: str | Path) -> list[tuple[int, Path]]:
    folder = Path(save_folder)
    if not folder.is_dir():
        return []
    found = []
    for child in folder.iterdir():
        m = STEP_DIR.match(child.name)
        if m and child.is_dir() and (child / "config.json").exists():
            found.append((int(m.group(1)), child))
    return sorted(found)


def latest_checkpoint(save_folder: str | Path) -> Path | None:
    found = list_checkpoints(save_folder)
    return found[-1][1] if found else None


def save_checkpoint(save_folder: str | Path, step: int, model: torch.nn.Module,
                    optimizer: torch.optim.Optimizer | None, train_state: dict, config: dict,
                    keep: int = 0) -> Path:
    folder = Path(save_folder)
    final, tmp = folder / f"step{step}", folder / f"step{step}.tmp"
    if _rank() == 0:
        shutil.rmtree(tmp, ignore_errors=True)
        (tmp / "train").mkdir(parents=True)
    _barrier()
    state = {"model": get_model_state_dict(model)}
    if optimizer is not None:
        state["optim"] = get_optimizer_state_dict(model, optimizer)
    dcp.save(state, checkpoint_id=str(tmp / "model_and_optim"))
    torch.save(train_state, tmp / "train" / f"rank{_rank()}.pt")
    _barrier()
    if _rank() == 0:
        (tmp / "config.json").write_text(json.dumps({**config, "step": step,
                                                     "has_optimizer": optimizer is not None}, indent=2))
        if final.exists():
            shutil.rmtree(final)
        os.replace(tmp, final)
        if keep > 0:
            for _, old in list_checkpoints(folder)[:-keep]:
                shutil.rmtree(old, ignore_errors=True)
    _barrier()
    return final


def read_checkpoint_config(path: str | Path) -> dict:
    config = Path(path) / "config.json"
    if not config.exists():
        raise UserError(f"{path} is not a dolma train checkpoint (no config.json); pass a stepN folder")
    return json.loads(config.read_text())


def load_checkpoint(path: str | Path, model: torch.nn.Module,
                    optimizer: torch.optim.Optimizer | None) -> dict:
    """Load weights (and optimizer state when the checkpoint has it) in place; return the train state."""
    path = Path(path)
    config = read_checkpoint_config(path)
    with_optim = optimizer is not None and config.get("has_optimizer", False)
    state = {"model": get_model_state_dict(model)}
    if with_optim:
        state["optim"] = get_optimizer_state_dict(model, optimizer)
    dcp.load(state, checkpoint_id=str(path / "model_and_optim"))
    set_model_state_dict(model, state["model"])
    if with_optim:
        set_optimizer_state_dict(model, optimizer, state["optim"])
    train_dir = path / "train"
    own = train_dir / f"rank{_rank()}.pt"
    if own.exists():
        return torch.load(own, weights_only=False)
    if (train_dir / "rank0.pt").exists():  # different rank count: the data position is global
        return torch.load(train_dir / "rank0.pt", weights_only=False)
    return {}


def load_full_model_state(path: str | Path, model: torch.nn.Module) -> None:
    """Load a checkpoint's weights into an unsharded model in this single process (export)."""
    state = {"model": model.state_dict()}
    with warnings.catch_warnings():  # "assuming the intent is to load in a single process": it is
        warnings.simplefilter("ignore", UserWarning)
        dcp.load(state, checkpoint_id=str(Path(path) / "model_and_optim"), no_dist=True)
    model.load_state_dict(state["model"])


def save_model_only(path: str | Path, model: torch.nn.Module, config: dict) -> Path:
    """A weights-only checkpoint (from `dolma train import`), loadable with --load-path."""
    path = Path(path)
    tmp = path.with_name(path.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    (tmp / "train").mkdir(parents=True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        dcp.save({"model": model.state_dict()}, checkpoint_id=str(tmp / "model_and_optim"), no_dist=True)
    (tmp / "config.json").write_text(json.dumps({**config, "has_optimizer": False}, indent=2))
    if path.exists():
        shutil.rmtree(path)
    os.replace(tmp, path)
    return path


__all__ = ["save_checkpoint", "load_checkpoint", "latest_checkpoint", "list_checkpoints",
           "load_full_model_state", "save_model_only", "read_checkpoint_config"]
