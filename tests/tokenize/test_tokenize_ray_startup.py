"""Ray start-up and exit costs that every stage pays (runtime/executor.py), and packed ids.

The embedded Ray a command starts needs no runtime_env for its tasks while the forwarded
environment is unchanged (its workers inherited it), but one set later still reaches the
workers; at exit the command's Ray processes are gone.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

import pytest

from dolma_tools.errors import UserError
from dolma_tools.tokenize.fastpath import pack, typecode

SCRIPT = textwrap.dedent("""
    import json, os, sys
    import ray
    from dolma_tools.config import RuntimeConfig
    from dolma_tools.runtime import map_in_parallel
    from dolma_tools.runtime.executor import ensure_ray, worker_runtime_env

    def env_of(name):
        return os.environ.get(name)

    cfg = RuntimeConfig(processes=2)
    ensure_ray(cfg)
    out = {"first": worker_runtime_env()}
    out["inherited"] = map_in_parallel(env_of, ["DOLMA_TOOLS_BEFORE", "DOLMA_TOOLS_BEFORE"], cfg)
    os.environ["DOLMA_TOOLS_AFTER"] = "later"
    out["changed"] = worker_runtime_env()
    out["forwarded"] = map_in_parallel(env_of, ["DOLMA_TOOLS_AFTER", "DOLMA_TOOLS_AFTER"], cfg)
    out["session"] = ray._private.worker._global_node.get_session_dir_path()
    print(json.dumps(out))
""")


def _ray_pids(session_dir: str) -> list[str]:
    """Processes whose command line names this Ray session (daemons and workers)."""
    pids = []
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as fh:
                cmdline = fh.read().decode("utf-8", "replace")
        except OSError:
            continue
        if os.path.basename(session_dir) in cmdline:
            pids.append(pid)
    return pids


@pytest.mark.skipif(not os.path.isdir("/proc"), reason="needs /proc")
def test_own_ray_needs_no_runtime_env_and_stops_at_exit(tmp_path):
    env = {k: v for k, v in os.environ.items() if k != "RAY_ADDRESS"}
    env["DOLMA_TOOLS_BEFORE"] = "set"
    script = tmp_path / "probe.py"
    script.write_text(SCRIPT)
    proc = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, env=env, timeout=180)
    assert proc.returncode == 0, proc.stderr[-2000:]
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    assert out["first"] == {}  # tasks run on the workers Ray started in advance
    assert out["inherited"] == ["set", "set"]
    assert out["changed"]["env_vars"]["DOLMA_TOOLS_AFTER"] == "later"
    assert out["forwarded"] == ["later", "later"]
    assert _ray_pids(out["session"]) == []  # nothing of that Ray outlives the command


def test_pack_ids_and_refuse_overflow():
    assert typecode("uint16") == "H" and typecode("uint32") == "I"
    assert pack([1, 50279], "H", "uint16") == bytes([1, 0, 0x67, 0xC4])
    with pytest.raises(UserError, match="token id 70000 does not fit dtype uint16"):
        pack([5, 70000], "H", "uint16")
