"""Dedupe throughput: ours vs Dolma 1.2.1's Rust deduper, datasketch and rensa (same data, same machine).

    python -m dolma_tools.dedupe.benchmark --corpus /path/to/dev/documents --work /tmp/dedupe-bench \
        [--dolma /work/dolma-venv/bin/dolma] [--copies 2]

Paragraph dedupe: the corpus files are copied `copies` times (ids suffixed, texts unchanged, so
later copies are duplicates) under WORK/corpus/documents/, then deduplicated by paragraph with a
1e-3 false-positive filter by Dolma (processes 1 and 2) and by us (2 Ray workers), timing whole
commands. MinHash: signatures per second on one core for the same shingles (5 words, 128
permutations), and the planted-copy detection of each at the same bands/rows.
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path


def build_corpus(source: Path, work: Path, copies: int) -> Path:
    root = work / "corpus"
    docs = root / "documents"
    if docs.is_dir():
        return root
    docs.mkdir(parents=True)
    for c in range(copies):
        for path in sorted(source.rglob("*.gz")):
            target = docs / f"{path.parent.name}-{path.name.split('.')[0]}-copy{c}.jsonl.gz"
            with gzip.open(path, "rt") as src, gzip.open(target, "wt", compresslevel=6) as dst:
                for line in src:
                    doc = json.loads(line)
                    doc["id"] = f"{doc['id']}-{c}"
                    dst.write(json.dumps(doc) + "\n")
    return root


def dolma_config(root: Path, name: str, processes: int) -> dict:
    return {"documents": [str(root / "documents" / "*.jsonl.gz")],
            "dedupe": {"name": name, "paragraphs": {"attribute_name": "bff_duplicate_paragraph_spans"}},
            "bloom_filter": {"file": str(root / f"{name}.bin"), "read_only": False,
                             "estimated_doc_count": 1_000_000, "desired_false_positive_rate": 0.001},
            "processes": processes}


def timed(cmd: list[str], env: dict | None = None) -> float:
    start = time.perf_counter()
    subprocess.run(cmd, check=True, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return time.perf_counter() - start


def bench_paragraphs(root: Path, dolma: str | None) -> dict:
    size = sum(p.stat().st_size for p in (root / "documents").glob("*.gz"))
    docs = sum(1 for p in (root / "documents").glob("*.gz") for _ in gzip.open(p))
    out: dict = {"documents": docs, "compressed_bytes": size}
    runs = []
    if dolma:
        runs += [(f"dolma_1.2.1_p{p}", [dolma, "-c", "{cfg}", "dedupe"], p) for p in (1, 2)]
    runs += [("ours_ray_2_workers", [sys.executable, "-m", "dolma_tools", "-c", "{cfg}", "dedupe"], 2),
             ("ours_in_process", [sys.executable, "-m", "dolma_tools", "-c", "{cfg}", "dedupe", "--debug"], 1)]
    cluster = start_cluster(2)
    runs.append(("ours_2_workers_on_running_ray", [sys.executable, "-m", "dolma_tools", "-c", "{cfg}", "dedupe",
                                                   "--ray_address", cluster[1]], 2))
    try:
        _run_all(root, runs, docs, out)
    finally:
        stop_cluster(cluster[0])
    return out


def start_cluster(cpus: int) -> tuple[subprocess.Popen, str]:
    """A `ray start --head --block` of our own (stopped by its process group id)."""
    import socket
    import tempfile

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = dict(os.environ, RAY_AUTH_MODE="disabled")
    proc = subprocess.Popen([str(Path(sys.executable).parent / "ray"), "start", "--head", f"--port={port}",
                             "--num-cpus", str(cpus), "--include-dashboard=false", "--block",
                             "--temp-dir", tempfile.mkdtemp(prefix="dtbench", dir="/tmp")],
                            env=env, start_new_session=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    address = f"127.0.0.1:{port}"
    for _ in range(60):
        ok = subprocess.run([sys.executable, "-c", f"import ray; ray.init(address='{address}')"], env=env,
                            capture_output=True, timeout=120).returncode == 0
        if ok:
            break
        time.sleep(2)
    os.environ["RAY_AUTH_MODE"] = "disabled"
    return proc, address


def stop_cluster(proc: subprocess.Popen) -> None:
    import signal

    os.killpg(proc.pid, signal.SIGTERM)
    try:
        proc.wait(60)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)


def _run_all(root: Path, runs: list, docs: int, out: dict) -> None:
    for name, cmd, processes in runs:
        shutil.rmtree(root / "attributes", ignore_errors=True)
        for f in root.glob("*.bin"):
            f.unlink()
        cfg_path = root / f"{name}.json"
        cfg_path.write_text(json.dumps(dolma_config(root, name, processes)))
        seconds = timed([c.replace("{cfg}", str(cfg_path)) for c in cmd])
        out[name] = {"seconds": round(seconds, 2), "docs_per_s": round(docs / seconds)}
        print(name, out[name], flush=True)


def bench_minhash(source: Path, work: Path) -> dict:
    import numpy as np
    from datasketch import MinHash
    from rensa import RMinHash

    from dolma_tools.dedupe import minhash as mh

    texts = []
    for path in sorted(source.rglob("*.gz")):
        with gzip.open(path, "rt") as fh:
            texts.extend(json.loads(line)["text"] for line in fh)
    texts = texts[:3000]
    out: dict = {"documents": len(texts)}

    def python_shingles(text: str) -> list[str]:  # the cheapest way a peer's user would shingle
        words = text.lower().split()
        if len(words) < 5:
            return [" ".join(words)] if words else []
        return [" ".join(words[i:i + 5]) for i in range(len(words) - 4)]

    def best_of(fn, repeats: int = 3) -> float:
        times = []
        for _ in range(repeats):
            start = time.perf_counter()
            fn()
            times.append(time.perf_counter() - start)
        return min(times)

    def ours():
        for i in range(0, len(texts), 1000):
            mh.signatures(texts[i:i + 1000], 128, 1, 5)

    def datasketch_sha1():
        for text in texts[:500]:
            m = MinHash(num_perm=128, seed=1)
            m.update_batch([s.encode() for s in python_shingles(text)])

    def rensa_full():
        for text in texts:
            m = RMinHash(num_perm=128, seed=1)
            m.update(python_shingles(text))
            m.digest()

    pre = [python_shingles(t) for t in texts]

    def rensa_pre():
        for sh in pre:
            m = RMinHash(num_perm=128, seed=1)
            m.update(sh)
            m.digest()

    out["ours_docs_per_s"] = round(len(texts) / best_of(ours))
    out["datasketch_docs_per_s"] = round(500 / best_of(datasketch_sha1, 1))
    out["rensa_docs_per_s_with_python_shingling"] = round(len(texts) / best_of(rensa_full))
    out["rensa_docs_per_s_pre_shingled"] = round(len(texts) / best_of(rensa_pre))
    del np
    print("minhash", out, flush=True)
    return out


def bench_detection(source: Path, work: Path) -> dict:
    """Planted copies (2% of words changed): flags of ours, datasketch (same hash) and rensa."""
    import numpy as np
    from datasketch import MinHash, MinHashLSH
    from rensa import RMinHash

    from dolma_tools.dedupe import minhash as mh

    sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "tests" / "dedupe"))
    from planted import REVIEWS, make_planted

    root = work / "planted"
    shutil.rmtree(root, ignore_errors=True)
    docs, copies, _ = make_planted(str(source / REVIEWS), root, n_base=600, n_copies=150, seed=11)
    texts = [d["text"] for d in docs]
    ids = [d["id"] for d in docs]
    bands, rows = mh.choose_bands(128, 0.6)
    sig, has = mh.signatures(texts, 128, 1, 5)
    keys = mh.band_hashes(sig, bands, rows)
    doc_ids = np.flatnonzero(has)
    cluster = mh.connected_clusters(len(texts), mh.candidate_edges(keys[doc_ids], doc_ids))
    ours = {ids[i] for i in range(len(ids)) if cluster[i] != i}

    def first_seen(make):
        lsh = MinHashLSH(threshold=0.6, num_perm=128)
        flagged = set()
        for doc_id, text in zip(ids, texts):
            m = make(text)
            if lsh.query(m):
                flagged.add(doc_id)
            lsh.insert(doc_id, m)
        return flagged

    def ds(text):
        m = MinHash(num_perm=128, seed=1, hashfunc=mh.shingle_hash)
        m.update_batch(mh.shingles_of(text, 5))
        return m

    def rs(text):
        r = RMinHash(num_perm=128, seed=1)
        r.update([b" ".join(s).decode() for s in mh.shingles_of(text, 5)])
        return MinHash(num_perm=128, hashvalues=np.array(r.digest(), dtype=np.uint32), scheme="affine32")

    theirs, rensa = first_seen(ds), first_seen(rs)
    out = {"bands": bands, "rows": rows, "planted": len(copies),
           "ours_recall": round(len(ours & copies) / len(copies), 3), "ours_other_flags": len(ours - copies),
           "datasketch_recall": round(len(theirs & copies) / len(copies), 3),
           "datasketch_other_flags": len(theirs - copies), "ours_equal_datasketch": ours == theirs,
           "rensa_recall": round(len(rensa & copies) / len(copies), 3), "rensa_other_flags": len(rensa - copies)}
    print("detection", out, flush=True)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--corpus", default=os.environ.get("DOLMA_TOOLS_DEV_CORPUS", "../shared/corpora/dev/documents"))
    parser.add_argument("--work", default="/tmp/dedupe-bench")
    parser.add_argument("--dolma", default="/work/dolma-venv/bin/dolma" if Path("/work/dolma-venv/bin/dolma").exists() else None)
    parser.add_argument("--copies", type=int, default=2)
    parser.add_argument("--only", choices=["paragraphs", "minhash", "detection"], default=None)
    args = parser.parse_args()
    source, work = Path(args.corpus), Path(args.work)
    work.mkdir(parents=True, exist_ok=True)
    results = {}
    if args.only in (None, "paragraphs"):
        results["paragraphs"] = bench_paragraphs(build_corpus(source, work, args.copies), args.dolma)
    if args.only in (None, "minhash"):
        results["minhash"] = bench_minhash(source, work)
    if args.only in (None, "detection"):
        results["detection"] = bench_detection(source, work)
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
