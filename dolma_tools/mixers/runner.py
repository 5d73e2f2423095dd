"""`dolma mix`: streams of documents + attributes -> filtered, span-replaced, sampled shards.

Flow: validate the config and compile every pattern (errors before work starts); list inputs and
check that every attribute file exists; with `target_mix`, a measuring pass over all files
finds each stream's rate; then one Ray task per input file writes staged parts (`shuffle:
false`: the file's own output); finally each stream's parts are numbered into shards and a
summary with per-stream counts and achieved proportions is printed and written to
`<output.path>/.summary-mix.json`.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import os
import random
import sys
import time
from dataclasses import asdict, dataclass, field

import numpy as np
import orjson
import xxhash

from dolma_tools.errors import UserError
from dolma_tools.io.files import AtomicWriter, exists, local_path, remove_stale_temporaries
from dolma_tools.io.paths import expand_globs
from dolma_tools.mixers.config import MixConfig, StreamConfig, validate
from dolma_tools.mixers.sampling import (
    HASH_BUCKETS,
    Rate,
    bucket_of,
    estimated_tokens,
    plan_target_mix,
    stream_rate,
    unit_hash,
)
from dolma_tools.mixers.streams import CompiledStream, attribute_files, kept_documents
from dolma_tools.mixers.writer import (
    SORT_OPTIONS,
    MirrorWriter,
    PartWriter,
    finalize,
    join,
    mirrored_output,
    read_manifest,
    remove_outputs,
    remove_staging,
    staging_dir,
    write_manifest,
)
from dolma_tools.runtime import FileResult, map_in_parallel, run_files
from dolma_tools.runtime.locks import check_writable, destination_lock

log = logging.getLogger("dolma_tools.mix")


@dataclass
class StreamPlan:
    config: StreamConfig
    inputs: list[str]
    attributes: list[list[str | None]]  # per input: attribute files (None: missing, allowed)
    rate: Rate = field(default_factory=Rate)
    outputs: list[str] = field(default_factory=list)  # shuffle: false: each input's output file


@dataclass
class MixPlan:
    cfg: MixConfig
    streams: list[StreamPlan]
    fingerprint: str = ""

    def tasks(self) -> dict[str, tuple[int, int]]:
        """task key -> (stream index, file index); built once per process."""
        cached = self.__dict__.get("_tasks")
        if cached is None:
            cached = self.__dict__["_tasks"] = {
                task_key(s.config.name, path): (i, j)
                for i, s in enumerate(self.streams) for j, path in enumerate(s.inputs)}
        return cached


def task_key(stream: str, path: str) -> str:
    return f"{path} [{stream}]"


# Compiled patterns are built once per stream in each worker process, not per document or file.
_COMPILED: dict[tuple[str, int], CompiledStream] = {}


def compiled_stream(plan: MixPlan, index: int) -> CompiledStream:
    key = (plan.fingerprint, index)
    stream = _COMPILED.get(key)
    if stream is None:
        stream = _COMPILED[key] = CompiledStream.build(plan.streams[index].config)
    return stream


def part_prefix(stream: StreamConfig, index: int, path: str) -> str:
    slug = xxhash.xxh3_64_hexdigest(path.encode())[:8]
    return join(staging_dir(stream.output.path, stream.name), f"{index:06d}-{slug}")


def _seed_for(seed: int, *parts: object) -> int:
    return xxhash.xxh3_64_intdigest("\x1f".join(map(str, (seed, *parts))).encode())


class _Shuffler:
    """A bounded random-replacement buffer: each new line evicts a random buffered one."""

    def __init__(self, writer: PartWriter, size: int, seed: int | None) -> None:
        self.writer = writer
        self.size = size
        self.rng = random.Random(seed) if seed is not None else None
        self.buffer: list[bytes] = []

    def add(self, line: bytes) -> None:
        if self.rng is None:
            self.writer.write(line)
        elif len(self.buffer) < self.size:
            self.buffer.append(line)
        else:
            i = self.rng.randrange(self.size)
            self.writer.write(self.buffer[i])
            self.buffer[i] = line

    def flush(self) -> None:
        if self.rng is not None:
            self.rng.shuffle(self.buffer)
            for line in self.buffer:
                self.writer.write(line)
            self.buffer = []


def mix_file(plan: MixPlan, key: str) -> FileResult:
    """Process one input file of one stream into staged parts and a manifest."""
    s_index, f_index = plan.tasks()[key]
    splan = plan.streams[s_index]
    cfg, stream = plan.cfg, splan.config
    path = splan.inputs[f_index]
    compiled = compiled_stream(plan, s_index)
    result = FileResult(path=path)
    prefix = part_prefix(stream, f_index, path)
    writer: PartWriter | MirrorWriter
    if cfg.shuffle:
        writer = PartWriter(prefix, stream.output.max_size_in_bytes, stream.output.format,
                            stream.compression.output)
    else:  # Dolma's strict filter mode: this input's own output file, in input order
        writer = MirrorWriter(splan.outputs[f_index], stream.output.format)
    shuffle_seed = _seed_for(cfg.seed, stream.name, f_index, os.path.basename(path)) if cfg.shuffle else None
    shuffler = _Shuffler(writer, cfg.shuffle_buffer, shuffle_seed)
    rate, seed, name = splan.rate, cfg.seed, stream.name
    kept = out_docs = out_bytes = removed_sampling = 0
    dumps = orjson.dumps
    counters: dict = {}
    warnings: list[str] = []
    try:
        for doc, _line, text_bytes in kept_documents(compiled, path, result, cfg.strict,
                                                     splan.attributes[f_index], counters, warnings):
            kept += 1
            copies = 1 if rate.is_identity else rate.copies(unit_hash(seed, doc["id"]))
            if copies == 0:
                removed_sampling += 1
                continue
            line = dumps(doc, option=SORT_OPTIONS)
            for _ in range(copies):
                shuffler.add(line)
            out_docs += copies
            out_bytes += text_bytes * copies
        shuffler.flush()
        parts = writer.close()
    except BaseException:
        writer.discard()
        raise
    for counter, value in (("documents_in", result.documents), ("kept_by_filters", kept),
                           ("removed.sampling", removed_sampling), ("documents_out", out_docs),
                           ("text_bytes_out", out_bytes)):
        if value or counter in ("documents_in", "documents_out"):
            counters[f"{name}.{counter}"] = counters.get(f"{name}.{counter}", 0) + value
    write_manifest(prefix + ".done.json", {"input": path, "fingerprint": _stream_fingerprint(plan, splan),
                                           "parts": parts, "counters": counters,
                                           "skipped_lines": result.skipped, "errors": result.errors,
                                           "warnings": warnings})
    return result


def measure_file(plan: MixPlan, item: tuple[int, int]) -> np.ndarray:
    """Kept text bytes of one file, bucketed by document hash (for target_mix)."""
    s_index, f_index = item
    splan = plan.streams[s_index]
    compiled = compiled_stream(plan, s_index)
    result = FileResult(path=splan.inputs[f_index])
    histogram = np.zeros(HASH_BUCKETS, dtype=np.int64)
    seed = plan.cfg.seed
    for doc, _line, text_bytes in kept_documents(compiled, splan.inputs[f_index], result, plan.cfg.strict,
                                                 splan.attributes[f_index], {}):
        histogram[bucket_of(unit_hash(seed, doc["id"]))] += text_bytes
    return histogram


# ---------------------------------------------------------------------------------------------
# Planning


def _find_attributes(stream: StreamConfig, inputs: list[str], allow_missing: bool) -> list[list[str | None]]:
    out: list[list[str | None]] = []
    missing: list[str] = []
    for path in inputs:
        files: list[str | None] = []
        for apath in attribute_files(path, stream.attributes):
            if exists(apath):
                files.append(apath)
            else:
                missing.append(apath)
                files.append(None)
        out.append(files)
    if missing:
        message = (f"stream {stream.name!r}: {len(missing)} attribute file(s) missing, e.g. {missing[0]} "
                   f"(run `dolma tag`/`dolma dedupe` for them, fix `attributes`, or set "
                   f"allow_missing_attributes: true to mix without them)")
        if not allow_missing:
            raise UserError(message)
        log.warning(message)
    return out


def _mirrored_outputs(streams: list[StreamPlan]) -> None:
    """shuffle: false: each input's output path; two inputs may not share one."""
    taken: dict[str, str] = {}
    for splan in streams:
        stream = splan.config
        splan.outputs = [mirrored_output(path, stream.output.path, stream.output.format, stream.compression.output)
                         for path in splan.inputs]
        for path, target in zip(splan.inputs, splan.outputs):
            key = os.path.normpath(local_path(target)) if "://" not in target else target
            if key in taken:
                raise UserError(f"shuffle: false writes both {taken[key]} and {path} to {target} "
                                f"(the path after documents/ is the output name); give the streams "
                                f"different output.path values or mix these inputs with shuffle: true")
            taken[key] = path


def build_plan(cfg: MixConfig) -> MixPlan:
    validate(cfg)
    streams = []
    for stream in cfg.streams:
        CompiledStream.build(stream)  # pattern errors surface now, with the pattern in the message
        inputs = expand_globs(stream.documents)
        streams.append(StreamPlan(config=stream, inputs=inputs,
                                  attributes=_find_attributes(stream, inputs, cfg.allow_missing_attributes),
                                  rate=stream_rate(stream.sample, stream.upsample)))
    if not cfg.shuffle:
        _mirrored_outputs(streams)
    fingerprint = xxhash.xxh3_64_hexdigest(orjson.dumps(
        {"config": asdict(cfg), "inputs": [s.inputs for s in streams]}, default=str))
    return MixPlan(cfg=cfg, streams=streams, fingerprint=fingerprint)


def solve_rates(plan: MixPlan) -> dict:
    """The measuring pass of `target_mix`; sets each stream's rate and returns what it measured."""
    cfg = plan.cfg
    items = [(i, j) for i, s in enumerate(plan.streams) for j in range(len(s.inputs))]
    histograms = map_in_parallel(functools.partial(measure_file, plan), items, cfg)
    measured = {s.config.name: np.zeros(HASH_BUCKETS, dtype=np.int64) for s in plan.streams}
    for (i, _), hist in zip(items, histograms):
        measured[plan.streams[i].config.name] += hist
    total_bytes = cfg.total_bytes
    if cfg.total_tokens is not None:
        total_bytes = cfg.total_tokens * 4.0
    rates, aimed = plan_target_mix(measured, cfg.target_mix, total_bytes)
    for splan in plan.streams:
        splan.rate = rates[splan.config.name]
    return {"measured_text_bytes": {k: int(v.sum()) for k, v in measured.items()}, "target_text_bytes": aimed}


# ---------------------------------------------------------------------------------------------
# Running


def _stream_fingerprint(plan: MixPlan, splan: StreamPlan) -> str:
    data = {"stream": asdict(splan.config), "inputs": splan.inputs, "rate": asdict(splan.rate),
            "seed": plan.cfg.seed, "shuffle": plan.cfg.shuffle, "buffer": plan.cfg.shuffle_buffer}
    return xxhash.xxh3_64_hexdigest(orjson.dumps(data, default=str))


def _done_marker(stream: StreamConfig) -> str:
    return join(stream.output.path, f".mix-{stream.name}.done.json")


def run_mix(cfg: MixConfig, progress: bool = True) -> dict:
    plan = build_plan(cfg)
    outputs = sorted({s.config.output.path for s in plan.streams})
    for path in outputs:
        check_writable(path)  # a read-only or full destination fails before any work
    with contextlib.ExitStack() as locks:
        for path in outputs:  # one run per destination: a second one is refused, not interleaved
            locks.enter_context(destination_lock(path))
        for path in outputs:  # a killed run's temporaries (shuffle: false writes in place)
            remove_stale_temporaries(local_path(path))
        return _run_mix(cfg, plan, progress)


def _run_mix(cfg: MixConfig, plan, progress: bool) -> dict:
    start = time.perf_counter()
    extra: dict = {}
    if cfg.target_mix:
        extra = solve_rates(plan)
    todo_streams = []
    finished: dict[str, dict] = {}
    for splan in plan.streams:
        marker = read_manifest(_done_marker(splan.config)) if not cfg.ignore_existing else None
        if (marker and marker.get("fingerprint") == _stream_fingerprint(plan, splan)
                and all(exists(path) for path in marker.get("shards", []))):  # resume by outputs
            finished[splan.config.name] = marker
        else:
            todo_streams.append(splan)
    tasks = plan.tasks()
    keys = [task_key(s.config.name, p) for s in todo_streams for p in s.inputs]

    fingerprints = {splan.config.name: _stream_fingerprint(plan, splan) for splan in todo_streams}

    def staged(key: str) -> bool:
        """Done by an interrupted run with the same settings (shuffle: false: and its output is there)."""
        s_index, f_index = tasks[key]
        splan = plan.streams[s_index]
        manifest = read_manifest(part_prefix(splan.config, f_index, splan.inputs[f_index]) + ".done.json")
        if manifest is None or manifest.get("fingerprint") != fingerprints[splan.config.name]:
            return False
        return cfg.shuffle or exists(splan.outputs[f_index])

    if keys:
        run_files("mix", keys, functools.partial(mix_file, plan), cfg, is_done=staged, progress=progress)
    written = {out for s in plan.streams for out in s.outputs}
    for splan in todo_streams:
        finished[splan.config.name] = _finalize_stream(plan, splan, written)
    report = _report(plan, finished, extra, time.perf_counter() - start)
    for path in sorted({s.config.output.path for s in plan.streams}):
        with AtomicWriter(join(path, ".summary-mix.json"), compression="") as out:
            out.write(orjson.dumps(report, option=orjson.OPT_INDENT_2))
    if progress:
        for line in report_lines(report):
            print(line, file=sys.stderr)
    return report


def _finalize_stream(plan: MixPlan, splan: StreamPlan, written: set[str]) -> dict:
    """Number the staged parts into shards (shuffle: false: list the outputs); mark the stream done.

    Outputs the stream's previous run recorded and no stream of this run wrote are removed
    (e.g. shards of a `shuffle: true` run after switching to `shuffle: false`, or the other way).
    """
    stream = splan.config
    previous = read_manifest(_done_marker(stream))
    parts, counters, skipped, errors, warnings = [], {}, 0, [], []
    for f_index, path in enumerate(splan.inputs):
        manifest = read_manifest(part_prefix(stream, f_index, path) + ".done.json")
        if manifest is None:  # pragma: no cover - run_files raised before we get here
            raise UserError(f"mix: {path} was not processed")
        parts.extend(manifest["parts"])
        for k, v in manifest["counters"].items():
            counters[k] = counters.get(k, 0) + v
        skipped += manifest.get("skipped_lines", 0)
        errors.extend(manifest.get("errors", [])[: max(0, 20 - len(errors))])
        warnings.extend(manifest.get("warnings", [])[: max(0, 20 - len(warnings))])
    if plan.cfg.shuffle:
        shards = finalize(stream.output.path, stream.name, parts, stream.output.max_size_in_bytes,
                          stream.output.format, stream.compression.output)
    else:
        shards = [part["path"] for part in parts]
    if previous:
        remove_outputs([path for path in previous.get("shards", []) if path not in written and path not in shards])
    remove_staging(stream.output.path, stream.name)
    prefix = stream.name + "."
    marker = {"fingerprint": _stream_fingerprint(plan, splan), "shards": shards,
              "counters": {k[len(prefix):]: v for k, v in counters.items() if k.startswith(prefix)},
              "skipped_lines": skipped, "errors": errors, "warnings": warnings, "rate": splan.rate.expected}
    with AtomicWriter(_done_marker(stream), compression="") as out:
        out.write(orjson.dumps(marker, option=orjson.OPT_INDENT_2))
    return marker


def _report(plan: MixPlan, finished: dict[str, dict], extra: dict, seconds: float) -> dict:
    streams = {}
    total_bytes = sum(m["counters"].get("text_bytes_out", 0) for m in finished.values()) or 1
    weight = sum(plan.cfg.target_mix.values()) if plan.cfg.target_mix else 0
    for splan in plan.streams:
        name = splan.config.name
        marker = finished[name]
        c = marker["counters"]
        out_bytes = c.get("text_bytes_out", 0)
        entry = {
            "documents_in": c.get("documents_in", 0),
            "kept_by_filters": c.get("kept_by_filters", 0),
            "removed": {k[len("removed."):]: v for k, v in sorted(c.items()) if k.startswith("removed.")},
            "spans_replaced": c.get("spans_replaced", 0),
            "documents_out": c.get("documents_out", 0),
            "text_bytes_out": out_bytes,
            "estimated_tokens_out": round(estimated_tokens(out_bytes)),
            "proportion": round(out_bytes / total_bytes, 6),
            "rate": marker.get("rate", 1.0),
            "skipped_lines": marker.get("skipped_lines", 0),
            "shards": marker["shards"],
        }
        for problem in ("pattern_errors", "documents_without_attributes", "attribute_records_without_documents"):
            if c.get(problem):
                entry[problem] = c[problem]
        if weight:
            entry["target_proportion"] = round(plan.cfg.target_mix[name] / weight, 6)
        for listed in ("errors", "warnings"):
            if marker.get(listed):
                entry[listed] = marker[listed]
        streams[name] = entry
    return {"stage": "mix", "seconds": round(seconds, 2), "seed": plan.cfg.seed, "streams": streams, **extra}


def report_lines(report: dict) -> list[str]:
    lines = [f"mix: {len(report['streams'])} stream(s) in {report['seconds']:.1f}s"]
    for name, s in report["streams"].items():
        target = f" (target {s['target_proportion']:.2%})" if "target_proportion" in s else ""
        lines.append(f"  {name}: {s['documents_in']:,} in, {s['kept_by_filters']:,} kept by filters, "
                     f"{s['documents_out']:,} out, {s['text_bytes_out']:,} text bytes, "
                     f"~{s['estimated_tokens_out']:,} tokens, {s['proportion']:.2%} of the mix{target}, "
                     f"{len(s['shards'])} output file(s)")
        for reason, n in s["removed"].items():
            lines.append(f"    removed by {reason}: {n:,}")
        if s.get("spans_replaced"):
            lines.append(f"    spans replaced: {s['spans_replaced']:,}")
        if s.get("skipped_lines"):
            lines.append(f"    skipped bad lines: {s['skipped_lines']:,}")
        if s.get("documents_without_attributes"):
            lines.append(f"    documents mixed without attributes (an attribute file ended early): "
                         f"{s['documents_without_attributes']:,}")
        if s.get("attribute_records_without_documents"):
            lines.append(f"    attribute records past the end of their documents (ignored): "
                         f"{s['attribute_records_without_documents']:,}")
        if s.get("pattern_errors"):
            lines.append(f"    jq pattern errors (non-matches): {s['pattern_errors']:,}")
        for warning in s.get("warnings", [])[:5]:
            lines.append(f"    warning: {warning}")
    return lines
