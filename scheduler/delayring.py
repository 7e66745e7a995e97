"""Ring buffer of future synaptic input for clock-driven spike delivery.

With a fixed time step ``dt`` and delays quantised to whole steps, a spike
with weight ``w`` that must arrive ``d`` steps from now is *accumulated* into a
per-step input slot instead of being queued as an event: the ring holds
``slots = max_delay_steps + 1`` rows of ``n`` inputs, row ``current`` is the
input of the next step.  Adding is O(1) per spike, taking a step's input is
O(n) whatever the number of spikes (see the benchmark note in
:mod:`scheduler.timequeue` for when that beats an event queue).

The state is a :class:`DelayRing` named tuple of arrays.  From Python use the
checked functions :func:`ring_add` and :func:`ring_take`; from Numba kernels
use the building blocks below, which do **no argument checks** (``r`` is a
:class:`DelayRing`):

``_ring_add(r, offset, target, value)``
    ``buf[(current + offset) % slots, target] += value``; requires
    ``0 <= offset < slots`` and ``0 <= target < n``.  Offset 0 is delivered
    by the next take, offset ``k`` by the ``(k + 1)``-th next take.
``_ring_add_many(r, offsets, targets, values)``
    ``_ring_add`` for each index of the equal-length arrays.
``_ring_take(r, out)``
    Move row ``current`` into ``out`` (float64, shape ``(n,)``), zero it and
    advance ``current`` by one (mod ``slots``).

A typical step loop (delays ``d >= 1`` steps, take first, then add)::

    _ring_take(r, input_now)          # input of step t
    ... integrate, find spikes ...
    _ring_add(r, d - 1, post, w)      # arrives at step t + d

so ``max_delay_steps`` only needs to be the largest ``d - 1``.

Examples
--------
>>> import numpy as np
>>> from scheduler.delayring import new_delay_ring, ring_add, ring_take
>>> r = new_delay_ring(3, max_delay_steps=2)
>>> ring_add(r, offset=[0, 2, 2], target=[1, 0, 0], value=[0.5, 1.0, 2.0])
>>> ring_take(r).tolist(), ring_take(r).tolist(), ring_take(r).tolist()
([0.0, 0.5, 0.0], [0.0, 0.0, 0.0], [3.0, 0.0, 0.0])
"""

from typing import NamedTuple

import numpy as np

from scheduler.jit import kernel
from scheduler.timequeue import _check_count

__all__ = ["DelayRing", "new_delay_ring", "ring_add", "ring_take"]


class DelayRing(NamedTuple):
    """Per-step input slots of a clock-driven delay line.

    Create it with :func:`new_delay_ring`; the kernels mutate the arrays in
    place.

    Attributes
    ----------
    buf : numpy.ndarray of float64, shape (slots, n)
        ``buf[(current + k) % slots]`` is the input that the ``(k + 1)``-th
        next take returns.
    current : numpy.ndarray of int64, shape (1,)
        The row the next take returns, in ``[0, slots)``.

    Examples
    --------
    >>> from scheduler.delayring import new_delay_ring
    >>> r = new_delay_ring(4, 3)
    >>> r.buf.shape, r.buf.dtype, r.current.tolist()
    ((4, 4), dtype('float64'), [0])
    """

    buf: np.ndarray
    current: np.ndarray


def new_delay_ring(n, max_delay_steps):
    """Return an empty :class:`DelayRing` for `n` targets and offsets up to `max_delay_steps`.

    Parameters
    ----------
    n : int
        Number of targets (neurons), a non-negative int.
    max_delay_steps : int
        Largest offset :func:`ring_add` accepts, a non-negative int; the ring
        has ``max_delay_steps + 1`` slots.

    Returns
    -------
    DelayRing
        All zeros, ``current == 0``.

    Raises
    ------
    TypeError
        If an argument is not an int (``bool`` is rejected).
    ValueError
        If an argument is negative.

    Examples
    --------
    >>> from scheduler.delayring import new_delay_ring
    >>> new_delay_ring(10, 4).buf.shape
    (5, 10)
    >>> new_delay_ring(10, -1)
    Traceback (most recent call last):
        ...
    ValueError: max_delay_steps must be a non-negative int, got -1
    """
    n = _check_count("n", n)
    slots = _check_count("max_delay_steps", max_delay_steps) + 1
    return DelayRing(buf=np.zeros((slots, n), dtype=np.float64), current=np.zeros(1, dtype=np.int64))


# --------------------------------------------------------------------------
# Numba building blocks (no argument checks; see the module docstring).
# --------------------------------------------------------------------------


@kernel(refcount=False)
def _ring_add(r, offset, target, value):
    s = r.current[0] + offset
    slots = r.buf.shape[0]
    if s >= slots:
        s -= slots
    r.buf[s, target] += value


@kernel(refcount=False)
def _ring_add_many(r, offsets, targets, values):
    for i in range(offsets.shape[0]):
        _ring_add(r, offsets[i], targets[i], values[i])


@kernel(refcount=False)
def _ring_take(r, out):
    buf = r.buf
    c = r.current[0]
    for j in range(buf.shape[1]):
        out[j] = buf[c, j]
        buf[c, j] = 0.0
    c += 1
    r.current[0] = 0 if c == buf.shape[0] else c


# --------------------------------------------------------------------------
# Checked Python functions
# --------------------------------------------------------------------------


def _int_array(name, x):
    a = np.asarray(x)
    if a.dtype.kind not in "iu" or a.dtype == np.bool_:
        raise TypeError(f"{name} must be integers, got dtype {a.dtype}")
    if a.ndim > 1:
        raise ValueError(f"{name} must be a scalar or 1-D, got shape {a.shape}")
    return a


def ring_add(r, offset, target, value):
    """Add `value` to the input of `target`, delivered by the ``(offset + 1)``-th next take.

    Arguments broadcast against each other (scalars or 1-D arrays); repeated
    ``(offset, target)`` pairs accumulate.

    Parameters
    ----------
    r : DelayRing
    offset : int or array_like of int
        In ``[0, max_delay_steps]``.
    target : int or array_like of int
        In ``[0, n)``.
    value : float or array_like of float

    Raises
    ------
    TypeError
        If `offset` or `target` is not of an integer dtype.
    ValueError
        If an offset or target is out of range, or the shapes do not broadcast.

    Examples
    --------
    >>> from scheduler.delayring import new_delay_ring, ring_add, ring_take
    >>> r = new_delay_ring(2, 1)
    >>> ring_add(r, 0, [1, 1], 0.25)
    >>> ring_take(r).tolist()
    [0.0, 0.5]
    >>> ring_add(r, 2, 0, 1.0)
    Traceback (most recent call last):
        ...
    ValueError: offset must be in [0, 1], got 2
    """
    slots, n = r.buf.shape
    off = _int_array("offset", offset)
    tgt = _int_array("target", target)
    val = np.asarray(value)
    if val.dtype.kind not in "iuf" or val.ndim > 1:
        raise TypeError(f"value must be real numbers (scalar or 1-D), got {val.dtype}, shape {val.shape}")
    off, tgt, val = np.broadcast_arrays(np.atleast_1d(off), np.atleast_1d(tgt), np.atleast_1d(val))
    if off.size:
        bad = (off < 0) | (off >= slots)
        if bad.any():
            raise ValueError(f"offset must be in [0, {slots - 1}], got {off[bad][0]}")
        bad = (tgt < 0) | (tgt >= n)
        if bad.any():
            raise ValueError(f"target must be in [0, {n}), got {tgt[bad][0]}")
    _ring_add_many(
        r,
        np.ascontiguousarray(off, dtype=np.int64),
        np.ascontiguousarray(tgt, dtype=np.int64),
        np.ascontiguousarray(val, dtype=np.float64),
    )


def ring_take(r, out=None):
    """Return the next step's input, zero its slot and advance the ring.

    Parameters
    ----------
    r : DelayRing
    out : numpy.ndarray of float64, shape (n,), optional
        Written in place and returned; a new array when omitted.

    Returns
    -------
    numpy.ndarray of float64, shape (n,)

    Raises
    ------
    ValueError
        If `out` is not a writable, C-contiguous float64 array of shape ``(n,)``.

    Examples
    --------
    >>> import numpy as np
    >>> from scheduler.delayring import new_delay_ring, ring_add, ring_take
    >>> r = new_delay_ring(3, 0)
    >>> ring_add(r, 0, 2, 1.5)
    >>> out = np.empty(3)
    >>> ring_take(r, out) is out, out.tolist(), ring_take(r).tolist()
    (True, [0.0, 0.0, 1.5], [0.0, 0.0, 0.0])
    """
    n = r.buf.shape[1]
    if out is None:
        out = np.empty(n, dtype=np.float64)
    elif not (
        isinstance(out, np.ndarray)
        and out.dtype == np.float64
        and out.shape == (n,)
        and out.flags.c_contiguous
        and out.flags.writeable
    ):
        desc = f"{out.dtype}{out.shape}" if isinstance(out, np.ndarray) else type(out).__name__
        raise ValueError(f"out must be a writable C-contiguous float64 array of shape ({n},), got {desc}")
    _ring_take(r, out)
    return out
