"""`make demo`: the whole pipeline on the bundled corpus with an embedded local Ray.

tag → dedupe → mix → tokens → stats → a short train (and export), each step through the real
`dolma` command, as a user would run it. Outputs go to demo/output/ (re-created on each run).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent
OUT = ROOT / "output"
CORPUS = OUT / "corpus"
CONFIGS = ROOT / "configs"
DOLMA = str(Path(sys.executable).parent / "dolma")
PROCESSES = "2"

STEPS: list[tuple[str, list[str]]] = [
    ("tag: language, quality, content and PII", [
        "tag", "--documents", f"{CORPUS}/documents/*/*.json.gz", "--experiment", "quality",
        "--taggers", "char_length_v1", "random_number_v1", "ft_lang_id_en_doc_v2", "ft_lang_id_top3_doc",
        "gopher_v1", "c4_v2", "fineweb_v1", "pii_regex_with_counts_fast_v2", "profanity_doc_v1",
        "--processes", PROCESSES]),
    ("dedupe: paragraphs with a Bloom filter", ["-c", f"{CONFIGS}/dedupe_paragraphs.yaml", "dedupe"]),
    ("dedupe: MinHash near-duplicates", ["-c", f"{CONFIGS}/dedupe_minhash.yaml", "dedupe"]),
    ("mix: filters, span replacement, sized shards", ["-c", f"{CONFIGS}/mix.yaml", "mix"]),
    ("tokens: uint16 memmap shards", [
        "tokens", "--documents", f"{OUT}/mixed/*.jsonl.gz", "--destination", f"{OUT}/tokens",
        "--tokenizer.name_or_path", "allenai/gpt-neox-olmo-dolma-v1_5", "--tokenizer.eos_token_id", "50279",
        "--tokenizer.pad_token_id", "1", "--max_size", "200000", "--processes", PROCESSES, "--seed", "3920"]),
    ("stats: report.json and report.html", [
        "stats", "--documents", f"{OUT}/mixed/*.jsonl.gz", "--tokenizer", "allenai/gpt-neox-olmo-dolma-v1_5",
        "--decontaminate", "arc_easy", "--output", f"{OUT}/report", "--processes", PROCESSES]),
    ("train: a tiny OLMo for a few steps", [
        "train", "--shards", f"{OUT}/tokens/*.npy", "--model", "tiny", "--seq-len", "64",
        "--global-batch-size", "8", "--micro-batch-size", "8", "--lr", "3e-3", "--warmup-steps", "2",
        "--max-steps", "10", "--save-folder", f"{OUT}/train", "--save-every", "5", "--eval-every", "5",
        "--eval-shards", f"{OUT}/tokens/part-0-*.npy", "--eval-batches", "1", "--eval-tasks", "arc_easy",
        "--eval-limit", "10", "--device", "cpu", "--cpu-threads", "1"]),
    ("inspect: the documents of the last batch", [
        "train", "inspect-batch", "--step", "10", "--save-folder", f"{OUT}/train"]),
    ("export: the trained model to Hugging Face format", [
        "train", "export", f"{OUT}/train/step10", "--to", f"{OUT}/hf-model"]),
]


def main() -> int:
    if OUT.exists():
        shutil.rmtree(OUT)
    shutil.copytree(ROOT / "corpus", CORPUS)
    # the configs in demo/configs locate outputs with Dolma's ${oc.env:DEMO_OUT} resolver
    env = {**os.environ, "DEMO_OUT": str(OUT), "TOKENIZERS_PARALLELISM": "false", "RAY_DEDUP_LOGS": "0"}
    started = time.time()
    for title, argv in STEPS:
        print(f"\n==> {title}\n    dolma {' '.join(argv)}", flush=True)
        t0 = time.time()
        result = subprocess.run([DOLMA, *argv], env=env)
        if result.returncode != 0:
            print(f"\nDEMO FAILED at step: {title} (exit code {result.returncode})", file=sys.stderr)
            return result.returncode
        print(f"    ok in {time.time() - t0:.1f}s", flush=True)
    print(f"\nDemo finished in {time.time() - started:.0f}s. Outputs:")
    for label, rel in [("documents", "corpus/documents"), ("attributes", "corpus/attributes"),
                       ("training mix", "mixed"), ("token shards", "tokens"),
                       ("report", "report/report.html"), ("checkpoints and metrics", "train"),
                       ("Hugging Face export", "hf-model")]:
        print(f"  {label:<24} {OUT / rel}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
