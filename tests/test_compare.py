"""`python -m optimcore.compare`: the numerics table for people who check them."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
import torch

from optimcore import compare


def run(capsys, *argv):
    code = compare.main(list(argv))
    return code, capsys.readouterr().out


def test_json_records_within_tolerance(capsys):
    code, out = run(capsys, "Adam", "AdaBound", "Lion", "--steps", "1", "5", "--json")
    records = [json.loads(line) for line in out.splitlines()]
    assert code == 0
    assert {(r["optimizer"], r["dtype"], r["step"]) for r in records} == {
        (n, d, s) for n in ("Adam", "AdaBound", "Lion") for d in ("float32", "float64")
        for s in (1, 5)}
    assert all(r["ok"] for r in records)
    refs = {r["optimizer"]: r["reference"] for r in records}
    assert refs == {"Adam": "torch.optim.Adam", "AdaBound": "adabound.AdaBound",
                    "Lion": "lion_pytorch.Lion"}
    f32 = [r for r in records if r["dtype"] == "float32"]
    assert all(0 < r["reference_error_vs_float64"] < 1e-5 for r in f32 if r["step"] == 5)


def test_exceeded_tolerance_exits_nonzero(capsys, monkeypatch):
    monkeypatch.setitem(compare.TOLERANCE, torch.float32, 0.0)
    code, out = run(capsys, "AdaBound", "--steps", "10")
    assert code == 1 and "| NO |" in out


def test_missing_reference_package_is_reported(capsys, monkeypatch):
    monkeypatch.setitem(compare.PUBLISHED, "Lion", ("no_such_package_xyz", "Lion"))
    code, out = run(capsys, "Lion", "--steps", "1")
    assert code == 0 and "no_such_package_xyz not installed" in out


def test_options_and_rules_without_reference(capsys):
    code, out = run(capsys, "SGD", "ConjugateGradient", "--steps", "2", "--options",
                    "lr=0.5", "nesterov=true", "momentum=0.9")
    assert code == 0 and "no reference implementation" in out and "| SGD |" in out


def test_unknown_optimizer_is_a_usage_error():
    with pytest.raises(SystemExit) as e:
        compare.main(["NoSuchOptimizer"])
    assert e.value.code == 2


def test_runs_as_a_module():
    out = subprocess.run([sys.executable, "-m", "optimcore.compare", "SGD", "--steps", "1"],
                         capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    assert "| SGD | torch.optim.SGD | float32 | 1 |" in out.stdout
