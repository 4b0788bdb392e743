"""Type stub of optimcore's compiled module (csrc/bindings/module.cpp). Internal: use the
optimcore package. Tensor arguments are addresses of int64 tables built by _optimizer.py."""

has_openmp: bool
TABLE_COLUMNS: dict[str, int]
FLAG_STATE_IS_NEW: int
NO_GRAD: int

def first_overlap(
    begin: int, end: int, count: int, query_begin: int, query_bytes: int, queries: int,
) -> int: ...

def simd_level() -> str: ...
def set_simd_level(name: str) -> None: ...
def supported_simd_levels() -> list[str]: ...
def adam_step(
    table: int, grads: int, count: int, dtype: int, master: bool, lr: float, beta1: float,
    beta2: float, eps: float, weight_decay: float, amsgrad: bool, maximize: bool,
    decoupled_weight_decay: bool, stochastic_rounding: bool, seed: int, num_threads: int,
) -> None: ...
def sgd_step(
    table: int, grads: int, count: int, dtype: int, master: bool, lr: float, momentum: float,
    dampening: float, weight_decay: float, nesterov: bool, maximize: bool,
    stochastic_rounding: bool, seed: int, num_threads: int,
) -> None: ...
