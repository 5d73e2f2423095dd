"""Map a per-file function over input files as Ray tasks: retries, resume, progress, summary.

A stage hands `run_files` a picklable `process(path) -> FileResult` (usually a
`functools.partial` of a module-level function and its config) and an `is_done(path)` check on
its outputs. Files whose outputs exist are skipped unless `ignore_existing`; each file is one Ray
task with `retries` retries when its worker dies; results fold into a `RunSummary` that is
printed and written as JSON next to the outputs.

By default Ray runs embedded on this machine with `processes` CPUs; `--ray-address` (or
`RAY_ADDRESS`) joins an existing cluster instead. `--debug` runs in-process without Ray.
"""

from __future__ import annotations

import atexit
import functools
import logging
import os
import sys
import time
from typing import Any, Callable, Mapping, Sequence

import orjson

from dolma_tools.config import RuntimeConfig
from dolma_tools.errors import DataError, RetryableError, UserError
from dolma_tools.io.files import AtomicWriter, is_remote, local_path, remove_stale_temporaries
from dolma_tools.runtime.journal import SettingsJournal
from dolma_tools.runtime.locks import check_writable, destination_lock
from dolma_tools.runtime.results import FileResult, RunSummary

log = logging.getLogger("dolma_tools")

ProcessFn = Callable[[str], FileResult]


# The embedded Ray this process started (None: none, or one we only joined): its GCS address and
# the forwarded environment its workers inherited, so tasks need no runtime_env while it is unchanged.
_OWN_RAY: tuple[str | None, dict[str, str]] | None = None
_EXIT_HOOK = False


def ensure_ray(cfg: RuntimeConfig) -> None:
    """Start an embedded Ray, or connect to a cluster; reuse a session that is already up."""
    global _OWN_RAY, _EXIT_HOOK
    address = cfg.ray_address or os.environ.get("RAY_ADDRESS")
    use_ray_token_if_any()  # takes effect only if Ray is not imported yet (the CLI calls it first)
    # Every task result the run needs is fetched, and its error reported as one line; the only
    # ones never fetched belong to tasks cancelled after a fatal error, which Ray would otherwise
    # print as "Unhandled error" tracebacks after our message.
    os.environ.setdefault("RAY_IGNORE_UNHANDLED_ERRORS", "1")
    import ray

    if ray.is_initialized():
        return
    common = dict(log_to_driver=True, configure_logging=False, include_dashboard=False)
    if address:
        _connect(address, common)
    else:
        os.environ.setdefault("RAY_ENABLE_UV_RUN_RUNTIME_ENV", "0")
        # Ray lowers workers' priority (nice 15) by default; our workers are the job, not a guest
        os.environ.setdefault("RAY_worker_niceness", "0")
        # no usage-stats reporting (it would try the network; nothing here reads it)
        os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
        store = os.environ.get("DOLMA_TOOLS_RAY_OBJECT_STORE_BYTES")  # tests keep it small
        # address="local": always a fresh embedded Ray, even if `ray start` left a cluster running
        ray.init(address="local", num_cpus=cfg.processes or os.cpu_count() or 1,
                 object_store_memory=int(store) if store else None, **common)
        # Ray's daemons and workers were forked from this process and inherited its environment
        _OWN_RAY = (_gcs_address(), _forwarded_env())
        # Runs before Ray's own exit hook (registered when `ray` was imported), see there
        if not _EXIT_HOOK:
            atexit.register(_shutdown_own_ray)
            _EXIT_HOOK = True


def _ray_token_available() -> bool:
    """Is a token there for Ray's token authentication (what `ray start` enables since Ray 2.5x)?"""
    path = os.environ.get("RAY_AUTH_TOKEN_PATH") or os.path.expanduser("~/.ray/auth_token")
    return bool(os.environ.get("RAY_AUTH_TOKEN")) or os.path.exists(path)


def use_ray_token_if_any() -> None:
    """`ray start` turns token authentication on and writes the token to ~/.ray/auth_token, but a
    client leaves it off unless told: it would retry for 20 s and fail. A client in token mode
    still connects to a cluster started without authentication (and an embedded Ray runs with
    it), so send the token when there is one. Ray reads the mode once, when it is imported."""
    if "RAY_AUTH_MODE" not in os.environ and _ray_token_available():
        os.environ["RAY_AUTH_MODE"] = "token"


def _reachable(address: str, timeout: float = 5.0) -> bool:
    """Does anything listen at host:port? (Ray itself keeps retrying an empty address for minutes.)"""
    import socket

    host, _, port = address.rpartition(":")
    if not port.isdigit():
        return True  # "auto", "ray://..." and other forms: let Ray resolve them
    try:
        with socket.create_connection((host or "127.0.0.1", int(port)), timeout=timeout):
            return True
    except OSError:
        return False


def _connect(address: str, options: dict) -> None:
    import ray

    if not _reachable(address):
        raise UserError(f"cannot connect to the Ray cluster at {address}: nothing answers there (start it with "
                        f"`ray start --head --port PORT`, or check the address)")
    try:
        ray.init(address=address, **options)
    except (ConnectionError, TimeoutError) as exc:
        raise UserError(f"cannot connect to the Ray cluster at {address}: {str(exc).splitlines()[0]} (is it "
                        f"running? `ray status --address {address}`; if it uses token authentication, the "
                        f"token must be in ~/.ray/auth_token or RAY_AUTH_TOKEN)") from None


def cluster_cpus() -> int:
    import ray

    return int(ray.cluster_resources().get("CPU", 1))


_FORWARDED_ENV_PREFIXES = ("AWS_", "DOLMA_TOOLS_", "HF_", "TOKENIZERS_")


def _forwarded_env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if k.startswith(_FORWARDED_ENV_PREFIXES)}


def worker_runtime_env() -> dict:
    """Forward storage and tool settings (S3 endpoint and credentials, offline flags) to workers.

    Ray workers may have been started before the driver's environment was set (a shared
    session, a cluster), so they would otherwise talk to the wrong endpoint. Workers of the
    embedded Ray this process started already have the environment (unless it changed since),
    and a task without a runtime_env can run on the workers Ray started in advance, instead of
    waiting for new ones to be set up for it.
    """
    env = _forwarded_env()
    if _OWN_RAY is not None and env == _OWN_RAY[1] and _gcs_address() == _OWN_RAY[0]:
        return {}
    return {"env_vars": env} if env else {}


def _gcs_address() -> str | None:
    """The address of the Ray this process is connected to (None when it is not)."""
    import ray

    if not ray.is_initialized():
        return None
    try:
        return ray.get_runtime_context().gcs_address
    except Exception:  # noqa: BLE001 - an unknown session is never taken for ours
        return None


def _shutdown_own_ray() -> None:
    """Stop the embedded Ray this process started, a second or two sooner than Ray's exit hook.

    Ray's hook (after half a second for the workers' last log lines, kept here) stops its
    processes one by one with up to a second's grace each, and its autoscaler monitor (which has
    nothing to scale on one machine) always uses the whole second. Here the monitor is killed
    outright and the rest is `ray.shutdown()` as usual; if Ray's internals have moved,
    `ray.shutdown()` does it all as before.
    """
    global _OWN_RAY
    if _OWN_RAY is None:
        return
    own, _OWN_RAY = _OWN_RAY[0], None
    if own is None or _gcs_address() != own:  # shut down already, or someone else's Ray now
        return
    import ray

    try:
        from ray._private import ray_constants
        from ray._private import worker as ray_worker

        node = ray_worker._global_node
        if node is not None and hasattr(node, "kill_all_processes"):
            original = node.kill_all_processes

            def kill_all_processes(*args, **kwargs):
                for info in node.all_processes.get(ray_constants.PROCESS_TYPE_MONITOR, []):
                    if info.process.poll() is None:
                        info.process.kill()
                        _wait_quietly(info.process, 1.0)
                return original(*args, **kwargs)

            node.kill_all_processes = kill_all_processes
    except Exception:  # noqa: BLE001 - Ray's internals moved: its own shutdown does it all
        pass
    # as Ray's hook does: give the workers' last log lines time to reach this terminal
    time.sleep(0.5)
    ray.shutdown()


def _wait_quietly(proc, timeout: float) -> None:
    import subprocess

    try:
        proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        pass


def _timed(process: ProcessFn, path: str) -> FileResult:
    start = time.perf_counter()
    result = process(path)
    result.seconds = time.perf_counter() - start
    return result


def _unwrap(exc: BaseException) -> BaseException:
    """The user's exception inside a Ray task error, if there is one."""
    cause = getattr(exc, "cause", None)
    return cause if isinstance(cause, BaseException) else exc


def ray_get(ref: Any) -> Any:
    """`ray.get` of one ref or a list, raising a failed task's own exception (as raised in the worker)."""
    import ray

    try:
        return ray.get(ref)
    except ray.exceptions.RayTaskError as exc:
        cause = _unwrap(exc)
        if cause is exc:
            raise
        raise cause from None


def ray_remote(fn: Callable, **options: Any) -> Any:
    """`fn` as a Ray remote function whose workers get the driver's storage settings."""
    import ray

    return ray.remote(**options)(fn).options(runtime_env=worker_runtime_env())


class _Progress:
    """A tqdm bar on a terminal; plain log lines (at most every 10 s) otherwise."""

    def __init__(self, stage: str, total: int, enabled: bool) -> None:
        self.stage, self.total, self.done, self.documents = stage, total, 0, 0
        self.start = time.time()
        self.last_line = 0.0
        self.bar = None
        self.enabled = enabled
        if enabled and sys.stderr.isatty():
            from tqdm import tqdm

            self.bar = tqdm(total=total, desc=stage, unit="file", dynamic_ncols=True)

    def update(self, result: FileResult) -> None:
        self.done += 1
        self.documents += result.documents
        rate = self.documents / max(time.time() - self.start, 1e-6)
        if self.bar is not None:
            self.bar.set_postfix_str(f"{self.documents:,} docs, {rate:,.0f} docs/s", refresh=False)
            self.bar.update(1)
        elif self.enabled and (time.time() - self.last_line > 10 or self.done == self.total):
            self.last_line = time.time()
            print(f"[{self.stage}] {self.done}/{self.total} files, {self.documents:,} documents, "
                  f"{rate:,.0f} docs/s", file=sys.stderr, flush=True)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


def run_files(stage: str, inputs: Sequence[str], process: ProcessFn, cfg: RuntimeConfig, *,
              is_done: Callable[[str], bool] | None = None, summary_path: str | None = None,
              progress: bool = True, output_root: str | None = None,
              while_mapping: Callable[[], None] | None = None,
              settings: Mapping[str, Any] | None = None) -> RunSummary:
    """Run `process` on every input file; raise UserError if any file failed for good.

    `output_root`, when given, is checked for writability and locked against concurrent runs
    before any work starts; temporaries a killed run left there are removed. `while_mapping`
    (optional) runs in a thread of this process while `--executor local` workers map.
    `settings` (with `output_root`): what decides the outputs' content. A file counts as done only
    when `is_done` and the journal in `output_root` says these settings wrote it (`journal.py`).
    """
    journal = SettingsJournal(output_root, stage, settings) if settings is not None and output_root else None
    run = functools.partial(_run_files, stage, inputs, process, cfg, is_done, summary_path, progress, while_mapping,
                            journal)
    if output_root is not None:
        check_writable(output_root)
        with destination_lock(output_root):
            remove_stale_temporaries(local_path(output_root))
            try:
                return run()
            finally:
                # a worker killed mid-file leaves its temporary behind; the retry wrote the output
                remove_stale_temporaries(local_path(output_root))
    return run()


def _run_files(stage: str, inputs: Sequence[str], process: ProcessFn, cfg: RuntimeConfig,
               is_done: Callable[[str], bool] | None, summary_path: str | None, progress: bool,
               while_mapping: Callable[[], None] | None, journal: SettingsJournal | None) -> RunSummary:
    summary = RunSummary(stage=stage)
    todo: list[str] = []
    for path in inputs:
        if (is_done is not None and not cfg.ignore_existing and is_done(path)
                and (journal is None or journal.written_with_current(path))):
            summary.add(journal.done_result(path) if journal else FileResult(path=path, skipped_existing=True))
        else:
            todo.append(path)
    if journal is not None:
        journal.report_stale()
    fold = _Fold(summary, _Progress(stage, len(todo), progress), journal)
    start = time.perf_counter()
    try:
        # one file cannot be parallelised across files: skip Ray's start-up cost unless a cluster is asked for
        single_local = len(todo) == 1 and not (cfg.ray_address or os.environ.get("RAY_ADDRESS"))
        if cfg.debug or not todo or single_local:
            _run_in_process(todo, process, fold, cfg.retries, cfg.debug)
        elif cfg.local_pool():
            _run_on_fork_pool(todo, process, cfg, fold, while_mapping)
        else:
            _run_on_ray(todo, process, cfg, fold)
    finally:
        fold.close()
    summary.seconds = time.perf_counter() - start
    finish(summary, summary_path, progress)
    if summary.failures:
        raise UserError(f"{stage}: {len(summary.failures)} file(s) failed: " + "; ".join(summary.failures[:3]))
    return summary


def finish(summary: RunSummary, summary_path: str | None, show: bool = True) -> None:
    """Print the summary and write it as JSON (atomically) next to the outputs."""
    if show:
        for line in summary.lines():
            print(line, file=sys.stderr)
    if summary_path:
        with AtomicWriter(summary_path, compression="") as out:
            out.write(orjson.dumps(summary.to_dict(), option=orjson.OPT_INDENT_2))
        if show:
            print(f"  summary: {summary_path}", file=sys.stderr)


class _Fold:
    """Where each finished file's result goes: the summary, the progress bar, the journal."""

    def __init__(self, summary: RunSummary, bar: _Progress, journal: SettingsJournal | None) -> None:
        self.summary, self.bar, self.journal = summary, bar, journal

    def __call__(self, result: FileResult) -> None:
        self.summary.add(result)
        self.bar.update(result)
        if self.journal is not None:
            self.journal.record(result.path, result)

    def failed(self, path: str, why: str) -> None:
        self.summary.files_failed += 1
        self.summary.failures.append(f"{path}: {why}")

    def close(self) -> None:
        self.bar.close()
        if self.journal is not None:
            self.journal.write()


def _run_in_process(todo: Sequence[str], process: ProcessFn, fold: _Fold, retries: int = 0,
                    debug: bool = False) -> None:
    """Each file in this process. A file that fails is reported and the others still run, as on
    the pool and on Ray (with the same retries of transient errors); bad input (DataError) and
    user errors stop the run, as there. `--debug` lets any error through, traceback and all."""
    for path in todo:
        result = _with_retries(process, path, retries, debug)
        if isinstance(result, FileResult):
            fold(result)
        else:
            fold.failed(path, result)


def _with_retries(process: ProcessFn, path: str, retries: int, debug: bool) -> FileResult | str:
    """The file's result, or why it failed for good. Transient errors (storage or network) are
    retried `retries` times, with a pause that grows, as Ray retries them."""
    for attempt in range(retries + 1):
        try:
            return _timed(process, path)
        except (DataError, UserError, KeyboardInterrupt):
            raise
        except Exception as exc:  # noqa: BLE001 - a failed file
            transient = isinstance(exc, _transient_errors())
            if transient and attempt < retries:
                log.warning("%s: %s: %s; retrying (%d of %d)", path, type(exc).__name__, exc, attempt + 1, retries)
                time.sleep(min(2.0 ** attempt, 30.0))
                continue
            if debug:
                raise
            return f"{type(exc).__name__}: {exc}"
    raise AssertionError("unreachable")  # pragma: no cover


@functools.lru_cache(maxsize=1)
def _transient_errors() -> tuple[type[BaseException], ...]:
    """Errors worth another try of the whole file: ours, the network's, and botocore's connection
    errors (an S3 endpoint down for longer than the client's own retries), which are not builtins."""
    errors: tuple[type[BaseException], ...] = (RetryableError, ConnectionError, TimeoutError)
    try:
        from botocore.exceptions import ConnectionError as BotoConnectionError
    except ImportError:  # pragma: no cover - botocore comes with the s3 support
        return errors
    return (*errors, BotoConnectionError)


_FORKED: dict[str, ProcessFn] = {}  # the process function, inherited by forked workers (never pickled)


def _forked_task(path: str) -> FileResult:
    return _timed(_FORKED["process"], path)


def _run_on_fork_pool(todo: Sequence[str], process: ProcessFn, cfg: RuntimeConfig, fold: _Fold,
                      while_mapping: Callable[[], None] | None) -> None:
    """`--executor local`: `processes` workers forked from this one (milliseconds to start, and
    they inherit what the driver loaded). A worker that dies breaks the pool: it is restarted and
    the unfinished files run again, up to `retries` times each. `while_mapping` runs in a thread
    once the workers are forked (never while forking: a thread importing modules at fork time
    could leave an import lock held in the child)."""
    import multiprocessing
    import threading
    from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
    from concurrent.futures.process import BrokenProcessPool

    workers = max(1, min(cfg.processes or os.cpu_count() or 1, len(todo)))
    if workers <= 1:
        _run_in_process(todo, process, fold, cfg.retries, cfg.debug)
        return
    # biggest files first: the last file to finish is a small one
    todo = sorted(todo, key=lambda p: -(os.path.getsize(p) if not is_remote(p) and os.path.exists(p) else 0))
    _FORKED["process"] = process
    context = multiprocessing.get_context("fork")
    attempts = dict.fromkeys(todo, 0)
    pool = ProcessPoolExecutor(workers, mp_context=context)
    helper = None
    try:
        futures = {pool.submit(_forked_task, path): path for path in todo}  # forks every worker
        if while_mapping is not None:
            helper = threading.Thread(target=while_mapping, daemon=True)
            helper.start()
        while futures:
            done, _ = wait(list(futures), return_when=FIRST_COMPLETED)
            broken = []
            for future in done:
                path = futures.pop(future)
                try:
                    result = future.result()
                except BrokenProcessPool:
                    broken.append(path)
                    continue
                except (DataError, UserError):
                    raise
                except Exception as exc:  # noqa: BLE001 - a failed file, as on Ray
                    fold.failed(path, f"{type(exc).__name__}: {exc}")
                    continue
                fold(result)
            if broken:
                if helper is not None:
                    helper.join()  # see above: no fork while it runs
                again = broken + list(futures.values())
                pool.shutdown(wait=False, cancel_futures=True)
                pool = ProcessPoolExecutor(workers, mp_context=context)
                futures = {}
                for path in again:
                    attempts[path] += 1
                    if attempts[path] > cfg.retries:
                        fold.failed(path, f"worker died {attempts[path]} times")
                    else:
                        futures[pool.submit(_forked_task, path)] = path
    finally:
        pool.shutdown(wait=True, cancel_futures=True)
        _FORKED.clear()
        if helper is not None:
            helper.join()


def _run_on_ray(todo: Sequence[str], process: ProcessFn, cfg: RuntimeConfig, fold: _Fold) -> None:
    import ray

    ensure_ray(cfg)
    task = ray_remote(_timed, num_cpus=1, max_retries=cfg.retries, retry_exceptions=list(_transient_errors()))
    process_ref = ray.put(process)
    pending = {task.remote(process_ref, path): path for path in todo}
    try:
        while pending:
            ready, _ = ray.wait(list(pending), num_returns=1)
            for ref in ready:
                path = pending.pop(ref)
                try:
                    result = ray.get(ref)
                except Exception as exc:  # noqa: BLE001 - classify below
                    cause = _unwrap(exc)
                    if isinstance(cause, (DataError, UserError)):
                        raise cause from None
                    fold.failed(path, f"{type(cause).__name__}: {cause}")
                    continue
                fold(result)
    finally:
        for ref in pending:
            ray.cancel(ref, force=True)


def _apply(fn: Callable, item):
    return fn(item)


def _forked_apply(item):
    return _FORKED["map"](item)


def map_in_parallel(fn: Callable, items: Sequence, cfg: RuntimeConfig) -> list:
    """Apply `fn` to each item; results in input order. For stages' reduce steps and helpers that
    are not file-shaped.

    Ray tasks by default; with `--executor local`, `processes` workers forked from this process (as
    `run_files`: they inherit `fn`, and a pool broken by a dead worker is replaced, its unfinished
    items run again, up to `retries` times); in this process with `--debug`, one item, or
    `--processes 1` (without a cluster).
    """
    workers = min(cfg.processes or os.cpu_count() or 1, len(items))
    cluster = cfg.ray_address or os.environ.get("RAY_ADDRESS")
    if cfg.debug or len(items) <= 1 or (cfg.processes == 1 and not cluster) or (
            cfg.local_pool() and workers <= 1):
        return [fn(item) for item in items]
    if cfg.local_pool():
        import multiprocessing
        from concurrent.futures import ProcessPoolExecutor
        from concurrent.futures.process import BrokenProcessPool

        results: dict[int, object] = {}
        _FORKED["map"] = fn
        try:
            for _attempt in range(cfg.retries + 1):
                todo = [i for i in range(len(items)) if i not in results]
                if not todo:
                    break
                pool = ProcessPoolExecutor(min(workers, len(todo)), mp_context=multiprocessing.get_context("fork"))
                try:
                    futures = {i: pool.submit(_forked_apply, items[i]) for i in todo}
                    for i, future in futures.items():
                        try:
                            results[i] = future.result()
                        except BrokenProcessPool:
                            pass  # a worker died: this item runs again in a new pool
                finally:
                    pool.shutdown(wait=True, cancel_futures=True)
        finally:
            _FORKED.pop("map", None)
        if len(results) < len(items):
            raise RuntimeError(f"map_in_parallel: a worker died {cfg.retries + 1} times")
        return [results[i] for i in range(len(items))]
    import ray

    ensure_ray(cfg)
    task = ray_remote(_apply, num_cpus=1, max_retries=cfg.retries)
    fn_ref = ray.put(fn)  # any picklable callable: functions, functools.partial, bound methods
    return ray_get([task.remote(fn_ref, item) for item in items])
