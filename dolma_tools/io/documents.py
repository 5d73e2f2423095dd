"""Dolma documents and attribute records: streaming readers and writers.

A *record* is one non-blank line of a JSONL file (or one row of a Parquet file). Readers yield
`(line_number, value)` for every record, where `value` is the parsed object, or a `BadLine`
when the record cannot be used. Stages write exactly one output line per record (a placeholder
for a bad one) so attribute files stay line-aligned with their documents; blank lines are
ignored on both sides.

Bad input never raises from deep inside: it is a `BadLine` with file, line and reason, which the
stage counts and skips, or turns into a `DataError` under `--strict`.
"""

from __future__ import annotations

import gzip
from dataclasses import dataclass
from typing import Any, Iterator

import orjson

from dolma_tools.errors import DataError
from dolma_tools.io.files import DECOMPRESSION_ERRORS, AtomicWriter, iter_decompressed

READ_CHUNK = 1 << 20
_BOM = b"\xef\xbb\xbf"  # UTF-8 byte-order mark, written by some Windows tools


@dataclass(frozen=True)
class BadLine:
    path: str
    line: int
    reason: str

    def as_error(self) -> DataError:
        return DataError(self.path, self.line, self.reason, skippable=True)

    def __str__(self) -> str:
        return f"{self.path}:{self.line}: {self.reason}"


# Exceptions that mean "the compressed stream is damaged or cut short".
_TRUNCATION_ERRORS = (EOFError, gzip.BadGzipFile, OSError, ValueError, *DECOMPRESSION_ERRORS)


def iter_raw_lines(path: str, compression: str | None = None) -> Iterator[tuple[int, bytes | BadLine]]:
    """(1-based line number, bytes) for each non-blank line; a damaged stream ends with a BadLine."""
    line_number = 0
    pending = b""
    try:
        for chunk in iter_decompressed(path, READ_CHUNK, compression):
            lines = (pending + chunk).split(b"\n")
            pending = lines.pop()
            if line_number == 0 and lines and lines[0].startswith(_BOM):
                lines[0] = lines[0][len(_BOM):]  # a byte-order mark is not part of the first record
            for raw in lines:
                line_number += 1
                if raw.strip():
                    yield line_number, raw
    except FileNotFoundError:
        raise
    except _TRUNCATION_ERRORS as exc:
        # the partial last line is part of the damage: report it, keep everything before it
        yield line_number + 1, BadLine(path, line_number + 1, f"truncated or corrupt compressed data ({exc})")
        return
    if line_number == 0 and pending.startswith(_BOM):
        pending = pending[len(_BOM):]
    if pending.strip():
        yield line_number + 1, pending


def parse_line(path: str, line: int, raw: bytes) -> dict | BadLine:
    try:
        value = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        message = str(exc)
        if "utf-8" in message.lower():
            reason = "invalid UTF-8"
        elif "surrogate" in message:
            reason = f"lone surrogate escape in a string, not valid Unicode ({message})"
        else:
            reason = f"malformed JSON ({message})"
        return BadLine(path, line, reason)
    if not isinstance(value, dict):
        return BadLine(path, line, f"expected a JSON object, got {type(value).__name__}")
    return value


def iter_json_records(path: str) -> Iterator[tuple[int, dict | BadLine]]:
    """Parsed JSON objects of a JSONL file (any compression), or Parquet rows as dicts."""
    if path.endswith(".parquet"):
        yield from iter_parquet_records(path)
        return
    for line, raw in iter_raw_lines(path):
        if isinstance(raw, BadLine):
            yield line, raw
        else:
            yield line, parse_line(path, line, raw)


def iter_parquet_records(path: str, batch_size: int = 4096) -> Iterator[tuple[int, dict | BadLine]]:
    import pyarrow as pa
    import pyarrow.parquet as pq

    from dolma_tools.io.files import open_raw

    line = 0
    with open_raw(path, "rb") as raw:
        try:
            for batch in pq.ParquetFile(raw).iter_batches(batch_size=batch_size):
                for row in batch.to_pylist():
                    line += 1
                    yield line, row
        except (pa.ArrowException, OSError) as exc:
            # like a cut-short compressed file: rows before the damage stay, the damage is one bad record
            yield line + 1, BadLine(path, line + 1, f"unreadable Parquet data ({exc})")


def validate_document(path: str, line: int, doc: dict, text_field: str = "text",
                      id_field: str = "id") -> dict | BadLine:
    """A document needs a string `text` and an `id` (a string; numbers are accepted as strings)."""
    text = doc.get(text_field)
    if text is None:
        return BadLine(path, line, f"`{text_field}` is null" if text_field in doc else f"missing `{text_field}`")
    if not isinstance(text, str):
        return BadLine(path, line, f"`{text_field}` is {type(text).__name__}, not a string")
    doc_id = doc.get(id_field)
    if doc_id is None:
        return BadLine(path, line, f"`{id_field}` is null" if id_field in doc else f"missing `{id_field}`")
    if not isinstance(doc_id, str):
        if isinstance(doc_id, (int, float)) and not isinstance(doc_id, bool):
            doc[id_field] = str(doc_id)
        else:
            return BadLine(path, line, f"`{id_field}` is {type(doc_id).__name__}, not a string")
    return doc


def iter_documents(path: str) -> Iterator[tuple[int, dict | BadLine]]:
    """Validated documents of a file, line-numbered, with BadLines in place of unusable records."""
    for line, record in iter_json_records(path):
        if isinstance(record, BadLine):
            yield line, record
        else:
            yield line, validate_document(path, line, record)


def dumps(obj: Any) -> bytes:
    """One JSONL line (with the newline). orjson keeps key order and writes compact UTF-8."""
    return orjson.dumps(obj, option=orjson.OPT_APPEND_NEWLINE)


class JsonlWriter(AtomicWriter):
    """Atomic JSONL writer; records are committed under the final name when the block exits."""

    def write_record(self, obj: Any) -> None:
        self.stream.write(dumps(obj))

    def write_line(self, line: bytes) -> None:
        self.stream.write(line if line.endswith(b"\n") else line + b"\n")


def write_parquet(path: str, records: list[dict]) -> None:
    """Write documents as Parquet (atomically)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    table = pa.Table.from_pylist(records)
    with AtomicWriter(path, compression="") as out:
        pq.write_table(table, out.stream)
