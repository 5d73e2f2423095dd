"""One machine, many workers, one Bloom filter: the filter's words in a memory-mapped file that
every worker process maps and updates directly, plus the little state that orders their updates.

A run directory (under /dev/shm when it exists) holds:

- `bits`: the filter's u64 words (the same layout as `BloomFilter.words`);
- `state`: one byte per file that takes part in the exact check, in (file) order: NEW, RUNNING,
  DEFERRED (analysed, waiting for its turn) or CHECKED (all its keys are in the filter);
- `lock`: `flock`ed around each chunk's check-and-insert when files are not ordered;

and a directory of the same name under the temporary directory holds, per file:

- `journal-<seq>`: the duplicate flags (one bit per key) of every chunk of file `seq` already
  checked, written *before* the chunk's keys are inserted: a retried task reuses them instead of
  re-checking (which would flag the file's own keys as duplicates). Kept to the end of the run;
- `spill-<seq>` and `spill-<seq>.keys`: the analysed chunks, and their keys, of a file whose turn
  had not come yet.

Deterministic mode: file `seq` checks its keys only once every earlier file is CHECKED, so the
flags equal a single process reading the files in order. A file never waits: until its turn it
spills its analysed chunks; if the turn has not come by the end of the file it returns DEFERRED,
the driver checks the spilled keys when the turn comes and a worker writes the file from the
spill and the journal, so no ordering of tasks can deadlock and only the check is serial.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import shutil
import struct
import tempfile
import uuid
from dataclasses import dataclass
from typing import Iterator

import numpy as np

from dolma_tools.dedupe.bloom import BloomFilter

NEW, RUNNING, DEFERRED, CHECKED = 0, 1, 2, 3
_PREFIX = "dolma-dedupe-"
_RECORD = struct.Struct("<IQ")  # chunk index, number of flags


SHM_MARGIN = 64 * 2**20  # leave this much of /dev/shm free for everyone else


def _base_dir(need_bytes: int = 0) -> str:
    """/dev/shm when it is writable and has room for the filter (a container's is often only
    64 MiB), else the temporary directory: a mapped file there is shared through the page cache."""
    shm = "/dev/shm"
    if os.path.isdir(shm) and os.access(shm, os.W_OK):
        try:
            if shutil.disk_usage(shm).free >= need_bytes + SHM_MARGIN:
                return shm
        except OSError:
            pass
    return tempfile.gettempdir()


def _alive(pid: int) -> bool:
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def remove_stale_runs() -> None:
    """Run directories whose driver died (a killed `dolma dedupe`) are removed."""
    for base in {_base_dir(), tempfile.gettempdir()}:
        try:
            names = os.listdir(base)
        except OSError:
            continue
        for name in names:
            if not name.startswith(_PREFIX):
                continue
            try:
                pid = int(name[len(_PREFIX):].split("-")[0])
            except ValueError:
                continue
            if not _alive(pid):
                shutil.rmtree(os.path.join(base, name), ignore_errors=True)


@dataclass(frozen=True)
class SharedSpec:
    """Everything a worker needs to open the run's shared state (small and picklable)."""

    directory: str
    spill_directory: str
    m: int
    k: int
    segments: int
    files: int
    ordered: bool
    insert: bool

    @classmethod
    def create(cls, bf: BloomFilter, files: int, ordered: bool, insert: bool) -> "SharedSpec":
        name = f"{_PREFIX}{os.getpid()}-{uuid.uuid4().hex[:12]}"
        directory = os.path.join(_base_dir(bf.words.nbytes + max(files, 1)), name)
        spill = os.path.join(tempfile.gettempdir(), name)
        os.makedirs(directory)
        os.makedirs(spill, exist_ok=True)
        spec = cls(directory, spill, bf.m, bf.k, bf.segments, files, ordered, insert)
        bf.words.astype("<u8", copy=False).tofile(os.path.join(directory, "bits"))
        np.zeros(max(files, 1), dtype=np.uint8).tofile(os.path.join(directory, "state"))
        open(os.path.join(directory, "lock"), "wb").close()
        return spec

    def remove(self) -> None:
        close_shared(self)
        shutil.rmtree(self.directory, ignore_errors=True)
        shutil.rmtree(self.spill_directory, ignore_errors=True)

    def read_words(self) -> np.ndarray:
        return np.fromfile(os.path.join(self.directory, "bits"), dtype="<u8").astype(np.uint64, copy=False)

    def states(self) -> np.ndarray:
        return np.fromfile(os.path.join(self.directory, "state"), dtype=np.uint8)


_OPEN: dict[str, "SharedRun"] = {}


def open_shared(spec: SharedSpec) -> "SharedRun":
    """One mapping per process and run (Ray reuses worker processes across tasks)."""
    run = _OPEN.get(spec.directory)
    if run is None:
        for stale in [d for d in _OPEN if not os.path.isdir(d)]:
            _OPEN.pop(stale).close()
        run = _OPEN[spec.directory] = SharedRun(spec)
    return run


def close_shared(spec: SharedSpec) -> None:
    run = _OPEN.pop(spec.directory, None)
    if run is not None:
        run.close()


class SharedRun:
    def __init__(self, spec: SharedSpec) -> None:
        self.spec = spec
        # a plain ndarray over the mapping: np.memmap's own indexing is slower
        words = np.memmap(os.path.join(spec.directory, "bits"), dtype=np.uint64, mode="r+").view(np.ndarray)
        self.filter = BloomFilter(m=spec.m, k=spec.k, segments=spec.segments, words=words)
        self.state = np.memmap(os.path.join(spec.directory, "state"), dtype=np.uint8, mode="r+")
        self._lock_fd = os.open(os.path.join(spec.directory, "lock"), os.O_RDWR)

    def close(self) -> None:
        os.close(self._lock_fd)
        self.filter.words = self.state = None  # unmapped once unreferenced

    # -- ordering ------------------------------------------------------------------------------
    def claim(self, seq: int) -> None:
        self.state[seq] = RUNNING

    def set_state(self, seq: int, state: int) -> None:
        self.state[seq] = state

    def turn_ready(self, seq: int) -> bool:
        return not self.spec.ordered or bool((self.state[:seq] == CHECKED).all())

    @contextlib.contextmanager
    def locked(self) -> Iterator[None]:
        if self.spec.ordered:  # one file checks at a time already
            yield
            return
        fcntl.flock(self._lock_fd, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(self._lock_fd, fcntl.LOCK_UN)

    # -- journal -------------------------------------------------------------------------------
    def journal_path(self, seq: int) -> str:
        return os.path.join(self.spec.spill_directory, f"journal-{seq}")

    def read_journal(self, seq: int) -> dict[int, np.ndarray]:
        """Flags of the chunks an earlier attempt checked (a torn last record is ignored)."""
        out: dict[int, np.ndarray] = {}
        try:
            with open(self.journal_path(seq), "rb") as fh:
                data = fh.read()
        except FileNotFoundError:
            return out
        pos = 0
        while pos + _RECORD.size <= len(data):
            chunk, n = _RECORD.unpack_from(data, pos)
            nbytes = (n + 7) // 8
            if pos + _RECORD.size + nbytes > len(data):
                break
            bits = np.frombuffer(data, dtype=np.uint8, count=nbytes, offset=pos + _RECORD.size)
            out[chunk] = np.unpackbits(bits, count=n).astype(bool)
            pos += _RECORD.size + nbytes
        return out

    def check_chunk(self, seq: int, chunk: int, hashes: np.ndarray, journal: dict[int, np.ndarray],
                    journal_fh) -> tuple[np.ndarray, int]:
        """Duplicate flags of one chunk's keys, in order, journalled; new keys are inserted
        (unless read-only). Returns (flags, keys newly inserted)."""
        bf = self.filter
        insert = self.spec.insert
        with self.locked():
            if chunk in journal:  # checked by an earlier attempt: same flags; setting bits again changes nothing
                dup = journal[chunk]
                if not insert:
                    return dup, 0
                new = hashes[~dup]
                bf.insert(new)
                return dup, len(new)

            def journal_first(flags: np.ndarray) -> None:
                journal_fh.write(_RECORD.pack(chunk, len(flags)) + np.packbits(flags).tobytes())
                journal_fh.flush()

            return bf.check_then_insert(hashes, insert=insert, before_insert=journal_first)
