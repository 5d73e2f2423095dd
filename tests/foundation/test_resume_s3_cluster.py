"""Resume after kill -9, S3 through a real moto server, and a 2-node Ray cluster on loopback."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

from tests.foundation.helpers import VENV_BIN, dolma, read_jsonl_gz, tree_bytes, write_jsonl_gz

SLOW_TAGGER = (
    "import time\n"
    "from dolma_tools.taggers import Tagger, register\n"
    "@register('slow_length_v1', 'char length, slowly (for kill tests)')\n"
    "class Slow(Tagger):\n"
    "    def tag(self, doc):\n"
    "        time.sleep(0.02)\n"
    "        return {'length': [(0, len(doc.text), len(doc.text))]}\n")


def make_corpus(root: Path, files: int, docs_per_file: int) -> Path:
    documents = root / "documents"
    for f in range(files):
        write_jsonl_gz(documents / f"part-{f:03d}.jsonl.gz",
                       [{"id": f"{f}-{i}", "text": f"document {i} of file {f} " * (1 + i % 7), "source": "synthetic"}
                        for i in range(docs_per_file)])
    return documents


def test_kill_minus_9_then_rerun_gives_identical_outputs(tmp_path: Path):
    module = tmp_path / "slow.py"
    module.write_text(SLOW_TAGGER)
    killed = make_corpus(tmp_path / "killed", files=12, docs_per_file=25)
    clean = make_corpus(tmp_path / "clean", files=12, docs_per_file=25)
    argv = ["tag", "--taggers", "slow_length_v1", "random_number_v1", "--experiment", "e",
            "--tagger_modules", str(module), "--processes", "1"]

    proc = subprocess.Popen([str(VENV_BIN / "dolma"), *argv, "--documents", f"{killed}/*.jsonl.gz"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    out_dir = killed.parent / "attributes" / "e"
    deadline = time.time() + 120
    while time.time() < deadline and len(list(out_dir.glob("*.jsonl.gz"))) < 2:
        time.sleep(0.1)
    os.killpg(proc.pid, signal.SIGKILL)                 # the driver and its Ray workers, at once
    proc.wait()
    done_before = len(list(out_dir.glob("*.jsonl.gz")))
    assert 2 <= done_before < 12, "the kill must land mid-run"

    assert dolma(*argv, "--documents", f"{killed}/*.jsonl.gz").returncode == 0
    assert dolma(*argv, "--documents", f"{clean}/*.jsonl.gz").returncode == 0
    killed_tree, clean_tree = tree_bytes(out_dir), tree_bytes(clean.parent / "attributes" / "e")
    assert sorted(killed_tree) == sorted(clean_tree) == [f"part-{f:03d}.jsonl.gz" for f in range(12)]
    assert killed_tree == clean_tree                      # byte-identical, no partial or .tmp files


def test_tag_reads_and_writes_s3(s3_server, demo_copy: Path, ray_session):
    client = s3_server
    client.create_bucket(Bucket="corpus")
    for path in sorted(demo_copy.glob("*/*.json.gz")):
        client.upload_file(str(path), "corpus", f"ds/documents/{path.parent.name}/{path.name}")
    from dolma_tools.taggers.runner import TagConfig, run_tag

    summary = run_tag(TagConfig(documents=["s3://corpus/ds/documents/**/*.json.gz"], taggers=["char_length_v1"],
                                experiment="e", processes=2), progress=False)
    assert summary.files == 3 and summary.documents == 399
    keys = sorted(o["Key"] for o in client.list_objects_v2(Bucket="corpus", Prefix="ds/attributes/")["Contents"])
    assert keys == ["ds/attributes/e/.dolma-tools-tag-settings.json", "ds/attributes/e/.summary-tag.json",
                    "ds/attributes/e/multilingual/udhr-0000.json.gz",
                    "ds/attributes/e/speeches/speeches-0000.json.gz", "ds/attributes/e/web/web-0000.json.gz"]
    local = tmp = demo_copy.parent / "fetched.json.gz"
    client.download_file("corpus", "ds/attributes/e/web/web-0000.json.gz", str(tmp))
    docs = read_jsonl_gz(demo_copy / "web" / "web-0000.json.gz")
    assert [a["attributes"]["e__char_length_v1__length"][0][2] for a in read_jsonl_gz(local)] == \
        [float(len(d["text"])) for d in docs]
    # resume works on S3 too: outputs exist, nothing is redone
    again = run_tag(TagConfig(documents=["s3://corpus/ds/documents/**/*.json.gz"], taggers=["char_length_v1"],
                              experiment="e", processes=2), progress=False)
    assert again.files_skipped_existing == 3


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_two_node_ray_cluster_on_loopback(tmp_path: Path, demo_copy: Path):
    ray_bin = str(VENV_BIN / "ray")
    port = _free_port()
    env = {**os.environ, "RAY_ENABLE_UV_RUN_RUNTIME_ENV": "0"}
    common = ["--num-cpus", "1", "--disable-usage-stats", "--block", "--object-store-memory", str(200 * 1024 * 1024)]
    head = subprocess.Popen([ray_bin, "start", "--head", "--node-ip-address", "127.0.0.1", "--port", str(port),
                             "--include-dashboard", "false", *common], env=env, start_new_session=True,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    workers = []
    try:
        time.sleep(6)
        workers.append(subprocess.Popen([ray_bin, "start", "--address", f"127.0.0.1:{port}",
                                         "--node-ip-address", "127.0.0.1", *common], env=env, start_new_session=True,
                                        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
        check = ("import ray,time,sys; ray.init(address=sys.argv[1]);\n"
                 "t=time.time()\n"
                 "while len([n for n in ray.nodes() if n['Alive']])<2 and time.time()-t<60: time.sleep(0.5)\n"
                 "print(len([n for n in ray.nodes() if n['Alive']]))")
        nodes = subprocess.run([sys.executable, "-c", check, f"127.0.0.1:{port}"], capture_output=True, text=True,
                               env=env, timeout=120)
        assert nodes.stdout.strip().splitlines()[-1] == "2", nodes.stderr
        local = tmp_path / "local"
        shutil.copytree(demo_copy, local / "documents")
        argv = ["tag", "--taggers", "char_length_v1", "random_number_v1", "--experiment", "e"]
        on_cluster = dolma(*argv, "--documents", f"{demo_copy}/*/*.json.gz", "--ray_address", f"127.0.0.1:{port}",
                           env={"RAY_ENABLE_UV_RUN_RUNTIME_ENV": "0"})
        assert on_cluster.returncode == 0, on_cluster.stderr
        assert dolma(*argv, "--documents", f"{local}/documents/*/*.json.gz", "--processes", "2").returncode == 0
        assert tree_bytes(demo_copy.parent / "attributes") == tree_bytes(local / "attributes")
    finally:
        for proc in [*workers, head]:
            try:
                os.killpg(proc.pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
        for proc in [*workers, head]:
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
