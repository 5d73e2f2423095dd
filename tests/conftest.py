"""Shared fixtures: the dev corpus, a small copy of it, and one Ray session for the whole run."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("DOLMA_TOOLS_SHARED", ROOT.parent / "shared"))
DEV_CORPUS = SHARED / "corpora" / "dev" / "documents"
DEMO_CORPUS = ROOT / "demo" / "corpus" / "documents"
DATA = ROOT / "tests" / "data"

# Triton chooses its interpreter at import time: without a GPU, run kernels on the CPU interpreter.
if not (os.path.exists("/dev/nvidia0") or os.path.exists("/dev/kfd")):
    os.environ.setdefault("TRITON_INTERPRET", "1")
os.environ.setdefault("DOLMA_TOOLS_RAY_OBJECT_STORE_BYTES", str(256 * 1024 * 1024))
os.environ.setdefault("RAY_DEDUP_LOGS", "0")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


@pytest.fixture(scope="session")
def dev_corpus() -> Path:
    """`../shared/corpora/dev/documents` (real public text in Dolma format)."""
    if not DEV_CORPUS.is_dir():
        pytest.fail(f"the dev corpus is missing: {DEV_CORPUS} (set DOLMA_TOOLS_SHARED)")
    return DEV_CORPUS


@pytest.fixture
def demo_copy(tmp_path: Path) -> Path:
    """A writable copy of the bundled demo corpus: `<tmp>/corpus/documents/{speeches,multilingual,web}`."""
    target = tmp_path / "corpus" / "documents"
    shutil.copytree(DEMO_CORPUS, target)
    return target


@pytest.fixture(scope="session")
def ray_session():
    """One embedded Ray (2 CPUs) shared by every test that needs real Ray."""
    import ray

    if not ray.is_initialized():
        ray.init(address="local", num_cpus=2, include_dashboard=False, configure_logging=False,
                 object_store_memory=256 * 1024 * 1024)
    yield ray


@pytest.fixture
def s3_server(monkeypatch):
    """A real S3 protocol endpoint (moto's server on 127.0.0.1); yields a boto3 client for it.

    The AWS_* variables point dolma-tools (and Ray workers, which get them forwarded) at it.
    """
    import boto3
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    endpoint = f"http://{host}:{port}"
    for key, value in {"AWS_ENDPOINT_URL": endpoint, "AWS_ACCESS_KEY_ID": "testing",
                       "AWS_SECRET_ACCESS_KEY": "testing", "AWS_REGION": "us-east-1"}.items():
        monkeypatch.setenv(key, value)
    yield boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1")
    server.stop()
