"""One stream's per-document pipeline: join attributes, filter, replace spans, trim, tag provenance.

`kept_documents` reads a document file and its attribute files in lockstep: the i-th non-blank
document line pairs with the i-th non-blank line of every attribute file (our taggers write a
placeholder `{"id": null, ...}` for a malformed document line, so malformed lines keep the files
aligned). What goes wrong, and what happens (`--strict` makes every case but the first fatal):

- an id differs from its document's: `MisalignedAttributesError`, always fatal (as Dolma);
- an attribute file ends early (or its compressed stream is cut short): the documents past its
  end are mixed without its attributes, as Dolma does, and counted as
  `documents_without_attributes` with a message naming the file and line;
- an attribute file has records past the documents' end: counted as
  `attribute_records_without_documents` (Dolma ignores them silently);
- a malformed attribute record (not JSON, not an object, `attributes` not an object): its
  document is skipped and counted as a bad line (Dolma fails the file).
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from typing import Any, Iterator

import orjson

from dolma_tools.errors import DataError, UserError
from dolma_tools.io.documents import BadLine, iter_parquet_records, iter_raw_lines, parse_line, validate_document
from dolma_tools.io.paths import attribute_path
from dolma_tools.mixers.config import StreamConfig
from dolma_tools.mixers.filters import DocumentFilter, PatternError
from dolma_tools.mixers.spans import SpanError, SpanReplacer, replace_spans
from dolma_tools.runtime import FileResult
from dolma_tools.runtime.results import MAX_REPORTED_ERRORS

log = logging.getLogger("dolma_tools.mix")


class MisalignedAttributesError(UserError):
    """An attribute record's id is not its document's: the files do not belong together.

    Fatal with or without `--strict`, as in Dolma; bad input, so exit code 1.
    """

    exit_code = 1


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
                   attributes: list[str | None], counters: dict,
                   warnings: list[str] | None = None) -> Iterator[tuple[dict, int, int]]:
    """(document, its line number, UTF-8 bytes of its text) for every document the stream keeps.

    `attributes` are the attribute files to join (None for one allowed to be missing); removals
    are counted in `counters` under `<stream>.removed.<reason>`; misaligned attribute files that
    are not errors are logged and described in `warnings` (when given).
    """
    cfg = stream.config
    name = cfg.name
    ctx = stream.context
    ctx.path, ctx.strict, ctx.counters = path, strict, counters
    compression = cfg.compression.input
    # [attribute path, reader, records read]; the reader becomes None when the file ends early
    readers: list[list] = [[apath, iter_lines(apath, compression), 0] for apath in attributes if apath is not None]
    join_attributes = bool(readers)
    doc_filter, replacers = stream.filter, stream.replacers
    discard = cfg.output.discard_fields
    min_length = cfg.output.min_text_length
    basename = os.path.basename(path)
    truncated = False

    def count(key: str, n: int = 1) -> None:
        key = f"{name}.{key}"
        counters[key] = counters.get(key, 0) + n

    def warn(message: str) -> None:
        if warnings is None:  # a pass that does not report (target_mix's measuring pass)
            return
        log.warning(message)
        if len(warnings) < MAX_REPORTED_ERRORS:
            warnings.append(message)

    def ended_early(reader: list, line: int, damage: BadLine | None) -> None:
        apath, _, read = reader
        reader[1] = None
        if strict:
            if damage is not None:
                raise damage.as_error()
            # as a bad line: without --strict it is counted, and the CLI says so
            raise BadLine(apath, None, f"attribute file has fewer records than {path} "  # type: ignore[arg-type]
                                       f"(none for document line {line})").as_error()
        how = f"is cut short ({damage.reason})" if damage is not None else "has no more records"
        message = (f"{apath}: attribute file {how} after {read} record(s): the documents from line {line} "
                   f"of {path} on are mixed without its attributes (--strict makes this an error)")
        warn(message)

    for line, raw in iter_lines(path, compression):
        records = []
        missing = False
        for reader in readers:
            if reader[1] is None:
                missing = True
                continue
            item = next(reader[1], None)
            if item is None or isinstance(item[1], BadLine):
                ended_early(reader, line, None if item is None else item[1])
                missing = True
                continue
            reader[2] += 1
            records.append((reader[0], item[0], item[1]))
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
            bad_record = _merge_records(doc["id"], records, merged, path, line)
            if bad_record is not None:
                result.bad_line(bad_record, strict)
                continue
            doc["attributes"] = merged
            if missing:
                count("documents_without_attributes")
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
        for apath, reader, read in readers:
            first = None if reader is None else next(reader, None)
            if first is None:
                continue
            if strict:
                raise BadLine(apath, first[0], f"attribute file has more records than {path}").as_error()
            extra = 1 + sum(1 for _ in reader)
            message = (f"{apath}: attribute file has {extra} record(s) more than the {read} document "
                       f"line(s) of {path}; they are ignored (--strict makes this an error)")
            warn(message)
            count("attribute_records_without_documents", extra)


def _merge_records(doc_id: Any, records: list, merged: dict, path: str, line: int) -> BadLine | None:
    """Add each attribute record's values to `merged`; a malformed record is returned as a BadLine."""
    for apath, aline, araw in records:
        try:
            record = araw if isinstance(araw, dict) else orjson.loads(araw)
        except orjson.JSONDecodeError as exc:
            return BadLine(apath, aline, f"malformed attribute record ({exc}); its document "
                                         f"(line {line} of {path}) is skipped")
        if not isinstance(record, dict):
            return BadLine(apath, aline, f"attribute record is not a JSON object; its document "
                                         f"(line {line} of {path}) is skipped")
        if not _same_id(doc_id, record.get("id")):
            raise MisalignedAttributesError(
                f"{apath}:{aline}: mismatched ids for line {aline} of {apath}: {record.get('id')!r} != "
                f"{doc_id!r} (line {line} of {path}); the attribute file does not belong to these "
                f"documents: re-run the tagger or dedupe that wrote it, or fix `attributes`")
        values = record.get("attributes")
        if not isinstance(values, dict):
            return BadLine(apath, aline, f"`attributes` is not a JSON object; its document "
                                         f"(line {line} of {path}) is skipped")
        merged.update(values)
    return None
