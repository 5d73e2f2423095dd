"""`make bench`: time dolma-tools against Dolma 1.2.1 (and datasketch/rensa) on the same corpus.

    python benchmarks/run.py                      # 200 MB corpus, 1 and 2 workers, up to 3 repeats
    python benchmarks/run.py --size-mb 20 --repeats 1 --stages tag tokens
    python benchmarks/run.py --curves             # also 20/100/400 MB cost curves (long)

Writes docs/benchmarks.md, benchmarks/results/<date>.json and, with --curves,
docs/benchmark-curves.png. Work data goes to benchmarks/work/ (git-ignored).
See benchmarks/README.md for the method.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import sys
import time
from dataclasses import asdict
from datetime import datetime, timezone
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from benchmarks import report  # noqa: E402
from benchmarks.corpus import ScaleParams, build_corpus  # noqa: E402
from benchmarks.dolma_env import dolma_version, ensure_dolma  # noqa: E402
from benchmarks.measure import run_measured  # noqa: E402
from benchmarks.stages import OURS, Context, Stage, get_stages  # noqa: E402

DEFAULT_CORPUS = "../shared/corpora/dev"


def log(msg: str) -> None:
    stamp = datetime.now(timezone.utc).strftime("%H:%M:%S")
    print(f"[bench {stamp}] {msg}", flush=True)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description="Benchmark dolma-tools against Dolma 1.2.1.")
    ap.add_argument("--size-mb", type=float, default=float(os.environ.get("DOLMA_BENCH_SIZE_MB", 200)),
                    help="text size of the benchmark corpus in MB (env DOLMA_BENCH_SIZE_MB; default 200)")
    ap.add_argument("--corpus", default=os.environ.get("DOLMA_BENCH_CORPUS", DEFAULT_CORPUS),
                    help="dev corpus to scale, relative to the repo root (env DOLMA_BENCH_CORPUS)")
    ap.add_argument("--seed", type=int, default=17)
    ap.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    ap.add_argument("--repeats", type=int, default=3, help="timed runs per cell; the median is reported")
    ap.add_argument("--budget-minutes", type=float,
                    default=float(os.environ.get("DOLMA_BENCH_BUDGET_MINUTES", 27)),
                    help="stop adding repeats when the whole run would exceed this (0 = no limit); "
                         "every cell is run at least once")
    ap.add_argument("--stages", nargs="+", default=None,
                    help="subset of: tag dedupe mix tokens minhash stats")
    ap.add_argument("--dolma-venv", default=os.environ.get("DOLMA_BENCH_VENV", "benchmarks/work/dolma-venv"),
                    help="virtualenv holding dolma==1.2.1 (created if missing; env DOLMA_BENCH_VENV)")
    ap.add_argument("--no-dolma", action="store_true", help="do not install or run Dolma")
    ap.add_argument("--minhash-mb", type=float, default=30,
                    help="MinHash input size (datasketch is slow), capped at --size-mb")
    ap.add_argument("--timeout", type=float, default=1800, help="seconds before one run is killed")
    ap.add_argument("--curves", action="store_true", help="also run the cost curves (long)")
    ap.add_argument("--curves-only", action="store_true", help="only the cost curves")
    ap.add_argument("--curve-sizes", type=float, nargs="+", default=[20, 100, 400])
    ap.add_argument("--curve-tools", choices=["ours", "all"], default="ours",
                    help="tools in the curves: dolma-tools only (default) or with the peers")
    ap.add_argument("--no-langid", action="store_true", help="skip the language-id accuracy check")
    ap.add_argument("--work", default="benchmarks/work")
    ap.add_argument("--markdown", default="docs/benchmarks.md")
    ap.add_argument("--results-dir", default="benchmarks/results")
    ap.add_argument("--no-report", action="store_true", help="do not touch docs/ or results/ (dry runs)")
    ap.add_argument("--update", action="store_true",
                    help="with --stages: re-measure only those stages and keep every other stage's rows from the "
                         "latest recorded run on the same corpus (the report says which run each stage comes from)")
    return ap.parse_args(argv)


def _abs(path: str) -> Path:
    p = Path(path)
    return p if p.is_absolute() else (REPO / p)


def ours_command() -> list[str]:
    exe = Path(sys.executable).parent / "dolma"
    return [str(exe)] if exe.exists() else [sys.executable, "-m", "dolma_tools"]


class Runner:
    """Runs (stage, tool, workers) cells in rounds, alternating tools, within a time budget."""

    def __init__(self, args: argparse.Namespace, start: float) -> None:
        self.args, self.start = args, start
        self.budget = args.budget_minutes * 60 if args.budget_minutes > 0 else float("inf")
        self.runs: list[dict] = []
        self.checks: dict[str, dict] = {}
        self.notes: list[str] = []

    def elapsed(self) -> float:
        return time.perf_counter() - self.start

    def run_cell(self, ctx: Context, stage: Stage, tool: str, workers: int, round_: int, label: str) -> dict:
        info = stage.input_info(ctx)
        record = {"stage": stage.name, "tool": tool, "workers": workers, "round": round_,
                  "size_label": label, "input_mb": round(info.text_mb, 3), "input_documents": info.documents}
        why = stage.ready(ctx, tool)
        if why:
            record.update(ok=False, error=why)
            return record
        try:
            cmd = stage.command(ctx, tool, workers)
        except Exception as exc:  # noqa: BLE001 - a broken stage must not stop the others
            record.update(ok=False, error=f"setup failed: {type(exc).__name__}: {exc}")
            return record
        logfile = ctx.work / "logs" / f"{stage.name}-{tool}-w{workers}-r{round_}.log"
        m = run_measured(cmd, log=logfile, env=ctx.env(), cwd=str(REPO), timeout=self.args.timeout)
        record.update(seconds=round(m.seconds, 3), peak_rss=m.peak_rss, returncode=m.returncode,
                      ok=m.ok, log=str(logfile.relative_to(REPO)) if logfile.is_relative_to(REPO) else str(logfile))
        if m.ok:
            try:
                stage.after_run(ctx, tool, workers)
            except Exception as exc:  # noqa: BLE001
                self.notes.append(f"{stage.name}/{tool}: post-run step failed: {exc}")
        else:
            record["error"] = m.error_summary()
        status = f"{m.seconds:7.2f} s, {m.peak_rss / 2**20:7.0f} MiB" if m.ok else f"FAILED ({record['error']})"
        log(f"{label} {stage.name:8s} {tool:12s} w={workers} round {round_}: {status}")
        return record

    def matrix(self, ctx: Context, stages: list[Stage], workers: list[int], repeats: int, label: str,
               tools_filter=None, check: bool = True, budgeted: bool = True) -> list[dict]:
        runs: list[dict] = []
        failed: set[tuple[str, str, int]] = set()
        last: dict[tuple[str, str, int], float] = {}
        for round_ in range(1, repeats + 1):
            for si, stage in enumerate(stages):
                for wi, w in enumerate(workers):
                    tools = [t for t in stage.tools() if tools_filter is None or tools_filter(t)]
                    if (round_ + si + wi) % 2 == 0:
                        tools = tools[::-1]  # alternate which tool goes first
                    tools = [t for t in tools if (stage.name, t, w) not in failed]
                    if not tools:
                        continue
                    if round_ == 1 and budgeted and self.elapsed() + 60 > self.budget:
                        # Safety net: even first runs stop when the budget is spent.
                        for tool in tools:
                            runs.append({"stage": stage.name, "tool": tool, "workers": w, "round": 1,
                                         "size_label": label, "input_mb": round(stage.input_info(ctx).text_mb, 3),
                                         "input_documents": stage.input_info(ctx).documents, "ok": False,
                                         "error": f"skipped: time budget of {self.args.budget_minutes:g} min spent"})
                        continue
                    if round_ > 1 and budgeted:
                        needed = sum(last.get((stage.name, t, w), 0) for t in tools)
                        if self.elapsed() + needed + 90 > self.budget:
                            self.notes.append(f"{label} {stage.name} w={w}: round {round_} skipped "
                                              f"(time budget {self.args.budget_minutes:g} min)")
                            continue
                    for tool in tools:
                        rec = self.run_cell(ctx, stage, tool, w, round_, label)
                        runs.append(rec)
                        if rec.get("ok"):
                            last[(stage.name, tool, w)] = rec["seconds"]
                        else:
                            failed.add((stage.name, tool, w))
                    if round_ == 1 and check:
                        self.run_check(ctx, stage, w, label, runs)
        return runs

    def run_check(self, ctx: Context, stage: Stage, workers: int, label: str, runs: list[dict]) -> None:
        key = f"{label}/{stage.name}/w{workers}"
        ok = {r["tool"] for r in runs if r["stage"] == stage.name and r["workers"] == workers and r.get("ok")}
        if OURS not in ok or (stage.peers and not (ok & set(stage.peers))):
            self.checks[key] = {"status": "n/a", "why": "a tool failed"}
            return
        t = time.perf_counter()
        try:
            result = stage.check(ctx, workers)
        except Exception as exc:  # noqa: BLE001 - a check failure is reported, not fatal
            result = {"status": "n/a", "why": f"check failed: {type(exc).__name__}: {exc}"}
        result["check_seconds"] = round(time.perf_counter() - t, 1)
        self.checks[key] = result
        log(f"{label} {stage.name:8s} w={workers} equivalence: {result.get('status')}")


def aggregate(runs: list[dict]) -> list[dict]:
    """One row per (size, stage, tool, workers): medians over the successful runs."""
    cells: dict[tuple, list[dict]] = {}
    for r in runs:
        cells.setdefault((r["size_label"], r["stage"], r["tool"], r["workers"]), []).append(r)
    rows = []
    for (label, stage, tool, workers), rs in cells.items():
        good = [r for r in rs if r.get("ok")]
        row = {"size_label": label, "stage": stage, "tool": tool, "workers": workers,
               "input_mb": rs[0]["input_mb"], "input_documents": rs[0]["input_documents"], "runs": len(good)}
        if good:
            row["seconds"] = statistics.median(r["seconds"] for r in good)
            row["seconds_all"] = [r["seconds"] for r in good]
            row["peak_rss"] = int(statistics.median(r["peak_rss"] for r in good))
        else:
            row["error"] = rs[0].get("error", "failed")
        rows.append(row)
    return rows


def corpus_for(args: argparse.Namespace, work: Path, size_mb: float):
    label = f"{size_mb:g}MB-s{args.seed}"
    t = time.perf_counter()
    info = build_corpus(_abs(args.corpus), work / "corpus" / label, ScaleParams(size_mb=size_mb, seed=args.seed))
    log(f"corpus {label}: {info.documents} documents ({info.duplicates} exact duplicates), "
        f"{info.text_mb:.1f} MB text, {len(info.files)} files ({time.perf_counter() - t:.1f} s)")
    info.build_seconds = round(time.perf_counter() - t, 1)  # type: ignore[attr-defined]
    return label, info


def merge_previous(results: dict, stages: list[Stage], results_dir: Path) -> None:
    """Keep the latest recorded run's rows for the stages not re-measured now (same corpus only)."""
    prev, name = report._latest(results_dir, "main")
    label = results["corpus"]["label"]
    if not prev or prev.get("corpus", {}).get("label") != label:
        results["notes"].append(f"--update: no earlier run on {label} to merge; only the re-measured stages are shown")
        return
    rerun = {s.name for s in stages}
    earlier = prev.get("provenance") or [{"stages": sorted({r["stage"] for r in prev["runs"]}),
                                          "started_at": prev["meta"]["started_at"], "commit": prev["meta"]["commit"],
                                          "wall_minutes": prev["meta"].get("wall_minutes"), "file": name}]
    provenance = []
    for entry in earlier:
        kept = [s for s in entry["stages"] if s not in rerun]
        if kept:  # "this run" of the earlier file is that file, seen from now
            provenance.append({**entry, "stages": kept, "file": name if entry.get("file") == "this run" else entry["file"]})
    provenance.append({"stages": sorted(rerun), "started_at": results["meta"]["started_at"],
                       "commit": results["meta"]["commit"], "wall_minutes": results["meta"].get("wall_minutes"),
                       "file": "this run"})
    results["provenance"] = provenance
    results["runs"] = [r for r in prev["runs"] if r["stage"] not in rerun] + results["runs"]
    results["checks"] = {**{k: v for k, v in prev.get("checks", {}).items() if k.split("/")[1] not in rerun},
                         **results["checks"]}
    if "langid" not in results and prev.get("langid"):
        results["langid"] = prev["langid"]
    if not results["corpus"].get("tokens"):
        results["corpus"]["tokens"] = prev["corpus"].get("tokens")


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    start = time.perf_counter()
    started_at = datetime.now(timezone.utc)
    work = _abs(args.work)
    work.mkdir(parents=True, exist_ok=True)
    runner = Runner(args, start)
    meta = report.machine_info(REPO)
    meta.update(started_at=started_at.isoformat(timespec="seconds"), argv=sys.argv[1:],
                size_mb=args.size_mb, repeats=args.repeats, workers=args.workers,
                budget_minutes=args.budget_minutes)
    log(f"machine: {meta['cpu']} ({meta['cpus']} CPUs), load average {meta['load_average_start']}")

    dolma_cmd = None
    if not args.no_dolma:
        try:
            t = time.perf_counter()
            exe = ensure_dolma(_abs(args.dolma_venv), log=log)
            meta["dolma_setup_seconds"] = round(time.perf_counter() - t, 1)
            dolma_cmd = [str(exe)]
            meta["dolma_version"] = dolma_version(exe)
            log(f"peer: dolma {meta['dolma_version']} at {exe}")
        except Exception as exc:  # noqa: BLE001 - the peer's absence is reported, not fatal
            runner.notes.append(f"Dolma 1.2.1 unavailable: {exc}")
            log(f"Dolma 1.2.1 unavailable: {exc}")
    stages = get_stages(args.stages)
    results: dict = {"meta": meta, "runs": [], "checks": {}, "notes": runner.notes}

    if not args.curves_only:
        label, info = corpus_for(args, work, args.size_mb)
        mh_label, mh_info = (label, info)
        if any(s.name == "minhash" for s in stages) and args.minhash_mb < args.size_mb:
            mh_label, mh_info = corpus_for(args, work, args.minhash_mb)
        ctx = Context(repo=REPO, work=work / "runs" / label, corpus=info, ours_cmd=ours_command(),
                      dolma_cmd=dolma_cmd, minhash_corpus=mh_info)
        if (ctx.work / "reference").exists():
            shutil.rmtree(ctx.work / "reference")  # mix input is rebuilt from this run's outputs
        results["corpus"] = {"label": label, **{k: v for k, v in asdict(info).items() if k != "files"},
                             "files": len(info.files), "minhash_corpus": mh_label,
                             "minhash_documents": mh_info.documents, "minhash_mb": round(mh_info.text_mb, 3),
                             "build_seconds": info.build_seconds}
        results["runs"] += runner.matrix(ctx, stages, args.workers, args.repeats, label)
        results["corpus"]["tokens"] = ctx.extra.get("corpus_tokens")
        if not args.no_langid:
            from benchmarks.langid import run_langid

            log("language-id accuracy on the multilingual dev corpus")
            results["langid"] = run_langid(ctx.ours_cmd, _abs(args.corpus), ctx.work, ctx.env())
            log(f"language id: {results['langid']}")
    if args.curves or args.curves_only:
        curve_runs = []
        for size in args.curve_sizes:
            label, info = corpus_for(args, work, size)
            ctx = Context(repo=REPO, work=work / "runs" / label, corpus=info, ours_cmd=ours_command(),
                          dolma_cmd=dolma_cmd, minhash_corpus=info)
            if (ctx.work / "reference").exists():
                shutil.rmtree(ctx.work / "reference")
            tools_filter = None if args.curve_tools == "all" else (lambda t: t == OURS)
            # mix reads the attributes this size's tag and dedupe runs leave in runs/<label>/reference.
            curve_runs += runner.matrix(ctx, stages, args.workers, 1, label, tools_filter=tools_filter,
                                        check=False, budgeted=False)
        results["curves"] = {"sizes": args.curve_sizes, "runs": curve_runs}
    results["checks"] = runner.checks
    if args.update and not args.curves_only:
        merge_previous(results, stages, _abs(args.results_dir))
    results["rows"] = aggregate(results["runs"])
    if "curves" in results:
        results["curves"]["rows"] = aggregate(results["curves"]["runs"])
    meta["finished_at"] = datetime.now(timezone.utc).isoformat(timespec="seconds")
    meta["wall_minutes"] = round((time.perf_counter() - start) / 60, 2)
    meta["load_average_end"] = report.load_average()
    if args.no_report:
        log("--no-report: results not written")
        report.print_table(results)
        return 0
    paths = report.write_all(results, REPO, _abs(args.markdown), _abs(args.results_dir), stages)
    report.print_table(results)
    for p in paths:
        log(f"wrote {p}")
    log(f"done in {meta['wall_minutes']} min")
    return 0


if __name__ == "__main__":
    sys.exit(main())
