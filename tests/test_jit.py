"""Tests for :mod:`scheduler.jit` (the project's Numba options)."""

import numpy as np
import pytest
from numba import njit
from numba.core.errors import TypingError

from scheduler.jit import JIT_OPTIONS, jit_options


def _compile(func, **kw):
    # cache=False: inspecting the LLVM IR of cached code is not possible
    return njit(**dict(jit_options(**kw), cache=False))(func)


def _clip_pos(a, b):
    """A loop with a branch, over two arrays: refcount pruning cannot empty it."""
    total = 0.0
    for i in range(a.shape[0]):
        s = b[i:]
        if a[i] > 0:
            total += s[0]
    return total


def test_defaults_are_the_project_options():
    assert jit_options() == JIT_OPTIONS
    assert jit_options(inline=True) == dict(JIT_OPTIONS, inline="always")


def test_refcount_false_emits_no_reference_counting():
    a, b = np.array([1.0, -1.0, 2.0]), np.array([3.0, 4.0, 5.0])
    with_rc, without = _compile(_clip_pos), _compile(_clip_pos, refcount=False)
    assert with_rc(a, b) == without(a, b) == 8.0
    assert "NRT_incref" in next(iter(with_rc.inspect_llvm().values()))
    assert "NRT_incref" not in next(iter(without.inspect_llvm().values()))


def test_refcount_false_refuses_to_allocate():
    def alloc(n):
        return np.zeros(n).sum()

    with pytest.raises(TypingError):
        _compile(alloc, refcount=False)(3)
