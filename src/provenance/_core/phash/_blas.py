"""BLAS thread control for the hashes' small matrix products.

Owns one :class:`threadpoolctl.ThreadpoolController` per process and the decorator
that runs a function's products on one BLAS thread. Must never change the BLAS
thread count outside a decorated call.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any, TypeVar

from threadpoolctl import ThreadpoolController

__all__ = ["one_blas_thread"]

_Fn = TypeVar("_Fn", bound=Callable[..., Any])


@functools.cache
def _blas() -> ThreadpoolController:
    return ThreadpoolController()


def one_blas_thread(fn: _Fn) -> _Fn:
    """Run ``fn``'s matrix products on one BLAS thread.

    The products here are small (at most 128 x 128 per image). A multi-threaded
    BLAS gains nothing on them, and on a busy machine its threads wait for each
    other: measured on 2 shared cores, one 64x128 @ 128x128 product took 2.1 ms
    with OpenBLAS's 2 threads and 0.07 ms with one, and the 18 reference hashes
    of a 1 MP image 167 ms instead of 5 ms. Callers in a process pool want one
    thread per worker anyway.
    """

    @functools.wraps(fn)
    def inner(*args: Any, **kwargs: Any) -> Any:
        with _blas().limit(limits=1, user_api="blas"):
            return fn(*args, **kwargs)

    return inner  # type: ignore[return-value]  # same signature, by functools.wraps
