"""`--executor local` on the map → reduce plan (MinHash, and exact dedupe or decontamination run
with it): forked workers instead of Ray, the same bytes, errors, retries and resume as on Ray."""

from __future__ import annotations

import gzip
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from dolma_tools.config import build_config
from dolma_tools.dedupe import runner
from dolma_tools.dedupe.config import DedupeConfig
from dolma_tools.dedupe.runner import run_dedupe
from dolma_tools.errors import DataError

sys.path.insert(0, str(Path(__file__).parent))
from planted import REVIEWS, make_planted  # noqa: E402

MINHASH = ["--dedupe.minhash.jaccard_threshold", "0.6"]


def make_corpus(dev_corpus: Path, root: Path) -> None:
    """Two files with planted near-duplicates, and an evaluation set overlapping some documents."""
    docs, _, _ = make_planted(str(dev_corpus / REVIEWS), root, n_base=120, n_copies=30)
    with open(root / "eval.jsonl", "w") as fh:
        for doc in docs[::10]:
            fh.write(json.dumps({"text": doc["text"][:400]}) + "\n")


def combined(root: Path) -> list[str]:
    """MinHash with n-gram paragraph dedupe and decontamination: all three on the map → reduce plan."""
    return [*MINHASH, "--dedupe.paragraphs.attribute_name", "dup",
            "--dedupe.paragraphs.by_ngram.ngram_length", "5", "--dedupe.paragraphs.by_ngram.overlap_threshold", "0.5",
            "--bloom_filter.size_in_bytes", str(1 << 20), "--dedupe.decontaminate.eval_sets", str(root / "eval.jsonl"),
            "--dedupe.decontaminate.ngram_length", "8"]


def dedupe(root: Path, name: str, *extra: str):
    cfg = build_config(DedupeConfig, None, ["--documents", str(root / "documents/*/*.jsonl.gz"),
                                            "--dedupe.name", name, *extra])
    return run_dedupe(cfg, progress=False)


def attribute_bytes(root: Path, name: str) -> dict[str, bytes]:
    base = root / "attributes" / name
    return {str(p.relative_to(base)): p.read_bytes() for p in sorted(base.rglob("*.jsonl.gz"))}


@pytest.mark.parametrize("mode", ["minhash", "combined"])
def test_local_executor_writes_the_same_bytes_as_ray(dev_corpus: Path, tmp_path: Path, ray_session,
                                                     mode: str) -> None:
    make_corpus(dev_corpus, tmp_path)
    keys = MINHASH if mode == "minhash" else combined(tmp_path)

    def run(name: str, *extra: str) -> dict:
        filter_file = [] if mode == "minhash" else ["--bloom_filter.file", str(tmp_path / f"{name}.bin")]
        summary = dedupe(tmp_path, name, *keys, *filter_file, *extra)
        return summary.extra

    on_ray = run("ray")
    # the unordered run takes files as they finish (`wait_one`): MinHash flags do not depend on it
    unordered = ["--no-dedupe.deterministic"] if mode == "minhash" else []
    local = run("local", "--executor", "local", "--processes", "2", *unordered)
    single = run("single", "--executor", "local", "--processes", "1")
    expected = attribute_bytes(tmp_path, "ray")
    assert len(expected) == 2 and on_ray["minhash"]["documents_flagged"] > 0
    assert attribute_bytes(tmp_path, "local") == expected
    assert attribute_bytes(tmp_path, "single") == expected
    assert local["minhash"] == on_ray["minhash"] == single["minhash"]
    if mode == "combined":
        lines = b"".join(gzip.decompress(data) for data in expected.values())
        assert b'"dup":[[' in lines and b'"eval_contamination":[[' in lines
        assert (tmp_path / "local.bin").read_bytes() == (tmp_path / "ray.bin").read_bytes()
        assert (tmp_path / "single.bin").read_bytes() == (tmp_path / "ray.bin").read_bytes()


def test_local_executor_never_imports_ray(dev_corpus: Path, tmp_path: Path) -> None:
    """In a fresh `dolma dedupe` process; the stage, not the test, would be what imported Ray."""
    make_corpus(dev_corpus, tmp_path)
    argv = ["dedupe", "--documents", str(tmp_path / "documents/*/*.jsonl.gz"), "--dedupe.name", "near",
            *combined(tmp_path), "--executor", "local", "--processes", "2"]
    script = ("import sys\nfrom dolma_tools.cli import main\nmain(sys.argv[1:])\n"
              "print('RAY MODULES', sorted(m for m in sys.modules if m.split('.')[0] == 'ray'))")
    env = {k: v for k, v in os.environ.items() if k != "RAY_ADDRESS"}
    done = subprocess.run([sys.executable, "-c", script, *argv], capture_output=True, text=True, env=env,
                          timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "RAY MODULES []" in done.stdout, done.stdout[-2000:]
    assert "minhash:" in done.stderr and len(attribute_bytes(tmp_path, "near")) == 2


def test_processes_1_and_one_file_run_in_this_process(tmp_path: Path) -> None:
    def tasks(*extra: str):
        cfg = build_config(DedupeConfig, None, ["--documents", "x", "--executor", "local", *extra])
        return runner._tasks_for(cfg, files=3)

    assert isinstance(tasks("--processes", "1"), runner._InProcessTasks)
    assert isinstance(tasks("--processes", "2"), runner._LocalTasks)
    cfg = build_config(DedupeConfig, None, ["--documents", "x", "--executor", "local", "--processes", "2"])
    assert isinstance(runner._tasks_for(cfg, files=1), runner._InProcessTasks)


@pytest.mark.parametrize("executor", ["ray", "local"])
def test_strict_failure_and_bad_lines_as_on_ray(dev_corpus: Path, tmp_path: Path, ray_session,
                                                executor: str) -> None:
    make_corpus(dev_corpus, tmp_path)
    bad = tmp_path / "documents" / "copies" / "copies-0000.jsonl.gz"
    with gzip.open(bad, "at") as fh:
        fh.write('{"id": "broken", "text": \n')
    pool = ["--executor", executor, "--processes", "2"]
    summary = dedupe(tmp_path, "lenient", *MINHASH, *pool)
    assert summary.skipped_lines == 1 and "copies-0000.jsonl.gz:31: malformed JSON" in summary.errors[0]
    with pytest.raises(DataError, match=r"copies-0000.jsonl.gz:31: malformed JSON") as failure:
        dedupe(tmp_path, "strict", *MINHASH, *pool, "--strict")
    assert failure.value.skippable
    assert not (tmp_path / "attributes" / "strict" / "copies").exists()


def test_resume_skips_finished_files(dev_corpus: Path, tmp_path: Path) -> None:
    make_corpus(dev_corpus, tmp_path)
    local = ["--executor", "local", "--processes", "2"]
    first = dedupe(tmp_path, "near", *MINHASH, *local)
    written = attribute_bytes(tmp_path, "near")
    again = dedupe(tmp_path, "near", *MINHASH, *local)
    assert again.files_skipped_existing == 2 and again.documents == first.documents
    # one file lost: MinHash maps both again (clusters span files) and rewrites only the lost one
    kept = tmp_path / "attributes" / "near" / "base" / "base-0000.jsonl.gz"
    (tmp_path / "attributes" / "near" / "copies" / "copies-0000.jsonl.gz").unlink()
    kept_mtime = kept.stat().st_mtime_ns
    resumed = dedupe(tmp_path, "near", *MINHASH, *local)
    assert resumed.files_skipped_existing == 1 and attribute_bytes(tmp_path, "near") == written
    assert kept.stat().st_mtime_ns == kept_mtime
    assert resumed.extra["minhash"]["documents_flagged"] == first.extra["minhash"]["documents_flagged"]


def _die_once(marker: str) -> int:
    if not os.path.exists(marker):
        open(marker, "w").close()
        os._exit(9)  # as if killed
    return os.getpid()


def _always_die() -> None:
    os._exit(9)


def _pair(value: str) -> tuple[str, str]:
    return value, value.upper()


def _sleep(seconds: float) -> str:
    time.sleep(seconds)
    return "slept"


def test_a_dead_worker_is_charged_to_every_call_it_held_not_to_the_one_waited_on() -> None:
    # the driver waits on `innocent` while `poison` kills its worker, twice: the error must name
    # `poison` (before, only the awaited `innocent` was charged and named)
    tasks = runner._LocalTasks(workers=2, retries=1)
    try:
        innocent = tasks.submit(_sleep, 1.0, label="innocent")
        tasks.submit(_always_die, label="poison")
        with pytest.raises(RuntimeError, match="died 2 times on one of innocent, poison"):
            tasks.get(innocent)
    finally:
        tasks.close(failed=True)


def test_local_tasks_retry_a_dead_worker_then_give_up(tmp_path: Path) -> None:
    tasks = runner._LocalTasks(workers=2, retries=1)
    try:
        first, second = tasks.submit(_pair, tasks.put("abc"), num_returns=2)
        survivor = tasks.submit(_die_once, str(tmp_path / "marker"), label="survivor")
        assert tasks.get(survivor) != os.getpid()
        assert (tasks.get(first), tasks.get(second)) == ("abc", "ABC")
        with pytest.raises(RuntimeError, match="died 2 times on doomed"):
            tasks.get(tasks.submit(_always_die, label="doomed"))
    finally:
        tasks.close(failed=True)
