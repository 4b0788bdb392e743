"""The README quotes numbers from bench/ scripts: they must keep running against the package
(tiny sizes here; the real runs are the commands in the README)."""

import subprocess
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[1] / "bench"


@pytest.mark.parametrize(
    "args",
    [
        ["profile_step.py", "--tensors", "20", "--numel", "64"],
        ["profile_step.py", "--tensors", "20", "--numel", "64", "--rule", "SGD"],
        ["parity_report.py", "--steps", "2", "--numel", "1000"],
        ["bench_grad_subsets.py", "--tensors", "10", "--shape", "8", "8", "--reps", "3"],
        ["bench_sparse_adam.py", "--rows", "1000", "--dim", "8", "--batch", "64", "--reps", "3"],
        ["bench_matrix_rules.py", "--big", "1", "32", "--small", "3", "8", "--reps", "2"],
        ["bench_closure.py", "--sizes", "100", "--histories", "3", "--reps", "1",
         "--skip-evaluations"],
        ["bench_references.py", "--threads", "1", "--reps", "1", "--layouts", "2000x256"],
        ["convergence.py", "--epochs", "2", "--seeds", "1", "--out", "{tmp}"],
        ["bench_cpp_consumer.py", "--small", "--runs", "1", "--reps", "2"],
        ["bench_versions.py", "--baseline", "{optimcore}", "--tensors", "20", "--numel", "64",
         "--reps", "3"],
    ],
    ids=lambda a: " ".join(a),
)
def test_bench_script_runs(args, tmp_path):
    import optimcore

    package = str(Path(optimcore.__file__).parent)  # bench_versions: this install against itself
    args = [a.replace("{tmp}", str(tmp_path)).replace("{optimcore}", package) for a in args]
    out = subprocess.run([sys.executable, str(BENCH / args[0]), *args[1:]], capture_output=True,
                         text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    assert "|" in out.stdout or "x)" in out.stdout  # printed its table or ratio
