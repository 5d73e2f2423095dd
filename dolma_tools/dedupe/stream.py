"""Streaming exact dedupe (and decontamination) on one machine: each worker reads a file in chunks
of documents and, per chunk, hashes its keys (NumPy), checks and inserts them in the shared Bloom
filter (`shared.py`), and appends the chunk's attribute lines to the output. Memory holds one
chunk, whatever the file size; the driver only starts tasks and saves the filter at the end.

In deterministic mode a file's chunks are checked only once every earlier file is checked. A
worker that reaches a chunk before its file's turn keeps analysing and spills the analysed chunks
to local disk; it checks them as soon as the turn comes, or, when the file ends first, returns it
deferred: the driver checks its spilled keys once the turn has come (`check_spilled`), and a
worker writes its attributes from the spill (`write_spilled`). Workers never wait for each other.
"""

from __future__ import annotations

import contextlib
import os
import pickle
from dataclasses import dataclass
from typing import Any, Iterator

import numpy as np
import orjson

from dolma_tools.dedupe.bloom import BloomFilter
from dolma_tools.dedupe.compression import attribute_codec, read_documents
from dolma_tools.dedupe.config import DedupeConfig
from dolma_tools.dedupe.exact import SpanPlan
from dolma_tools.dedupe.shared import (
    CHECKED,
    DEFERRED,
    SharedRun,
    SharedSpec,
    close_shared,
    open_shared,
    remove_stale_runs,
)
from dolma_tools.io.documents import BadLine, JsonlWriter
from dolma_tools.io.files import exists
from dolma_tools.runtime import FileResult

_JSON_OPTIONS = orjson.OPT_APPEND_NEWLINE | orjson.OPT_SERIALIZE_NUMPY
CHUNK_DOCUMENTS = 4096           # documents per chunk ...
CHUNK_CHARACTERS = 16 * 2 ** 20  # ... or fewer when their texts reach this many characters


@dataclass
class Chunk:
    index: int
    ids: list
    exact: SpanPlan | None = None
    decontam: list[dict] | None = None


@dataclass
class Outcome:
    result: FileResult
    inserted: int = 0
    deferred: list[int] | None = None  # keys per spilled chunk of a deferred file


class Spill:
    """Analysed chunks of one file on local disk, in order: the chunks (pickled, without their
    keys) and, apart, their keys, which the driver reads alone to check a deferred file."""

    def __init__(self, path: str, keys: list[int] | None = None) -> None:
        self.path = path
        self.keys: list[int] = list(keys or [])
        self._fh = self._keys_fh = None

    def append(self, chunk: Chunk) -> None:
        if self._fh is None:
            self._fh, self._keys_fh = open(self.path, "wb"), open(self.path + ".keys", "wb")
        hashes, chunk.exact.hashes = chunk.exact.hashes, None
        self._keys_fh.write(np.ascontiguousarray(hashes, dtype="<u8").tobytes())
        self.keys.append(len(hashes))
        pickle.dump(chunk, self._fh, protocol=pickle.HIGHEST_PROTOCOL)

    def close(self) -> None:
        if self._fh is not None:
            self._fh.close()
            self._keys_fh.close()
            self._fh = self._keys_fh = None

    def iter_keys(self) -> Iterator[np.ndarray]:
        with open(self.path + ".keys", "rb") as fh:
            for n in self.keys:
                yield np.fromfile(fh, dtype="<u8", count=2 * n).astype(np.uint64, copy=False).reshape(n, 2)

    def drain(self, with_keys: bool = True) -> Iterator[Chunk]:
        """The chunks in order (with their keys unless told not to); the spill is then removed."""
        self.close()
        if not self.keys:
            return
        keys = self.iter_keys() if with_keys else None
        with open(self.path, "rb") as fh:
            for _ in self.keys:
                chunk = pickle.load(fh)
                if keys is not None:
                    chunk.exact.hashes = next(keys)
                yield chunk
        if keys is not None:
            keys.close()
        self.remove()

    def remove(self) -> None:
        self.close()
        self.keys = []
        for path in (self.path, self.path + ".keys"):
            with contextlib.suppress(FileNotFoundError):
                os.remove(path)


def _document_chunks(cfg: DedupeConfig, path: str, result: FileResult) -> Iterator[tuple[list, list]]:
    docs: list[dict | None] = []
    ids: list = []
    chars = 0
    for _, record in read_documents(cfg, path):
        if isinstance(record, BadLine):
            result.bad_line(record, cfg.strict)
            docs.append(None)
            ids.append(None)
        else:
            docs.append(record)
            ids.append(record["id"])
            chars += len(record["text"])
        if len(docs) >= CHUNK_DOCUMENTS or chars >= CHUNK_CHARACTERS:
            yield docs, ids
            docs, ids, chars = [], [], 0
    if docs:
        yield docs, ids


def analyse_chunks(cfg: DedupeConfig, path: str, result: FileResult, want_exact: bool,
                   eval_filter: BloomFilter | None) -> Iterator[Chunk]:
    from dolma_tools.dedupe.runner import plan_chunk

    line = 0
    for index, (docs, ids) in enumerate(_document_chunks(cfg, path, result)):
        chunk = Chunk(index=index, ids=ids)
        result.documents += sum(doc is not None for doc in docs)
        chunk.exact, chunk.decontam = plan_chunk(cfg, want_exact, eval_filter, path, docs, line, result)
        line += len(docs)
        yield chunk


def render(chunk: Chunk, flags: np.ndarray | None, result: FileResult) -> bytes:
    """The chunk's attribute lines, `{"attributes": {...}, "id": ...}` per document."""
    attrs: list[dict] | None = None
    if chunk.exact is not None and flags is not None:
        attrs = chunk.exact.attributes(flags)
        stats = chunk.exact.stats
        result.add("duplicate_spans", stats["spans"])
        result.add("documents_with_duplicates", stats["documents"])
        result.add("duplicate_characters", stats["characters"])
    if chunk.decontam is not None:
        if attrs is None:
            attrs = chunk.decontam
        else:
            for a, extra in zip(attrs, chunk.decontam):
                a.update(extra)
    if attrs is None:
        attrs = [{} for _ in chunk.ids]
    dumps = orjson.dumps
    return b"".join([dumps({"attributes": a, "id": doc_id}, option=_JSON_OPTIONS)
                     for doc_id, a in zip(chunk.ids, attrs)])


class _FileWork:
    """Check (in the shared filter) and write the chunks of one file, in order."""

    def __init__(self, spec: SharedSpec | None, seq: int, output: str | None, compression: str,
                 result: FileResult) -> None:
        self.shared: SharedRun | None = open_shared(spec) if spec is not None else None
        self.seq = seq
        self.output = output
        self.compression = compression
        self.result = result
        self.writer: JsonlWriter | None = None
        self.inserted = 0
        self.journal: dict[int, np.ndarray] = {}
        self.journal_fh = None
        if self.shared is not None:
            self.shared.claim(seq)
            self.journal = self.shared.read_journal(seq)
            self.journal_fh = open(self.shared.journal_path(seq), "ab")

    def process(self, chunk: Chunk) -> None:
        flags = None
        if self.shared is not None and chunk.exact is not None:
            flags, inserted = self.shared.check_chunk(self.seq, chunk.index, chunk.exact.hashes,
                                                      self.journal, self.journal_fh)
            self.inserted += inserted
        if self.output is not None:
            if self.writer is None:
                self.writer = JsonlWriter(self.output, compression=self.compression)
            self.writer.write(render(chunk, flags, self.result))

    def checked(self) -> None:
        if self.shared is not None:
            self.shared.set_state(self.seq, CHECKED)

    def commit(self) -> None:
        if self.output is not None:
            if self.writer is None:  # an empty input file has an empty attribute file
                self.writer = JsonlWriter(self.output, compression=self.compression)
            self.writer.commit()
        self.close()

    def close(self) -> None:
        if self.journal_fh is not None:
            self.journal_fh.close()
            self.journal_fh = None

    def abort(self) -> None:
        if self.writer is not None:
            self.writer.discard()
        self.close()


def dedupe_file(cfg: DedupeConfig, spec: SharedSpec | None, seq: int, path: str, output: str | None,
                eval_filter: BloomFilter | None) -> Outcome:
    """One file, streamed. `output` None: only insert the file's keys (a finished file the filter lacks)."""
    result = FileResult(path=path)
    work = _FileWork(spec, seq, output, attribute_codec(cfg, path), result)
    shared = work.shared
    spill = _spill(spec, seq) if shared is not None else None
    ready = shared is None or shared.turn_ready(seq)
    try:
        for chunk in analyse_chunks(cfg, path, result, spec is not None, eval_filter):
            if not ready:
                ready = shared.turn_ready(seq)
            if ready:
                for waiting in spill.drain() if spill is not None else ():
                    work.process(waiting)
                work.process(chunk)
            else:
                spill.append(chunk)
        if spill is not None and spill.keys:
            if not shared.turn_ready(seq):  # no waiting: the worker moves on to other files
                spill.close()
                shared.set_state(seq, DEFERRED)
                work.abort()
                return Outcome(result=result, deferred=spill.keys)
            for waiting in spill.drain():
                work.process(waiting)
        work.checked()
        work.commit()
    except BaseException:
        work.abort()
        raise
    return Outcome(result=result, inserted=work.inserted)


def _spill(spec: SharedSpec, seq: int, keys: list[int] | None = None) -> Spill:
    return Spill(os.path.join(spec.spill_directory, f"spill-{seq}"), keys)


def check_spilled(spec: SharedSpec, seq: int, outcome: Outcome) -> int:
    """The driver's part for a deferred file whose turn has come: check its spilled keys (flags
    go to the journal), mark it checked. Returns the keys inserted."""
    shared = open_shared(spec)
    journal = shared.read_journal(seq)
    inserted = 0
    with open(shared.journal_path(seq), "ab") as journal_fh:
        for index, hashes in enumerate(_spill(spec, seq, outcome.deferred).iter_keys()):
            inserted += shared.check_chunk(seq, index, hashes, journal, journal_fh)[1]
    shared.set_state(seq, CHECKED)
    return inserted


def write_spilled(spec: SharedSpec, seq: int, output: str | None, compression: str, outcome: Outcome) -> Outcome:
    """A worker's part for a checked deferred file: its attributes from the spill and the journal."""
    flags = open_shared(spec).read_journal(seq)
    spill = _spill(spec, seq, outcome.deferred)
    if not os.path.exists(spill.path) and (output is None or exists(output)):
        return Outcome(result=outcome.result, inserted=outcome.inserted)  # an earlier attempt got this far
    writer = JsonlWriter(output, compression=compression) if output is not None else None
    try:
        if writer is not None:
            for chunk in spill.drain(with_keys=False):
                writer.write(render(chunk, flags[chunk.index], outcome.result))
            writer.commit()
        spill.remove()
    except BaseException:
        if writer is not None:
            writer.discard()
        raise
    return Outcome(result=outcome.result, inserted=outcome.inserted)


# ------------------------------------------------------------------------------------------
# Driver


def single_machine(cfg: DedupeConfig) -> bool:
    """Whether every worker shares this machine's memory (in-process, embedded Ray, or a
    one-node cluster)."""
    if cfg.debug or not (cfg.ray_address or os.environ.get("RAY_ADDRESS")):
        return True
    import ray

    from dolma_tools.runtime import ensure_ray

    ensure_ray(cfg)
    alive = [n for n in ray.nodes() if n.get("Alive")]
    if len(alive) != 1:
        return False
    import socket

    address = alive[0].get("NodeManagerAddress", "")
    local = {"127.0.0.1", "localhost"}
    try:
        local.add(socket.gethostbyname(socket.gethostname()))
    except OSError:
        pass
    return address in local or address == ray.util.get_node_ip_address()


def run_streaming(cfg: DedupeConfig, todo: list[str], outputs: dict[str, str | None],
                  checked: list[str], bf: BloomFilter | None, eval_filter: BloomFilter | None,
                  in_process: bool) -> tuple[list[FileResult], int]:
    """Dedupe `todo` (input order); `checked` are the files whose keys go through the filter, in
    order; `outputs[p]` None means insert only. Returns the results (input order) and the number
    of keys inserted; the filter's words are updated in `bf`."""
    remove_stale_runs()
    spec = None
    if bf is not None:
        spec = SharedSpec.create(bf, len(checked), ordered=cfg.dedupe.deterministic,
                                 insert=not cfg.bloom_filter.read_only)
        bf.words = None  # the shared copy is the filter now
    seq = {p: i for i, p in enumerate(checked)}
    try:
        if in_process:
            outcomes = {p: dedupe_file(cfg, spec if p in seq else None, seq.get(p, 0), p, outputs[p], eval_filter)
                        for p in todo}
        else:
            executor = _RayTasks(cfg) if _use_ray(cfg) else _LocalPool(cfg, len(todo))
            try:
                outcomes = _schedule(executor, cfg, spec, seq, todo, outputs, eval_filter)
            except BaseException:
                executor.close(failed=True)  # a failed run (--strict, an error) has no use for running files
                raise
            executor.close()
        if bf is not None and spec is not None:
            close_shared(spec)
            bf.words = spec.read_words()
    finally:
        if spec is not None:
            spec.remove()
    return [outcomes[p].result for p in todo], sum(o.inserted for o in outcomes.values())


def _use_ray(cfg: DedupeConfig) -> bool:
    """Ray tasks by default (embedded, or the cluster at --ray_address); worker processes forked
    from this one with `--executor local` (milliseconds to start, where an embedded Ray takes
    seconds). The workers share the filter through memory either way."""
    return not cfg.local_pool()


def _schedule(executor, cfg: DedupeConfig, spec: SharedSpec | None, seq: dict[str, int], todo: list[str],
              outputs: dict[str, str | None], eval_filter: BloomFilter | None) -> dict[str, Outcome]:
    """Keep every worker busy: writing a checked deferred file first, then the next file. A
    deferred file's keys are checked here, in the driver, as soon as every earlier file is
    checked (the only serial step, and a short one). Tasks start only when a worker is free."""
    eval_ref = executor.put(eval_filter) if eval_filter is not None else None
    queue = list(reversed(todo))
    outcomes: dict[str, Outcome] = {}
    deferred: dict[str, Outcome] = {}
    to_write: list[tuple[str, Outcome]] = []
    while True:
        while deferred:
            first = min(deferred, key=seq.__getitem__)
            if not (spec.states()[:seq[first]] == CHECKED).all():
                break
            outcome = deferred.pop(first)
            outcome.inserted += check_spilled(spec, seq[first], outcome)
            to_write.append((first, outcome))
        while executor.pending() < executor.slots and (to_write or queue):
            if to_write:
                p, outcome = to_write.pop(0)
                executor.submit(p, write_spilled, spec, seq[p], outputs[p], attribute_codec(cfg, p), outcome)
            else:
                p = queue.pop()
                executor.submit(p, dedupe_file, cfg, spec if p in seq else None, seq.get(p, 0), p, outputs[p],
                                eval_ref)
        if not executor.pending():
            break
        path, outcome = executor.next_done()
        if outcome.deferred is not None:
            deferred[path] = outcome
        else:
            outcomes[path] = outcome
    if deferred:  # cannot happen: the lowest deferred file is ready once nothing else runs
        raise RuntimeError(f"dedupe: files left unchecked: {sorted(deferred)[:3]}")
    return outcomes


class _RayTasks:
    def __init__(self, cfg: DedupeConfig) -> None:
        import ray

        from dolma_tools.runtime import ensure_ray

        ensure_ray(cfg)
        self.ray = ray
        self.slots = max(1, int(ray.cluster_resources().get("CPU", 1)))
        self.options = dict(num_cpus=1, max_retries=max(cfg.retries, 0))
        self.remote: dict[Any, Any] = {}
        self.refs: dict[Any, str] = {}

    def put(self, value):
        return self.ray.put(value)

    def submit(self, path: str, fn, *args) -> None:
        if fn not in self.remote:
            from dolma_tools.runtime.executor import ray_remote

            self.remote[fn] = ray_remote(fn, **self.options)
        self.refs[self.remote[fn].remote(*args)] = path

    def pending(self) -> int:
        return len(self.refs)

    def next_done(self) -> tuple[str, Outcome]:
        (ref,), _ = self.ray.wait(list(self.refs), num_returns=1)
        path = self.refs.pop(ref)
        from dolma_tools.runtime.executor import ray_get

        return path, ray_get(ref)

    def close(self, failed: bool = False) -> None:
        pass  # the embedded Ray stays up for the process (`ensure_ray`); its tasks end with it


class _LocalPool:
    """Worker processes forked from the driver (`pool.ForkPool`). A worker that dies (killed, out
    of memory) breaks the pool: it is restarted and the unfinished tasks run again (the journal
    makes a second attempt at a half-checked file safe), up to `retries` times per task."""

    def __init__(self, cfg: DedupeConfig, tasks: int) -> None:
        from dolma_tools.dedupe.pool import ForkPool

        self.slots = max(1, min(cfg.processes or os.cpu_count() or 1, tasks))
        self.pool = ForkPool(self.slots, cfg.retries)
        self.tasks: dict[Any, str] = {}

    def put(self, value):
        return self.pool.put(value)

    def submit(self, path: str, fn, *args) -> None:
        self.tasks[self.pool.submit(fn, *args, label=path)] = path

    def pending(self) -> int:
        return len(self.tasks)

    def next_done(self) -> tuple[str, Outcome]:
        task = self.pool.first_done(self.tasks)
        return self.tasks.pop(task), self.pool.result(task)

    def close(self, failed: bool = False) -> None:
        self.pool.close(terminate=failed)
