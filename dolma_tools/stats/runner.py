"""`dolma stats`: map every document file to a partial, reduce the partials, write the report.

Map: one task per document file writes `<output>/partials/<key>.pkl` (resumable: a file whose
partial exists is skipped unless --ignore_existing). On Ray (the default: embedded, or the
cluster at --ray_address) the tasks are Ray tasks and groups of partials merge in parallel Ray
tasks, then in file order in the driver; with `--executor local` they run in worker processes
forked from the driver and the partials merge in the driver. Either way the report is the same whatever the number
of workers.

`dolma stat --attributes GLOB` (no --documents) keeps Dolma's attribute-histogram behaviour.
"""

from __future__ import annotations

import functools
import hashlib
import math
import os
import re
import sys
import time

import orjson

from dolma_tools.config import RuntimeConfig, to_dict
from dolma_tools.errors import UserError
from dolma_tools.io.documents import iter_json_records, iter_raw_lines, parse_line
from dolma_tools.io.files import AtomicWriter, exists, is_remote, local_path
from dolma_tools.io.paths import attribute_path, expand_globs
from dolma_tools.runtime import FileResult, map_in_parallel, run_files
from dolma_tools.stats.attributes import aggregate_summaries, console_tables, file_summaries
from dolma_tools.stats.collectors import (
    ContaminationIndex,
    build_eval_set,
    collect_file,
    language_model,
    load_tokenizer,
    pii_finder,
    toxicity_model,
    url_of,
)
from dolma_tools.stats.config import StatsConfig
from dolma_tools.stats.merge import load_partial, merge_all, merge_partial_files, save_partial
from dolma_tools.stats.report import build_report, render_html

# options that do not change a partial's content: the runtime's, and the report's own
_RUNTIME_KEYS = RuntimeConfig.option_names() | {"documents", "output", "html", "keep_partials", "bins", "total",
                                                "seed", "top_k"}


def partial_path(cfg: StatsConfig, document: str) -> str:
    settings = {k: v for k, v in to_dict(cfg).items() if k not in _RUNTIME_KEYS}
    key = hashlib.sha1(orjson.dumps({"path": document, "settings": settings},
                                    option=orjson.OPT_SORT_KEYS)).hexdigest()[:20]
    return f"{cfg.output.rstrip('/')}/partials/{key}.pkl"


def stats_file(cfg: StatsConfig, contamination: ContaminationIndex | None, path: str) -> FileResult:
    result = FileResult(path=path)
    cpu = time.process_time()
    partial = collect_file(cfg, path, contamination, on_bad_line=lambda bad: result.bad_line(bad, cfg.strict))
    result.add("cpu_seconds", round(time.process_time() - cpu, 3))
    result.documents = partial.documents
    result.add("characters", partial.characters)
    result.add("bytes", partial.bytes)
    save_partial(partial, partial_path(cfg, path))
    return result


def _check_resources(cfg: StatsConfig) -> None:
    """Fail before any work when an option, tokenizer or model is unusable."""
    if any(n < 1 for n in cfg.ngrams.sizes):
        raise UserError("--ngrams.sizes must be positive integers")
    if cfg.ngrams.width < 2 or cfg.ngrams.width & (cfg.ngrams.width - 1):
        raise UserError(f"--ngrams.width must be a power of two, got {cfg.ngrams.width}")
    if cfg.batch_size < 1:
        raise UserError("--batch_size must be at least 1")
    if cfg.tokenizer:
        load_tokenizer(cfg.tokenizer)
    if cfg.language.enable:
        language_model(cfg.language.model)
    if cfg.toxicity.enable:
        toxicity_model()
    if cfg.pii and pii_finder() is None:
        print("warning: PII counting unavailable (dolma_tools.taggers.pii missing); the pii section is null",
              file=sys.stderr)


def _check_attributes(cfg: StatsConfig, inputs: list[str]) -> None:
    for name in cfg.attributes:
        if "/" in name or "*" in name:
            raise UserError(f"with --documents, --attributes takes attribute set names (the <name> in "
                            f"attributes/<name>/), got {name!r}; without --documents it takes file globs")
        for doc in inputs:
            path = attribute_path(doc, name)
            if not exists(path):
                raise UserError(f"attribute file missing for --attributes {name}: {path} "
                                f"(run `dolma tag` first, or drop the name)")


def _contamination_index(cfg: StatsConfig) -> ContaminationIndex | None:
    if not cfg.decontaminate:
        return None
    from dolma_tools.evalsets import load_eval_texts

    sets = [build_eval_set(name, load_eval_texts(name), cfg.contamination.ngram) for name in cfg.decontaminate]
    return ContaminationIndex(sets, cfg.contamination.ngram)


def lookup_documents(files: list[str], rows: set[tuple[int, int]], snippet: int = 200) -> dict:
    """{(file index, line): {id, url, text}} for a few documents (examples of duplicate clusters)."""
    out: dict = {}
    by_file: dict[int, set[int]] = {}
    for f, line in rows:
        by_file.setdefault(f, set()).add(line)
    for f, lines in sorted(by_file.items()):
        path, last = files[f], max(lines)
        records = iter_json_records(path) if path.endswith(".parquet") else iter_raw_lines(path)
        for line, raw in records:
            if line in lines:
                doc = parse_line(path, line, raw) if isinstance(raw, bytes) else raw
                if isinstance(doc, dict):
                    text = doc.get("text") if isinstance(doc.get("text"), str) else ""
                    url = url_of(doc) if isinstance(doc.get("id"), str) else None
                    out[(f, line)] = {"id": doc.get("id"), "url": url, "text": text[:snippet]}
            if line >= last:
                break
    return out


def run_stats(cfg: StatsConfig, progress: bool = True) -> dict:
    if not cfg.documents:
        if cfg.attributes:
            return run_attribute_stat(cfg)
        raise UserError("give --documents GLOB (corpus report) or --attributes GLOB (attribute histograms)")
    if not cfg.output:
        raise UserError("missing --output DIR (where report.json and report.html go)")
    started = time.perf_counter()
    inputs = expand_globs(cfg.documents)
    _check_resources(cfg)
    _check_attributes(cfg, inputs)
    contamination = _contamination_index(cfg)
    process = functools.partial(stats_file, cfg, contamination)
    is_done = lambda doc: exists(partial_path(cfg, doc))  # noqa: E731
    summary_path = f"{cfg.output.rstrip('/')}/.summary-stats.json"
    local = not cfg.debug and cfg.local_pool()
    if local:
        _prepare_fork(cfg)
    summary = run_files("stats", inputs, process, cfg, is_done=is_done, summary_path=summary_path,
                        progress=progress, while_mapping=_preload_matplotlib if local and cfg.html else None,
                        output_root=cfg.output)  # checked writable and locked before any work
    mapped = time.perf_counter()
    partial = reduce_partials([partial_path(cfg, doc) for doc in inputs], cfg, local=local)
    seconds = time.perf_counter() - started
    cpu = summary.counters.get("cpu_seconds", 0.0)
    run = {"seconds": round(seconds, 3), "map_seconds": round(mapped - started, 3),
           "mb_per_second": round(partial.bytes / 1e6 / seconds, 3) if seconds else None,
           "map_cpu_seconds": round(cpu, 3),
           "mb_per_cpu_second": round(partial.bytes / 1e6 / cpu, 3) if cpu else None,
           "files_failed": summary.files_failed}
    report = build_report(partial, top_k=cfg.top_k, ngram_top=cfg.ngrams.top_k, ngram_bottom=cfg.ngrams.bottom_k,
                          contamination_sets=contamination.sets if contamination else None,
                          contamination_n=cfg.contamination.ngram, toxicity_threshold=cfg.toxicity.threshold,
                          lookup=lambda rows: lookup_documents(partial.files, rows), run=run)
    write_report(report, cfg.output, html=cfg.html)
    if not cfg.keep_partials:
        _remove_partials(cfg, inputs)
    json_path = f"{cfg.output.rstrip('/')}/report.json"
    print(f"stats: {partial.documents:,} documents, {partial.bytes / 1e6:,.1f} MB of text in {seconds:.1f}s "
          f"({run['mb_per_second']} MB/s)", file=sys.stderr)
    print(f"report: {json_path}" + (f" and {cfg.output.rstrip('/')}/report.html" if cfg.html else ""))
    return report


def reduce_partials(paths: list[str], cfg: StatsConfig, local: bool = False):
    """Merge partial files: groups in parallel (Ray), then the groups in order. With
    `--executor local`, in this process: merging is cheap next to starting Ray."""
    if cfg.debug or local or len(paths) <= 4:
        return merge_all([load_partial(p) for p in paths])
    # at most 16 group results come back to the driver at once (each holds a few MiB of sketches)
    groups_wanted = max(1, min(len(paths) // 2, 2 * (cfg.processes or os.cpu_count() or 1), 16))
    size = math.ceil(len(paths) / groups_wanted)
    groups = [paths[i:i + size] for i in range(0, len(paths), size)]
    return merge_all(map_in_parallel(merge_partial_files, groups, cfg))


# ----------------------------------------------------------------------------------------------
# Local runs: worker processes forked from the driver


def _prepare_fork(cfg: StatsConfig) -> None:
    """Load once, before forking, what every worker needs (the models are loaded already by
    `_check_resources`): Arrow's compute module and the PII prefilter patterns."""
    import pyarrow.compute  # noqa: F401

    if cfg.pii and pii_finder() is not None:
        from dolma_tools.stats.pii import _prefilters

        _prefilters()


def _preload_matplotlib() -> None:
    """Import matplotlib (about 0.5 s) in a thread while the workers map, for report.html."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot  # noqa: F401
    except Exception:  # noqa: BLE001 - render_html imports it again and reports any problem
        pass


def write_report(report: dict, output: str, html: bool = True) -> None:
    root = output.rstrip("/")
    with AtomicWriter(f"{root}/report.json", compression="") as out:
        out.write(orjson.dumps(report, option=orjson.OPT_INDENT_2 | orjson.OPT_SERIALIZE_NUMPY))
    if html:
        with AtomicWriter(f"{root}/report.html", compression="") as out:
            out.write(render_html(report).encode("utf-8"))


def _remove_partials(cfg: StatsConfig, inputs: list[str]) -> None:
    if is_remote(cfg.output):
        return  # left in place on object stores; harmless, and they let a re-run resume
    for doc in inputs:
        path = local_path(partial_path(cfg, doc))
        if os.path.exists(path):
            os.remove(path)
    directory = local_path(f"{cfg.output.rstrip('/')}/partials")
    if os.path.isdir(directory) and not os.listdir(directory):
        os.rmdir(directory)


# ----------------------------------------------------------------------------------------------
# Dolma's `stat`


def _summaries_task(item: tuple[str, str | None, int, bool]) -> tuple[list[dict], int]:
    path, regex, bins, strict = item  # a plain function: Ray cannot wrap a functools.partial
    return file_summaries(path, regex, bins, strict)


def summary_file_order(files: list[str]) -> list[str]:
    """The order in which the files' summaries are added up: a sorted walk of the directory tree
    (`web/` before `web-2/`). It sets the order of the records and of the additions in `sum`;
    Dolma takes its file system's listing order, which is not defined."""
    return sorted(files, key=lambda path: path.split("/"))


def run_attribute_stat(cfg: StatsConfig) -> dict:
    """Histograms of attribute scores and span lengths; console tables; optional summaries file."""
    if cfg.bins < 1:
        raise UserError(f"--bins must be at least 1, got {cfg.bins}")
    if cfg.regex:
        try:
            re.compile(cfg.regex)
        except re.error as exc:
            raise UserError(f"--regex {cfg.regex!r} is not a valid regular expression: {exc}") from None
    files = summary_file_order(expand_globs(cfg.attributes, what="attributes"))
    per_file = map_in_parallel(_summaries_task, [(path, cfg.regex, cfg.bins, cfg.strict) for path in files], cfg)
    records = aggregate_summaries([summaries for summaries, _ in per_file], cfg.bins)
    skipped = sum(n for _, n in per_file)
    if skipped:
        print(f"stat: skipped {skipped:,} line(s) that are not JSON attribute records", file=sys.stderr)
    print(console_tables(records, bins=10, total=cfg.total))
    if cfg.output:
        from dolma_tools.io.documents import JsonlWriter

        with JsonlWriter(f"{cfg.output.rstrip('/')}/summaries.jsonl.gz") as out:
            for record in records:
                out.write_record(record)
        print(f"summaries: {cfg.output.rstrip('/')}/summaries.jsonl.gz", file=sys.stderr)
    return {"summaries": records}
