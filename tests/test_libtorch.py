"""The LibTorch drop-ins (csrc/lib/include/optimcore/libtorch.hpp): examples/libtorch_trainer
built against the libtorch inside the torch wheel and the installed optimcore, trained with
torch::optim and with the drop-ins from the same weights (float64: the same losses to ~1e-12),
and the drop-in's torch::save loaded by torch::optim."""

import subprocess
from pathlib import Path

import pytest
import torch

from optimcore.testing import cmake_build, cmake_executable

ROOT = Path(__file__).resolve().parents[1]
torch_cmake = Path(torch.utils.cmake_prefix_path) / "Torch" / "TorchConfig.cmake"
pytestmark = pytest.mark.skipif(cmake_executable() is None or not torch_cmake.is_file(),
                                reason="needs cmake and the torch wheel's CMake package")


def test_libtorch_dropins_train_like_torch_optim(tmp_path):
    build = tmp_path / "build"
    cmake_build(ROOT / "examples" / "libtorch_trainer", build,
                f"-DCMAKE_PREFIX_PATH={torch.utils.cmake_prefix_path}", "-DCMAKE_BUILD_TYPE=Release")
    out = subprocess.run([str(build / "libtorch_trainer"), "60", "0"], capture_output=True,
                         text=True)
    assert out.returncode == 0, out.stdout + out.stderr
    diffs = [float(line.split(":")[1]) for line in out.stdout.splitlines()
             if "largest difference / first loss" in line]
    assert len(diffs) == 7 and max(diffs) < 1e-10, out.stdout
    assert "load into torch::optim::AdamW: same state" in out.stdout
    assert "a parameter listed twice: same as torch::optim::Adam" in out.stdout
    assert "LBFGS with a NaN loss: same as torch::optim::LBFGS" in out.stdout
    # The rules LibTorch lacks: bit for bit the C++ API's (hence optimcore's Python classes'),
    # and torch::save / torch::load round trips.
    # The step benchmark bench/bench_libtorch.py parses (one short run).
    bench = subprocess.run([str(build / "libtorch_trainer"), "2", "1", "1"], capture_output=True,
                           text=True)
    assert bench.returncode == 0, bench.stdout + bench.stderr
    rows = [line.split() for line in bench.stdout.splitlines()[-4:]]
    assert [(r[0], r[1]) for r in rows] == [("AdamW", "16M"), ("SGD", "16M"), ("AdamW", "2000"),
                                            ("SGD", "2000")]
    assert all(float(r[4]) > 0 and float(r[5]) > 0 for r in rows)
    new = [line for line in out.stdout.splitlines() if "(no torch::optim class)" in line]
    assert [line.split()[0] for line in new] == ["Adadelta", "Adamax", "NAdam", "RAdam", "ASGD",
                                                 "Rprop", "AdaBound", "AdaBoundW", "Lion"]
    assert all("losses equal to" in line and "save/load: same state" in line for line in new)
