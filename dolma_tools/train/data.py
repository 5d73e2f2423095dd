"""Memmap token shards -> fixed-length instances in a reproducible global order.

Rules (OLMo's memmap loader):
- a shard is a raw, headerless memmap of token ids (dtype from tokens.json); each shard is cut
  independently into `seq_len` instances and its tail is dropped;
- global instance i is (sum of the instance counts of the shards before it, in path order) + local
  index;
- epoch e visits `arange(N, uint32)` shuffled in place by `Generator(PCG64(seed + e))`;
- the training stream concatenates epochs; a step takes the next `global_batch_size` positions of
  that stream, and rank r of W takes `batch[r::W]`. A checkpoint stores the number of instances
  consumed, so a resume continues mid-epoch without repeating or skipping an instance, even with
  a different batch size or rank count.
"""

from __future__ import annotations

import bisect
import csv
import gzip
import io
import json
import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from dolma_tools.errors import UserError

MANIFEST = "tokens.json"


@dataclass
class TokenManifest:
    """What the trainer needs from `tokens.json`."""

    path: Path
    vocab_size: int
    padded_vocab_size: int
    eos_token_id: int
    pad_token_id: int
    bos_token_id: int | None
    dtype: str
    tokenizer: str | None
    shards: dict[str, dict] = field(default_factory=dict)  # file name -> shard entry
    raw: dict = field(default_factory=dict)


def read_manifest(shard_dir: Path) -> TokenManifest:
    path = shard_dir / MANIFEST
    if not path.exists():
        raise UserError(f"no {MANIFEST} in {shard_dir}: token shards must come from `dolma tokens` "
                        f"(it records the dtype, vocabulary and EOS id the trainer needs)")
    try:
        raw = json.loads(path.read_text())
        vocab = int(raw["vocab_size"])
        padded = int(raw.get("padded_vocab_size") or -(-vocab // 128) * 128)
        manifest = TokenManifest(
            path=path, vocab_size=vocab, padded_vocab_size=padded, eos_token_id=int(raw["eos_token_id"]),
            pad_token_id=int(raw.get("pad_token_id") if raw.get("pad_token_id") is not None else 1),
            bos_token_id=raw.get("bos_token_id"), dtype=str(raw.get("dtype", "uint16")),
            tokenizer=raw.get("tokenizer"),
            shards={Path(s["path"]).name: s for s in raw.get("shards", [])}, raw=raw)
    except (ValueError, KeyError, TypeError) as exc:
        raise UserError(f"{path} is not a valid tokens manifest ({exc!r}); re-run `dolma tokens`") from None
    if manifest.dtype not in ("uint8", "uint16", "uint32", "uint64"):
        raise UserError(f"{path}: unsupported dtype {manifest.dtype!r}")
    if vocab - 1 > np.iinfo(manifest.dtype).max:
        raise UserError(f"{path}: vocab_size {vocab} does not fit dtype {manifest.dtype}")
    return manifest


def expand_shards(patterns: list[str]) -> list[Path]:
    from dolma_tools.io.paths import expand_globs

    paths = sorted({Path(p) for p in expand_globs(list(patterns), what="shards")}, key=str)
    paths = [p for p in paths if p.suffix == ".npy"]
    if not paths:
        raise UserError(f"no .npy token shards match {' '.join(patterns)}")
    return paths


class ShardInstances:
    """All instances of a list of shards (the dataset), addressable by global index."""

    def __init__(self, paths: list[Path], seq_len: int, manifest: TokenManifest | None = None):
        self.paths = list(paths)
        self.seq_len = seq_len
        self.manifest = manifest or read_manifest(self.paths[0].parent)
        dirs = {p.parent.resolve() for p in self.paths}
        if len(dirs) > 1:  # every directory must agree on the vocabulary
            for d in dirs:
                other = read_manifest(d)
                if (other.dtype, other.eos_token_id, other.vocab_size) != (
                        self.manifest.dtype, self.manifest.eos_token_id, self.manifest.vocab_size):
                    raise UserError(f"{d / MANIFEST} disagrees with {self.manifest.path} on dtype/EOS/vocab")
        self.dtype = np.dtype(self.manifest.dtype)
        counts = []
        for p in self.paths:
            size = os.path.getsize(p)
            if size % self.dtype.itemsize:
                raise UserError(f"{p}: {size} bytes is not a whole number of {self.dtype.name} tokens; the shard "
                                f"was cut short or is not a `dolma tokens` shard (re-run `dolma tokens`)")
            counts.append(size // self.dtype.itemsize // seq_len)
        self.counts = counts
        self.offsets = np.concatenate([[0], np.cumsum(counts)]).astype(np.int64)
        self._maps: dict[int, np.memmap] = {}
        if len(self) == 0:
            raise UserError(f"the shards hold no complete instance of {seq_len} tokens; lower --seq-len")

    def __len__(self) -> int:
        return int(self.offsets[-1])

    def locate(self, index: int) -> tuple[int, int]:
        """Global instance index -> (shard number, local instance index)."""
        if not 0 <= index < len(self):
            raise IndexError(index)
        shard = bisect.bisect_right(self.offsets, index) - 1
        return shard, index - int(self.offsets[shard])

    def _memmap(self, shard: int) -> np.memmap:
        if shard not in self._maps:
            self._maps[shard] = np.memmap(self.paths[shard], dtype=self.dtype, mode="r")
        return self._maps[shard]

    def __getitem__(self, index: int) -> np.ndarray:
        shard, local = self.locate(int(index))
        start = local * self.seq_len
        tokens = np.asarray(self._memmap(shard)[start:start + self.seq_len], dtype=np.int64)
        if int(tokens.max(initial=0)) >= self.manifest.vocab_size:  # else an index error naming no file
            at = int(np.argmax(tokens >= self.manifest.vocab_size))
            raise UserError(f"{self.paths[shard]}: token {start + at} is id {tokens[at]}, outside the vocabulary "
                            f"of {self.manifest.vocab_size} in {self.manifest.path}")
        return tokens

    def batch(self, indices) -> np.ndarray:
        return np.stack([self[i] for i in indices]) if len(indices) else np.zeros((0, self.seq_len), np.int64)


def epoch_order(n: int, seed: int, epoch: int) -> np.ndarray:
    """OLMo's global order for one epoch: arange(N, uint32) shuffled by PCG64(seed + epoch)."""
    indices = np.arange(n, dtype=np.uint32)
    np.random.Generator(np.random.PCG64(seed + epoch)).shuffle(indices)
    return indices


class GlobalOrder:
    """The endless training stream: position p -> instance `epoch_order(p // N)[p % N]`."""

    def __init__(self, n: int, seed: int):
        self.n, self.seed = n, seed
        self._cache: dict[int, np.ndarray] = {}

    def order(self, epoch: int) -> np.ndarray:
        if epoch not in self._cache:
            if len(self._cache) > 2:
                self._cache.clear()
            self._cache[epoch] = epoch_order(self.n, self.seed, epoch)
        return self._cache[epoch]

    def positions(self, start: int, count: int) -> np.ndarray:
        out = np.empty(count, dtype=np.int64)
        for j, p in enumerate(range(start, start + count)):
            out[j] = self.order(p // self.n)[p % self.n]
        return out

    def batch(self, instances_seen: int, global_batch_size: int) -> np.ndarray:
        """Global instance indices of the batch that starts after `instances_seen` instances."""
        return self.positions(instances_seen, global_batch_size)


def rank_slice(batch: np.ndarray, rank: int, world_size: int) -> np.ndarray:
    return batch[rank::world_size]


# ----------------------------------------------------------------------------------------------
# Batch reconstruction: which documents went into step N


def _read_metadata(path: Path) -> tuple[list[int], list[tuple[int, int, str, str, str]]]:
    rows = []
    with gzip.open(path, "rt", encoding="utf-8", newline="") as fh:
        for row in csv.reader(fh):
            if len(row) < 4:
                continue
            start, end = int(row[0]), int(row[1])
            rows.append((start, end, row[2], row[3], row[4] if len(row) > 4 else ""))
    rows.sort(key=lambda r: r[0])
    return [r[0] for r in rows], rows


class DocumentIndex:
    """Token offsets -> documents, from the `.csv.gz` written beside each shard."""

    def __init__(self, instances: ShardInstances):
        self.instances = instances
        self._cache: dict[int, tuple[list[int], list]] = {}

    def metadata_path(self, shard: int) -> Path:
        path = self.instances.paths[shard]
        entry = self.instances.manifest.shards.get(path.name, {})
        name = entry.get("metadata") or path.name[: -len(".npy")] + ".csv.gz"
        return path.parent / name

    def documents(self, index: int) -> list[dict]:
        """The documents (id, src, loc and the overlap in tokens) inside global instance `index`."""
        shard, local = self.instances.locate(index)
        if shard not in self._cache:
            meta = self.metadata_path(shard)
            if not meta.exists():
                raise UserError(f"{meta} is missing: batch reconstruction needs the metadata beside each shard")
            self._cache[shard] = _read_metadata(meta)
        starts, rows = self._cache[shard]
        lo, hi = local * self.instances.seq_len, (local + 1) * self.instances.seq_len
        first = max(bisect.bisect_right(starts, lo) - 1, 0)
        out = []
        for start, end, doc_id, src, loc in rows[first:]:
            if start >= hi:
                break
            if end <= lo:
                continue
            out.append({"id": doc_id, "src": src, "loc": loc, "doc_tokens": [start, end],
                        "tokens_in_instance": min(end, hi) - max(start, lo)})
        return out


def describe_batch(instances: ShardInstances, seed: int, global_batch_size: int, step: int,
                   world_size: int = 1) -> list[dict]:
    """Every instance of optimizer step `step` (1-based, constant batch size): rank, shard, documents."""
    order = GlobalOrder(len(instances), seed)
    batch = order.batch((step - 1) * global_batch_size, global_batch_size)
    docs = DocumentIndex(instances)
    out = []
    for position, index in enumerate(batch):
        shard, local = instances.locate(int(index))
        out.append({
            "step": step, "position": position, "rank": position % world_size, "instance": int(index),
            "shard": str(instances.paths[shard]), "token_range": [local * instances.seq_len,
                                                                 (local + 1) * instances.seq_len],
            "documents": docs.documents(int(index)),
        })
    return out


def format_batch(rows: list[dict]) -> str:
    buf = io.StringIO()
    for row in rows:
        start, end = row["token_range"]
        buf.write(f"step {row['step']} #{row['position']} rank {row['rank']} instance {row['instance']} "
                  f"{Path(row['shard']).name}[{start}:{end}]\n")
        for d in row["documents"]:
            buf.write(f"    {d['src']}\t{d['id']}\t{d['tokens_in_instance']} tokens"
                      f"{'  ' + d['loc'] if d['loc'] else ''}\n")
    return buf.getvalue()
