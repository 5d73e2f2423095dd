"""The `tokens.json` manifest and `TokenShards`, the reader of what `dolma tokens` wrote.

`TokenShards` gives back
- documents: id, source, line and ids, found through each shard's `.csv.gz` (a document split
  across shards comes back whole);
- fixed-length instances, OLMo's way (reference-olmo.md §5.1): each shard is cut on its own into
  ⌊tokens / length⌋ instances and its tail is dropped; instance i is the i-th in shard order.
It also reads Dolma 1.2.1's output, which has no manifest (`TokenShards.from_paths`).
"""

from __future__ import annotations

import csv
import io
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator, Sequence

import numpy as np
import orjson

from dolma_tools.errors import UserError

MANIFEST_NAME = "tokens.json"
FORMAT = "dolma-tools-tokens/1"
MANIFEST_KEYS = ("format", "tokenizer", "tokenizer_sha256", "vocab_size", "padded_vocab_size", "eos_token_id",
                 "bos_token_id", "pad_token_id", "special_tokens", "dtype", "seed", "total_tokens",
                 "total_documents", "shards")


def build_manifest(*, tokenizer: str, tokenizer_sha256: str, vocab_size: int, padded_vocab_size: int,
                   eos_token_id: int | None, bos_token_id: int | None, pad_token_id: int | None,
                   special_tokens: dict[str, int], dtype: str, seed: int, total_documents: int,
                   shards: Sequence[Any]) -> dict[str, Any]:
    """The manifest dict, keys in the documented order; `shards` are ShardInfo or dicts."""
    rows = [s.to_dict() if hasattr(s, "to_dict") else dict(s) for s in shards]
    return {
        "format": FORMAT,
        "tokenizer": tokenizer,
        "tokenizer_sha256": tokenizer_sha256,
        "vocab_size": vocab_size,
        "padded_vocab_size": padded_vocab_size,
        "eos_token_id": eos_token_id,
        "bos_token_id": bos_token_id,
        "pad_token_id": pad_token_id,
        "special_tokens": special_tokens,
        "dtype": dtype,
        "seed": seed,
        "total_tokens": sum(int(r["tokens"]) for r in rows),
        "total_documents": total_documents,
        "shards": rows,
    }


@dataclass(frozen=True)
class Shard:
    path: Path
    metadata: Path | None
    tokens: int
    documents: int | None


@dataclass(frozen=True)
class TokenDocument:
    id: str
    src: str
    loc: int
    tokens: np.ndarray  # ids in the shard dtype (a copy when the document spans shards)


def read_metadata(path: Path | str) -> list[tuple[int, int, str, str, int]]:
    """Rows (start, end, id, src, loc) of a `.csv.gz` (Dolma's or ours)."""
    from dolma_tools.io.files import open_read

    with open_read(str(path)) as raw:
        text = io.TextIOWrapper(raw, encoding="utf-8", newline="")
        return [(int(r[0]), int(r[1]), r[2], r[3], int(r[4])) for r in csv.reader(text) if r]


class TokenShards:
    """Shards written by `dolma tokens`: a directory (or its `tokens.json`), or explicit paths."""

    def __init__(self, path: str | os.PathLike) -> None:
        path = Path(path)
        manifest_path = path if path.is_file() else path / MANIFEST_NAME
        if not manifest_path.is_file():
            raise UserError(f"no {MANIFEST_NAME} at {path}: token shards come from `dolma tokens` "
                            f"(use TokenShards.from_paths for shards without a manifest)")
        try:
            self.manifest: dict[str, Any] = orjson.loads(manifest_path.read_bytes())
        except orjson.JSONDecodeError as exc:
            raise UserError(f"{manifest_path} is not valid JSON ({exc})") from None
        missing = [k for k in MANIFEST_KEYS if k not in self.manifest]
        if missing:
            raise UserError(f"{manifest_path} is not a dolma-tools tokens manifest (missing {', '.join(missing)})")
        self.root = manifest_path.parent
        self.dtype = np.dtype(self.manifest["dtype"])
        self.shards = [Shard(self.root / s["path"], self.root / s["metadata"] if s.get("metadata") else None,
                             int(s["tokens"]), int(s["documents"])) for s in self.manifest["shards"]]
        self._maps: dict[int, np.ndarray] = {}

    @classmethod
    def from_paths(cls, paths: Sequence[str | os.PathLike], dtype: str = "uint16") -> "TokenShards":
        """Shards without a manifest (e.g. Dolma 1.2.1's): `.npy` paths; metadata beside each."""
        self = cls.__new__(cls)
        self.manifest = {"dtype": dtype, "shards": []}
        self.root = Path(".")
        self.dtype = np.dtype(dtype)
        self.shards = []
        for p in sorted(Path(x) for x in paths):
            meta = p.with_name(p.name[: -len(".npy")] + ".csv.gz") if p.name.endswith(".npy") else None
            self.shards.append(Shard(p, meta if meta and meta.is_file() else None,
                                     os.path.getsize(p) // self.dtype.itemsize, None))
        self._maps = {}
        return self

    # -- raw access ------------------------------------------------------------------------

    @property
    def eos_token_id(self) -> int | None:
        return self.manifest.get("eos_token_id")

    @property
    def total_tokens(self) -> int:
        return sum(s.tokens for s in self.shards)

    def tokens(self, shard: int) -> np.ndarray:
        """The whole shard as a read-only memmap."""
        if shard not in self._maps:
            s = self.shards[shard]
            if s.tokens == 0:
                self._maps[shard] = np.zeros(0, dtype=self.dtype)
            else:
                self._maps[shard] = np.memmap(s.path, dtype=self.dtype, mode="r", shape=(s.tokens,))
        return self._maps[shard]

    # -- documents -------------------------------------------------------------------------

    def iter_rows(self) -> Iterator[tuple[int, tuple[int, int, str, str, int]]]:
        for index, shard in enumerate(self.shards):
            if shard.metadata is None:
                raise UserError(f"{shard.path} has no .csv.gz metadata beside it")
            for row in read_metadata(shard.metadata):
                yield index, row

    def iter_documents(self) -> Iterator[TokenDocument]:
        """Documents in shard order; pieces of a split document (consecutive rows of one
        (id, src, loc) at the end and start of adjacent shards) are joined."""
        pending: TokenDocument | None = None
        for index, (start, end, doc_id, src, loc) in self.iter_rows():
            ids = self.tokens(index)[start:end]
            if (pending is not None and start == 0 and (pending.id, pending.src, pending.loc) == (doc_id, src, loc)):
                pending = TokenDocument(doc_id, src, loc, np.concatenate([pending.tokens, ids]))
                continue
            if pending is not None:
                yield pending
            pending = TokenDocument(doc_id, src, loc, ids)
        if pending is not None:
            yield pending

    # -- instances -------------------------------------------------------------------------

    def instance_counts(self, length: int) -> list[int]:
        return [s.tokens // length for s in self.shards]

    def num_instances(self, length: int) -> int:
        return sum(self.instance_counts(length))

    def instance(self, index: int, length: int) -> np.ndarray:
        """Instance `index` of `length` ids (as int64), OLMo's memmap-dataset layout."""
        if index < 0:
            index += self.num_instances(length)
        for shard, count in enumerate(self.instance_counts(length)):
            if index < count:
                return np.asarray(self.tokens(shard)[index * length:(index + 1) * length], dtype=np.int64)
            index -= count
        raise IndexError("instance index out of range")

    def iter_instances(self, length: int) -> Iterator[np.ndarray]:
        for shard, count in enumerate(self.instance_counts(length)):
            data = self.tokens(shard)
            for i in range(count):
                yield np.asarray(data[i * length:(i + 1) * length], dtype=np.int64)
