"""The runtime: retries when a worker dies, destination checks and locks, summaries."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from dolma_tools.config import RuntimeConfig
from dolma_tools.errors import UserError
from dolma_tools.runtime import FileResult, run_files
from dolma_tools.runtime.locks import LOCK_NAME, destination_lock


def count_lines(path: str) -> FileResult:
    with open(path) as fh:
        return FileResult(path=path, documents=sum(1 for _ in fh))


def die_once_then_count(marker_dir: str, path: str) -> FileResult:
    """Kill the worker process the first time each file is seen; succeed on the retry."""
    marker = Path(marker_dir) / (Path(path).name + ".seen")
    if not marker.exists():
        marker.write_text(str(os.getpid()))
        os._exit(9)  # the worker process dies mid-task, as with SIGKILL
    return count_lines(path)


def make_inputs(tmp_path: Path, n: int) -> list[str]:
    paths = []
    for i in range(n):
        p = tmp_path / f"in-{i}.txt"
        p.write_text("x\n" * (i + 1))
        paths.append(str(p))
    return paths


def test_worker_death_is_retried_and_nothing_is_lost(tmp_path: Path, ray_session):
    import functools

    inputs = make_inputs(tmp_path, 4)
    summary = run_files("count", inputs, functools.partial(die_once_then_count, str(tmp_path)),
                        RuntimeConfig(retries=2), progress=False)
    assert summary.files == 4 and summary.files_failed == 0
    assert summary.documents == 1 + 2 + 3 + 4
    assert len(list(tmp_path.glob("*.seen"))) == 4          # every file's first attempt died


def test_file_failing_after_retries_is_reported_and_others_complete(tmp_path: Path, ray_session):
    inputs = make_inputs(tmp_path, 2) + [str(tmp_path / "missing.txt")]
    with pytest.raises(UserError, match=r"count: 1 file\(s\) failed: .*missing.txt: FileNotFoundError"):
        run_files("count", inputs, count_lines, RuntimeConfig(retries=0), progress=False,
                  summary_path=str(tmp_path / "summary.json"))
    import json

    summary = json.loads((tmp_path / "summary.json").read_text())
    assert summary["files"] == 2 and summary["files_failed"] == 1 and summary["documents"] == 3


def test_read_only_destination_fails_before_work(tmp_path: Path):
    if os.geteuid() == 0:
        # root ignores permission bits; a read-only bind is not available in tests, so use a file
        # where a directory is needed, which fails the same check for every user
        blocked = tmp_path / "blocked"
        blocked.write_text("a file, not a directory")
        target = str(blocked / "out")
    else:
        ro = tmp_path / "ro"
        ro.mkdir()
        ro.chmod(stat.S_IRUSR | stat.S_IXUSR)
        target = str(ro / "out")
    calls = []
    with pytest.raises(UserError, match=r"cannot write outputs to .*out"):
        run_files("count", make_inputs(tmp_path, 1), lambda p: calls.append(p), RuntimeConfig(debug=True),
                  progress=False, output_root=target)
    assert calls == []


def test_second_run_on_the_same_destination_is_refused(tmp_path: Path):
    out = tmp_path / "out"
    with destination_lock(str(out)):
        with pytest.raises(UserError, match=r"another dolma run \(.*\) is writing"):
            run_files("count", make_inputs(tmp_path, 1), count_lines, RuntimeConfig(debug=True),
                      progress=False, output_root=str(out))
    assert not (out / LOCK_NAME).exists()                  # released


def test_stale_lock_from_a_killed_run_is_taken_over(tmp_path: Path):
    out = tmp_path / "out"
    out.mkdir()
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    import socket

    (out / LOCK_NAME).write_text(f"{socket.gethostname()}:{dead.pid}")
    (out / "x.jsonl.gz.tmp-123abc.tmp").write_text("partial")
    summary = run_files("count", make_inputs(tmp_path, 2), count_lines, RuntimeConfig(debug=True),
                        progress=False, output_root=str(out))
    assert summary.documents == 3
    assert sorted(os.listdir(out)) == []                   # lock released, stale temporary removed


def fail_on_b(seen: list, path: str) -> FileResult:
    seen.append(Path(path).name)
    if path.endswith("in-1.txt"):
        raise PermissionError(f"cannot write beside {path}")
    return count_lines(path)


def test_in_process_run_reports_a_failed_file_and_finishes_the_others(tmp_path: Path):
    """One worker runs files in the `dolma` process: a failing file is reported the same way as
    on the pool or Ray (no traceback), and the files after it still run."""
    import functools

    inputs = make_inputs(tmp_path, 3)
    seen: list[str] = []
    with pytest.raises(UserError, match=r"^count: 1 file\(s\) failed: .*in-1.txt: PermissionError: cannot write"):
        run_files("count", inputs, functools.partial(fail_on_b, seen), RuntimeConfig(processes=1, executor="local"),
                  progress=False)
    assert seen == ["in-0.txt", "in-1.txt", "in-2.txt"]
    # a single file runs in-process with the default executor too (no Ray start for one file)
    with pytest.raises(UserError, match=r"^count: 1 file\(s\) failed: .*in-1.txt: PermissionError"):
        run_files("count", inputs[1:2], functools.partial(fail_on_b, []), RuntimeConfig(), progress=False)
    with pytest.raises(PermissionError):  # --debug: the real exception, traceback and all
        run_files("count", inputs, functools.partial(fail_on_b, []), RuntimeConfig(debug=True), progress=False)


def test_an_address_where_nothing_listens_is_a_prompt_one_line_error():
    """Ray itself retries an empty address for minutes; we check the port first."""
    import socket
    import time

    from dolma_tools.runtime.executor import _connect  # ensure_ray would reuse another test's Ray session

    with socket.socket() as probe:  # a port that was free a moment ago, and nothing listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    start = time.monotonic()
    with pytest.raises(UserError, match=rf"^cannot connect to the Ray cluster at 127.0.0.1:{port}: nothing answers"):
        _connect(f"127.0.0.1:{port}", {})
    assert time.monotonic() - start < 10


def storage_blip_once(seen: list, path: str) -> FileResult:
    from botocore.exceptions import EndpointConnectionError

    seen.append(path)
    if len(seen) == 1:
        raise EndpointConnectionError(endpoint_url="http://127.0.0.1:1/bucket/key")
    return count_lines(path)


def test_an_s3_endpoint_down_longer_than_the_clients_retries_is_retried_per_file(tmp_path: Path):
    """botocore's connection errors are not builtins: they are transient all the same, in
    process (--debug included) as on Ray."""
    import functools

    inputs = make_inputs(tmp_path, 1)
    for cfg in (RuntimeConfig(retries=1), RuntimeConfig(retries=1, debug=True)):
        seen: list[str] = []
        summary = run_files("count", inputs, functools.partial(storage_blip_once, seen), cfg, progress=False)
        assert summary.files == 1 and summary.files_failed == 0 and summary.documents == 1 and len(seen) == 2
