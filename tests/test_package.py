"""The installed package: the compiled module ships inside it, C++ users find the core through
CMake, and the core's own C++ tests pass."""

import importlib.metadata
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

import torch

import optimcore
from optimcore.testing import cmake_build
from optimcore import _C

ROOT = Path(__file__).resolve().parents[1]
# Prefer the tools installed next to this interpreter (the venv scripts/test.sh builds), which
# are on PATH only when the venv is activated.
_PATH = os.pathsep.join([os.path.dirname(sys.executable), os.environ.get("PATH", "")])
cmake = shutil.which("cmake", path=_PATH)
ctest = shutil.which("ctest", path=_PATH)
needs_cmake = pytest.mark.skipif(cmake is None or ctest is None, reason="cmake is not installed")


def test_compiled_module_is_in_the_installed_package():
    package_dir = Path(optimcore.__file__).parent
    assert Path(_C.__file__).parent == package_dir
    assert Path(_C.__file__).suffix in (".so", ".pyd")
    # The tests exercise the built wheel, not the source tree (install without -e).
    assert ROOT / "python" not in package_dir.parents


def test_extension_does_not_link_libtorch():
    libs = Path(_C.__file__).read_bytes()
    assert b"libtorch" not in libs and b"libc10" not in libs


def test_simd_levels():
    levels = optimcore.supported_simd_levels()
    assert levels[0] == "baseline"
    assert optimcore.simd_level() in levels
    with pytest.raises(ValueError, match="not supported"):
        optimcore.set_simd_level("sse1")


def test_forced_simd_level_by_environment():
    code = "import optimcore; print(optimcore.simd_level())"
    env = dict(os.environ, OPTIMCORE_SIMD="baseline")
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True)
    assert out.stdout.strip() == "baseline", out.stderr


def test_bad_simd_level_in_environment_is_named():
    env = dict(os.environ, OPTIMCORE_SIMD="sse1")
    out = subprocess.run([sys.executable, "-c", "import optimcore"], env=env, capture_output=True,
                         text=True)
    assert out.returncode != 0
    assert "OPTIMCORE_SIMD=sse1: SIMD level 'sse1' is not supported" in out.stderr


def test_shares_torchs_openmp_runtime():
    """In a fresh process (other tests import packages that vendor their own OpenMP, such as
    scikit-learn): torch and optimcore map one libgomp, torch's, and the library reports that
    file as the runtime it runs on: one thread pool."""
    if not sys.platform.startswith("linux"):
        pytest.skip("reads /proc/self/maps")
    code = ("import torch, optimcore, pathlib; optimcore.SGD([torch.zeros(1)], lr=0.1); "
            "maps = pathlib.Path('/proc/self/maps').read_text().splitlines(); "
            "print(sorted({l.split()[-1] for l in maps if 'libgomp' in l})); "
            "print(optimcore._C.build_info()['openmp_runtime'])")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True)
    mapped, runtime = out.stdout.splitlines()
    gomps = eval(mapped)
    assert len(gomps) == 1, gomps  # one OpenMP runtime, one thread pool
    torch_lib = Path(torch.__file__).parent / "lib"
    assert Path(gomps[0]).resolve().parent == torch_lib.resolve(), gomps
    assert Path(runtime).resolve() == Path(gomps[0]).resolve()


def test_package_vendors_no_openmp_runtime_or_libtorch():
    """The wheel carries optimcore's own library only; OpenMP comes from torch's wheel."""
    package_dir = Path(optimcore.__file__).parent
    shipped = [p.name for d in (package_dir, package_dir.parent / "optimcore.libs")
               if d.is_dir() for p in d.rglob("*.so*")]
    assert sorted(shipped) == sorted([Path(_C.__file__).name, "liboptimcore.so"]), shipped


def test_one_version_everywhere():
    """The core header's version is the package's, the library's and the C++ package's."""
    version = optimcore.__version__
    header = (Path(optimcore.get_include()) / "optimcore" / "optimcore.hpp").read_text()
    parts = [re.search(rf"#define OPTIMCORE_VERSION_{part} (\d+)", header).group(1)
             for part in ("MAJOR", "MINOR", "PATCH")]
    assert version == ".".join(parts)
    assert version == importlib.metadata.version("optimcore") == _C.build_info()["version"]
    config_version = Path(optimcore.get_cmake_dir()) / "optimcoreConfigVersion.cmake"
    assert f'set(PACKAGE_VERSION "{version}")' in config_version.read_text()
    out = subprocess.run([sys.executable, "-m", "optimcore", "--version"], capture_output=True,
                         text=True, check=True)
    assert out.stdout.strip() == version


@pytest.mark.parametrize("forced", [None, "baseline"])
def test_info_reports_consistent_facts(forced):
    env = dict(os.environ)
    env.pop("OPTIMCORE_SIMD", None)
    if forced:
        env["OPTIMCORE_SIMD"] = forced
    out = subprocess.run([sys.executable, "-m", "optimcore", "--info"], env=env,
                         capture_output=True, text=True, check=True).stdout
    code = "import json, optimcore._info as i; print(json.dumps(i.config()))"
    facts = json.loads(subprocess.run([sys.executable, "-c", code], env=env,
                                      capture_output=True, text=True, check=True).stdout)
    simd = facts["simd"]
    assert simd["supported"][0] == "baseline"
    assert set(simd["supported"]) <= set(simd["compiled"])
    assert simd["active"] == (forced or simd["supported"][-1])
    assert simd["reason"] == (f"OPTIMCORE_SIMD={forced}" if forced else "best on this CPU")
    assert f"active:      {simd['active']} ({simd['reason']})" in out
    assert f"optimcore {optimcore.__version__} " in out and f"torch {torch.__version__}" in out
    assert set(facts["build"]["level_flags"]) == set(simd["compiled"])
    for level, flags in facts["build"]["level_flags"].items():
        assert f"{level + ':':13} {flags}" in out
    assert "-march=native" not in out
    assert facts["build"]["compiler"] in out
    assert facts["openmp"]["enabled"] == _C.has_openmp
    if facts["openmp"]["enabled"]:
        assert Path(facts["openmp"]["runtime"]).name.startswith("libgomp")
        assert facts["openmp"]["runtime"] in out
    assert Path(facts["optimcore"]["library"]).resolve().parent == (
        Path(optimcore.__file__).parent / "lib").resolve()


def test_show_config_prints_what_info_prints(capsys):
    optimcore.show_config()
    assert f"active:      {optimcore.simd_level()}" in capsys.readouterr().out


@pytest.mark.skipif(os.environ.get("OPTIMCORE_TEST_WHEEL") != "1",
                    reason="scripts/test.sh sets OPTIMCORE_TEST_WHEEL=1 when it installs the wheel")
def test_installed_from_the_repaired_wheel():
    """scripts/test.sh builds the wheel with scripts/build_wheel.sh and installs it with
    --only-binary=:all: --no-index: these tests then run against exactly what users install."""
    dist = importlib.metadata.distribution("optimcore")
    wheel_tags = [line for line in dist.read_text("WHEEL").splitlines()
                  if line.startswith("Tag:")]
    assert wheel_tags and all("manylinux_" in t for t in wheel_tags), wheel_tags
    origin = json.loads(dist.read_text("direct_url.json"))
    assert origin["url"].endswith(".whl"), origin


def test_cmakedir():
    out = subprocess.run(
        [sys.executable, "-m", "optimcore", "--cmakedir"], capture_output=True, text=True, check=True
    )
    cmakedir = Path(out.stdout.strip())
    assert (cmakedir / "optimcoreConfig.cmake").is_file()
    assert (cmakedir / "optimcoreConfigVersion.cmake").is_file()
    assert (Path(optimcore.get_include()) / "optimcore" / "optimcore.hpp").is_file()


_cmake_build = cmake_build  # configures against the installed package, builds


@needs_cmake
def test_cpp_consumer_builds_against_installed_package(tmp_path):
    _cmake_build(ROOT / "examples" / "cpp_consumer", tmp_path, "-DCMAKE_BUILD_TYPE=Release")
    out = subprocess.run([str(tmp_path / "fit_quadratic")], capture_output=True, text=True)
    assert out.returncode == 0, out.stdout + out.stderr
    assert "AdamW max error" in out.stdout
    out = subprocess.run([str(tmp_path / "minimize")], capture_output=True, text=True)
    assert out.returncode == 0, out.stdout + out.stderr
    assert "L-BFGS, logistic regression" in out.stdout


@needs_cmake
def test_cpp_trainer_example(tmp_path):
    """examples/cpp_trainer: an MLP trained in pure C++ against the installed library, with
    AdamW, warmup + cosine, and a checkpoint save/resume that ends where the uninterrupted run
    ends."""
    _cmake_build(ROOT / "examples" / "cpp_trainer", tmp_path / "build")  # default flags
    out = subprocess.run([str(tmp_path / "build" / "train_mlp"), "200", str(tmp_path)],
                         capture_output=True, text=True)
    assert out.returncode == 0, out.stdout + out.stderr
    assert "resumed: identical" in out.stdout
    assert (tmp_path / "mlp_optimizer.safetensors").is_file()
    # The C++ checkpoint is an optimizer checkpoint Python reads.
    from optimcore import checkpoint

    sd = checkpoint.load_state_dict(tmp_path / "mlp_optimizer.safetensors")
    assert [len(g["params"]) for g in sd["param_groups"]] == [2, 2]
    assert sd["param_groups"][1]["weight_decay"] == 0.0
    assert float(sd["state"][0]["step"]) == 100.0


@needs_cmake
def test_cpp_core_tests(tmp_path):
    """The header-only core against its scalar references (csrc/tests, run by CTest)."""
    _cmake_build(ROOT, tmp_path, "-DOPTIMCORE_BUILD_TESTS=ON", "-DCMAKE_BUILD_TYPE=Release")
    out = subprocess.run([ctest, "--output-on-failure"], cwd=tmp_path, capture_output=True,
                         text=True)
    assert out.returncode == 0, out.stdout + out.stderr
