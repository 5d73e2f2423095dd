"""Faults: a Ray worker killed mid-task, S3 going away and coming back, S3 gone for good."""

from __future__ import annotations

import os
import signal
import threading
import time
from pathlib import Path

import pytest

from dolma_tools.taggers.runner import TagConfig, run_tag
from tests.foundation.helpers import read_jsonl_gz, tree_bytes, write_jsonl_gz

PID_TAGGER = (
    "import os, time\n"
    "from dolma_tools.taggers import Tagger, register\n"
    "@register('pid_recording_length_v1', 'char length; records the worker pid (fault tests)')\n"
    "class PidRecording(Tagger):\n"
    "    def tag(self, doc):\n"
    "        d = os.environ['DOLMA_TOOLS_PID_DIR']\n"
    "        open(os.path.join(d, f'{os.getpid()}.pid'), 'w').close()\n"
    "        time.sleep(0.05)\n"
    "        return {'length': [(0, len(doc.text), len(doc.text))]}\n")


def make_corpus(root: Path, files: int = 4, docs: int = 40) -> Path:
    for f in range(files):
        write_jsonl_gz(root / "documents" / f"p{f}.jsonl.gz",
                       [{"id": f"{f}-{i}", "text": f"text {i} " * (i + 1), "source": "s"} for i in range(docs)])
    return root / "documents"


def test_sigkill_of_a_ray_worker_mid_task_is_retried(tmp_path: Path, ray_session, monkeypatch):
    module = tmp_path / "pidtagger.py"
    module.write_text(PID_TAGGER)
    pid_dir = tmp_path / "pids"
    pid_dir.mkdir()
    monkeypatch.setenv("DOLMA_TOOLS_PID_DIR", str(pid_dir))   # DOLMA_TOOLS_* variables reach the workers
    faulty, clean = make_corpus(tmp_path / "faulty"), make_corpus(tmp_path / "clean")

    def cfg(docs: Path) -> TagConfig:
        return TagConfig(documents=[f"{docs}/*.jsonl.gz"], taggers=["pid_recording_length_v1"], experiment="e",
                         tagger_modules=[str(module)], processes=2, retries=3, batch_size=5)

    outcome: dict = {}
    runner = threading.Thread(target=lambda: outcome.setdefault("summary", run_tag(cfg(faulty), progress=False)))
    runner.start()
    deadline = time.time() + 60
    while time.time() < deadline and not list(pid_dir.glob("*.pid")):
        time.sleep(0.02)
    victims = [int(p.stem) for p in pid_dir.glob("*.pid")]
    assert victims, "no worker started tagging"
    os.kill(victims[0], signal.SIGKILL)
    runner.join(timeout=120)
    assert outcome["summary"].files == 4 and outcome["summary"].files_failed == 0
    run_tag(cfg(clean), progress=False)
    assert tree_bytes(faulty.parent / "attributes") == tree_bytes(clean.parent / "attributes")


@pytest.fixture
def moto_server(monkeypatch):
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    endpoint = f"http://{host}:{port}"
    for key, value in {"AWS_ENDPOINT_URL": endpoint, "AWS_ACCESS_KEY_ID": "testing",
                       "AWS_SECRET_ACCESS_KEY": "testing", "AWS_REGION": "us-east-1",
                       "DOLMA_TOOLS_S3_MAX_ATTEMPTS": "6"}.items():
        monkeypatch.setenv(key, value)
    import boto3

    client = boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1")
    client.create_bucket(Bucket="corpus")
    state = {"server": server, "port": port, "client": client}
    yield state
    state["server"].stop()


def _upload(client, docs: Path) -> None:
    for path in sorted(docs.glob("*.jsonl.gz")):
        client.upload_file(str(path), "corpus", f"ds/documents/{path.name}")


def test_s3_outage_mid_run_is_retried_with_backoff(tmp_path: Path, moto_server):
    from moto.server import ThreadedMotoServer

    docs = make_corpus(tmp_path, files=6, docs=200)
    _upload(moto_server["client"], docs)
    cfg = TagConfig(documents=["s3://corpus/ds/documents/*.jsonl.gz"], taggers=["char_length_v1"],
                    experiment="e", debug=True)

    def outage() -> None:
        time.sleep(0.3)
        moto_server["server"].stop()
        time.sleep(1.5)
        restarted = ThreadedMotoServer(ip_address="127.0.0.1", port=moto_server["port"], verbose=False)
        restarted.start()
        moto_server["server"] = restarted

    blip = threading.Thread(target=outage)
    blip.start()
    summary = run_tag(cfg, progress=False)
    blip.join()
    assert summary.files == 6 and summary.documents == 1200 and summary.files_failed == 0
    client = moto_server["client"]
    for f in range(6):
        key = f"ds/attributes/e/p{f}.jsonl.gz"
        client.download_file("corpus", key, str(tmp_path / "got.gz"))
        assert len(read_jsonl_gz(tmp_path / "got.gz")) == 200


def test_s3_gone_for_good_fails_clearly_naming_the_object(tmp_path: Path, moto_server, monkeypatch):
    docs = make_corpus(tmp_path, files=1, docs=5)
    _upload(moto_server["client"], docs)
    monkeypatch.setenv("DOLMA_TOOLS_S3_MAX_ATTEMPTS", "2")
    from dolma_tools.io import s3

    s3._client.cache_clear()
    cfg = TagConfig(documents=["s3://corpus/ds/documents/*.jsonl.gz"], taggers=["char_length_v1"],
                    experiment="e", debug=True)
    import dolma_tools.io.paths as paths

    real_expand = paths.expand_globs
    monkeypatch.setattr("dolma_tools.taggers.runner.expand_globs",
                        lambda patterns: real_expand(patterns))  # list while the server is up
    inputs = real_expand(cfg.documents)
    moto_server["server"].stop()
    monkeypatch.setattr("dolma_tools.taggers.runner.expand_globs", lambda patterns: inputs)
    with pytest.raises(Exception) as info:
        run_tag(cfg, progress=False)
    assert "s3://corpus/ds/documents/p0.jsonl.gz" in str(info.value) or "corpus/ds" in str(info.value)
    s3._client.cache_clear()
