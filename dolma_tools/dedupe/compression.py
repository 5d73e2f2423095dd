"""Compression of dedupe's inputs and outputs: Dolma's `compression.input` and `.output`.

Documents are read as `compression.input` says (`gz`, `zst` or `""`), or by each file's name
when it is unset. An attribute file keeps its documents file's name, since that is how mix finds
it, and is compressed like the documents. That is Dolma's default ("the output follows the
input"), and it lets mix read both with one `compression.input`. Dolma also accepts a
`compression.output` that differs and writes, for example, zstd data under a `.gz` name that its
own mixer then cannot read. We refuse that case with an error instead.
"""

from __future__ import annotations

from typing import Iterator

from dolma_tools.errors import ConfigError
from dolma_tools.io.documents import BadLine, iter_documents, iter_raw_lines, parse_line, validate_document
from dolma_tools.io.files import compression_of

_CODECS = {"gz": "gz", "gzip": "gz", "zst": "zst", "zstd": "zst", "": "", "none": ""}
_NAMES = {"gz": "gzip", "zst": "zstd", "": "uncompressed"}


def codec(value: str | None, key: str) -> str | None:
    """`gz`, `zst`, `""` or None (unset), from Dolma's names; anything else is a config error."""
    if value is None:
        return None
    name = _CODECS.get(str(value).lower())
    if name is None:
        raise ConfigError(f"{key}: unknown compression {value!r} (use gz, zst or '')")
    return name


def document_codec(cfg, path: str) -> str:
    given = codec(cfg.compression.input, "compression.input")
    return compression_of(path) if given is None else given


def attribute_codec(cfg, path: str) -> str:
    """The compression of the attribute file of the documents file `path`."""
    if path.endswith(".parquet"):  # its attribute file is named .jsonl.gz
        return "gz"
    return document_codec(cfg, path)


def check_compression(cfg, inputs: list[str]) -> None:
    """Refuse a `compression.output` that is not the compression of the attribute files."""
    codec(cfg.compression.input, "compression.input")
    wanted = codec(cfg.compression.output, "compression.output")
    if wanted is None:
        return
    for path in inputs:
        actual = attribute_codec(cfg, path)
        if wanted != actual:
            raise ConfigError(
                f"compression.output={cfg.compression.output!r}: attribute files keep their documents' names and "
                f"compression ({_NAMES[actual]} for {path}) so that mix can read them; drop compression.output")


def read_documents(cfg, path: str) -> Iterator[tuple[int, dict | BadLine]]:
    """The file's validated documents, decompressed as `compression.input` says (or by name)."""
    if cfg.compression.input is None or path.endswith(".parquet"):
        yield from iter_documents(path)
        return
    for line, raw in iter_raw_lines(path, document_codec(cfg, path)):
        if isinstance(raw, BadLine):
            yield line, raw
            continue
        record = parse_line(path, line, raw)
        yield line, record if isinstance(record, BadLine) else validate_document(path, line, record)
