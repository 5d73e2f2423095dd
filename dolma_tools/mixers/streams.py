"""One stream's per-document pipeline: join attributes, filter, replace spans, trim, tag provenance.

`kept_documents` reads a document file and its attribute files in lockstep: the i-th non-blank
document line pairs with the i-th non-blank line of every attribute file (our taggers write a
placeholder `{"id": null, ...}` for a malformed document line, so malformed lines keep the files
aligned). An id mismatch, a short or long attribute file, or an attribute record that is not an
object is a `DataError` naming the attribute file and line.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from typing import Any, Iterator

import orjson

from dolma_tools.errors import DataError
from dolma_tools.io.documents import BadLine, iter_parquet_records, iter_raw_lines, parse_line, validate_document
from dolma_tools.io.paths import attribute_path
from dolma_tools.mixers.config import StreamConfig
from dolma_tools.mixers.filters import DocumentFilter, PatternError
from dolma_tools.mixers.spans import SpanError, SpanReplacer, replace_spans
from dolma_tools.runtime import FileResult

log = logging.getLogger("dolma_tools.mix")

class _Context:
    """Where the pipeline is, for errors raised from inside compiled patterns."""

    path = ""
    line = 0
    strict = False
    counters: dict | None = None


@dataclass
class CompiledStream:
    config: StreamConfig
    filter: DocumentFilter | None
    replacers: list[SpanReplacer]
    context: _Context

    @classmethod
    def build(cls, config: StreamConfig) -> "CompiledStream":
        context = _Context()

        def on_error(pattern: str, error: PatternError) -> None:
            if context.strict:
                raise DataError(context.path, context.line, f"jq pattern {pattern!r} failed: {error}")
            if context.counters is not None:
                key = f"{config.name}.pattern_errors"
                context.counters[key] = context.counters.get(key, 0) + 1

        flt = None
        if config.filter is not None:
            flt = DocumentFilter(config.filter.include, config.filter.exclude, config.filter.syntax, on_error)
        replacers = [SpanReplacer(r.span, r.min_score, r.max_score, r.replacement, r.syntax)
                     for r in config.span_replacement]
        return cls(config=config, filter=flt, replacers=replacers, context=context)


def attribute_files(document: str, names: list[str]) -> list[str]:
    return [attribute_path(document, name) for name in names]


def iter_lines(path: str, compression: str | None) -> Iterator[tuple[int, Any]]:
    """(line number, raw bytes | parsed Parquet row | BadLine) for each non-blank record of a file."""
    if path.endswith(".parquet"):
        return iter_parquet_records(path)
    return iter_raw_lines(path, compression)


def _same_id(doc_id: str, attr_id: Any) -> bool:
    if attr_id == doc_id:
        return True
    return isinstance(attr_id, (int, float)) and not isinstance(attr_id, bool) and str(attr_id) == doc_id


def kept_documents(stream: CompiledStream, path: str, result: FileResult, strict: bool,
                   attributes: list[str | None], counters: dict) -> Iterator[tuple[dict, int, int]]:
    """(document, its line number, UTF-8 bytes of its text) for every document the stream keeps.

    `attributes` are the attribute files to join (None for one allowed to be missing); removals
    are counted in `counters` under `<stream>.removed.<reason>`.
    """
    cfg = stream.config
    name = cfg.name
    ctx = stream.context
    ctx.path, ctx.strict, ctx.counters = path, strict, counters
    compression = cfg.compression.input
    readers = [(apath, iter_lines(apath, compression)) for apath in attributes if apath is not None]
    join_attributes = bool(readers)
    doc_filter, replacers = stream.filter, stream.replacers
    discard = cfg.output.discard_fields
    min_length = cfg.output.min_text_length
    basename = os.path.basename(path)
    truncated = False

    def count(key: str, n: int = 1) -> None:
        key = f"{name}.{key}"
        counters[key] = counters.get(key, 0) + n

    for line, raw in iter_lines(path, compression):
        records = []
        for apath, reader in readers:
            item = next(reader, None)
            if item is None:
                raise DataError(apath, None, f"attribute file has fewer records than {path} "
                                             f"(none for document line {line})")
            if isinstance(item[1], BadLine):
                raise item[1].as_error()
            records.append((apath, item[0], item[1]))
        if isinstance(raw, BadLine):
            truncated = "compressed" in raw.reason
            result.bad_line(raw, strict)
            continue
        doc = raw if isinstance(raw, dict) else parse_line(path, line, raw)
        if not isinstance(doc, BadLine):
            doc = validate_document(path, line, doc)
        if isinstance(doc, BadLine):
            result.bad_line(doc, strict)
            continue
        result.documents += 1
        if join_attributes:
            merged = doc.get("attributes")
            if not isinstance(merged, dict):
                merged = {}
            doc_id = doc["id"]
            for apath, aline, araw in records:
                try:
                    record = araw if isinstance(araw, dict) else orjson.loads(araw)
                except orjson.JSONDecodeError as exc:
                    raise DataError(apath, aline, f"malformed attribute record ({exc})") from None
                if not isinstance(record, dict):
                    raise DataError(apath, aline, "attribute record is not a JSON object")
                if not _same_id(doc_id, record.get("id")):
                    raise DataError(apath, aline, f"mismatched ids for line {aline} of {apath}: "
                                                  f"{record.get('id')!r} != {doc_id!r} (line {line} of {path})")
                values = record.get("attributes")
                if not isinstance(values, dict):
                    raise DataError(apath, aline, "`attributes` is not a JSON object")
                merged.update(values)
            doc["attributes"] = merged
        ctx.line = line
        if doc_filter is not None:
            reason = doc_filter.reason_to_remove(doc)
            if reason is not None:
                count("removed." + reason)
                continue
        if replacers:
            try:
                text, replaced = replace_spans(doc["text"], doc, replacers)
            except SpanError as exc:
                result.bad_line(BadLine(path, line, f"span replacement: {exc}"), strict)
                continue
            if replaced:
                doc["text"] = text
                count("spans_replaced", replaced)
        for key in discard:
            doc.pop(key, None)
        text = doc.get("text")
        text_bytes = len(text.encode("utf-8")) if isinstance(text, str) else 0
        if min_length and isinstance(text, str) and len(text.strip().encode("utf-8")) < min_length:
            count("removed.min_text_length")
            continue
        metadata = doc.get("metadata")
        if not isinstance(metadata, dict):
            metadata = doc["metadata"] = {}
        metadata["provenance"] = f"{basename}:{line}"
        yield doc, line, text_bytes
    if not truncated:
        for apath, reader in readers:
            extra = next(reader, None)
            if extra is not None:
                raise DataError(apath, extra[0], f"attribute file has more records than {path}")
