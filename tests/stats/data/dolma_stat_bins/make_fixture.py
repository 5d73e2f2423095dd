"""Writes the attribute files of this fixture (run from anywhere; the output is deterministic).

The expected files come from Dolma 1.2.1 on these inputs:

    dolma stat --attributes 'attributes/exp/*/*.jsonl.gz' --bins 8 --total --report dolma_report \
        > expected_console.txt
    cp dolma_report/summaries.jsonl.gz expected_summaries.jsonl.gz

Dolma adds the files' sums in the order its file system lists them, so every key present in
three files has values whose sums are exact in any order (integers, multiples of 1/64).
"""

from __future__ import annotations

import gzip
import json
import random
from pathlib import Path

HERE = Path(__file__).resolve().parent


def record(rng: random.Random, i: int, name: str) -> dict:
    chars = rng.randint(1, 5000)
    label = rng.randint(0, 64) / 64 if rng.random() > 0.1 else 1.00002  # fastText overshoot, clipped to 1
    pii = [[s, s + rng.randint(1, 300), 1.0] for s in sorted(rng.sample(range(0, 4000), rng.randint(0, 3)))]
    dedupe = [[0, rng.choice([5, 10, 20]), 1]]  # an integer score, read as 1.0
    attributes = {"exp__len__chars": [[0, chars, float(chars)]],
                  "exp__ft__label__en": [[0, 10, label]],
                  "exp__pii__doc": pii,
                  "exp__dedupe__para": dedupe}
    if name != "part-0":  # in two files only: non-dyadic values, a bucket value that moves down when re-read
        attributes["exp__neg__x"] = [[0, 1, rng.choice([-1.0, -0.999999999, -0.3, 0.50001, 0.1, 2.5])]]
    if name == "part-2":  # a key that only the last file has
        attributes["exp__late__only"] = [[0, i % 4, round(0.1 * (i % 7), 5)]]
    return {"id": f"{name}-{i}", "attributes": attributes, "source": "fixture"}


def main() -> None:
    rng = random.Random(0)
    for sub, name, n in (("a", "part-0", 30), ("b", "part-1", 30), ("b", "part-2", 20)):
        path = HERE / "attributes" / "exp" / sub / f"{name}.jsonl.gz"
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(path, "wb") as raw, gzip.GzipFile(fileobj=raw, mode="wb", mtime=0) as fh:
            for i in range(n):
                fh.write((json.dumps(record(rng, i, name)) + "\n").encode())


if __name__ == "__main__":
    main()
