"""The one place where Numba compilation options are set.

Every compiled kernel in ``scheduler``, ``topology`` and ``eventhorizon`` is
decorated with :func:`kernel`, so caching, fast-math, GIL and
reference-counting policy are decided here and nowhere else.

``fastmath`` is restricted to flags that keep IEEE semantics for NaN and
infinity checks (no ``nnan``/``ninf``): kernels may be reordered and fused for
SIMD, but input validation that relies on NaN comparisons stays valid.
"""

from numba import njit

__all__ = ["JIT_OPTIONS", "jit_options", "kernel"]

JIT_OPTIONS = {
    "cache": True,
    "nogil": True,
    "fastmath": {"contract", "arcp", "nsz", "reassoc"},
    "error_model": "numpy",
    "boundscheck": False,
}


def kernel(func=None, *, inline=False, refcount=True):
    """Compile ``func`` with the project's Numba options.

    Parameters
    ----------
    func : callable
        A module-level function whose name starts with ``_``.
    inline : bool
        Inline it into its callers at Numba IR level. For small helpers
        called per synapse: a real call that passes named tuples of arrays
        costs a reference-count increment and decrement per array.
    refcount : bool
        Keep Numba's reference counting of arrays (NRT). Kernels that never
        allocate can pass ``False``: the caller keeps every array alive for
        the whole call, so the counts are not needed, and LLVM's refcount
        pruning cannot remove them from loops with branches, where each one
        is an atomic read-modify-write through a function call. A kernel
        compiled without it that allocates fails to compile.

    Returns
    -------
    numba.core.registry.CPUDispatcher

    Examples
    --------
    Decorate a module-level function (``cache=True`` needs a source file, so
    not one typed at a prompt); the decorator applies these options:

    >>> from scheduler.jit import jit_options
    >>> options = jit_options(inline=True)
    >>> options["cache"], options["nogil"], options["inline"]
    (True, True, 'always')
    """
    if func is None:
        return lambda f: kernel(f, inline=inline, refcount=refcount)
    return njit(**jit_options(inline=inline, refcount=refcount))(func)


def jit_options(*, inline=False, refcount=True):
    """The options :func:`kernel` passes to ``numba.njit`` (also for ``overload(jit_options=...)``)."""
    options = dict(JIT_OPTIONS)
    if inline:
        options["inline"] = "always"
    if not refcount:
        options["_nrt"] = False  # Numba's (private) switch for NRT reference counting
    return options
