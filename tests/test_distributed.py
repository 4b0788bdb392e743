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
