"""`benchmarks/gpu/kernels.py --cpu-check` runs end to end (tiny shapes, Triton interpreter)."""

import importlib.util
import json
import sys
from pathlib import Path

import pytest
import torch

SCRIPT = Path(__file__).resolve().parents[2] / "benchmarks" / "gpu" / "kernels.py"


@pytest.mark.skipif(torch.cuda.is_available(), reason="the CPU dry run is for machines without a GPU")
def test_benchmark_cpu_check(tmp_path, capsys):
    spec = importlib.util.spec_from_file_location("bench_kernels", SCRIPT)
    mod = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = mod  # dataclasses look their module up
    spec.loader.exec_module(mod)
    out_json = tmp_path / "k.json"
    assert mod.main(["--cpu-check", "--json", str(out_json)]) == 0
    printed = capsys.readouterr().out
    for name in ("layer_norm", "add_layer_norm", "swiglu", "rope_qkv", "linear_cross_entropy"):
        assert name in printed
    assert "bars: pending" in printed
    data = json.loads(out_json.read_text())
    ours = [r for r in data["rows"] if r["impl"].startswith("ours")]
    assert len(ours) == 5 and all(r["ok"] == "ok" for r in ours)
