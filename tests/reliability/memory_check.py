"""Bounded memory: run each streaming stage over one big JSONL file and measure peak RSS per process.

    python tests/reliability/memory_check.py                       # 2 GB input, all stages, updates docs
    python tests/reliability/memory_check.py --size 200MB --no-docs --stages tag mix

The input is one plain `.jsonl` file of real text (the dev corpus, or the bundled demo corpus,
cycled with unique ids and a unique sentence per document) under a temporary directory that is
deleted afterwards (`--keep` keeps it). Each stage runs as the real `dolma` command with
`--processes 1` (one Ray worker, or none: the runtime works in the driver when there is one
input file); a sampler walks the command's whole process tree with psutil
every 0.1 s and records the peak RSS of every process, classified as the driver (the `dolma`
process), Ray workers (`ray::...` / default_worker.py) or Ray's own services (GCS, raylet, agents).
The claim checked is "peak RSS < 1 GiB per worker"; with one input file the runtime skips Ray
and works in the driver, which is then the worker. The driver is reported too (it holds the
Bloom filter for `dedupe`).

Not collected by pytest (no `test_` prefix); `test_reliability_memory.py` runs it at a small size.
"""

from __future__ import annotations

import argparse
import datetime as dt
import gzip
import json
import os
import random
import re
import shutil
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import psutil

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))
from benchmarks.measure import run_sampled  # noqa: E402 - the repository root is not always on sys.path

DOCS_MD = ROOT / "docs" / "reliability.md"
DOLMA = str(Path(sys.executable).parent / "dolma")
GIB = 1024 ** 3
LIMIT = 1 * GIB
TAGGERS = ["char_length_v1", "c4_v2", "gopher_v1", "pii_regex_with_counts_fast_v2"]
TOKENIZER = "allenai/gpt-neox-olmo-dolma-v1_5"
ALL_STAGES = ["tag", "dedupe", "mix", "tokens", "tokens-b1000", "stats"]
EXTRA_STAGES = ["tokens-nofast"]  # `tokens --tokenizer.ascii_fast_path false` (see its KeyError defect)
START, END = "<!-- memory-check:start -->", "<!-- memory-check:end -->"


# ---------------------------------------------------------------------------------------------
# Input


def _source_texts() -> list[str]:
    candidates = [Path("/work/shared/corpora/dev/documents"), ROOT / "demo" / "corpus" / "documents"]
    texts: list[str] = []
    for base in candidates:
        for path in sorted(base.glob("**/*.gz")):
            with gzip.open(path, "rt", encoding="utf-8") as fh:
                for line in fh:
                    if line.strip():
                        text = json.loads(line).get("text")
                        if isinstance(text, str) and text.strip():
                            texts.append(text)
        if texts:
            break
    if not texts:
        raise SystemExit("no source corpus found (dev corpus or demo/corpus)")
    return texts


def make_input(path: Path, size: int, seed: int = 0) -> tuple[int, int]:
    """Write about `size` bytes of JSONL documents; returns (documents, bytes)."""
    texts = _source_texts()
    rng = random.Random(seed)
    path.parent.mkdir(parents=True, exist_ok=True)
    written = docs = 0
    with open(path, "wb", buffering=8 << 20) as out:
        while written < size:
            text = rng.choice(texts) + f"\n\nDocument {docs} ends here with a unique sentence {rng.random():.12f}."
            line = json.dumps({"id": f"mem-{docs}", "text": text, "source": "memory-check",
                               "added": "2024-01-01T00:00:00Z"}, ensure_ascii=False).encode() + b"\n"
            out.write(line)
            written += len(line)
            docs += 1
    return docs, written


# ---------------------------------------------------------------------------------------------
# Measuring


@dataclass
class ProcessPeak:
    pid: int
    kind: str  # driver | worker | ray
    name: str
    peak_rss: int = 0


@dataclass
class StageResult:
    stage: str
    seconds: float
    returncode: int
    driver_peak: int = 0
    worker_peak: int = 0
    workers: int = 0
    ray_services_peak: int = 0
    tree_peak: int = 0
    log_tail: str = ""
    processes: list[ProcessPeak] = field(default_factory=list)

    @property
    def in_process(self) -> bool:
        """One input file runs in the driver (no Ray): the driver is then the worker."""
        return self.workers == 0

    @property
    def work_peak(self) -> int:
        """Peak RSS of the process(es) doing the work: the largest Ray worker, or the driver."""
        return self.driver_peak if self.in_process else self.worker_peak

    @property
    def ok(self) -> bool:
        return self.returncode == 0 and self.work_peak < LIMIT


def _classify(proc: psutil.Process, root_pid: int) -> tuple[str, str]:
    try:
        name = proc.name()
        cmdline = " ".join(proc.cmdline())
    except (psutil.NoSuchProcess, psutil.AccessDenied, psutil.ZombieProcess):
        return "gone", ""
    if proc.pid == root_pid:
        return "driver", "dolma"
    if name.startswith("ray::") or "default_worker.py" in cmdline:
        return "worker", name
    return "ray", name or cmdline[:40]


def run_measured(argv: list[str], cwd: Path, interval: float = 0.1, timeout: float = 3600,
                 kill_above: int = 4 * GIB) -> StageResult:
    """Run `dolma ARGV` in `cwd`, sampling its process tree; a process over `kill_above` ends the run."""
    env = {k: v for k, v in os.environ.items() if k != "RAY_ADDRESS"}
    env.setdefault("RAY_ENABLE_UV_RUN_RUNTIME_ENV", "0")
    log_path = cwd / f"{argv[0]}.log"
    peaks: dict[int, ProcessPeak] = {}
    tree_peak = 0
    killed_for_memory = []
    root_pid: list[int] = []  # the driver: the root of the first sample

    def track(sizes: list[tuple[psutil.Process, int]]) -> None:
        nonlocal tree_peak
        if not sizes:
            return
        if not root_pid:
            root_pid.append(sizes[0][0].pid)
        for p, rss in sizes:
            entry = peaks.get(p.pid)
            if entry is None:
                kind, name = _classify(p, root_pid[0])
                entry = peaks[p.pid] = ProcessPeak(p.pid, kind, name)
            if entry.kind == "ray":  # a worker's name becomes ray::... once it runs a task
                kind, name = _classify(p, root_pid[0])
                if kind == "worker":
                    entry.kind, entry.name = kind, name
            entry.peak_rss = max(entry.peak_rss, rss)
            if rss > kill_above and not killed_for_memory:  # protect the (shared) machine
                killed_for_memory.append(p.pid)
                try:
                    os.killpg(root_pid[0], 9)
                except ProcessLookupError:
                    pass
        tree_peak = max(tree_peak, sum(rss for _, rss in sizes))

    with open(log_path, "wb") as log:
        run = run_sampled([DOLMA, *argv], log, track, cwd=cwd, env=env, timeout=timeout, interval=interval)
    returncode, seconds = run.returncode, run.seconds
    tail = log_path.read_text(errors="replace").splitlines()[-8:]
    if killed_for_memory:
        tail.append(f"memory_check: killed, process {killed_for_memory[0]} went over {mib(kill_above)}")
    procs = sorted(peaks.values(), key=lambda p: -p.peak_rss)
    workers = [p for p in procs if p.kind == "worker"]
    return StageResult(
        stage=argv[0], seconds=seconds, returncode=returncode,
        driver_peak=max((p.peak_rss for p in procs if p.kind == "driver"), default=0),
        worker_peak=max((p.peak_rss for p in workers), default=0), workers=len(workers),
        ray_services_peak=sum(p.peak_rss for p in procs if p.kind == "ray"), tree_peak=tree_peak,
        log_tail="\n".join(tail), processes=procs)


# ---------------------------------------------------------------------------------------------
# Stages


def stage_argv(stage: str, work: Path) -> list[str]:
    docs = f"{work}/documents/*.jsonl"   # absolute: see test_tag_with_a_relative_documents_path_writes_outputs
    common = ["--processes", "1"]
    if stage == "tag":
        return ["tag", "--documents", docs, "--experiment", "mem", "--taggers", *TAGGERS, *common]
    if stage == "dedupe":
        return ["dedupe", "--documents", docs, "--dedupe.name", "dedupe_paragraphs",
                "--dedupe.paragraphs.attribute_name", "bff_duplicate_paragraph_spans",
                "--bloom_filter.file", str(work / "bloom.bin"), "--bloom_filter.size_in_bytes", str(64 << 20),
                *common]
    if stage == "mix":
        config = work / "mix.json"
        attributes = [name for name in ("mem", "dedupe_paragraphs") if (work / "attributes" / name).exists()]
        stream: dict = {"name": "mem", "documents": [docs], "attributes": attributes,
                        "output": {"path": str(work / "mixed"), "max_size_in_bytes": 256 << 20}}
        if "mem" in attributes:
            stream["filter"] = {"exclude": ["$.attributes[?(@.mem__gopher_v1__word_count && "
                                            "@.mem__gopher_v1__word_count[0] && "
                                            "@.mem__gopher_v1__word_count[0][2] < 20)]"]}
            stream["span_replacement"] = [{"span": "$.attributes.mem__pii_regex_with_counts_fast_v2__EMAIL_ADDRESS",
                                           "min_score": 0.5, "replacement": "|||EMAIL_ADDRESS|||"}]
        if "dedupe_paragraphs" in attributes:
            stream.setdefault("span_replacement", []).append(
                {"span": "$.attributes.bff_duplicate_paragraph_spans", "min_score": 0.5, "replacement": ""})
        config.write_text(json.dumps({"streams": [stream], "processes": 1}))
        return ["mix", "-c", str(config)]
    if stage in ("tokens", "tokens-b1000", "tokens-nofast"):
        # tokens-b1000: the same with --batch_size 1000 (the default 10000 documents per shuffle buffer
        # is what makes `tokens` exceed 1 GiB; see docs/reliability.md)
        extra = {"tokens-b1000": ["--batch_size", "1000"],
                 "tokens-nofast": ["--tokenizer.ascii_fast_path", "false"]}.get(stage, [])
        return ["tokens", "--documents", docs, "--destination", stage, "--tokenizer.name_or_path", TOKENIZER,
                *extra, *common]
    if stage == "stats":
        return ["stats", "--documents", docs, "--output", "stats", *common]
    raise ValueError(stage)


def parse_size(text: str) -> int:
    match = re.fullmatch(r"\s*([\d.]+)\s*([kKmMgG]?)[bB]?\s*", text)
    if not match:
        raise argparse.ArgumentTypeError(f"not a size: {text!r} (e.g. 2GB, 200MB)")
    unit = {"": 1, "k": 1000, "m": 1000 ** 2, "g": 1000 ** 3}[match.group(2).lower()]
    return int(float(match.group(1)) * unit)


def mib(n: int) -> str:
    return f"{n / 1024 ** 2:,.0f} MiB"


def table(results: list[StageResult], size: int, documents: int) -> str:
    lines = ["| Stage | Wall time | Input MB/s | Where the work ran | Peak RSS of the working process | "
             "Peak RSS, driver | Ray services (sum of peaks) | < 1 GiB per worker |",
             "|---|---|---|---|---|---|---|---|"]
    for r in results:
        killed = "memory_check: killed" in r.log_tail
        if r.ok:
            verdict = "yes"
        elif killed:
            verdict = "**no** (killed at the memory guard)"
        elif r.work_peak >= LIMIT:
            verdict = "**no**" + (f"; the run failed (exit {r.returncode})" if r.returncode else "")
        else:
            verdict = f"under 1 GiB until the run failed (exit {r.returncode})"
        where = "in the driver (one file: no Ray)" if r.in_process else f"Ray workers ({r.workers} seen)"
        lines.append(f"| `{r.stage}` | {r.seconds:,.0f} s | {size / 1e6 / r.seconds:,.1f} | {where} | "
                     f"{mib(r.work_peak)} | {mib(r.driver_peak)} | {mib(r.ray_services_peak)} | {verdict} |")
    return "\n".join(lines)


def update_docs(results: list[StageResult], size: int, documents: int, command: str) -> None:
    when = dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    body = "\n".join([
        START,
        f"Measured {when} by `{command}`: one plain JSONL file of {size / 1e9:.2f} GB "
        f"({documents:,} documents of real text: the 9 MB dev corpus cycled with unique ids, so nearly every "
        "paragraph is a duplicate, the worst case for `dedupe`'s spans and `mix`'s span replacement), each stage with `--processes 1`, on the 2-core development "
        "machine (shared with other jobs, so wall times are pessimistic). `tag` ran "
        f"{', '.join(TAGGERS)}; `dedupe` marked duplicate paragraphs (64 MiB Bloom filter, held by the driver); "
        "`mix` joined both attribute sets with a JSONPath exclude and two span replacements; `tokens` used "
        f"{TOKENIZER} (`tokens-b1000`: the same with `--batch_size 1000`); `stats` ran its default report. "
        "RSS is sampled every 0.1 s over the whole process tree; with one input file the runtime works in the "
        "driver, without Ray, so the driver is the worker; where Ray runs, the count includes its pre-started "
        "idle workers.",
        "",
        table(results, size, documents),
        END,
    ])
    text = DOCS_MD.read_text()
    if START in text and END in text:
        text = text[:text.index(START)] + body + text[text.index(END) + len(END):]
    else:
        text = text.rstrip("\n") + "\n\n" + body + "\n"
    DOCS_MD.write_text(text)


def main(argv: list[str] | None = None) -> list[StageResult]:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size", type=parse_size, default=parse_size("2GB"), help="input size (default 2GB)")
    parser.add_argument("--stages", nargs="+", choices=ALL_STAGES + EXTRA_STAGES, default=ALL_STAGES)
    parser.add_argument("--work", type=Path, default=None, help="work directory (default: a temporary one)")
    parser.add_argument("--keep", action="store_true", help="keep the work directory")
    parser.add_argument("--no-docs", dest="docs", action="store_false", help="do not update docs/reliability.md")
    parser.add_argument("--kill-above", type=parse_size, default=4 * GIB,
                        help="end a stage when one of its processes exceeds this RSS (default 4 GiB)")
    parser.add_argument("--json", type=Path, default=None, help="also write the results here as JSON")
    parser.add_argument("--render", type=Path, nargs="+", default=None,
                        help="only rewrite the docs table from --json files of earlier runs (same input size)")
    args = parser.parse_args(argv)
    if args.render:
        runs = [json.loads(path.read_text()) for path in args.render]
        saved = runs[0]
        results = [StageResult(**{**r, "processes": [ProcessPeak(**p) for p in r["processes"]]})
                   for run in runs for r in run["results"]]
        print(table(results, saved["size"], saved["documents"]))
        if args.docs:
            update_docs(results, saved["size"], saved["documents"], saved.get("command")
                        or f"python tests/reliability/memory_check.py --size {saved['size'] / 1e9:g}GB")
        return results

    command = "python tests/reliability/memory_check.py " + " ".join(argv if argv is not None else sys.argv[1:])
    work = args.work or Path(tempfile.mkdtemp(prefix="memory-check-"))
    work.mkdir(parents=True, exist_ok=True)
    results: list[StageResult] = []
    try:
        t0 = time.perf_counter()
        documents, size = make_input(work / "documents" / "big.jsonl", args.size)
        print(f"input: {size / 1e6:,.0f} MB, {documents:,} documents ({time.perf_counter() - t0:.0f} s to write)",
              file=sys.stderr)
        for stage in args.stages:
            result = run_measured(stage_argv(stage, work), work, kill_above=args.kill_above)
            result.stage = stage
            results.append(result)
            print(f"{stage}: exit {result.returncode}, {result.seconds:.0f} s, working process peak "
                  f"{mib(result.work_peak)} ({result.workers} Ray workers), driver peak {mib(result.driver_peak)}",
                  file=sys.stderr)
            if result.returncode != 0:
                print(result.log_tail, file=sys.stderr)
        print(table(results, size, documents))
        if args.json:
            args.json.write_text(json.dumps({"size": size, "documents": documents, "command": command,
                                             "results": [asdict(r) for r in results]}, indent=2))
        if args.docs:
            update_docs(results, size, documents, command)
    finally:
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)
    return results


if __name__ == "__main__":
    outcome = main()
    sys.exit(0 if all(r.ok for r in outcome) else 1)
