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


def _tree_rss(proc: psutil.Process) -> int:
    total = 0
    try:
        procs = [proc] + proc.children(recursive=True)
    except psutil.Error:
        return 0
    for p in procs:
        try:
            total += p.memory_info().rss
        except psutil.Error:
            pass
    return total


def run_measured(cmd: list[str], log: str | Path, cwd: str | Path | None = None,
                 env: dict | None = None, timeout: float | None = None,
                 interval: float = 0.05) -> Measurement:
    log = Path(log)
    log.parent.mkdir(parents=True, exist_ok=True)
    peak = 0
    stop = threading.Event()
    with open(log, "wb") as out:
        out.write(("$ " + " ".join(cmd) + "\n").encode())
        out.flush()
        start = time.perf_counter()
        proc = subprocess.Popen(cmd, cwd=cwd, env=env, stdout=out, stderr=subprocess.STDOUT,
                                start_new_session=True)
        ps = psutil.Process(proc.pid)

        def sample() -> None:
            nonlocal peak
            while not stop.is_set():
                peak = max(peak, _tree_rss(ps))
                stop.wait(interval)

        sampler = threading.Thread(target=sample, daemon=True)
        sampler.start()
        try:
            returncode = proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            _kill_tree(ps)
            proc.wait()
            returncode = 124
            out.write(b"\nbenchmark harness: timeout\n")
        seconds = time.perf_counter() - start
        stop.set()
        sampler.join()
        # Leftover daemons (e.g. a Ray cluster) belong to this run's session: end them too.
        _kill_session(proc.pid)
    return Measurement(seconds=seconds, peak_rss=peak, returncode=returncode, log=str(log))


def _kill_tree(ps: psutil.Process) -> None:
    try:
        children = ps.children(recursive=True)
    except psutil.Error:
        children = []
    for p in [ps] + children:
        try:
            p.kill()
        except psutil.Error:
            pass


def _kill_session(sid: int) -> None:
    """Kill processes still in the session the measured command started (only ours)."""
    for p in psutil.process_iter(["pid"]):
        try:
            if p.pid != os.getpid() and os.getsid(p.pid) == sid:
                p.kill()
        except (psutil.Error, OSError):
            pass
