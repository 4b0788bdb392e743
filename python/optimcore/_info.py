"""What this install is and what it runs on: ``optimcore.show_config()`` and
``python -m optimcore --info``. Every fact comes from the running process (the loaded library,
the OpenMP runtime mapped in it, CPUID), not from how the package was meant to be built."""

import os
import sys

import torch

from . import _C


def config() -> dict:
    """The facts ``show_config`` prints, as a dict."""
    build = _C.build_info()
    return {
        "optimcore": {"version": build["version"], "package": os.path.dirname(__file__),
                      "library": build["library"]},
        "torch": {"version": torch.__version__, "num_threads": torch.get_num_threads()},
        "python": sys.version.split()[0],
        "simd": {
            "compiled": _C.compiled_simd_levels(),
            "supported": _C.supported_simd_levels(),
            "active": _C.simd_level(),
            "reason": _C.simd_level_reason(),
        },
        "openmp": {"enabled": build["openmp"], "runtime": build["openmp_runtime"],
                   "max_threads": build["openmp_max_threads"]},
        "build": {key: build[key] for key in
                  ("compiler", "build_type", "cxx_flags", "kernel_flags", "level_flags")},
    }


def show_config(file=None) -> None:
    """Prints the version, torch's version, the SIMD levels (compiled in, supported by this CPU,
    active and why), the OpenMP runtime in use and its threads, and the compiler and flags the
    kernels were built with."""
    c = config()
    simd, omp, build = c["simd"], c["openmp"], c["build"]
    lines = [
        f"optimcore {c['optimcore']['version']} ({c['optimcore']['package']})",
        f"  library: {c['optimcore']['library']}",
        f"torch {c['torch']['version']}, python {c['python']}",
        "SIMD levels",
        f"  compiled in: {', '.join(simd['compiled'])}",
        f"  this CPU:    {', '.join(simd['supported'])}",
        f"  active:      {simd['active']} ({simd['reason']})",
        "OpenMP",
        f"  runtime: {omp['runtime'] if omp['enabled'] else 'none (built without OpenMP)'}",
        f"  threads: {c['torch']['num_threads']} per step (torch.get_num_threads(), shared with "
        f"torch); OpenMP max {omp['max_threads']}",
        "Build",
        f"  compiler:     {build['compiler']} ({build['build_type']})",
        f"  C++ flags:    {build['cxx_flags']}",
        f"  kernel flags: {build['kernel_flags']}",
    ]
    lines += [f"  {level + ':':13} {flags}" for level, flags in build["level_flags"].items()]
    print("\n".join(lines), file=file if file is not None else sys.stdout)
