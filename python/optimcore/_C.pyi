"""Type stub of optimcore's compiled module (csrc/bindings/module.cpp). Internal: use the
optimcore package. Tensor arguments are addresses of int64 tables built by _optimizer.py."""

has_openmp: bool
TABLE_COLUMNS: dict[str, int]
NO_GRAD: int

def first_overlap(
    begin: int, end: int, count: int, query_begin: int, query_bytes: int, queries: int,
) -> int: ...

def simd_level() -> str: ...
def set_simd_level(name: str) -> None: ...
def supported_simd_levels() -> list[str]: ...
rules: dict[str, dict]  # per rule: state, fills_new_state, counts_steps, options

# One per rule in OPTIMCORE_RULES (csrc/include/optimcore/optimcore.hpp): <rule>_step(table,
# grads, count, dtype, master, stochastic_rounding, seed, num_threads, **hyperparameters),
# hyperparameters by the names in rules[<rule>]["options"].
def sgd_step(
    table: int, grads: int, count: int, dtype: int, master: bool, stochastic_rounding: bool,
    seed: int, num_threads: int, **hyperparameters: float | bool,
) -> None: ...
def adam_step(
    table: int, grads: int, count: int, dtype: int, master: bool, stochastic_rounding: bool,
    seed: int, num_threads: int, **hyperparameters: float | bool,
) -> None: ...
