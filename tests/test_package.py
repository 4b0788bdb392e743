"""The installed package: the compiled module ships inside it, C++ users find the core through
CMake, and the core's own C++ tests pass."""

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

import optimcore
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


def test_shares_torchs_openmp_runtime():
    """In a fresh process (other tests import packages that vendor their own OpenMP, such as
    scikit-learn): torch and optimcore map one libgomp, one thread pool."""
    if not sys.platform.startswith("linux"):
        pytest.skip("reads /proc/self/maps")
    code = ("import torch, optimcore, pathlib; optimcore.SGD([torch.zeros(1)], lr=0.1); "
            "maps = pathlib.Path('/proc/self/maps').read_text().splitlines(); "
            "print(sorted({l.split()[-1] for l in maps if 'libgomp' in l}))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True)
    gomps = eval(out.stdout)
    assert len(gomps) <= 1, gomps  # one OpenMP runtime, one thread pool


def test_cmakedir():
    out = subprocess.run(
        [sys.executable, "-m", "optimcore", "--cmakedir"], capture_output=True, text=True, check=True
    )
    cmakedir = Path(out.stdout.strip())
    assert (cmakedir / "optimcoreConfig.cmake").is_file()
    assert (cmakedir / "optimcoreConfigVersion.cmake").is_file()
    assert (Path(optimcore.get_include()) / "optimcore" / "optimcore.hpp").is_file()


def _cmake_build(source, build, *defines):
    subprocess.run([cmake, "-S", str(source), "-B", str(build), *defines], check=True,
                   capture_output=True, text=True)
    subprocess.run([cmake, "--build", str(build), "-j", "2"], check=True, capture_output=True,
                   text=True)


@needs_cmake
def test_cpp_consumer_builds_against_installed_package(tmp_path):
    _cmake_build(ROOT / "examples" / "cpp_consumer", tmp_path,
                 f"-Doptimcore_DIR={optimcore.get_cmake_dir()}", "-DCMAKE_BUILD_TYPE=Release")
    out = subprocess.run([str(tmp_path / "fit_quadratic")], capture_output=True, text=True)
    assert out.returncode == 0, out.stdout + out.stderr
    assert "AdamW max error" in out.stdout
    out = subprocess.run([str(tmp_path / "minimize")], capture_output=True, text=True)
    assert out.returncode == 0, out.stdout + out.stderr
    assert "L-BFGS, logistic regression" in out.stdout


@needs_cmake
def test_cpp_core_tests(tmp_path):
    """The header-only core against its scalar references (csrc/tests, run by CTest)."""
    _cmake_build(ROOT, tmp_path, "-DOPTIMCORE_BUILD_TESTS=ON", "-DCMAKE_BUILD_TYPE=Release")
    out = subprocess.run([ctest, "--output-on-failure"], cwd=tmp_path, capture_output=True,
                         text=True)
    assert out.returncode == 0, out.stdout + out.stderr
