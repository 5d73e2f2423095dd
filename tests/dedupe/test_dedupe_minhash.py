"""MinHash-LSH near-duplicates: datasketch-equal signatures, planted copies found, nothing else."""

from __future__ import annotations

import gzip
import json
import sys
from pathlib import Path

import numpy as np
import pytest

from dolma_tools.config import build_config
from dolma_tools.dedupe import minhash as mh
from dolma_tools.dedupe.config import DedupeConfig
from dolma_tools.dedupe.runner import run_dedupe

sys.path.insert(0, str(Path(__file__).parent))
from planted import REVIEWS, make_planted  # noqa: E402

TEXTS = ["Hello world this is a test of the minhash thing ok", "", "   \n ", "short one",
         "Café crème — naïve résumé\nand   more words here for shingles, yes!", "a b c d e f g h",
         "UPPER lower MiXeD case words are lowercased before shingling by default"]


@pytest.mark.parametrize("num_perm,seed,ngram", [(128, 1, 5), (64, 42, 3), (16, 7, 1)])
def test_signatures_equal_datasketch(num_perm: int, seed: int, ngram: int) -> None:
    from datasketch import LeanMinHash, MinHash

    sig, has = mh.signatures(TEXTS, num_perm=num_perm, seed=seed, ngram_size=ngram, chunk_shingles=7)
    assert has.tolist() == [True, False, False, True, True, True, True]
    for text, row in zip(TEXTS, sig):
        ref = MinHash(num_perm=num_perm, seed=seed, hashfunc=mh.shingle_hash)
        ref.update_batch(mh.shingles_of(text, ngram))
        assert np.array_equal(ref.hashvalues, row)
        lean = mh.to_lean_minhash(row, seed)
        assert isinstance(lean, LeanMinHash) and lean.jaccard(LeanMinHash(ref)) == 1.0


def test_bands_from_datasketch_search() -> None:
    from datasketch.lsh import _optimal_param

    assert mh.choose_bands(128, 0.8) == tuple(_optimal_param(0.8, 128, 0.5, 0.5))
    assert mh.choose_bands(128, 0.8, bands=16, rows=8) == (16, 8)


def test_clusters_keep_lowest_index() -> None:
    edges = np.array([[3, 1], [5, 3], [4, 2]])
    assert mh.connected_clusters(6, edges).tolist() == [0, 1, 2, 1, 2, 1]


def _read(root: Path, name: str) -> dict[str, dict]:
    out = {}
    for path in sorted((root / "attributes" / name).rglob("*.jsonl.gz")):
        with gzip.open(path, "rt") as fh:
            for line in fh:
                rec = json.loads(line)
                out[rec["id"]] = rec["attributes"]
    return out


def test_planted_near_duplicates(dev_corpus: Path, tmp_path: Path) -> None:
    docs, copies, originals = make_planted(str(dev_corpus / REVIEWS), tmp_path, n_base=300, n_copies=60)
    cfg = build_config(DedupeConfig, None, [
        "--documents", str(tmp_path / "documents/*/*.jsonl.gz"), "--dedupe.name", "near",
        "--dedupe.minhash.jaccard_threshold", "0.6", "--debug"])
    summary = run_dedupe(cfg, progress=False)
    attrs = _read(tmp_path, "near")
    flagged = {i for i, a in attrs.items() if "minhash_duplicate" in a}
    recall = len(flagged & copies) / len(copies)
    assert recall >= 0.9
    # anything else flagged is a real near-duplicate of its cluster's kept document
    texts = {d["id"]: d["text"] for d in docs}
    kept = {a["minhash_cluster"][0][2]: i for i, a in attrs.items()
            if "minhash_cluster" in a and "minhash_duplicate" not in a}
    order = [d["id"] for d in docs]
    for doc_id in flagged - copies:
        rep = order[attrs[doc_id]["minhash_cluster"][0][2]]
        a, b = set(mh.shingles_of(texts[doc_id], 5)), set(mh.shingles_of(texts[rep], 5))
        assert len(a & b) / len(a | b) > 0.8
    for doc_id in flagged:
        assert attrs[doc_id]["minhash_duplicate"] == [[0, len(texts[doc_id]), 1]]
    assert set(kept.values()).isdisjoint(flagged)
    stats = summary.extra["minhash"]
    assert stats["documents_flagged"] == len(flagged)
    assert stats["per_source"]["copies"]["documents"] == len(flagged & copies)
    # exact Jaccard verification of candidate pairs keeps the true pairs (J ~ 0.82 > 0.6)
    verified = run_dedupe(build_config(DedupeConfig, None, [
        "--documents", str(tmp_path / "documents/*/*.jsonl.gz"), "--dedupe.name", "verified",
        "--dedupe.minhash.jaccard_threshold", "0.6", "--dedupe.minhash.verify", "--debug"]), progress=False)
    v = verified.extra["minhash"]
    assert v["verified_pairs"] <= v["candidate_pairs"] == stats["candidate_pairs"]
    assert {i for i, a in _read(tmp_path, "verified").items() if "minhash_duplicate" in a} == flagged


def test_agrees_with_datasketch_lsh(dev_corpus: Path, tmp_path: Path) -> None:
    from datasketch import MinHash, MinHashLSH

    docs, copies, _ = make_planted(str(dev_corpus / REVIEWS), tmp_path, n_base=60, n_copies=15, seed=3)
    cfg = build_config(DedupeConfig, None, [
        "--documents", str(tmp_path / "documents/*/*.jsonl.gz"), "--dedupe.name", "near",
        "--dedupe.minhash.jaccard_threshold", "0.6", "--debug"])
    run_dedupe(cfg, progress=False)
    ours = {i for i, a in _read(tmp_path, "near").items() if "minhash_duplicate" in a}
    lsh = MinHashLSH(threshold=0.6, num_perm=128)
    theirs = set()
    for doc in docs:  # first seen wins, in document order, as ours
        m = MinHash(num_perm=128, seed=1, hashfunc=mh.shingle_hash)
        m.update_batch(mh.shingles_of(doc["text"], 5))
        if lsh.query(m):
            theirs.add(doc["id"])
        lsh.insert(doc["id"], m)
    assert ours == theirs
    assert len(ours & copies) >= 0.9 * len(copies)
