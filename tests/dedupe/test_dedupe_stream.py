"""Streaming exact dedupe on one machine: chunks, the shared filter, ordering, deferral, retries, memory."""

from __future__ import annotations

import gzip
import json
import os
import sys
import tracemalloc
from pathlib import Path

import numpy as np
import pytest

from dolma_tools.config import build_config
from dolma_tools.dedupe import shared, stream
from dolma_tools.dedupe.bloom import BloomFilter
from dolma_tools.dedupe.config import DedupeConfig
from dolma_tools.dedupe.runner import run_dedupe
from dolma_tools.dedupe.shared import CHECKED, DEFERRED, SharedSpec

sys.path.insert(0, str(Path(__file__).parent))
from dedupe_helpers import read_all  # noqa: E402


def write_docs(path: Path, docs: list[dict]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with gzip.open(path, "wt") as fh:
        for d in docs:
            fh.write(json.dumps(d) + "\n")


def make_corpus(root: Path, files: int = 4, docs: int = 60) -> None:
    """Paragraphs repeat within and across files (every 7th paragraph id is shared)."""
    for f in range(files):
        rows = []
        for i in range(docs):
            paragraphs = [f"paragraph {(f * docs + i * 3 + j) % 97} of a shared pool" for j in range(3)]
            paragraphs.append(f"unique {f}-{i}")
            rows.append({"id": f"{f}-{i}", "text": "\n".join(paragraphs) + ("\n" if i % 5 == 0 else "")})
        write_docs(root / "documents" / f"part-{f}.jsonl.gz", rows)


def args(root: Path, name: str, *extra: str) -> list[str]:
    return ["--documents", str(root / "documents/*.jsonl.gz"), "--dedupe.name", name,
            "--dedupe.paragraphs.attribute_name", "dup", "--dedupe.skip_empty",
            "--bloom_filter.size_in_bytes", "65536", "--bloom_filter.file", str(root / f"{name}.bin"), *extra]


def run(root: Path, name: str, *extra: str):
    return run_dedupe(build_config(DedupeConfig, None, args(root, name, *extra)), progress=False)


def flagged(lines: dict[str, list[str]]) -> int:
    return sum(len(json.loads(line)["attributes"].get("dup", [])) for file in lines.values() for line in file)


def test_chunks_pool_and_in_process_give_the_same_bytes(tmp_path: Path, monkeypatch) -> None:
    make_corpus(tmp_path)
    run(tmp_path, "whole", "--debug")
    monkeypatch.setattr(stream, "CHUNK_DOCUMENTS", 7)  # many chunks per file
    run(tmp_path, "chunked", "--debug")
    # forked workers (even if another test left a Ray session up), 2 at once, files checked in order
    monkeypatch.setattr(stream, "_use_ray", lambda cfg: False)
    summary = run(tmp_path, "pool", "--processes", "2")
    whole = read_all(tmp_path, "whole")
    assert len(whole) == 4 and whole == read_all(tmp_path, "chunked") == read_all(tmp_path, "pool")
    assert (tmp_path / "whole.bin").read_bytes() == (tmp_path / "pool.bin").read_bytes()
    assert summary.documents == 240 and summary.counters["duplicate_spans"] == flagged(whole)
    # first seen wins: nothing in the first document is flagged, its 2nd copy of a paragraph is
    first = [json.loads(line)["attributes"]["dup"] for line in whole["part-0.jsonl.gz"]]
    assert first[0] == []
    # as files finish (Dolma's order): which copy is flagged may change, how many may not
    run(tmp_path, "unordered", "--processes", "2", "--no-dedupe.deterministic")
    assert flagged(read_all(tmp_path, "unordered")) == flagged(whole)
    # resume: the filter was lost and one file's attributes too; the finished files' keys go back in
    # (unflagged, in order) and the redone file gets the same flags
    (tmp_path / "pool.bin").unlink()
    (tmp_path / "attributes" / "pool" / "part-2.jsonl.gz").unlink()
    again = run(tmp_path, "pool", "--processes", "2")
    assert again.files_skipped_existing == 3 and again.documents_this_run == 60
    assert again.documents == 240  # the summary still covers the files done before
    assert read_all(tmp_path, "pool") == whole
    assert (tmp_path / "whole.bin").read_bytes() == (tmp_path / "pool.bin").read_bytes()
    # read-only against the finished filter: every paragraph is known, the filter file is untouched
    before = (tmp_path / "whole.bin").read_bytes()
    ro = run(tmp_path, "ro", "--processes", "2", "--bloom_filter.read_only", "--bloom_filter.file",
             str(tmp_path / "whole.bin"))
    assert ro.counters["duplicate_spans"] == 240 * 4 and (tmp_path / "whole.bin").read_bytes() == before
    assert not [d for d in os.listdir(shared._base_dir()) if d.startswith(f"dolma-dedupe-{os.getpid()}-")]


def _spec(tmp_path: Path, files: int, ordered: bool = True) -> SharedSpec:
    return SharedSpec.create(BloomFilter(m=1 << 19, k=7), files, ordered=ordered, insert=True)


def _cfg(tmp_path: Path) -> DedupeConfig:
    return build_config(DedupeConfig, None, args(tmp_path, "x"))


def _attrs(path: Path) -> list[str]:
    with gzip.open(path, "rt") as fh:
        return fh.read().splitlines()


def test_a_file_ahead_of_its_turn_spills_and_is_finished_later(tmp_path: Path, monkeypatch) -> None:
    make_corpus(tmp_path, files=2)
    monkeypatch.setattr(stream, "CHUNK_DOCUMENTS", 9)
    cfg = _cfg(tmp_path)
    docs = sorted((tmp_path / "documents").glob("*.jsonl.gz"))
    out = [tmp_path / "out" / f"{i}.jsonl.gz" for i in range(2)]
    ref = [tmp_path / "ref" / f"{i}.jsonl.gz" for i in range(2)]

    spec = _spec(tmp_path, 2)
    try:
        for i in range(2):  # in order: the reference
            stream.dedupe_file(cfg, spec, i, str(docs[i]), str(ref[i]), None)
        reference_bits = spec.read_words()
    finally:
        spec.remove()

    spec = _spec(tmp_path, 2)
    try:
        # file 1 first: file 0 is not being worked on, so file 1 must not wait for it
        deferred = stream.dedupe_file(cfg, spec, 1, str(docs[1]), str(out[1]), None)
        assert len(deferred.deferred) == 7 and deferred.inserted == 0 and not out[1].exists()
        assert spec.states().tolist() == [0, DEFERRED]
        first = stream.dedupe_file(cfg, spec, 0, str(docs[0]), str(out[0]), None)
        assert first.deferred is None and spec.states().tolist() == [CHECKED, DEFERRED]
        deferred.inserted = stream.check_spilled(spec, 1, deferred)  # the driver, once file 0 is checked
        assert spec.states().tolist() == [CHECKED, CHECKED] and not out[1].exists()
        second = stream.write_spilled(spec, 1, str(out[1]), "gz", deferred)  # a worker
        assert second.inserted == deferred.inserted > 0
        assert second.result.documents == 60 and second.result.counters["duplicate_spans"] > 0
        assert [_attrs(p) for p in out] == [_attrs(p) for p in ref]
        assert np.array_equal(spec.read_words(), reference_bits)
        assert not list(Path(spec.spill_directory).glob("spill-*"))  # the journals stay to the end of the run
    finally:
        spec.remove()


def test_a_retried_file_is_not_flagged_against_itself(tmp_path: Path, monkeypatch) -> None:
    """A worker dies after checking (and inserting) part of a file: the retry takes the flags of
    the checked chunks from the journal instead of finding its own keys in the filter."""
    make_corpus(tmp_path, files=1)
    monkeypatch.setattr(stream, "CHUNK_DOCUMENTS", 9)
    cfg = _cfg(tmp_path)
    doc = str(next((tmp_path / "documents").glob("*.jsonl.gz")))
    spec = _spec(tmp_path, 1)
    try:
        stream.dedupe_file(cfg, spec, 0, doc, str(tmp_path / "ref.jsonl.gz"), None)
        clean_bits = spec.read_words()
    finally:
        spec.remove()

    spec = _spec(tmp_path, 1)
    real_render = stream.render
    calls = []

    def dying_render(*a, **k):
        calls.append(1)
        if len(calls) == 4:
            raise KeyboardInterrupt("worker killed")
        return real_render(*a, **k)

    try:
        monkeypatch.setattr(stream, "render", dying_render)
        with pytest.raises(KeyboardInterrupt):
            stream.dedupe_file(cfg, spec, 0, doc, str(tmp_path / "out.jsonl.gz"), None)
        assert len(shared.open_shared(spec).read_journal(0)) == 4  # chunks 0-3 were checked
        assert not (tmp_path / "out.jsonl.gz").exists()
        monkeypatch.setattr(stream, "render", real_render)
        again = stream.dedupe_file(cfg, spec, 0, doc, str(tmp_path / "out.jsonl.gz"), None)
        assert _attrs(tmp_path / "out.jsonl.gz") == _attrs(tmp_path / "ref.jsonl.gz")
        assert np.array_equal(spec.read_words(), clean_bits)
        assert again.result.documents == 60
    finally:
        spec.remove()


def _die_once(marker: str) -> int:
    if not os.path.exists(marker):
        open(marker, "w").close()
        os._exit(9)  # as if killed
    return os.getpid()


def test_local_pool_restarts_after_a_worker_dies(tmp_path: Path) -> None:
    cfg = build_config(DedupeConfig, None, ["--documents", "x", "--processes", "2", "--retries", "2"])
    pool = stream._LocalPool(cfg, tasks=2)
    try:
        pool.submit("a", _die_once, str(tmp_path / "marker"))
        path, pid = pool.next_done()
        assert path == "a" and pid != os.getpid() and not pool.pending()
    finally:
        pool.close()


def test_stale_run_directories_are_removed(tmp_path: Path) -> None:
    dead = os.path.join(shared._base_dir(), "dolma-dedupe-999999999-abc")
    os.makedirs(dead, exist_ok=True)
    live = SharedSpec.create(BloomFilter(m=4096, k=3), 1, ordered=True, insert=True)
    try:
        shared.remove_stale_runs()
        assert not os.path.exists(dead) and os.path.isdir(live.directory)
    finally:
        live.remove()


def test_memory_holds_one_chunk_not_the_file(tmp_path: Path, monkeypatch) -> None:
    """Peak Python/NumPy allocations do not grow with the file (4x the documents). Both files are
    larger than the reader's 1 MiB block, and a first small run does the one-time set-up (imports,
    caches), which would otherwise inflate the first peak and hide growth."""
    monkeypatch.setattr(stream, "CHUNK_DOCUMENTS", 100)
    peaks = []
    for n in (100, 1500, 6000):
        root = tmp_path / str(n)
        (root / "documents").mkdir(parents=True)
        with open(root / "documents" / "a.jsonl", "w") as fh:  # plain: the reader holds 1 MB of it at a time
            for i in range(n):
                text = "\n".join(f"line {i % 300} {j} " + "x" * 200 for j in range(10))
                fh.write(json.dumps({"id": str(i), "text": text}) + "\n")
        cfg = build_config(DedupeConfig, None, [*args(root, "m", "--debug"), "--documents",
                                                str(root / "documents/*.jsonl")])
        tracemalloc.start()
        run_dedupe(cfg, progress=False)
        peaks.append(tracemalloc.get_traced_memory()[1])
        tracemalloc.stop()
    assert peaks[2] < peaks[1] * 1.3, peaks


def test_bad_lines_through_forked_workers(tmp_path: Path, monkeypatch) -> None:
    from dolma_tools.errors import DataError

    make_corpus(tmp_path, files=2)
    with gzip.open(tmp_path / "documents" / "part-1.jsonl.gz", "at") as fh:
        fh.write('{"id": "broken", "text": \n')
    monkeypatch.setattr(stream, "_use_ray", lambda cfg: False)
    summary = run(tmp_path, "lenient", "--processes", "2")
    assert summary.skipped_lines == 1 and "malformed JSON" in summary.errors[0]
    last = read_all(tmp_path, "lenient")["part-1.jsonl.gz"][-1]
    assert json.loads(last) == {"attributes": {}, "id": None}  # one line per input line
    with pytest.raises(DataError, match="part-1.jsonl.gz:61"):
        run(tmp_path, "strict", "--processes", "2", "--strict")


def test_cli_in_a_fresh_process_matches_in_process(tmp_path: Path) -> None:
    """`dolma dedupe --executor local` on 2 forked workers (no Ray in that process) equals the in-process run."""
    import subprocess
    import sys

    make_corpus(tmp_path, files=3)
    run(tmp_path, "debug", "--debug")
    env = {k: v for k, v in os.environ.items() if k != "RAY_ADDRESS"}
    done = subprocess.run([sys.executable, "-m", "dolma_tools", "dedupe", *args(tmp_path, "cli"), "--processes", "2",
                           "--executor", "local"],
                          capture_output=True, text=True, env=env, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    assert read_all(tmp_path, "cli") == read_all(tmp_path, "debug")
    assert (tmp_path / "cli.bin").read_bytes() == (tmp_path / "debug.bin").read_bytes()


def test_shared_filter_falls_back_to_tmp_when_dev_shm_is_small(monkeypatch) -> None:
    # a container's /dev/shm is often 64 MiB: a filter that does not fit goes to the temporary directory
    import collections
    import tempfile

    from dolma_tools.dedupe import shared

    usage = collections.namedtuple("usage", "total used free")
    monkeypatch.setattr(shared.shutil, "disk_usage", lambda path: usage(64 * 2**20, 0, 64 * 2**20))
    if os.path.isdir("/dev/shm") and os.access("/dev/shm", os.W_OK):
        assert shared._base_dir(0) == "/dev/shm"
    assert shared._base_dir(128 * 2**20) == tempfile.gettempdir()
