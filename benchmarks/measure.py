"""Run one command and measure its wall time and the peak RSS of its whole process tree.

RSS is sampled with psutil every `interval` seconds over the process and all its descendants
(Dolma's spawn pool, Ray's raylet/GCS/workers) and summed; the peak of those sums is reported.
Summing RSS counts shared pages once per process, so it is an upper bound for multi-process
tools; both tools are measured the same way.
"""

from __future__ import annotations

import os
import subprocess
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import psutil


@dataclass
class Measurement:
    seconds: float
    peak_rss: int  # bytes
    returncode: int
    log: str  # path of the combined stdout/stderr log

    @property
    def ok(self) -> bool:
        return self.returncode == 0

    def error_summary(self, limit: int = 160) -> str:
        """The last meaningful line of the log, for 'n/a (error ...)' cells."""
        try:
            lines = [ln.strip() for ln in Path(self.log).read_text(errors="replace").splitlines()]
        except OSError:
            return f"exit {self.returncode}"
        lines = [ln for ln in lines if ln and not ln.startswith(("INFO", "[INFO", "(raylet)"))]
        preferred = [ln for ln in lines if ln.lower().startswith(("error", "usererror"))
                     or "Error" in ln.split(":")[0]]
        line = (preferred or lines or [f"exit {self.returncode}"])[-1]
        if self.returncode in (124, -9) and "timeout" not in line:
            line = f"timed out; {line}"
        return f"exit {self.returncode}: {line[:limit]}"


def tree_rss(root: psutil.Process) -> list[tuple[psutil.Process, int]]:
    """(process, RSS bytes) for `root` and every descendant alive now."""
    try:
        family = [root, *root.children(recursive=True)]
    except psutil.Error:
        return []
    sizes = []
    for p in family:
        try:
            sizes.append((p, p.memory_info().rss))
        except psutil.Error:
            pass
    return sizes


@dataclass
class SampledRun:
    returncode: int
    seconds: float
    timed_out: bool


def run_sampled(cmd: list[str], out, on_sample: Callable[[list[tuple[psutil.Process, int]]], None],
                cwd: str | Path | None = None, env: dict | None = None, timeout: float | None = None,
                interval: float = 0.05) -> SampledRun:
    """Run `cmd` in a new session with stdout and stderr to the binary file `out`, calling
    `on_sample(tree_rss(...))` from a thread every `interval` seconds while it runs. On a timeout
    the process tree is killed; either way, whatever is left in its session (Ray's daemons
    outlive the driver for a moment) is killed at the end."""
    start = time.perf_counter()
    proc = subprocess.Popen(cmd, cwd=cwd, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
    stop = threading.Event()

    def sample() -> None:
        try:
            root = psutil.Process(proc.pid)
        except psutil.NoSuchProcess:
            return
        while not stop.is_set():
            on_sample(tree_rss(root))
            stop.wait(interval)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    timed_out = False
    try:
        returncode = proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        timed_out = True
        _kill_session(proc.pid)
        proc.wait()
        returncode = 124
    seconds = time.perf_counter() - start
    stop.set()
    sampler.join()
    _kill_session(proc.pid)
    return SampledRun(returncode, seconds, timed_out)


def run_measured(cmd: list[str], log: str | Path, cwd: str | Path | None = None,
                 env: dict | None = None, timeout: float | None = None,
                 interval: float = 0.05) -> Measurement:
    log = Path(log)
    log.parent.mkdir(parents=True, exist_ok=True)
    peak = 0

    def track(sizes: list[tuple[psutil.Process, int]]) -> None:
        nonlocal peak
        peak = max(peak, sum(rss for _, rss in sizes))

    with open(log, "wb") as out:
        out.write(("$ " + " ".join(cmd) + "\n").encode())
        out.flush()
        run = run_sampled(cmd, out, track, cwd=cwd, env=env, timeout=timeout, interval=interval)
        if run.timed_out:
            out.write(b"\nbenchmark harness: timeout\n")
    return Measurement(seconds=run.seconds, peak_rss=peak, returncode=run.returncode, log=str(log))


def _kill_session(sid: int) -> None:
    """Kill processes still in the session the measured command started (only ours)."""
    for p in psutil.process_iter(["pid"]):
        try:
            if p.pid != os.getpid() and os.getsid(p.pid) == sid:
                p.kill()
        except (psutil.Error, OSError):
            pass
