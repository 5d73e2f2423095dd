"""A planted near-duplicate corpus: real documents plus copies with ~2% of words changed."""

from __future__ import annotations

import gzip
import json
import random
from pathlib import Path

REVIEWS = "reviews/reviews-0000.json.gz"  # relative to the dev corpus


def perturb(text: str, rate: float, rng: random.Random) -> str:
    words = text.split(" ")
    for i in range(len(words)):
        if rng.random() < rate:
            words[i] = "".join(rng.choice("abcdefghijklmnopqrstuvwxyz") for _ in range(rng.randint(3, 8)))
    return " ".join(words)


def make_planted(source: str, root: Path, n_base: int = 400, n_copies: int = 100, rate: float = 0.02,
                 seed: int = 0) -> tuple[list[dict], set[str], set[str]]:
    """Write root/documents/{base,copies}/*.jsonl.gz; return docs, planted copy ids, their originals."""
    rng = random.Random(seed)
    with gzip.open(source, "rt") as fh:
        base = [json.loads(line) for _, line in zip(range(n_base), fh)]
    originals = rng.sample(range(len(base)), n_copies)
    copies = []
    for j, i in enumerate(originals):
        doc = dict(base[i])
        doc["id"] = f"copy-{j}-of-{doc['id']}"
        doc["text"] = perturb(doc["text"], rate, rng)
        doc["source"] = "copies"
        copies.append(doc)
    for name, docs in (("base", base), ("copies", copies)):
        out = root / "documents" / name
        out.mkdir(parents=True, exist_ok=True)
        with gzip.open(out / f"{name}-0000.jsonl.gz", "wt") as fh:
            for doc in docs:
                fh.write(json.dumps(doc) + "\n")
    return base + copies, {c["id"] for c in copies}, {base[i]["id"] for i in originals}
