"""`dolma dedupe`: map (keys, signatures) -> reduce (Bloom filter, LSH clusters) -> write attributes.

Exact dedupe and decontamination without MinHash, on one machine, stream instead: each worker
reads, checks (in a filter shared through memory) and writes its file chunk by chunk
(`stream.py`, `shared.py`). What follows is the plan for MinHash and for multi-node clusters.

1. **Map**, one task per file (a Ray task, or a call on worker processes forked from the driver
   with `--executor local`): parse documents once; build the exact-dedupe plan (keys hashed with
   xxh3), MinHash signatures and band keys, and decontamination spans.
2. **Reduce**. Exact: the file's keys are checked/inserted in the Bloom filter, in (file, line)
   order when `dedupe.deterministic` (default), else as files finish. The filter lives in the
   driver, or split by hash range over `bloom_filter.partitions` Ray actors. MinHash: band keys of
   all files are bucketed, candidate pairs joined into connected components, the lowest document
   of each cluster kept.
3. **Write**, one task per file: `{"attributes": {...}, "id": ...}` lines aligned with the input.

Resume: a file whose attribute file exists is not rewritten. The filter file records which files'
keys it holds; a finished file not in it has its keys inserted (never flagged again), and a file
already in it is never re-inserted, so re-running a finished dedupe changes nothing.
"""

from __future__ import annotations

import logging
import os
import sys
import time
from dataclasses import dataclass, field
from typing import Any, Callable

import numpy as np
import orjson

from dolma_tools.config import RuntimeConfig, to_dict
from dolma_tools.dedupe.bloom import BloomFilter, SegmentHost, choose_size, describe, split_by_segment
from dolma_tools.dedupe.compression import attribute_codec, check_compression, codec, read_documents
from dolma_tools.dedupe.config import DedupeConfig
from dolma_tools.dedupe.exact import SpanPlan, plan_documents, plan_paragraphs
from dolma_tools.errors import ConfigError, UserError
from dolma_tools.io.documents import BadLine, JsonlWriter
from dolma_tools.io.files import exists, is_remote, remove_stale_temporaries
from dolma_tools.io.paths import attribute_path, expand_globs
from dolma_tools.runtime import FileResult, RunSummary
from dolma_tools.runtime.executor import finish
from dolma_tools.runtime.journal import SettingsJournal
from dolma_tools.runtime.locks import check_writable, destination_lock

log = logging.getLogger("dolma_tools")
_JSON_OPTIONS = orjson.OPT_APPEND_NEWLINE | orjson.OPT_SERIALIZE_NUMPY


# ------------------------------------------------------------------------------------------
# Validation


def attribute_set_name(cfg: DedupeConfig) -> str:
    d = cfg.dedupe
    name = d.name
    if not name:
        for sub in (d.documents, d.paragraphs):
            if sub is not None and sub.attribute_name:
                name = sub.attribute_name
                break
    if not name and d.minhash is not None:
        name = d.minhash.attribute_name
    if not name and d.decontaminate is not None:
        name = d.decontaminate.attribute_name
    if not name:
        raise ConfigError("set dedupe.name (attribute files go to attributes/<name>/)")
    if d.num_partitions > 1:
        name = f"{name}_{d.partition_index}"
    return name


def _suffix(cfg: DedupeConfig, attribute: str) -> str:
    return f"{attribute}_{cfg.dedupe.partition_index}" if cfg.dedupe.num_partitions > 1 else attribute


def validate(cfg: DedupeConfig) -> None:
    d = cfg.dedupe
    if d.documents is None and d.paragraphs is None and d.minhash is None and d.decontaminate is None:
        raise ConfigError("nothing to do: set dedupe.documents, dedupe.paragraphs, dedupe.minhash "
                          "or dedupe.decontaminate")
    if d.documents is not None:
        if not d.documents.key:
            raise ConfigError("dedupe.documents.key is required: a JSONPath such as $.text or $.metadata.url")
        if not d.documents.attribute_name:
            raise ConfigError("dedupe.documents.attribute_name is required (e.g. bff_duplicate_url)")
    if d.paragraphs is not None:
        if not d.paragraphs.attribute_name:
            raise ConfigError("dedupe.paragraphs.attribute_name is required (e.g. bff_duplicate_paragraph_spans)")
        if not d.paragraphs.paragraph_separator:
            raise ConfigError("dedupe.paragraphs.paragraph_separator cannot be empty")
    if d.documents is not None and d.paragraphs is not None:
        raise ConfigError("dedupe.documents and dedupe.paragraphs share one Bloom filter: run them separately")
    codec(cfg.compression.input, "compression.input")
    codec(cfg.compression.output, "compression.output")
    if not 0 <= d.partition_index < max(d.num_partitions, 1):
        raise ConfigError("dedupe.partition_index must be in [0, num_partitions)")
    if d.minhash is not None:
        mh = d.minhash
        if mh.num_perm < 2 or mh.ngram_size < 1 or not 0 < mh.jaccard_threshold <= 1:
            raise ConfigError("dedupe.minhash: num_perm >= 2, ngram_size >= 1, 0 < jaccard_threshold <= 1")
    if d.decontaminate is not None:
        if not d.decontaminate.eval_sets:
            raise ConfigError("dedupe.decontaminate.eval_sets: name evaluation sets or JSONL paths")
        if d.decontaminate.unit not in ("paragraphs", "documents"):
            raise ConfigError("dedupe.decontaminate.unit must be `paragraphs` or `documents`")
    if _wants_exact(cfg) and not _filter_file_exists(cfg):
        choose_size(cfg.bloom_filter.size_in_bytes, cfg.bloom_filter.estimated_doc_count,
                    cfg.bloom_filter.desired_false_positive_rate)


def _wants_exact(cfg: DedupeConfig) -> bool:
    return cfg.dedupe.documents is not None or cfg.dedupe.paragraphs is not None


def _filter_file_exists(cfg: DedupeConfig) -> bool:
    return bool(cfg.bloom_filter.file) and exists(cfg.bloom_filter.file)


# ------------------------------------------------------------------------------------------
# Map


@dataclass
class FileAnalysis:
    """What the map phase learns about one file."""

    path: str
    ids: list = field(default_factory=list)
    exact: SpanPlan | None = None
    decontam: list[dict] | None = None
    band_keys: np.ndarray | None = None     # (docs, bands) uint64
    has_signature: np.ndarray | None = None
    chars: np.ndarray | None = None          # text length in code points
    nbytes: np.ndarray | None = None
    sources: list = field(default_factory=list)
    shingles: list | None = None             # per doc: unique 64-bit shingle hashes (verify)
    result: FileResult | None = None


CHUNK_DOCUMENTS = 8192  # documents held in memory at once while analysing a file


def analyze_file(cfg: DedupeConfig, want_exact: bool, bands: int, rows: int, eval_filter: Any,
                 path: str) -> FileAnalysis:
    """Stream a file in chunks of documents; only keys, spans and signatures are kept."""
    result = FileResult(path=path)
    out = FileAnalysis(path=path, result=result)
    parts: list[FileAnalysis] = []
    chunk: list[dict | None] = []
    for _, record in read_documents(cfg, path):
        if isinstance(record, BadLine):
            result.bad_line(record, cfg.strict)
            chunk.append(None)
        else:
            chunk.append(record)
        if len(chunk) >= CHUNK_DOCUMENTS:
            parts.append(_analyze_chunk(cfg, want_exact, bands, rows, eval_filter, path, chunk, len(out.ids)))
            out.ids.extend(doc["id"] if doc is not None else None for doc in chunk)
            chunk = []
    if chunk or not parts:
        parts.append(_analyze_chunk(cfg, want_exact, bands, rows, eval_filter, path, chunk, len(out.ids)))
        out.ids.extend(doc["id"] if doc is not None else None for doc in chunk)
    result.documents = sum(doc_id is not None for doc_id in out.ids)
    _merge_chunks(out, parts)
    return out


def plan_chunk(cfg: DedupeConfig, want_exact: bool, eval_filter: Any, path: str, docs: list[dict | None],
               first_line: int, result: FileResult) -> tuple[SpanPlan | None, Any]:
    """The exact-dedupe span plan and the contamination attributes of a run of documents (the
    part of the analysis that streaming and map-reduce runs share); bad keys are counted in `result`."""
    d = cfg.dedupe
    exact = decontam = None
    if want_exact and d.documents is not None:
        exact, problems = plan_documents(docs, _suffix(cfg, d.documents.attribute_name), d.documents.key, d)
        for index, message in problems:
            result.bad_line(BadLine(path, first_line + index + 1, message), cfg.strict)
    elif want_exact and d.paragraphs is not None:
        exact = plan_paragraphs(docs, _suffix(cfg, d.paragraphs.attribute_name), d.paragraphs, d)
    if eval_filter is not None:
        from dolma_tools.dedupe.decontaminate import contamination_attributes

        dc = d.decontaminate
        decontam, matched = contamination_attributes(docs, eval_filter, dc.attribute_name, dc.unit,
                                                     dc.ngram_length, dc.threshold)
        result.add("contaminated_spans", matched)
    return exact, decontam


def _analyze_chunk(cfg: DedupeConfig, want_exact: bool, bands: int, rows: int, eval_filter: Any, path: str,
                   docs: list[dict | None], first_line: int) -> FileAnalysis:
    from dolma_tools.dedupe import minhash as mh

    d = cfg.dedupe
    result = FileResult(path=path)
    out = FileAnalysis(path=path, result=result)
    out.exact, out.decontam = plan_chunk(cfg, want_exact, eval_filter, path, docs, first_line, result)
    if d.minhash is not None:
        m = d.minhash
        texts = [doc["text"] if doc is not None else "" for doc in docs]
        sigs, has = [np.zeros((0, m.num_perm), dtype=np.uint32)], [np.zeros(0, dtype=bool)]
        for start in range(0, len(texts), m.batch_size):
            s, h = mh.signatures(texts[start:start + m.batch_size], m.num_perm, m.seed, m.ngram_size, m.lowercase)
            sigs.append(s)
            has.append(h)
        out.has_signature = np.concatenate(has)
        out.band_keys = mh.band_hashes(np.concatenate(sigs), bands, rows)
        out.chars = np.fromiter((len(t) for t in texts), dtype=np.int64, count=len(texts))
        out.nbytes = np.fromiter((len(t.encode("utf-8")) for t in texts), dtype=np.int64, count=len(texts))
        out.sources = [(doc.get("source") or "") if doc is not None else "" for doc in docs]
        if m.verify:
            out.shingles = []
            for start in range(0, len(texts), m.batch_size):
                batch = texts[start:start + m.batch_size]
                hv, per_doc = mh.batch_shingle_hashes(batch, m.ngram_size, m.lowercase, full=True)
                out.shingles.extend(np.unique(part) for part in np.split(hv, np.cumsum(per_doc)[:-1]))
    return out


def _merge_chunks(out: FileAnalysis, parts: list[FileAnalysis]) -> None:
    for part in parts:
        out.result.skipped += part.result.skipped
        out.result.errors.extend(part.result.errors)
        for name, value in part.result.counters.items():
            out.result.add(name, value)
    if parts[0].exact is not None:
        out.exact = _concat_plans([p.exact for p in parts])
    if parts[0].decontam is not None:
        out.decontam = [a for p in parts for a in p.decontam]
    if parts[0].band_keys is not None:
        out.band_keys = np.concatenate([p.band_keys for p in parts])
        out.has_signature = np.concatenate([p.has_signature for p in parts])
        out.chars = np.concatenate([p.chars for p in parts])
        out.nbytes = np.concatenate([p.nbytes for p in parts])
        out.sources = [s for p in parts for s in p.sources]
        if parts[0].shingles is not None:
            out.shingles = [s for p in parts for s in p.shingles]


def _concat_plans(plans: list[SpanPlan]) -> SpanPlan:
    if len(plans) == 1:
        return plans[0]
    first = plans[0]
    merged = SpanPlan(attribute=first.attribute, mode=first.mode, threshold=first.threshold)
    doc_offset = unit_offset = 0
    unit_doc, key_unit = [], []
    for plan in plans:
        merged.doc_state.extend(plan.doc_state)
        unit_doc.append(np.asarray(plan.unit_doc, dtype=np.int64) + doc_offset)
        key_unit.append(np.asarray(plan.key_unit, dtype=np.int64) + unit_offset)
        doc_offset += len(plan.doc_state)
        unit_offset += len(plan.unit_doc)
    merged.unit_doc = np.concatenate(unit_doc)
    merged.key_unit = np.concatenate(key_unit)
    merged.unit_start = np.concatenate([np.asarray(p.unit_start, dtype=np.int64) for p in plans])
    merged.unit_end = np.concatenate([np.asarray(p.unit_end, dtype=np.int64) for p in plans])
    merged.hashes = np.concatenate([p.hashes for p in plans])
    if any(p.unit_keys is not None for p in plans):
        merged.unit_keys = np.concatenate([np.bincount(np.asarray(p.key_unit, dtype=np.int64), minlength=len(p.unit_doc))
                                           if p.unit_keys is None else p.unit_keys for p in plans])
    return merged


# ------------------------------------------------------------------------------------------
# Write


def write_file(cfg: DedupeConfig, output: str, analysis: FileAnalysis, flags: np.ndarray | None,
               minhash_rows: tuple[np.ndarray, np.ndarray] | None) -> FileResult:
    """Write one attribute file; count what was flagged."""
    result = analysis.result or FileResult(path=analysis.path)
    n = len(analysis.ids)
    attrs: list[dict] = [{} for _ in range(n)]
    if analysis.exact is not None and flags is not None:
        for a, extra in zip(attrs, analysis.exact.attributes(flags)):
            a.update(extra)
        # zero-length spans (an empty paragraph after a final newline) are Dolma's, but not news
        stats = analysis.exact.stats
        result.add("duplicate_spans", stats["spans"])
        result.add("documents_with_duplicates", stats["documents"])
        result.add("duplicate_characters", stats["characters"])
    if analysis.decontam is not None:
        for a, extra in zip(attrs, analysis.decontam):
            a.update(extra)
    if minhash_rows is not None:
        m = cfg.dedupe.minhash
        cluster, is_duplicate = minhash_rows
        for i in range(n):
            if cluster[i] >= 0:
                length = int(analysis.chars[i])
                attrs[i][m.cluster_attribute_name] = [[0, length, int(cluster[i])]]
                if is_duplicate[i]:
                    attrs[i][m.attribute_name] = [[0, length, 1]]
        result.add("minhash_flagged_documents", int(is_duplicate.sum()))
        result.add("minhash_flagged_bytes", int(analysis.nbytes[is_duplicate].sum()))
    with JsonlWriter(output, compression=attribute_codec(cfg, analysis.path)) as writer:
        writer.write(b"".join([orjson.dumps({"attributes": a, "id": doc_id}, option=_JSON_OPTIONS)
                               for doc_id, a in zip(analysis.ids, attrs)]))
    return result


# ------------------------------------------------------------------------------------------
# The filter: in the driver, or split over Ray actors by hash range


class FilterHost:
    def __init__(self, bf: BloomFilter, use_actors: bool) -> None:
        self.bf = bf
        self.actors = None
        if use_actors and bf.segments > 1:
            import ray

            actor_cls = ray.remote(num_cpus=0)(SegmentHost)
            self.actors = [actor_cls.remote(bf.m, bf.k, bf.segments, s, bf.segment_words(s))
                           for s in range(bf.segments)]

    def add_and_check(self, hashes: np.ndarray, insert: bool) -> np.ndarray:
        if self.actors is None:
            return self.bf.add_and_check(hashes, insert)
        import ray

        parts = split_by_segment(hashes, self.bf.segments)
        refs = [actor.add_and_check.remote(hashes[idx], insert) for actor, idx in zip(self.actors, parts)]
        out = np.zeros(len(hashes), dtype=bool)
        for idx, flags in zip(parts, ray.get(refs)):
            out[idx] = flags
        return out

    def collect(self) -> BloomFilter:
        if self.actors is not None:
            import ray

            words = ray.get([a.words.remote() for a in self.actors])
            self.bf.words = np.concatenate(words)
            inserted = sum(ray.get([a.keys_inserted.remote() for a in self.actors]))
            self.bf.meta["keys_inserted"] = int(self.bf.meta.get("keys_inserted", 0)) + inserted
            for a in self.actors:
                ray.kill(a)
            self.actors = None
        return self.bf


def open_filter(cfg: DedupeConfig) -> BloomFilter:
    bc = cfg.bloom_filter
    if bc.file and exists(bc.file):
        bf = BloomFilter.load(bc.file)
        try:
            m, k = choose_size(bc.size_in_bytes, bc.estimated_doc_count, bc.desired_false_positive_rate)
            if (m, k) != (bf.m, bf.k) and -(-m // (64 * bf.segments)) * 64 * bf.segments != bf.m:
                log.warning("bloom filter %s has m=%d k=%d; the configured size (m=%d k=%d) is ignored",
                            bc.file, bf.m, bf.k, m, k)
        except UserError:
            pass
        if bf.segments != max(1, bc.partitions):
            log.warning("bloom filter %s has %d partitions; bloom_filter.partitions=%d is ignored",
                        bc.file, bf.segments, bc.partitions)
        return bf
    if bc.read_only:
        raise UserError(f"bloom_filter.read_only is set but the filter file {bc.file!r} does not exist")
    m, k = choose_size(bc.size_in_bytes, bc.estimated_doc_count, bc.desired_false_positive_rate)
    return BloomFilter(m=m, k=k, segments=max(1, bc.partitions))


# ------------------------------------------------------------------------------------------
# The stage


class _InProcessTasks:
    """Runs each function at once, in this process (`--debug`, or one worker without Ray)."""

    concurrent = False  # results come in submission order
    actors = False

    def submit(self, fn: Callable, *args: Any, num_returns: int = 1, label: str = "") -> Any:
        return fn(*args)

    def put(self, value: Any) -> Any:
        return value

    def get(self, ref: Any) -> Any:
        return ref

    def wait_one(self, refs: list) -> Any:
        return refs[0]

    def close(self, failed: bool = False) -> None:
        pass


class _RayTasks:
    """Ray tasks: an embedded Ray, or the cluster at --ray_address."""

    concurrent = True
    actors = True  # the Bloom filter's partitions can be actors

    def __init__(self, cfg: DedupeConfig) -> None:
        import ray

        from dolma_tools.runtime import ensure_ray

        ensure_ray(cfg)
        self._ray = ray
        self._retries = max(cfg.retries, 0)
        self._remote: dict[Any, Any] = {}

    def submit(self, fn: Callable, *args: Any, num_returns: int = 1, label: str = "") -> Any:
        remote = self._remote.get((fn, num_returns))
        if remote is None:
            from dolma_tools.runtime.executor import ray_remote

            remote = ray_remote(fn, num_cpus=1, max_retries=self._retries, num_returns=num_returns)
            self._remote[(fn, num_returns)] = remote
        return remote.remote(*args)

    def put(self, value: Any) -> Any:
        return self._ray.put(value)

    def get(self, ref: Any) -> Any:
        from dolma_tools.runtime.executor import ray_get

        return ray_get(ref)

    def wait_one(self, refs: list) -> Any:
        ready, _ = self._ray.wait(refs, num_returns=1)
        return ready[0]

    def close(self, failed: bool = False) -> None:
        pass  # the embedded Ray stays up for the process (`ensure_ray`): later stages reuse it


@dataclass(frozen=True)
class _LocalRef:
    """One return value of a task on the fork pool (`index` None: the only one)."""

    task: Any
    index: int | None = None


class _LocalTasks:
    """`--executor local`: tasks on worker processes forked from this one (`pool.ForkPool`), no
    Ray. A call's exception reaches `get` as it was raised, as `_RayTasks.get` unwraps Ray's;
    a task whose worker died runs again, up to `retries` times, as Ray's `max_retries`."""

    concurrent = True
    actors = False  # the Bloom filter stays in the driver

    def __init__(self, workers: int, retries: int) -> None:
        from dolma_tools.dedupe.pool import ForkPool

        self._pool = ForkPool(workers, retries)

    def submit(self, fn: Callable, *args: Any, num_returns: int = 1, label: str = "") -> Any:
        # a task's result handed to another task goes through the driver (Ray's object store
        # hands it over directly): it is the analysis of one file, pickled once more
        args = tuple(self.get(a) if isinstance(a, _LocalRef) else a for a in args)
        task = self._pool.submit(fn, *args, label=label or getattr(fn, "__name__", "a task"))
        if num_returns == 1:
            return _LocalRef(task)
        return tuple(_LocalRef(task, i) for i in range(num_returns))

    def put(self, value: Any) -> Any:
        return self._pool.put(value)

    def get(self, ref: _LocalRef) -> Any:
        value = self._pool.result(ref.task)
        return value if ref.index is None else value[ref.index]

    def wait_one(self, refs: list[_LocalRef]) -> _LocalRef:
        task = self._pool.first_done(ref.task for ref in refs)
        return next(ref for ref in refs if ref.task is task)

    def close(self, failed: bool = False) -> None:
        self._pool.close(terminate=failed)


def _tasks_for(cfg: DedupeConfig, files: int) -> _InProcessTasks | _RayTasks | _LocalTasks:
    """Where the map and write tasks run: in this process with `--debug`; on a fork pool with
    `--executor local` (in this process when it would have one worker: `--processes 1` or one
    file, as `run_files` does); else on Ray."""
    if cfg.debug:
        return _InProcessTasks()
    if cfg.local_pool():
        workers = min(cfg.processes or os.cpu_count() or 1, files)
        return _LocalTasks(workers, cfg.retries) if workers > 1 else _InProcessTasks()
    return _RayTasks(cfg)


def _split_analysis(analysis: FileAnalysis) -> tuple[np.ndarray | None, tuple]:
    """The small part the driver needs (hashes, band keys, sizes), and the whole analysis."""
    driver = (analysis.exact.hashes if analysis.exact is not None else None,
              analysis.band_keys, analysis.has_signature, analysis.nbytes, analysis.sources,
              analysis.shingles, len(analysis.ids))
    return driver, analysis


def run_dedupe(cfg: DedupeConfig, progress: bool = True) -> RunSummary:
    """Guard the attribute directory (writable, one run at a time, no stale temporaries), then dedupe."""
    validate(cfg)
    root = _local_attribute_root(cfg)
    if root is None:
        return _run_dedupe(cfg, progress)
    check_writable(root)
    with destination_lock(root):
        remove_stale_temporaries(root)
        try:
            return _run_dedupe(cfg, progress)
        finally:
            remove_stale_temporaries(root)  # a worker killed mid-file leaves its temporary behind


def _local_attribute_root(cfg: DedupeConfig) -> str | None:
    first = expand_globs(cfg.documents)[0]
    if is_remote(first):
        return None
    name = attribute_set_name(cfg)
    marker = f"/attributes/{name}/"
    output = attribute_path(os.path.abspath(first), name, cfg.dedupe.document_dir)
    return output.split(marker)[0] + marker.rstrip("/") if marker in output else None


def _run_dedupe(cfg: DedupeConfig, progress: bool) -> RunSummary:
    d = cfg.dedupe
    started = time.perf_counter()
    # absolute local paths: Ray workers may not share the driver's working directory
    inputs = [p if is_remote(p) else os.path.abspath(p) for p in expand_globs(cfg.documents)]
    for path in inputs:
        if f"/{d.document_dir}/" not in f"/{path}":
            raise UserError(f"{path} has no `{d.document_dir}/` path component (dedupe.document_dir)")
    check_compression(cfg, inputs)
    if d.file_partition and d.num_partitions > 1:
        import xxhash

        inputs = [p for p in inputs if xxhash.xxh3_64_intdigest(p.encode()) % d.num_partitions == d.partition_index]
    name = attribute_set_name(cfg)
    outputs = {p: attribute_path(p, name, d.document_dir) for p in inputs}
    summary = RunSummary(stage="dedupe")
    summary_path = outputs[inputs[0]].split(f"/attributes/{name}/")[0] + f"/attributes/{name}/.summary-dedupe.json" \
        if f"/attributes/{name}/" in outputs[inputs[0]] else None
    journal = SettingsJournal(summary_path.rsplit("/", 1)[0], "dedupe", _output_settings(cfg)) if summary_path else None
    done = {p: (not cfg.ignore_existing) and exists(outputs[p]) and (journal is None or journal.written_with_current(p))
            for p in inputs}
    if journal is not None:
        journal.report_stale()
    summary = _JournalledSummary(summary, journal)

    bf = open_filter(cfg) if _wants_exact(cfg) else None
    read_only = cfg.bloom_filter.read_only
    in_filter = set(bf.meta.get("inserted_files", [])) if bf is not None else set()
    if bf is not None and not read_only:
        again = [p for p in inputs if not done[p] and p in in_filter]
        if again and in_filter <= set(again):
            # the filter holds nothing but the files being redone: start from an empty one
            log.warning("redoing every file the Bloom filter %s was built from: starting a new filter",
                        cfg.bloom_filter.file)
            bf = BloomFilter(m=bf.m, k=bf.k, segments=bf.segments)
            in_filter, again = set(), []
        if again:
            raise UserError(f"the Bloom filter {cfg.bloom_filter.file} already holds the keys of {len(again)} "
                            f"file(s) to process (e.g. {again[0]}): re-checking them would flag everything; "
                            "delete the filter file (or use --bloom_filter.read_only) to redo them")
    # exact: what each file needs: "full" (check + write), "insert" (restore keys of a finished
    # file the filter lacks), or nothing
    exact_action = {}
    for p in inputs:
        if bf is None:
            exact_action[p] = None
        elif not done[p]:
            exact_action[p] = "full"
        elif not read_only and p not in in_filter:
            exact_action[p] = "insert"
        else:
            exact_action[p] = None
    needs_map = [p for p in inputs if exact_action[p] or (not done[p]) or d.minhash is not None]
    if d.minhash is not None and all(done.values()):
        needs_map = []
    for p in inputs:
        if done[p] and p not in needs_map:
            summary.add_done(p)
    if not needs_map:
        _finish(summary, started, summary_path, progress)
        return summary.summary

    bands = rows = 0
    if d.minhash is not None:
        from dolma_tools.dedupe.minhash import choose_bands

        bands, rows = choose_bands(d.minhash.num_perm, d.minhash.jaccard_threshold, d.minhash.bands, d.minhash.rows)
        summary.extra["minhash"] = {"bands": bands, "rows": rows, "num_perm": d.minhash.num_perm}
    eval_filter = None
    if d.decontaminate is not None:
        from dolma_tools.dedupe.decontaminate import build_eval_filter

        eval_filter, sizes = build_eval_filter(d.decontaminate.eval_sets, d.decontaminate.ngram_length,
                                               d.decontaminate.false_positive_rate)
        summary.extra["eval_sets"] = sizes

    if d.minhash is None:
        from dolma_tools.dedupe.stream import single_machine

        if single_machine(cfg):
            _run_streaming(cfg, inputs, done, exact_action, outputs, bf, in_filter, eval_filter, summary)
            _finish(summary, started, summary_path, progress)
            return summary.summary

    tasks = _tasks_for(cfg, len(needs_map))
    try:
        _map_reduce(cfg, tasks, needs_map, done, exact_action, outputs, bf, in_filter, eval_filter, bands, rows,
                    summary)
    except BaseException:
        tasks.close(failed=True)
        raise
    tasks.close()
    _finish(summary, started, summary_path, progress)
    return summary.summary


def _map_reduce(cfg: DedupeConfig, tasks: _InProcessTasks | _RayTasks | _LocalTasks, needs_map: list[str],
                done: dict[str, bool], exact_action: dict[str, Any], outputs: dict[str, str],
                bf: BloomFilter | None, in_filter: set[str], eval_filter: Any, bands: int, rows: int,
                summary: _JournalledSummary) -> None:
    """Map every file in `needs_map`, reduce (filter, clusters), write the files not `done`."""
    d = cfg.dedupe
    read_only = cfg.bloom_filter.read_only
    host = FilterHost(bf, use_actors=tasks.actors) if bf is not None else None
    ef = tasks.put(eval_filter) if eval_filter is not None else None

    def analyze(path):
        return tasks.submit(_analyze_split, cfg, exact_action[path] is not None, bands, rows, ef, path,
                            num_returns=2, label=path)

    pending = {p: analyze(p) for p in needs_map}
    driver_parts: dict[str, tuple] = {}
    flags: dict[str, np.ndarray] = {}
    order = list(needs_map)
    remaining = list(needs_map)
    writes: dict[str, Any] = {}
    while remaining:
        if d.deterministic or not tasks.concurrent:
            path = remaining.pop(0)
        else:
            refs = {pending[p][0]: p for p in remaining}
            path = refs[tasks.wait_one(list(refs))]
            remaining.remove(path)
        driver = tasks.get(pending[path][0])
        driver_parts[path] = driver
        if host is not None and exact_action[path] is not None and driver[0] is not None:
            flags[path] = host.add_and_check(driver[0], insert=not read_only)
        if d.minhash is None and not done[path]:  # nothing global left: write while others map
            writes[path] = tasks.submit(write_file, cfg, outputs[path], pending[path][1], flags.get(path), None,
                                        label=path)
    if bf is not None and not read_only:
        bf = host.collect()
        bf.meta["inserted_files"] = sorted(in_filter | {p for p in needs_map if exact_action[p]})
        if cfg.bloom_filter.file:
            bf.save(cfg.bloom_filter.file)
        summary.extra["bloom_filter"] = describe(bf)
    elif host is not None:
        host.collect()

    minhash_rows: dict[str, tuple] = {}
    if d.minhash is not None:
        minhash_rows = _cluster(cfg, order, driver_parts, summary)

    for p in order:
        if done[p]:
            summary.add_done(p)
            continue
        if p not in writes:
            writes[p] = tasks.submit(write_file, cfg, outputs[p], pending[p][1], flags.get(p), minhash_rows.get(p),
                                     label=p)
    for p in order:
        if p in writes:
            summary.add(tasks.get(writes[p]))


def _run_streaming(cfg: DedupeConfig, inputs: list[str], done: dict[str, bool], exact_action: dict[str, Any],
                   outputs: dict[str, str], bf: BloomFilter | None, in_filter: set[str], eval_filter: Any,
                   summary: RunSummary) -> None:
    """Exact dedupe and decontamination without MinHash, on one machine: every file streams
    through its worker, which checks its keys in the shared filter itself (`stream.py`)."""
    from dolma_tools.dedupe.stream import run_streaming

    todo = [p for p in inputs if exact_action[p] or not done[p]]
    checked = [p for p in todo if exact_action[p]]
    local = not (cfg.ray_address or os.environ.get("RAY_ADDRESS"))
    in_process = cfg.debug or (local and (len(todo) <= 1 or cfg.processes == 1))
    results, inserted = run_streaming(cfg, todo, {p: None if done[p] else outputs[p] for p in todo}, checked,
                                      bf, eval_filter, in_process)
    for p, result in zip(todo, results):  # finished files outside `todo` are counted already
        if done[p]:
            summary.add_done(p)
        else:
            summary.add(result)
    if bf is not None and not cfg.bloom_filter.read_only:
        bf.meta["keys_inserted"] = int(bf.meta.get("keys_inserted", 0)) + inserted
        bf.meta["inserted_files"] = sorted(in_filter | set(checked))
        if cfg.bloom_filter.file:
            bf.save(cfg.bloom_filter.file)
        summary.extra["bloom_filter"] = describe(bf)


def _analyze_split(cfg, want_exact, bands, rows, eval_filter, path):
    return _split_analysis(analyze_file(cfg, want_exact, bands, rows, eval_filter, path))


def _cluster(cfg: DedupeConfig, order: list[str], parts: dict[str, tuple], summary: RunSummary) -> dict[str, tuple]:
    from dolma_tools.dedupe import minhash as mh

    m = cfg.dedupe.minhash
    counts = [parts[p][6] for p in order]
    offsets = np.concatenate(([0], np.cumsum(counts)))
    keys = np.concatenate([parts[p][1] for p in order]) if order else np.zeros((0, 1), np.uint64)
    has = np.concatenate([parts[p][2] for p in order])
    doc_ids = np.flatnonzero(has)
    edges = mh.candidate_edges(keys[doc_ids], doc_ids) if len(doc_ids) else np.zeros((0, 2), np.int64)
    candidates = len(edges)
    if m.verify and len(edges):
        shingles = [s for p in order for s in parts[p][5]]
        keep = np.array([mh.jaccard(shingles[a], shingles[b]) >= m.jaccard_threshold for a, b in edges], dtype=bool)
        edges = edges[keep]
    total = int(offsets[-1])
    cluster = mh.connected_clusters(total, edges)
    size = np.bincount(cluster, minlength=total)[cluster]
    is_member = size > 1
    is_duplicate = is_member & (cluster != np.arange(total))
    nbytes = np.concatenate([parts[p][3] for p in order])
    sources = [s for p in order for s in parts[p][4]]
    per_source: dict[str, dict[str, int]] = {}
    for i in np.flatnonzero(is_duplicate):
        entry = per_source.setdefault(sources[i], {"documents": 0, "bytes": 0})
        entry["documents"] += 1
        entry["bytes"] += int(nbytes[i])
    summary.extra["minhash"].update({
        "candidate_pairs": int(candidates), "verified_pairs": int(len(edges)) if m.verify else None,
        "clusters": int(len(np.unique(cluster[is_member]))), "documents_in_clusters": int(is_member.sum()),
        "documents_flagged": int(is_duplicate.sum()), "bytes_flagged": int(nbytes[is_duplicate].sum()),
        "per_source": per_source})
    out = {}
    for i, p in enumerate(order):
        lo, hi = offsets[i], offsets[i + 1]
        c = np.where(is_member[lo:hi], cluster[lo:hi], -1)
        out[p] = (c, is_duplicate[lo:hi])
    return out


def _output_settings(cfg: DedupeConfig) -> dict:
    """What decides the attribute files' content: the dedupe, filter and compression settings (not
    the document list: adding files to a deduplicated set with the same filter is the usual way to
    grow it)."""
    settings = {key: value for key, value in to_dict(cfg).items()
                if key not in RuntimeConfig.option_names() | {"documents"}}
    settings.get("bloom_filter", {}).pop("read_only", None)  # checking against a filter, or also filling it
    return settings


class _JournalledSummary:
    """The run summary, with each file's result also kept in the output root's settings journal
    (a file done by an earlier run brings the counts that run recorded)."""

    def __init__(self, summary: RunSummary, journal: SettingsJournal | None) -> None:
        self.summary, self.journal = summary, journal

    def __getattr__(self, name: str) -> Any:
        return getattr(self.summary, name)

    def add(self, result: FileResult) -> None:
        self.summary.add(result)
        if self.journal is not None:
            self.journal.record(result.path, result)

    def add_done(self, path: str) -> None:
        self.summary.add(self.journal.done_result(path) if self.journal else FileResult(path=path, skipped_existing=True))


def _finish(summary: RunSummary | _JournalledSummary, started: float, summary_path: str | None,
            progress: bool) -> None:
    if isinstance(summary, _JournalledSummary):
        if summary.journal is not None:
            summary.journal.write()
        summary = summary.summary
    summary.seconds = time.perf_counter() - started
    finish(summary, summary_path, progress)
    if progress and "minhash" in summary.extra and "clusters" in summary.extra["minhash"]:
        stats = summary.extra["minhash"]
        print(f"  minhash: {stats['clusters']:,} clusters, {stats['documents_flagged']:,} documents "
              f"({stats['bytes_flagged']:,} bytes) flagged, bands={stats['bands']} rows={stats['rows']}",
              file=sys.stderr)
        for source, entry in sorted(stats["per_source"].items()):
            print(f"    {source or '(no source)'}: {entry['documents']:,} documents, {entry['bytes']:,} bytes",
                  file=sys.stderr)
