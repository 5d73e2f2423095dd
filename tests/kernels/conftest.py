"""Kernel tests run the Triton kernels on CPU through the Triton interpreter when there is no GPU.

TRITON_INTERPRET must be set before triton is first imported: triton decorates its own library
(`tl.sum`, `tl.max`, ...) once, at import. If another test module imported triton earlier in
this session without it, triton and the kernel modules are imported afresh here.
"""

from __future__ import annotations

import os
import sys


def _gpu_present() -> bool:
    return any(os.path.exists(p) for p in ("/dev/nvidia0", "/dev/nvidiactl", "/dev/kfd"))


if not _gpu_present() and os.environ.get("TRITON_INTERPRET") != "1":
    os.environ["TRITON_INTERPRET"] = "1"
    # the compiled extension (triton._C) cannot be loaded twice; its Python side can
    stale = [m for m in sys.modules if (m == "triton" or m.startswith("triton.")) and not m.startswith("triton._C")
             or m.startswith("dolma_tools.kernels")]
    for name in stale:
        del sys.modules[name]

import pytest  # noqa: E402
import torch  # noqa: E402

# |a - b| / |b| in the Frobenius norm, against a float64 reference
TOLERANCE = {torch.float32: 1e-5, torch.bfloat16: 1e-2}


def rel_err(actual: torch.Tensor, expected: torch.Tensor) -> float:
    expected = expected.double()
    return ((actual.double() - expected).norm() / expected.norm().clamp(min=1e-30)).item()


@pytest.fixture
def assert_close():
    def check(actual, expected, dtype, what=""):
        assert actual.shape == expected.shape, f"{what}: shape {tuple(actual.shape)} != {tuple(expected.shape)}"
        assert torch.isfinite(actual).all(), f"{what}: non-finite values"
        err = rel_err(actual, expected)
        assert err < TOLERANCE[dtype], f"{what}: relative error {err:.3g} >= {TOLERANCE[dtype]} ({dtype})"
        return err

    return check


@pytest.fixture(autouse=True)
def _seed():
    torch.manual_seed(1234)
