"""The one place where Numba compilation options are set.

Every compiled kernel in ``scheduler``, ``topology`` and ``eventhorizon`` is
decorated with :func:`kernel`, so caching, fast-math and GIL policy are
decided here and nowhere else.

``fastmath`` is restricted to flags that keep IEEE semantics for NaN and
infinity checks (no ``nnan``/``ninf``): kernels may be reordered and fused for
SIMD, but input validation that relies on NaN comparisons stays valid.
"""

from numba import njit

__all__ = ["JIT_OPTIONS", "kernel"]

JIT_OPTIONS = {
    "cache": True,
    "nogil": True,
    "fastmath": {"contract", "arcp", "nsz", "reassoc"},
    "error_model": "numpy",
    "boundscheck": False,
}


def kernel(func=None, *, inline=False):
    """Compile ``func`` with the project's Numba options.

    Parameters
    ----------
    func : callable
        A module-level function whose name starts with ``_``.
    inline : bool
        Inline it into its callers at Numba IR level. For small helpers
        called per synapse: a real call that passes named tuples of arrays
        costs a reference-count increment and decrement per array.

    Returns
    -------
    numba.core.registry.CPUDispatcher

    Examples
    --------
    >>> from scheduler.jit import kernel
    >>> @kernel
    ... def _twice(x):
    ...     return 2 * x
    >>> _twice(3)
    6
    """
    if func is None:
        return lambda f: kernel(f, inline=inline)
    options = dict(JIT_OPTIONS, inline="always") if inline else JIT_OPTIONS
    return njit(**options)(func)
