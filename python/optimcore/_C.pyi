"""Type stub of optimcore's compiled module (csrc/bindings/module.cpp). Internal: use the
optimcore package. Tensor arguments are addresses of int64 tables built by the Python layer
(_table.py; sparse_adam.py, adafactor.py and muon.py for the rules of other kinds)."""

from typing import Callable

__version__: str
has_openmp: bool
TABLE_COLUMNS: dict[str, int]
NO_GRAD: int
SPARSE_COLUMNS: int
REDUCE_COLUMNS: int
MUON_COLUMNS: int
# per elementwise rule: state, fills_new_state, counts_steps, options, scalar_state
rules: dict[str, dict]

def simd_level() -> str: ...
def set_simd_level(name: str) -> None: ...
def supported_simd_levels() -> list[str]: ...
def compiled_simd_levels() -> list[str]: ...
def simd_level_reason() -> str: ...
# version, compiler, build_type, cxx_flags, kernel_flags, level_flags, library, openmp,
# openmp_runtime, openmp_max_threads (csrc/lib/include/optimcore/dispatch.hpp, BuildInfo)
def build_info() -> dict: ...
def first_overlap(
    begin: int, end: int, count: int, query_begin: int, query_bytes: int, queries: int,
) -> int: ...

# One per elementwise rule in OPTIMCORE_RULES (csrc/include/optimcore/optimcore.hpp):
# <rule>_step(table, grads, count, dtype, master, stochastic_rounding, seed, num_threads,
# **hyperparameters), hyperparameters by the names in rules[<rule>]["options"].
def sgd_step(
    table: int, grads: int, count: int, dtype: int, master: bool, stochastic_rounding: bool,
    seed: int, num_threads: int, **hyperparameters: float | bool,
) -> None: ...
def adam_step(
    table: int, grads: int, count: int, dtype: int, master: bool, stochastic_rounding: bool,
    seed: int, num_threads: int, **hyperparameters: float | bool,
) -> None: ...
# ... and adagrad_step, adadelta_step, adamax_step, rmsprop_step, radam_step, rprop_step,
# nadam_step, asgd_step, with the same signature.

# Rules of other kinds: their own tables (column counts above).
def sparse_adam_step(table: int, count: int, dtype: int, num_threads: int,
                     **hyperparameters: float | bool) -> None: ...
def adafactor_step(table: int, grads: int, count: int, dtype: int, num_threads: int,
                   **hyperparameters: float | bool) -> None: ...
def muon_momentum(table: int, neg_lr: int, count: int, dtype: int, num_threads: int,
                  **hyperparameters: float | bool) -> None: ...
def muon_update(table: int, neg_lr: int, count: int, dtype: int, num_threads: int,
                **hyperparameters: float | bool) -> None: ...

# Closure-driven methods (descent.hpp): x as contiguous segments (pointers, sizes in elements),
# the state as plain values (vectors as data pointers, torch's scalars as (value, is_tensor)),
# evaluate() -> (loss, gradient pointers in segment order), vector() -> a new vector's pointer,
# spare: pointers of vectors to use before calling vector().
# Returns (result: first_loss, loss, evaluations, iterations, reason; new state; pointers of
# vectors the step gave back).
class NonFiniteLossError(FloatingPointError): ...

def lbfgs_step(
    segments: list[int], sizes: list[int], dtype: int, state: dict,
    evaluate: Callable[[], tuple[float, list[int]]], vector: Callable[[], int], spare: list[int],
    num_threads: int, **options: float | int | bool,
) -> tuple[dict, dict, list[int]]: ...
def conjugate_gradient_step(
    segments: list[int], sizes: list[int], dtype: int, state: dict,
    evaluate: Callable[[], tuple[float, list[int]]], vector: Callable[[], int], spare: list[int],
    num_threads: int, **options: float | int | bool | str,
) -> tuple[dict, dict, list[int]]: ...
