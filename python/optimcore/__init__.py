"""optimcore: fast CPU optimizers for PyTorch, drop-in replacements for torch.optim.

Each optimizer is a ``torch.optim.Optimizer`` whose update rule runs in optimcore's header-only
C++ core (``csrc/include/optimcore``) through the ``optimcore._C`` extension.
"""

import torch  # noqa: F401  (first: the extension shares the OpenMP runtime that torch loads)

from . import _C
from ._info import show_config
from .adabound import AdaBound
from .adaboundw import AdaBoundW
from .adadelta import Adadelta
from .adafactor import Adafactor
from .adagrad import Adagrad
from .adam import Adam
from .adamax import Adamax
from .adamw import AdamW
from .asgd import ASGD
from .conjugate_gradient import ConjugateGradient
from .lamb import LAMB
from .lbfgs import LBFGS
from .lion import Lion
from .nadam import NAdam
from .radam import RAdam
from .rmsprop import RMSprop
from .muon import Muon
from .rprop import Rprop
from .sgd import SGD
from .sparse_adam import SparseAdam
from .swats import SWATS

__version__: str = _C.__version__  # CMakeLists.txt's project() version, compiled in


def simd_level() -> str:
    """The SIMD level the kernels run at: "baseline", "avx2" or "avx512"."""
    return _C.simd_level()


def supported_simd_levels() -> list[str]:
    """Every SIMD level this CPU and build can run, lowest first."""
    return _C.supported_simd_levels()


def set_simd_level(name: str) -> None:
    """Force a SIMD level (for testing); the environment variable OPTIMCORE_SIMD does the same
    at import. Raises ValueError for a level this CPU cannot run."""
    _C.set_simd_level(name)


def get_cmake_dir() -> str:
    """The directory holding optimcoreConfig.cmake, for ``-Doptimcore_DIR=...``."""
    import os

    return os.path.join(os.path.dirname(__file__), "share", "cmake", "optimcore")


def get_include() -> str:
    """The directory holding the header-only core (``#include <optimcore/optimcore.hpp>``)."""
    import os

    return os.path.join(os.path.dirname(__file__), "include")


__all__ = [
    "SGD",
    "Adadelta",
    "Adafactor",
    "Adagrad",
    "Adam",
    "Adamax",
    "AdamW",
    "ASGD",
    "LBFGS",
    "AdaBound",
    "AdaBoundW",
    "Lion",
    "SWATS",
    "LAMB",
    "ConjugateGradient",
    "NAdam",
    "RAdam",
    "RMSprop",
    "Rprop",
    "Muon",
    "SparseAdam",
    "simd_level",
    "supported_simd_levels",
    "set_simd_level",
    "get_cmake_dir",
    "get_include",
    "show_config",
]
