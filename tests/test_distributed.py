"""optimcore inside torch.distributed, like any torch.optim optimizer: DDP and
ZeroRedundancyOptimizer (one-process gloo group on loopback)."""

import socket

import pytest
import torch
import torch.distributed as dist
from torch.distributed.optim import ZeroRedundancyOptimizer
from torch.nn.parallel import DistributedDataParallel

import optimcore

pytestmark = pytest.mark.skipif(not dist.is_available(), reason="torch.distributed unavailable")


@pytest.fixture(scope="module")
def process_group():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    dist.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{port}", rank=0, world_size=1)
    yield
    dist.destroy_process_group()


def train(model, opt, steps=4):
    g = torch.Generator().manual_seed(0)
    for _ in range(steps):
        x = torch.randn(16, 8, generator=g, dtype=torch.float64)
        opt.zero_grad()
        model(x).square().mean().backward()
        opt.step()


def net():
    torch.manual_seed(0)
    return torch.nn.Sequential(torch.nn.Linear(8, 8), torch.nn.Tanh(), torch.nn.Linear(8, 1)).double()


@pytest.mark.parametrize("name", ["SGD", "Adam", "AdamW"])
def test_ddp_and_zero(process_group, name):
    kwargs = dict(lr=0.01, momentum=0.9) if name == "SGD" else dict(lr=0.01)
    ref = net()
    train(ref, getattr(torch.optim, name)(ref.parameters(), **kwargs))

    ddp = DistributedDataParallel(net())
    train(ddp, getattr(optimcore, name)(ddp.parameters(), **kwargs))

    zero_model = net()
    zero = ZeroRedundancyOptimizer(zero_model.parameters(), getattr(optimcore, name), **kwargs)
    train(zero_model, zero)
    zero.consolidate_state_dict(to=0)
    assert zero.state_dict()["state"]

    for a, b, c in zip(ref.parameters(), ddp.module.parameters(), zero_model.parameters()):
        torch.testing.assert_close(b, a, rtol=1e-12, atol=1e-14)
        torch.testing.assert_close(c, a, rtol=1e-12, atol=1e-14)


@pytest.mark.parametrize("name", ["SGD", "Adam", "AdamW"])
def test_fsdp2(process_group, name):
    """FSDP2 parameters are DTensors: optimcore updates their local shards, and its state is
    DTensors too, as torch.optim's is (so distributed checkpointing sees the same structure)."""
    from torch.distributed.device_mesh import init_device_mesh
    from torch.distributed.fsdp import fully_shard

    mesh = init_device_mesh("cpu", (1,))
    kwargs = dict(lr=0.01, momentum=0.9) if name == "SGD" else dict(lr=0.01, weight_decay=0.1)
    models, opts = [], []
    for lib in (torch.optim, optimcore):
        model = net()
        fully_shard(model, mesh=mesh)
        opt = getattr(lib, name)(model.parameters(), **kwargs)
        train(model, opt)
        models.append(model)
        opts.append(opt)
    for a, b in zip(models[0].parameters(), models[1].parameters()):
        torch.testing.assert_close(b.full_tensor(), a.full_tensor(), rtol=1e-12, atol=1e-14)
    ref_state, state = opts[0].state_dict()["state"], opts[1].state_dict()["state"]
    assert state.keys() == ref_state.keys()
    for i in state:
        for key, value in ref_state[i].items():
            assert type(state[i][key]) is type(value), (i, key)
