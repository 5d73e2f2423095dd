"""Start `nproc_per_node` training ranks on this node through torch.distributed.run.

Kept free of torch imports so the launcher process stays light; each rank re-reads the resolved
config from a temporary YAML file in the save folder.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from dataclasses import asdict
from pathlib import Path

import yaml

from dolma_tools.errors import UserError


def launch_ranks(cfg) -> None:
    folder = Path(cfg.save_folder)
    folder.mkdir(parents=True, exist_ok=True)
    child = asdict(cfg)  # ranks see RANK in their environment and do not launch again
    with tempfile.NamedTemporaryFile("w", suffix=".yaml", dir=folder, prefix=".launch-", delete=False) as fh:
        yaml.safe_dump(child, fh, sort_keys=False)
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone",
           f"--nproc-per-node={cfg.nproc_per_node}", "-m", "dolma_tools.train", "-c", fh.name]
    env = dict(os.environ)
    env.setdefault("OMP_NUM_THREADS", str(max(1, (os.cpu_count() or 1) // cfg.nproc_per_node)))
    try:
        result = subprocess.run(cmd, check=False, env=env)
    finally:
        os.unlink(fh.name)
    if result.returncode != 0:
        raise UserError(f"training ranks failed (exit {result.returncode}); see the output above")
