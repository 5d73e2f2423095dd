"""Install the peer, Dolma 1.2.1, in its own virtual environment (once).

Dolma pins numpy<2 and fasttext-wheel, which clash with dolma-tools' own environment, so it lives
in `benchmarks/work/dolma-venv`. fasttext-wheel is reinstalled without dependencies because its
published wheel metadata drags in an incompatible numpy.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

DOLMA_VERSION = "1.2.1"
# Dolma 1.2.1 supports Python 3.10-3.12.
SUPPORTED = ("3.12", "3.11", "3.10")


def dolma_bin(venv: Path) -> Path:
    return venv / "bin" / "dolma"


def _works(exe: str) -> bool:
    """An interpreter that really runs and can make venvs (a pyenv shim for a missing version does not)."""
    try:
        return subprocess.run([exe, "-c", "import venv, ensurepip"], capture_output=True, timeout=60).returncode == 0
    except (OSError, subprocess.TimeoutExpired):
        return False


def find_python() -> str:
    for version in SUPPORTED:
        exe = shutil.which(f"python{version}")
        if exe and _works(exe):
            return exe
    if sys.version_info[:2] in {(3, 10), (3, 11), (3, 12)}:
        return sys.executable
    raise RuntimeError("Dolma 1.2.1 needs Python 3.10-3.12; none was found on PATH")


def ensure_dolma(venv: Path, log=print) -> Path:
    """Return the `dolma` executable of `venv`, creating the venv if it has none."""
    exe = dolma_bin(venv)
    if exe.exists():
        return exe
    python = find_python()
    log(f"installing dolma=={DOLMA_VERSION} into {venv} (with {python}); this takes a few minutes")
    venv.parent.mkdir(parents=True, exist_ok=True)
    if venv.is_symlink() or venv.exists():
        raise RuntimeError(f"{venv} exists but has no bin/dolma; remove it or pass --dolma-venv")
    subprocess.run([python, "-m", "venv", str(venv)], check=True)
    pip = [str(venv / "bin" / "python"), "-m", "pip", "install", "-q"]
    subprocess.run(pip + ["--upgrade", "pip", "wheel"], check=True)
    subprocess.run(pip + [f"dolma=={DOLMA_VERSION}", "numpy<2"], check=True)
    subprocess.run(pip + ["--force-reinstall", "--no-deps", "fasttext-wheel==0.9.2"], check=True)
    if not exe.exists():
        raise RuntimeError(f"installed dolma but {exe} is missing")
    return exe


def dolma_version(exe: Path) -> str:
    python = exe.parent / "python"
    try:
        out = subprocess.run([str(python), "-c", "import importlib.metadata as m; print(m.version('dolma'))"],
                             capture_output=True, text=True, timeout=120)
        return out.stdout.strip() or "unknown"
    except (OSError, subprocess.TimeoutExpired):
        return "unknown"
