"""MinHash signatures for every document, with dolma-tools, datasketch or rensa.

    python -m benchmarks.minhash_bench --impl rensa --workers 2 --out sigs.npz 'corpus/documents/*/*.jsonl.gz'

All implementations get the same documents, the same shingles (lower-cased whitespace word
n-grams) and the same number of permutations and seed; files are spread over `--workers`
processes the same way for each. Signatures differ between libraries (different hash functions),
so they are compared by how well each estimates the true Jaccard similarity of document pairs.
"""

from __future__ import annotations

import argparse
import glob
import gzip
import json
import random
import time
from multiprocessing import get_context

import numpy as np


def shingles(text: str, n: int) -> list[str]:
    words = text.lower().split()
    if len(words) <= n:
        return [" ".join(words)]
    return [" ".join(words[i:i + n]) for i in range(len(words) - n + 1)]


def read_docs(path: str) -> list[tuple[str, str]]:
    with gzip.open(path, "rb") as fh:
        out = []
        for raw in fh:
            if raw.strip():
                doc = json.loads(raw)
                out.append((doc["id"], doc["text"]))
        return out


# --- implementations: each returns a function text -> np.ndarray[uint64] ------------------------

def _datasketch(num_perm: int, ngram: int, seed: int):
    from datasketch import MinHash

    def sign(text: str) -> np.ndarray:
        m = MinHash(num_perm=num_perm, seed=seed)
        m.update_batch([s.encode("utf-8") for s in shingles(text, ngram)])
        return np.asarray(m.hashvalues, dtype=np.uint64)

    return sign


def _rensa(num_perm: int, ngram: int, seed: int):
    from rensa import RMinHash

    def sign(text: str) -> np.ndarray:
        m = RMinHash(num_perm=num_perm, seed=seed)
        m.update(shingles(text, ngram))
        return np.asarray(m.digest(), dtype=np.uint64)

    return sign


def ours_available() -> str | None:
    """None when dolma-tools has the batched MinHash signature function this harness calls."""
    try:
        from dolma_tools.dedupe.minhash import signatures  # noqa: F401
    except Exception as exc:  # noqa: BLE001 - any failure means "not available", reported as such
        return f"dolma-tools MinHash not available ({type(exc).__name__}: {exc})"
    return None


BATCH = 1000  # documents per dolma-tools call: its signatures are vectorised over a batch


def _ours_file(docs: list[tuple[str, str]], num_perm: int, ngram: int, seed: int) -> np.ndarray:
    from dolma_tools.dedupe.minhash import signatures

    out = np.zeros((len(docs), num_perm), dtype=np.uint64)
    for i in range(0, len(docs), BATCH):
        sig, _ = signatures([t for _, t in docs[i:i + BATCH]], num_perm=num_perm, seed=seed, ngram_size=ngram)
        out[i:i + BATCH] = sig
    return out


IMPLS = {"dolma-tools": None, "datasketch": _datasketch, "rensa": _rensa}


def sign_file(args: tuple[str, str, int, int, int]) -> tuple[list[str], np.ndarray]:
    impl, path, num_perm, ngram, seed = args
    docs = read_docs(path)
    if impl == "dolma-tools":
        return [d for d, _ in docs], _ours_file(docs, num_perm, ngram, seed)
    sign = IMPLS[impl](num_perm, ngram, seed)
    sigs = np.zeros((len(docs), num_perm), dtype=np.uint64)
    for i, (_, text) in enumerate(docs):
        sigs[i] = sign(text)
    return [d for d, _ in docs], sigs


def run(impl: str, files: list[str], workers: int, num_perm: int, ngram: int, seed: int):
    tasks = [(impl, f, num_perm, ngram, seed) for f in files]
    if workers <= 1:
        results = [sign_file(t) for t in tasks]
    else:
        with get_context("spawn").Pool(workers) as pool:
            results = pool.map(sign_file, tasks, chunksize=1)
    ids = [i for r in results for i in r[0]]
    sigs = np.concatenate([r[1] for r in results]) if results else np.zeros((0, num_perm), np.uint64)
    return ids, sigs


# --- accuracy check -----------------------------------------------------------------------------

def _pairs(docs: list[tuple[str, str, str]], rng: random.Random, n: int) -> list[tuple[int, int]]:
    by_origin: dict[str, list[int]] = {}
    for i, (_, _, origin) in enumerate(docs):
        by_origin.setdefault(origin, []).append(i)
    groups = [g for g in by_origin.values() if len(g) > 1]
    pairs = []
    for _ in range(n):  # near duplicates: variants of the same source document
        if groups:
            g = groups[rng.randrange(len(groups))]
            pairs.append(tuple(rng.sample(g, 2)))
    for _ in range(n):  # mostly unrelated documents
        pairs.append((rng.randrange(len(docs)), rng.randrange(len(docs))))
    return [p for p in pairs if p[0] != p[1]]


def compare_signature_files(files: dict, docs_glob: str, ngram: int, n_pairs: int = 400) -> dict:
    loaded = {}
    for tool, path in files.items():
        try:
            data = np.load(path, allow_pickle=False)
            loaded[tool] = dict(zip(data["ids"].tolist(), data["sigs"]))
        except (OSError, KeyError, ValueError):
            continue
    if not loaded:
        return {"status": "n/a", "why": "no signatures"}
    docs = []
    for path in sorted(glob.glob(docs_glob)):
        with gzip.open(path, "rb") as fh:
            for raw in fh:
                if raw.strip():
                    d = json.loads(raw)
                    docs.append((d["id"], d["text"], (d.get("metadata") or {}).get("bench_origin", d["id"])))
    rng = random.Random(0)
    pairs = _pairs(docs, rng, n_pairs // 2)
    errors: dict[str, list[float]] = {tool: [] for tool in loaded}
    sets: dict[int, set] = {}
    for i, j in pairs:
        for k in (i, j):
            if k not in sets:
                sets[k] = set(shingles(docs[k][1], ngram))
        true = len(sets[i] & sets[j]) / max(1, len(sets[i] | sets[j]))
        for tool, sig in loaded.items():
            a, b = sig.get(docs[i][0]), sig.get(docs[j][0])
            if a is not None and b is not None:
                errors[tool].append(abs(float(np.mean(a == b)) - true))
    mae = {t: round(float(np.mean(e)), 4) for t, e in errors.items() if e}
    exact = exact_check(docs, rng, ngram) if "dolma-tools" in loaded else None
    worst = {t: round(float(np.max(e)), 4) for t, e in errors.items() if e}
    status = "Jaccard MAE " + ", ".join(f"{t} {v}" for t, v in mae.items())
    if exact:
        status += f"; dolma-tools = datasketch(hashfunc=shingle_hash) on {exact['equal']}/{exact['documents']} documents"
    return {"status": status, "exact_vs_datasketch": exact,
            "pairs": len(pairs), "jaccard_mae": mae, "jaccard_max_error": worst,
            "documents": {t: len(s) for t, s in loaded.items()}}


def exact_check(docs, rng: random.Random, ngram: int, n: int = 100, num_perm: int = 128,
                seed: int = 1) -> dict | None:
    """dolma-tools' signatures are documented to equal datasketch's MinHash fed its shingle hash:
    check that on a sample of documents."""
    try:
        from datasketch import MinHash

        from dolma_tools.dedupe.minhash import shingle_hash, shingles_of, signatures
    except ImportError:
        return None
    sample = [docs[rng.randrange(len(docs))][1] for _ in range(min(n, len(docs)))]
    ours, _ = signatures(sample, num_perm=num_perm, seed=seed, ngram_size=ngram)
    equal = 0
    for text, sig in zip(sample, ours):
        m = MinHash(num_perm=num_perm, seed=seed, hashfunc=shingle_hash, scheme="affine32")
        m.update_batch(shingles_of(text, ngram))
        equal += bool(np.array_equal(np.asarray(m.hashvalues, dtype=np.uint64), sig.astype(np.uint64)))
    return {"documents": len(sample), "equal": equal}


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--impl", choices=sorted(IMPLS), required=True)
    ap.add_argument("--workers", type=int, default=1)
    ap.add_argument("--num-perm", type=int, default=128)
    ap.add_argument("--ngram", type=int, default=5)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--out", required=True)
    ap.add_argument("documents", nargs="+")
    args = ap.parse_args(argv)
    files = sorted({f for pattern in args.documents for f in glob.glob(pattern)})
    if not files:
        raise SystemExit(f"no files match {args.documents}")
    start = time.perf_counter()
    ids, sigs = run(args.impl, files, args.workers, args.num_perm, args.ngram, args.seed)
    elapsed = time.perf_counter() - start
    np.savez(args.out, ids=np.array(ids), sigs=sigs)
    print(json.dumps({"impl": args.impl, "documents": len(ids), "seconds": round(elapsed, 3)}))


if __name__ == "__main__":
    main()
