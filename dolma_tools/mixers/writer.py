"""Outputs: numbered `<stream>-NNNN.jsonl.gz` shards, or one file per input (`shuffle: false`).

`shuffle: true`: each input file (one Ray task) writes its kept documents into *parts* under a
staging directory `<output.path>/.staging-<stream>/`, cutting a part when its compressed size
reaches `max_size_in_bytes`, and records them in a small manifest (the resume marker). When
every file is done, `finalize` walks the parts in input order and packs consecutive ones into
shards of at most `max_size_in_bytes` (a gzip or zstd stream may be concatenated, so small parts
are joined byte for byte without recompressing), named `<stream>-0000.jsonl.gz`, `-0001...`.
The shards therefore depend on the inputs and the config, never on the number of workers.

`shuffle: false` (Dolma's "strict filter" mode): each input file is written, atomically, to
`mirrored_output(...)`: `<output.path>/documents/<the input path after its last documents/>`,
even when no document is left; the manifest only records counts.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
from typing import Iterable

import orjson

from dolma_tools.errors import UserError
from dolma_tools.io.documents import write_parquet
from dolma_tools.io.files import (
    GZIP_LEVEL,
    ZSTD_LEVEL,
    AtomicWriter,
    compression_of,
    exists,
    is_remote,
    local_path,
    open_raw,
)
from dolma_tools.io.files import fast_zlib as _fast_zlib

STAGING = ".staging-"
SORT_OPTIONS = orjson.OPT_SORT_KEYS | orjson.OPT_APPEND_NEWLINE
BLOCK = 1 << 20  # compress in blocks: fewer calls than one per document



def make_compressor(compression: str):
    """An object with compress(bytes) -> bytes and flush() -> bytes, or None for plain text."""
    if compression == "gz":
        return _fast_zlib.compressobj(GZIP_LEVEL, _fast_zlib.DEFLATED, 31)  # 31: gzip wrapper
    if compression == "zst":
        import zstandard

        return zstandard.ZstdCompressor(level=ZSTD_LEVEL).compressobj()
    return None


class BlockWriter:
    """Atomic output that compresses buffered lines a block at a time (gzip, zstd or plain)."""

    def __init__(self, path: str, compression: str, block: int = BLOCK) -> None:
        self.out = AtomicWriter(path, compression="")
        self.block = block
        self.compressor = make_compressor(compression)
        if compression == "zst":
            import zstandard

            self.sync = zstandard.COMPRESSOBJ_FLUSH_BLOCK
        else:
            self.sync = _fast_zlib.Z_SYNC_FLUSH
        self.buffer: list[bytes] = []
        self.buffered = 0

    @property
    def compressed_bytes(self) -> int:
        return self.out.compressed_bytes

    def write(self, line: bytes) -> None:
        self.buffer.append(line)
        self.buffered += len(line)
        if self.buffered >= self.block:
            self._flush_block()

    def _flush_block(self) -> None:
        data = b"".join(self.buffer)
        self.buffer, self.buffered = [], 0
        if self.compressor is not None:
            # a sync flush per block keeps `compressed_bytes` exact to within one block
            data = self.compressor.compress(data) + self.compressor.flush(self.sync)
        if data:
            self.out.write(data)

    def commit(self) -> None:
        if self.buffer:
            self._flush_block()
        if self.compressor is not None:
            self.out.write(self.compressor.flush())
        self.out.commit()

    def discard(self) -> None:
        self.out.discard()


def codec(compression: str | None) -> str:
    if compression is None:
        return "gz"
    return {"gzip": "gz", "zstd": "zst"}.get(compression, compression)


def shard_suffix(fmt: str, compression: str | None) -> str:
    if fmt == "parquet":
        return ".parquet"
    ext = codec(compression)
    return ".jsonl" + (f".{ext}" if ext else "")


def staging_dir(output_path: str, stream: str) -> str:
    return f"{output_path.rstrip('/')}/{STAGING}{stream}"


def join(*parts: str) -> str:
    return "/".join(p.rstrip("/") for p in parts)


class PartWriter:
    """Writes serialized JSONL lines into size-capped parts `<prefix>-<k>.<suffix>`."""

    def __init__(self, prefix: str, max_bytes: int, fmt: str, compression: str | None) -> None:
        self.prefix = prefix
        self.max_bytes = max_bytes
        self.fmt = fmt
        self.compression = codec(compression)
        self.suffix = shard_suffix(fmt, compression)
        self.parts: list[dict] = []
        self._writer: BlockWriter | None = None
        self._rows: list[bytes] = []
        self._row_bytes = 0
        self._count = 0

    def _open(self) -> None:
        path = f"{self.prefix}-{len(self.parts):04d}{self.suffix}"
        self.parts.append({"path": path, "documents": 0, "bytes": 0})
        if self.fmt != "parquet":
            self._writer = BlockWriter(path, self.compression, max(4096, min(BLOCK, self.max_bytes // 4)))
        self._count = 0

    def write(self, line: bytes) -> None:
        if self.fmt == "parquet":
            if not self._rows:
                self._open()
            self._rows.append(line)
            self._row_bytes += len(line)
            self.parts[-1]["documents"] += 1
            if self._row_bytes >= self.max_bytes:
                self._flush_parquet()
            return
        if self._writer is None:
            self._open()
        self._writer.write(line)
        self._count += 1
        # the compressed count lags by a block and the compressor's window; good enough to cut on
        if self._writer.compressed_bytes >= self.max_bytes:
            self._close_jsonl()

    def _close_jsonl(self) -> None:
        if self._writer is not None:
            self._writer.commit()
            self.parts[-1]["documents"] = self._count
            self.parts[-1]["bytes"] = self._writer.compressed_bytes
            self._writer = None

    def _flush_parquet(self) -> None:
        if self._rows:
            path = self.parts[-1]["path"]
            write_parquet_rows(path, self._rows)
            self.parts[-1]["bytes"] = self._row_bytes if is_remote(path) else os.path.getsize(local_path(path))
            self._rows, self._row_bytes = [], 0

    def close(self) -> list[dict]:
        if self.fmt == "parquet":
            self._flush_parquet()
        else:
            self._close_jsonl()
        return self.parts

    def discard(self) -> None:
        if self._writer is not None:
            self._writer.discard()
            self._writer = None


def write_parquet_rows(path: str, lines: list[bytes]) -> None:
    """Rows keep their nested values when Arrow can type them; otherwise nested values are JSON text."""
    import pyarrow as pa

    records = [orjson.loads(line) for line in lines]
    columns = list(dict.fromkeys(key for record in records for key in record))  # Arrow uses the first row's keys
    records = [{key: record.get(key) for key in columns} for record in records]
    try:
        write_parquet(path, records)
    except (pa.ArrowInvalid, pa.ArrowTypeError, TypeError):
        flat = [{k: (orjson.dumps(v).decode() if isinstance(v, (dict, list)) else v) for k, v in r.items()}
                for r in records]
        write_parquet(path, flat)


# ---------------------------------------------------------------------------------------------
# shuffle: false: one output per input, at the input's path below documents/

COMPRESSION_SUFFIXES = (".gz", ".gzip", ".zst", ".zstd")


def _strip_suffix(name: str, suffixes: tuple[str, ...]) -> str:
    for suffix in suffixes:
        if name.endswith(suffix) and len(name) > len(suffix):
            return name[: -len(suffix)]
    return name


def mirrored_relative_path(input_path: str) -> str:
    """The input's path after its last `documents` component (Dolma: after the last `/documents/`).

    An input outside any `documents/` directory keeps its whole path (local: absolute, without
    the leading `/`; a URL: without the scheme), as Dolma does.
    """
    parts = input_path.split("/")
    for i in range(len(parts) - 2, -1, -1):
        if parts[i] == "documents":
            relative = parts[i + 1:]
            break
    else:
        if is_remote(input_path):
            relative = input_path.split("://", 1)[1].split("/")
        else:
            relative = os.path.abspath(local_path(input_path)).lstrip("/").split("/")
    if any(part in ("", ".", "..") for part in relative):
        raise UserError(f"shuffle: false writes each input to <output.path>/documents/<its path after "
                        f"documents/>, but {input_path} gives {'/'.join(relative)!r}; "
                        f"use a normalised path without '.', '..' or '//'")
    return "/".join(relative)


def mirrored_output(input_path: str, output_path: str, fmt: str, compression: str | None) -> str:
    """Where `shuffle: false` writes an input: `<output.path>/documents/<relative path>`.

    JSONL keeps the input's name when `compression.output` is unset (its codec follows the name,
    as Dolma); when set, the compression extension is replaced so that the name tells the codec
    (Dolma keeps the input's name: zstd in a `.gz` file). Parquet inputs become `.jsonl<ext>`;
    Parquet output is named `.parquet`.
    """
    relative = mirrored_relative_path(input_path)
    if fmt == "parquet":
        base = _strip_suffix(_strip_suffix(relative, COMPRESSION_SUFFIXES), (".jsonl", ".json", ".parquet"))
        name = base + ".parquet"
    elif relative.endswith(".parquet"):
        name = relative[: -len(".parquet")] + shard_suffix("jsonl", compression)
    elif compression is None:
        name = relative
    else:
        ext = codec(compression)
        name = _strip_suffix(relative, COMPRESSION_SUFFIXES) + (f".{ext}" if ext else "")
    return join(output_path, "documents", name)


class MirrorWriter:
    """The one output file of one input (`shuffle: false`), written atomically, empty if need be.

    JSONL is compressed by the name's extension. Parquet holds the file's rows in memory and
    writes them at `close` (an input's kept documents are one Parquet file).
    """

    def __init__(self, path: str, fmt: str) -> None:
        self.path = path
        self.fmt = fmt
        self.documents = 0
        self._rows: list[bytes] = []
        self._writer = BlockWriter(path, compression_of(path)) if fmt != "parquet" else None

    def write(self, line: bytes) -> None:
        self.documents += 1
        if self._writer is None:
            self._rows.append(line)
        else:
            self._writer.write(line)

    def close(self) -> list[dict]:
        if self._writer is not None:
            self._writer.commit()
            size = self._writer.compressed_bytes
        else:
            write_parquet_rows(self.path, self._rows)
            size = sum(map(len, self._rows)) if is_remote(self.path) else os.path.getsize(local_path(self.path))
            self._rows = []
        return [{"path": self.path, "documents": self.documents, "bytes": size}]

    def discard(self) -> None:
        if self._writer is not None:
            self._writer.discard()
        self._rows = []


def remove_outputs(paths: Iterable[str]) -> None:
    """Delete outputs an earlier run of a stream wrote and this one did not (local and S3)."""
    local = [p for p in paths if not is_remote(p)]
    for path in local:
        with contextlib.suppress(FileNotFoundError):
            os.remove(local_path(path))
    s3 = [p for p in paths if p.startswith("s3://")]
    if s3:
        from dolma_tools.io.s3 import s3_client, split_url

        for path in s3:
            bucket, key = split_url(path)
            s3_client().delete_object(Bucket=bucket, Key=key)


def _shard_name(output_path: str, stream: str, index: int, suffix: str) -> str:
    return join(output_path, f"{stream}-{index:04d}{suffix}")


def pack_parts(parts: list[dict], max_bytes: int, concatenable: bool) -> list[list[dict]]:
    """Consecutive parts grouped into shards of at most `max_bytes` (one part per shard otherwise)."""
    groups: list[list[dict]] = []
    size = 0
    for part in parts:
        if part["documents"] == 0:
            continue
        if groups and concatenable and size + part["bytes"] <= max_bytes:
            groups[-1].append(part)
            size += part["bytes"]
        else:
            groups.append([part])
            size = part["bytes"]
    return groups


def finalize(output_path: str, stream: str, parts: Iterable[dict], max_bytes: int, fmt: str,
             compression: str | None) -> list[str]:
    """Turn staged parts (in input order) into numbered shards; returns the shard paths."""
    suffix = shard_suffix(fmt, compression)
    groups = pack_parts(list(parts), max_bytes, concatenable=fmt != "parquet")
    shards = []
    for index, group in enumerate(groups):
        target = _shard_name(output_path, stream, index, suffix)
        if len(group) == 1 and not is_remote(target):
            os.replace(local_path(group[0]["path"]), local_path(target))
        elif len(group) == 1 and target.startswith("s3://") and group[0]["path"].startswith("s3://"):
            _s3_copy(group[0]["path"], target)
        else:
            with AtomicWriter(target, compression="") as out:
                for part in group:
                    with open_raw(part["path"], "rb") as src:
                        shutil.copyfileobj(src, out.stream, 1 << 20)
        shards.append(target)
    _remove_stale_shards(output_path, stream, suffix, len(shards))
    return shards


def _remove_stale_shards(output_path: str, stream: str, suffix: str, count: int) -> None:
    """Shards numbered past this run's last one are leftovers of an earlier, larger run."""
    if is_remote(output_path) or not os.path.isdir(local_path(output_path)):
        return
    pattern = re.compile(rf"{re.escape(stream)}-(\d{{4,}}){re.escape(suffix)}")
    for name in os.listdir(local_path(output_path)):
        match = pattern.fullmatch(name)
        if match and int(match.group(1)) >= count:
            os.remove(os.path.join(local_path(output_path), name))


def _s3_copy(source: str, target: str) -> None:
    from dolma_tools.io.s3 import s3_client, split_url

    bucket, key = split_url(source)
    target_bucket, target_key = split_url(target)
    s3_client().copy({"Bucket": bucket, "Key": key}, target_bucket, target_key)  # server-side


def remove_staging(output_path: str, stream: str) -> None:
    path = staging_dir(output_path, stream)
    if path.startswith("s3://"):
        from dolma_tools.io.s3 import list_keys, s3_client, split_url

        bucket, prefix = split_url(path + "/")
        keys = list(list_keys(bucket, prefix))
        for start in range(0, len(keys), 1000):
            batch = [{"Key": k} for k in keys[start:start + 1000]]
            s3_client().delete_objects(Bucket=bucket, Delete={"Objects": batch, "Quiet": True})
        return
    if is_remote(path):
        return  # other object stores: staged parts are left behind
    shutil.rmtree(local_path(path), ignore_errors=True)


def read_manifest(path: str) -> dict | None:
    if not exists(path):
        return None
    with open_raw(path, "rb") as fh:
        return orjson.loads(fh.read())


def write_manifest(path: str, data: dict) -> None:
    with AtomicWriter(path, compression="") as out:
        out.write(orjson.dumps(data, option=orjson.OPT_INDENT_2))
