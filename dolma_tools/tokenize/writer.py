"""The shards of one writer group: `part-<g>-<k:05d>.npy` (raw ids) and `.csv.gz` (one row per document).

Dolma's format (reference-dolma.md §10.3): the `.npy` is a headerless array of ids in `dtype`,
little-endian; the `.csv.gz` has no header and one row `start,end,id,src,loc` per document
(token offsets in the shard, end exclusive; source path as given; 1-based line), written with
Python's csv module, so rows end in CRLF and fields with commas or quotes are quoted.

Dolma's size rule is kept: a document goes into the current shard while written + its length <
`max_size`, else the next shard starts. Dolma loops forever on a document longer than that;
here it is split, each piece a row with the same id, src and loc. A shard is only created when
its first document arrives, so no shard is ever empty, and each file appears under its final
name only when complete.
"""

from __future__ import annotations

import csv
import io
import sys
from dataclasses import dataclass
from typing import Sequence

import numpy as np

from dolma_tools.io.files import AtomicWriter

if sys.byteorder != "little":  # pragma: no cover - shards are little-endian, as OLMo reads them
    raise ImportError("dolma_tools.tokenize writes little-endian shards; big-endian hosts are not supported")


@dataclass(frozen=True)
class ShardInfo:
    path: str  # file name, relative to the destination
    tokens: int
    documents: int
    metadata: str

    def to_dict(self) -> dict:
        return {"path": self.path, "tokens": self.tokens, "documents": self.documents, "metadata": self.metadata}


@dataclass(frozen=True)
class DocMeta:
    id: str
    src: str
    loc: int


class _OpenShard:
    def __init__(self, destination: str, stem: str) -> None:
        self.stem = stem
        self.tokens_out = AtomicWriter(f"{destination}/{stem}.npy", compression="")
        self.meta_out = AtomicWriter(f"{destination}/{stem}.csv.gz", compression="gz")
        self.written = 0
        self.rows = 0
        self._csv_buffer = io.StringIO()
        self._csv = csv.writer(self._csv_buffer)  # Dolma's dialect: excel, CRLF

    def add(self, ids: np.ndarray, meta: DocMeta) -> None:
        self._csv.writerow((self.written, self.written + len(ids), meta.id, meta.src, meta.loc))
        self.rows += 1
        self.written += len(ids)
        self.tokens_out.write(ids.tobytes())

    def flush_rows(self) -> None:
        if self._csv_buffer.tell():
            self.meta_out.write(self._csv_buffer.getvalue().encode("utf-8"))
            self._csv_buffer.seek(0)
            self._csv_buffer.truncate()

    def commit(self) -> ShardInfo:
        self.flush_rows()
        self.tokens_out.commit()
        self.meta_out.commit()
        return ShardInfo(f"{self.stem}.npy", self.written, self.rows, f"{self.stem}.csv.gz")

    def discard(self) -> None:
        self.tokens_out.discard()
        self.meta_out.discard()


class GroupShardWriter:
    """Writes a group's documents, in the order given, into as many shards as `max_size` needs."""

    def __init__(self, destination: str, stem_of, max_size: int) -> None:
        if max_size < 2:
            raise ValueError("max_size must be at least 2 tokens")
        self.destination = destination.rstrip("/")
        self.stem_of = stem_of  # shard number -> file stem
        self.max_size = max_size
        self.shards: list[ShardInfo] = []
        self.split_documents = 0
        self._current: _OpenShard | None = None

    def _open(self) -> _OpenShard:
        if self._current is None:
            self._current = _OpenShard(self.destination, self.stem_of(len(self.shards)))
        return self._current

    def _close_current(self) -> None:
        if self._current is not None:
            self.shards.append(self._current.commit())
            self._current = None

    def write_batch(self, flat: np.ndarray, lengths: Sequence[int], metas: Sequence[DocMeta]) -> None:
        """Documents laid end to end in `flat`, `lengths[i]` ids each."""
        limit = self.max_size
        offset = 0
        for length, meta in zip(lengths, metas):
            length = int(length)
            doc = flat[offset:offset + length]
            offset += length
            if self._current is not None and self._current.written + length >= limit:
                self._close_current()
            if length >= limit:
                self.split_documents += 1
                while len(doc) >= limit:  # never fits whole: fill shards of limit - 1 ids
                    self._open().add(doc[: limit - 1], meta)
                    doc = doc[limit - 1:]
                    self._close_current()
                if not len(doc):
                    continue
            self._open().add(doc, meta)
        if self._current is not None:
            self._current.flush_rows()

    def close(self) -> list[ShardInfo]:
        self._close_current()
        return self.shards

    def discard(self) -> None:
        if self._current is not None:
            self._current.discard()
            self._current = None
