"""Launch settings stay within both vendors' limits (1024 threads: 32 x 32 on CUDA, 16 x 64 on ROCm)."""

import torch

from dolma_tools.kernels import _compat


def test_warp_cap_on_rocm(monkeypatch):
    monkeypatch.setattr(torch.version, "hip", "6.2.0", raising=False)
    assert _compat.max_warps() == 16
    assert all(_compat.warps_for(block) <= 16 for block in (256, 2048, 8192, 32768, 65536))


def test_warp_cap_on_cuda(monkeypatch):
    monkeypatch.setattr(torch.version, "hip", None, raising=False)
    assert _compat.max_warps() == 32
    assert _compat.warps_for(65536) == 32


def test_rocm_gives_each_lane_what_cuda_does(monkeypatch):
    # a wavefront is 64 lanes: half the warps keep the elements per lane (and 128-bit accesses)
    for hip, lanes in ((None, 32), ("6.2.0", 64)):
        monkeypatch.setattr(torch.version, "hip", hip, raising=False)
        per_lane = {block: block // (_compat.warps_for(block) * lanes) for block in (1024, 2048, 4096, 16384)}
        assert per_lane == {1024: 8, 2048: 8, 4096: 16, 16384: 32}, hip
    monkeypatch.setattr(torch.version, "hip", "6.2.0", raising=False)
    assert _compat.per_lane_warps(1) == 1  # never below one warp


def test_autotune_configs_portable():
    # every autotuned config must launch on ROCm too: at most 16 wavefronts of 64 (1024 threads)
    from dolma_tools.kernels.layernorm import _ROW_CONFIGS
    from dolma_tools.kernels.rope import _FWD_CONFIGS
    from dolma_tools.kernels.swiglu import _CONFIGS

    for configs in (_CONFIGS, _ROW_CONFIGS, _FWD_CONFIGS):
        assert configs and all(c.num_warps <= 16 for c in configs)


def test_next_pow2():
    assert [_compat.next_pow2(n) for n in (1, 2, 3, 64, 65, 11008)] == [1, 2, 4, 64, 128, 16384]
