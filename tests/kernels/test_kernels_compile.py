"""The Triton kernels are torch operators: a block that uses them compiles as one graph.

`fullgraph=True` makes torch.compile fail on any graph break, so these tests fail if a kernel
launch ever becomes visible to the compiler again. The `aot_eager` backend traces forward and
backward through AOTAutograd (fake tensors, the operators' shape functions) and runs the real
kernels, here under the Triton interpreter; Inductor, the trainer's backend, also generates the
code between them.
"""

from __future__ import annotations

import shutil

import pytest
import torch

from dolma_tools.kernels import get_ops
from dolma_tools.train.model import OLMoBlock, model_config


def _grads(module: torch.nn.Module, x: torch.Tensor, fn) -> tuple[torch.Tensor, list[torch.Tensor]]:
    module.zero_grad(set_to_none=True)
    x = x.detach().clone().requires_grad_()
    out = fn(x)
    out.backward(torch.linspace(-1, 1, out.numel()).view(out.shape))
    return out.detach(), [x.grad, *(p.grad for p in module.parameters())]


@pytest.mark.parametrize("clip_qkv,backend", [
    (None, "aot_eager"), (0.5, "aot_eager"),
    # the trainer's own backend: Inductor generates the code around the operators (C++ on CPU)
    pytest.param(None, "inductor", marks=pytest.mark.skipif(shutil.which("g++") is None and shutil.which("c++") is None,
                                                            reason="Inductor on CPU needs a C++ compiler")),
])
def test_block_with_triton_kernels_compiles_to_one_graph(clip_qkv, backend):
    torch._dynamo.reset()
    cfg = model_config("tiny", clip_qkv=clip_qkv)
    ops = get_ops("triton")
    block = OLMoBlock(cfg, 0, ops)
    block.reset_parameters()
    cos, sin = ops.rope_cache(16, cfg.head_dim)
    x = torch.randn(2, 16, cfg.d_model)

    eager_out, eager_grads = _grads(block, x, lambda t: block(t, cos, sin))
    compiled = torch.compile(block, backend=backend, fullgraph=True)  # raises on a graph break
    out, grads = _grads(block, x, lambda t: compiled(t, cos, sin))

    torch.testing.assert_close(out, eager_out, rtol=1e-5, atol=1e-5)
    for got, want in zip(grads, eager_grads):
        torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-5)


def test_kernels_are_registered_operators():
    get_ops("triton")
    ff = torch.randn(3, 8)
    # the operator form is callable directly and matches the reference
    y = torch.ops.dolma_tools.swiglu_fwd(ff)
    torch.testing.assert_close(y, torch.nn.functional.silu(ff[:, 4:]) * ff[:, :4])
    for name in ("layer_norm_fwd", "add_layer_norm_fwd", "layer_norm_bwd", "swiglu_bwd", "rope_qkv_fwd",
                 "rope_qkv_bwd"):
        assert hasattr(torch.ops.dolma_tools, name), name


@pytest.mark.skipif(shutil.which("g++") is None and shutil.which("c++") is None,
                    reason="Inductor on CPU needs a C++ compiler")
def test_trainer_sharding_and_compile_path_matches_eager():
    # the trainer's GPU path (FSDP2 per block, each block compiled, Triton operators inside), run
    # here on CPU: the loss and the gradients equal an unsharded, uncompiled model's
    import torch.distributed as dist
    from torch.distributed.device_mesh import init_device_mesh

    from dolma_tools.train.model import OLMo
    from dolma_tools.train.trainer import shard_model

    torch._dynamo.reset()
    cfg = model_config("tiny")
    ops = get_ops("triton")
    reference = OLMo(cfg, ops)
    for block in reference.blocks:
        block.reset_parameters()
    model = OLMo(cfg, ops)
    model.load_state_dict(reference.state_dict())
    tokens = torch.randint(0, cfg.vocab_size, (2, 16))
    labels = torch.roll(tokens, -1, 1)

    dist.init_process_group("gloo", store=dist.HashStore(), rank=0, world_size=1)
    try:
        model = shard_model(model, init_device_mesh("cpu", (1,)), torch.device("cpu"), compile_blocks=True)
        want, _ = reference(tokens, labels)
        want.backward()
        got, _ = model(tokens, labels)
        got.backward()
        torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-5)
        expected = dict(reference.named_parameters())
        sharded = dict(model.named_parameters())
        assert sharded.keys() == expected.keys()  # compiling in place keeps checkpoint names
        for name, p in sharded.items():
            grad = p.grad.full_tensor() if hasattr(p.grad, "full_tensor") else p.grad
            torch.testing.assert_close(grad, expected[name].grad, rtol=1e-5, atol=1e-6, msg=name)
    finally:
        dist.destroy_process_group()
