"""Worker processes forked from the driver, for `--executor local`: the streaming plan's workers
(`stream.py`) and the map → reduce plan's tasks (`runner.py`) both run on `ForkPool`.

Forked workers start in milliseconds (an embedded Ray takes seconds) and inherit what the driver
has loaded. A worker that dies (killed, out of memory) breaks a `ProcessPoolExecutor` and every
call still in it: the pool is replaced and those calls run again. Which call killed the worker
is unknown, so every call the pool held counts an attempt, and one that has failed more
than `retries` times ends the run, naming it and the calls that ran beside it. Errors raised
by the called function are not retried: they reach the caller as they were raised.
"""

from __future__ import annotations

import itertools
import multiprocessing
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable

# Values handed to `ForkPool.put` before the workers were forked: they reach the workers through
# the fork (copy-on-write) instead of being pickled into every call that takes them.
_INHERITED: dict[int, Any] = {}
_KEYS = itertools.count()


@dataclass(frozen=True)
class Inherited:
    """A stand-in for a value in `_INHERITED`; a worker swaps it for the value."""

    key: int


@dataclass(eq=False)
class Task:
    """One call on the pool. Its future is replaced when the call runs again in a new pool."""

    fn: Callable
    args: tuple
    label: str
    attempt: int = 0
    future: Future = field(init=False, repr=False)


def _call(fn: Callable, args: tuple) -> Any:
    return fn(*(_INHERITED[a.key] if isinstance(a, Inherited) else a for a in args))


def _broke(future: Future) -> bool:
    """Did the call not finish in its pool (the pool broke, or was shut down under it)?"""
    if future.cancelled():
        return True
    return future.done() and isinstance(future.exception(), BrokenProcessPool)


class ForkPool:
    """`workers` processes forked from this one, forked at the first `submit`."""

    def __init__(self, workers: int, retries: int, what: str = "a dedupe worker") -> None:
        method = "fork" if "fork" in multiprocessing.get_all_start_methods() else "spawn"
        self.context = multiprocessing.get_context(method)
        self.workers = max(1, workers)
        self.retries = max(retries, 0)
        self.what = what
        self._pool: ProcessPoolExecutor | None = None
        self._live: dict[Task, None] = {}  # submitted, not seen finished: what a new pool runs again
        self._keys: list[int] = []

    def put(self, value: Any) -> Any:
        """`value` as a call argument: inherited by the workers when they are not forked yet
        (a new pool after a worker died is forked from this process again, so it has it too)."""
        if self._pool is not None or self.context.get_start_method() != "fork":
            return value
        key = next(_KEYS)
        _INHERITED[key] = value
        self._keys.append(key)
        return Inherited(key)

    def submit(self, fn: Callable, *args: Any, label: str = "") -> Task:
        task = Task(fn, args, label)
        self._start(task)
        return task

    def _start(self, task: Task) -> None:
        if self._pool is None:
            self._pool = ProcessPoolExecutor(self.workers, mp_context=self.context)
        task.future = self._pool.submit(_call, task.fn, task.args)
        self._live[task] = None

    def result(self, task: Task) -> Any:
        """The call's return value, or the exception it raised; waits for it."""
        while True:
            wait([task.future])
            if not _broke(task.future):
                self._live.pop(task, None)
                return task.future.result()
            self._rerun()

    def first_done(self, tasks: Iterable[Task]) -> Task:
        """A task among `tasks` whose call has finished (returned or raised); waits for one."""
        tasks = list(tasks)
        while True:
            done, _ = wait([t.future for t in tasks], return_when=FIRST_COMPLETED)
            task = next(t for t in tasks if t.future in done)
            if not _broke(task.future):
                return task
            self._rerun()

    def _rerun(self) -> None:
        """A worker died, and every call the broken pool held failed with it. Which one
        killed it is unknown, so each of those counts an attempt (as in the runtime's pools), and
        all unfinished calls run again in a new pool."""
        if self._pool is not None:
            # wait=True: the pool's manager has then marked every call it held as failed or cancelled
            self._pool.shutdown(wait=True, cancel_futures=True)
            self._pool = None
        held = [t for t in self._live if t.future.done() and not t.future.cancelled() and _broke(t.future)]
        for task in held:
            task.attempt += 1
        if any(t.attempt > self.retries for t in held):
            labels = sorted(t.label for t in held)
            where = labels[0] if len(labels) == 1 else "one of " + ", ".join(labels)
            raise RuntimeError(f"{self.what} died {max(t.attempt for t in held)} times on {where}")
        again, self._live = [t for t in self._live if not t.future.done() or _broke(t.future)], {}
        for task in again:
            self._start(task)

    def close(self, terminate: bool = False) -> None:
        """Stop the workers once their calls return, or at once with `terminate` (a run that failed
        has no use for them: an embedded Ray's workers die with the driver the same way)."""
        pool, self._pool = self._pool, None
        if pool is not None:
            if terminate:  # the pool sees its workers die, fails their calls and stops
                for process in list((getattr(pool, "_processes", None) or {}).values()):
                    process.terminate()
            pool.shutdown(wait=True, cancel_futures=True)
        for key in self._keys:
            _INHERITED.pop(key, None)
        self._keys, self._live = [], {}
