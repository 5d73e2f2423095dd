"""Deterministic mode: the same flags for any worker count, on one machine or a 2-node Ray cluster."""

from __future__ import annotations

import gzip
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

from dolma_tools.config import build_config
from dolma_tools.dedupe.config import DedupeConfig
from dolma_tools.dedupe.runner import run_dedupe

sys.path.insert(0, str(Path(__file__).parent))
from dedupe_helpers import read_all  # noqa: E402

SOURCES = ("news/news-0000.json.gz", "forums/forums-0000.json.gz", "speeches/speeches-0000.json.gz")


def make_corpus(dev_corpus: Path, root: Path) -> None:
    """Three real files plus a fourth made of paragraphs copied from them (cross-file duplicates)."""
    docs_dir = root / "documents"
    docs_dir.mkdir(parents=True)
    copied = []
    for i, rel in enumerate(SOURCES):
        target = docs_dir / f"part-{i}.jsonl.gz"
        shutil.copy(dev_corpus / rel, target)
        with gzip.open(target, "rt") as fh:
            for j, line in zip(range(40), fh):
                if j % 4 == 0:
                    copied.append(json.loads(line)["text"])
    with gzip.open(docs_dir / "part-3.jsonl.gz", "wt") as fh:
        for j in range(0, len(copied) - 1, 2):
            fh.write(json.dumps({"id": f"mix-{j}", "text": copied[j] + "\n" + copied[j + 1]}) + "\n")


def dedupe_args(root: Path, name: str) -> list[str]:
    return ["--documents", str(root / "documents/*.jsonl.gz"), "--dedupe.name", name,
            "--dedupe.paragraphs.attribute_name", "dup", "--dedupe.minhash.jaccard_threshold", "0.7",
            "--bloom_filter.size_in_bytes", str(1 << 20), "--bloom_filter.partitions", "2",
            "--bloom_filter.file", str(root / f"{name}.bin")]


def test_same_flags_for_any_worker_count(dev_corpus: Path, tmp_path: Path, ray_session) -> None:
    make_corpus(dev_corpus, tmp_path)
    run_dedupe(build_config(DedupeConfig, None, dedupe_args(tmp_path, "local") + ["--debug"]), progress=False)
    run_dedupe(build_config(DedupeConfig, None, dedupe_args(tmp_path, "ray")), progress=False)
    local, on_ray = read_all(tmp_path, "local"), read_all(tmp_path, "ray")
    assert local == on_ray and len(local) == 4
    assert any('"dup":[[' in line for line in local["part-3.jsonl.gz"])
    assert (tmp_path / "local.bin").read_bytes() == (tmp_path / "ray.bin").read_bytes()
    # as files finish (Dolma-like order): which copy is flagged may change, how many may not
    run_dedupe(build_config(DedupeConfig, None, dedupe_args(tmp_path, "unordered")
                            + ["--no-dedupe.deterministic"]), progress=False)

    def flagged_paragraphs(name: str) -> int:
        return sum(len(json.loads(line)["attributes"].get("dup", []))
                   for lines in read_all(tmp_path, name).values() for line in lines)

    assert flagged_paragraphs("unordered") == flagged_paragraphs("ray") > 0


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _stop(procs: list[subprocess.Popen]) -> None:
    """Stop the `ray start --block` processes we started (and their process groups), by id."""
    for proc in procs:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGTERM)
    deadline = time.time() + 40
    for proc in procs:
        try:
            proc.wait(max(1, deadline - time.time()))
        except subprocess.TimeoutExpired:
            pass
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass


def _probe(code: str, env: dict) -> bool:
    try:
        return subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, timeout=60).returncode == 0
    except subprocess.TimeoutExpired:
        return False


@pytest.mark.slow
def test_two_node_cluster_matches_local_run(dev_corpus: Path, tmp_path: Path) -> None:
    make_corpus(dev_corpus, tmp_path)
    run_dedupe(build_config(DedupeConfig, None, dedupe_args(tmp_path, "local") + ["--debug"]), progress=False)
    env = dict(os.environ, RAY_AUTH_MODE="disabled", RAY_ENABLE_UV_RUN_RUNTIME_ENV="0")
    env.pop("RAY_ADDRESS", None)
    port = _free_port()
    ray_bin = str(Path(sys.executable).parent / "ray")
    common = ["--num-cpus", "1", "--object-store-memory", str(100 * 2**20), "--block"]
    procs = []
    ray_tmp = tempfile.mkdtemp(prefix="dtray", dir="/tmp")  # short: Ray's socket paths have a length limit
    try:
        procs.append(subprocess.Popen([ray_bin, "start", "--head", f"--port={port}", "--include-dashboard=false",
                                       "--temp-dir", ray_tmp, *common],
                                      env=env, start_new_session=True, stdout=subprocess.DEVNULL,
                                      stderr=subprocess.DEVNULL))
        address = f"127.0.0.1:{port}"
        probe = ("import ray, sys, time\n"
                 f"ray.init(address='{address}', logging_level='ERROR')\n"
                 "sys.exit(0 if len([n for n in ray.nodes() if n['Alive']]) >= 2 else 3)\n")
        deadline = time.time() + 120
        joined = False
        while time.time() < deadline:
            if len(procs) == 1:
                ok = _probe(probe.replace(">= 2", ">= 1"), env)
                if ok:
                    procs.append(subprocess.Popen([ray_bin, "start", "--address", address, *common], env=env,
                                                  start_new_session=True, stdout=subprocess.DEVNULL,
                                                  stderr=subprocess.DEVNULL))
            elif _probe(probe, env):
                joined = True
                break
            time.sleep(2)
        assert joined, "the 2-node loopback Ray cluster did not come up"
        result = subprocess.run([sys.executable, "-m", "dolma_tools", "dedupe", *dedupe_args(tmp_path, "cluster"),
                                 "--ray_address", address], env=env, capture_output=True, text=True, timeout=300)
        assert result.returncode == 0, result.stderr[-3000:]
    finally:
        _stop(procs)
        shutil.rmtree(ray_tmp, ignore_errors=True)
    assert read_all(tmp_path, "local") == read_all(tmp_path, "cluster")
    assert (tmp_path / "local.bin").read_bytes() == (tmp_path / "cluster.bin").read_bytes()
