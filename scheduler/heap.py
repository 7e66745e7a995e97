"""Indexed binary max-heap over the integer ids ``0 .. n-1``.

An *indexed* heap stores at most one entry per id and knows where each id sits,
so the key of an id that is already queued can be raised or lowered in
``O(log n)``.  A neuron simulator uses it to pop the most unstable neuron and to
update the keys of the neurons that received input.

The state is an :class:`IndexedHeap` named tuple of fixed-dtype arrays, so it
can be passed into and through Numba kernels.  There are two ways to use it:

* From Python, through the validating wrapper :class:`MaxHeap`.
* From other Numba kernels, through the private building blocks below.  They
  are compiled with :func:`scheduler.jit.kernel`, work in nopython mode and do
  **no argument checks** (ids are not bounds-checked, keys are not checked for
  NaN); the calling kernel is responsible for passing valid arguments.

Building blocks (``h`` is an :class:`IndexedHeap`, ``i`` an id in ``[0, n)``,
``p`` a position in ``h.heap``):

``_heap_set(h, i, key)``
    Insert ``i`` with ``key`` if absent, otherwise change its key and sift up
    or down as needed (push and update-key in one).  ``key`` is stored as
    float32 and must not be NaN.
``_heap_pop_max(h) -> (id, key)``
    Remove and return an id with the largest key, as ``(int64, float32)``;
    ``(-1, -inf)`` if the heap is empty.
``_heap_peek_max(h) -> (id, key)``
    Like ``_heap_pop_max`` without removing anything.
``_heap_remove(h, i)``
    Remove ``i``; no-op if it is absent.
``_heap_changed(h, i)``
    Restore the heap after ``h.keys[i]`` was written directly; inserts ``i``
    if it was absent.
``_heap_contains(h, i) -> bool``
    Whether ``i`` is queued.
``_sift_up(h, p) -> int`` and ``_sift_down(h, p) -> int``
    Restore the heap property for the entry at position ``p`` whose key may
    be too large (resp. too small) for that position; return its new position.

Keys are float32: every key is rounded to float32 when stored, and all
comparisons use the stored (rounded) value.

Ties: among equal keys the lowest id comes first. The heap orders entries by
``(key, -id)``, a total order, so what it pops is a function of the keys
alone, not of the history of operations that built it (the same rule as the
tournament queue's; a settle that reuses a queue pops what a fresh one would).

Examples
--------
>>> from scheduler.heap import MaxHeap
>>> h = MaxHeap(4)
>>> h.push(2, 0.5)
>>> h.push(0, 3.0)
>>> h.push(2, 7.0)  # update the key of id 2
>>> h.pop_max()
(2, 7.0)
>>> len(h), 0 in h
(1, True)
"""

import numbers
from typing import NamedTuple

import numpy as np

from scheduler.jit import kernel

__all__ = ["IndexedHeap", "MaxHeap", "new_heap"]

_INT32_IDS = int(np.iinfo(np.int32).max) + 1  # ids 0 .. n-1 must fit in int32


class IndexedHeap(NamedTuple):
    """State of an indexed binary max-heap over the ids ``0 .. n-1``.

    Create it with :func:`new_heap`.  The arrays are mutated in place by the
    heap kernels; the tuple itself never changes.

    Attributes
    ----------
    keys : numpy.ndarray of float32, shape (n,)
        ``keys[i]`` is the key of id ``i``; meaningless when ``i`` is absent.
    heap : numpy.ndarray of int32, shape (n,)
        ``heap[:size[0]]`` holds the queued ids in heap order: for every
        position ``p > 0``, ``keys[heap[(p - 1) // 2]] >= keys[heap[p]]``.
    pos : numpy.ndarray of int32, shape (n,)
        ``pos[i]`` is the position of id ``i`` in ``heap``, or -1 when absent.
    size : numpy.ndarray of int64, shape (1,)
        ``size[0]`` is the number of queued ids.

    Examples
    --------
    >>> from scheduler.heap import new_heap
    >>> h = new_heap(3)
    >>> h.keys.dtype, h.heap.dtype, h.pos.dtype, h.size.dtype
    (dtype('float32'), dtype('int32'), dtype('int32'), dtype('int64'))
    >>> h.pos.tolist(), int(h.size[0])
    ([-1, -1, -1], 0)
    """

    keys: np.ndarray
    heap: np.ndarray
    pos: np.ndarray
    size: np.ndarray


def new_heap(n):
    """Return an empty :class:`IndexedHeap` for the ids ``0 .. n-1``.

    Parameters
    ----------
    n : int
        Number of ids (capacity), ``0 <= n <= 2**31``.

    Returns
    -------
    IndexedHeap
        An empty heap: ``pos`` is all -1, ``size[0]`` is 0.

    Raises
    ------
    TypeError
        If `n` is not an integer (``bool`` is rejected).
    ValueError
        If `n` is negative or too large for int32 ids.

    Examples
    --------
    >>> from scheduler.heap import new_heap
    >>> h = new_heap(5)
    >>> h.keys.shape, int(h.size[0])
    ((5,), 0)
    >>> new_heap(-1)
    Traceback (most recent call last):
        ...
    ValueError: n must be a non-negative int, got -1
    """
    if isinstance(n, (bool, np.bool_)) or not isinstance(n, (int, np.integer)):
        raise TypeError(f"n must be a non-negative int, got {type(n).__name__}")
    n = int(n)
    if n < 0:
        raise ValueError(f"n must be a non-negative int, got {n}")
    if n > _INT32_IDS:
        raise ValueError(f"n must be at most {_INT32_IDS} (int32 ids), got {n}")
    return IndexedHeap(
        keys=np.full(n, -np.inf, dtype=np.float32),
        heap=np.full(n, -1, dtype=np.int32),
        pos=np.full(n, -1, dtype=np.int32),
        size=np.zeros(1, dtype=np.int64),
    )


# --------------------------------------------------------------------------
# Numba building blocks (no argument checks; see the module docstring).
# --------------------------------------------------------------------------


@kernel(inline=True)
def _above(keys, a, b):
    """Whether id ``a`` pops before id ``b``: a larger key, or an equal key and a lower id."""
    return keys[a] > keys[b] or (keys[a] == keys[b] and a < b)


@kernel(refcount=False)
def _sift_up(h, p):
    keys = h.keys
    heap = h.heap
    pos = h.pos
    i = heap[p]
    while p > 0:
        parent = (p - 1) >> 1
        j = heap[parent]
        if _above(keys, j, i):
            break
        heap[p] = j
        pos[j] = p
        p = parent
    heap[p] = i
    pos[i] = p
    return p


@kernel(refcount=False)
def _sift_down(h, p):
    keys = h.keys
    heap = h.heap
    pos = h.pos
    n = h.size[0]
    i = heap[p]
    while True:
        c = 2 * p + 1
        if c >= n:
            break
        r = c + 1
        if r < n and _above(keys, heap[r], heap[c]):
            c = r
        j = heap[c]
        if _above(keys, i, j):
            break
        heap[p] = j
        pos[j] = p
        p = c
    heap[p] = i
    pos[i] = p
    return p


@kernel(refcount=False)
def _heap_contains(h, i):
    return h.pos[i] >= 0


@kernel(refcount=False)
def _heap_set(h, i, key):
    keys = h.keys
    p = h.pos[i]
    if p < 0:
        n = h.size[0]
        keys[i] = key
        h.heap[n] = i
        h.pos[i] = n
        h.size[0] = n + 1
        _sift_up(h, n)
    else:
        old = keys[i]
        keys[i] = key
        new = keys[i]  # compare the stored (float32-rounded) key
        if new > old:
            _sift_up(h, p)
        elif new < old:
            _sift_down(h, p)


@kernel(refcount=False)
def _heap_changed(h, i):
    """Restore order after ``h.keys[i]`` was written directly (insert ``i`` if absent)."""
    p = h.pos[i]
    if p < 0:
        _heap_set(h, i, h.keys[i])
    elif _sift_up(h, p) == p:
        _sift_down(h, p)


@kernel(refcount=False)
def _remove_at(h, p):
    """Remove the entry at heap position ``p`` (``0 <= p < size``)."""
    heap = h.heap
    pos = h.pos
    last = h.size[0] - 1
    i = heap[p]
    pos[i] = -1
    h.size[0] = last
    if p != last:
        j = heap[last]
        heap[p] = j
        pos[j] = p
        if _sift_up(h, p) == p:
            _sift_down(h, p)


@kernel(refcount=False)
def _heap_peek_max(h):
    if h.size[0] == 0:
        return np.int64(-1), np.float32(-np.inf)
    i = h.heap[0]
    return np.int64(i), h.keys[i]


@kernel(refcount=False)
def _heap_pop_max(h):
    if h.size[0] == 0:
        return np.int64(-1), np.float32(-np.inf)
    i = h.heap[0]
    k = h.keys[i]
    _remove_at(h, 0)
    return np.int64(i), k


@kernel(refcount=False)
def _heap_remove(h, i):
    p = h.pos[i]
    if p >= 0:
        _remove_at(h, p)


# --------------------------------------------------------------------------
# Python wrapper
# --------------------------------------------------------------------------


class MaxHeap:
    """Indexed max-priority queue over the ids ``0 .. n-1`` with float32 keys.

    Each id is queued at most once; pushing a queued id updates its key.
    Operations are ``O(log n)``; the work is done by the Numba building blocks
    of :mod:`scheduler.heap`, this class only validates arguments.

    Parameters
    ----------
    n : int
        Number of ids (capacity), a non-negative int.

    Raises
    ------
    TypeError
        If `n` is not an integer.
    ValueError
        If `n` is negative.

    Notes
    -----
    Keys are stored as float32: the key given to :meth:`push` is rounded to
    float32, and :meth:`pop_max`, :meth:`peek_max` and :meth:`key` return the
    rounded value.  When several ids share the largest key any of them may be
    returned, deterministically for a given sequence of operations.

    Examples
    --------
    >>> from scheduler.heap import MaxHeap
    >>> h = MaxHeap(5)
    >>> for i, k in [(0, 1.0), (3, 4.0), (4, 2.5)]:
    ...     h.push(i, k)
    >>> h.push(0, 9.0)  # update: id 0 now has the largest key
    >>> h.peek_max()
    (0, 9.0)
    >>> h.remove(3)
    >>> [h.pop_max() for _ in range(len(h))]
    [(0, 9.0), (4, 2.5)]
    >>> h.push(1, 0.1)  # rounded to float32
    >>> h.key(1)
    0.10000000149011612
    >>> h.push(5, 1.0)
    Traceback (most recent call last):
        ...
    IndexError: i must be in [0, 5), got 5
    """

    __slots__ = ("_n", "_state")

    def __init__(self, n):
        self._state = new_heap(n)
        self._n = int(n)

    @property
    def state(self):
        """IndexedHeap: the live state arrays (shared, not a copy).

        Pass it to kernels that use the building blocks; changes made there
        are seen by this wrapper.
        """
        return self._state

    def _check_id(self, i):
        if isinstance(i, (bool, np.bool_)) or not isinstance(i, (int, np.integer)):
            raise TypeError(f"i must be an int, got {type(i).__name__}")
        i = int(i)
        if not 0 <= i < self._n:
            raise IndexError(f"i must be in [0, {self._n}), got {i}")
        return i

    @staticmethod
    def _check_key(key):
        if isinstance(key, (bool, np.bool_)) or not isinstance(key, numbers.Real):
            raise TypeError(f"key must be a real number, got {type(key).__name__}")
        with np.errstate(over="ignore", invalid="ignore"):
            key32 = np.float32(key)
        if not np.isfinite(key32):
            raise ValueError(f"key must be finite as a float32, got {key!r}")
        return key32

    def push(self, i, key):
        """Insert id `i` with `key`, or update its key if already queued.

        Parameters
        ----------
        i : int
            Id in ``[0, n)``.
        key : float
            Priority; rounded to float32, which must be finite.

        Raises
        ------
        TypeError
            If `i` is not an int or `key` is not a real number.
        IndexError
            If `i` is outside ``[0, n)``.
        ValueError
            If `key` is NaN or infinite after rounding to float32
            (e.g. ``1e39``).

        Examples
        --------
        >>> from scheduler.heap import MaxHeap
        >>> h = MaxHeap(2)
        >>> h.push(1, 2.0)
        >>> h.push(1, -2.0)
        >>> h.key(1), len(h)
        (-2.0, 1)
        """
        i = self._check_id(i)
        key32 = self._check_key(key)
        _heap_set(self._state, i, key32)

    def pop_max(self):
        """Remove and return ``(id, key)`` with the largest key.

        Returns
        -------
        tuple of (int, float)
            The id and its (float32-rounded) key.

        Raises
        ------
        IndexError
            If the heap is empty.

        Examples
        --------
        >>> from scheduler.heap import MaxHeap
        >>> h = MaxHeap(3)
        >>> h.push(0, 1.0); h.push(2, 5.0)
        >>> h.pop_max(), h.pop_max()
        ((2, 5.0), (0, 1.0))
        """
        if self._state.size[0] == 0:
            raise IndexError("pop from an empty MaxHeap")
        i, k = _heap_pop_max(self._state)
        return int(i), float(k)

    def peek_max(self):
        """Return ``(id, key)`` with the largest key without removing it.

        This is the pair the next :meth:`pop_max` returns.

        Returns
        -------
        tuple of (int, float)

        Raises
        ------
        IndexError
            If the heap is empty.

        Examples
        --------
        >>> from scheduler.heap import MaxHeap
        >>> h = MaxHeap(3)
        >>> h.push(1, 2.0)
        >>> h.peek_max(), len(h)
        ((1, 2.0), 1)
        """
        if self._state.size[0] == 0:
            raise IndexError("peek at an empty MaxHeap")
        i, k = _heap_peek_max(self._state)
        return int(i), float(k)

    def remove(self, i):
        """Remove id `i`; do nothing if it is not queued.

        Parameters
        ----------
        i : int
            Id in ``[0, n)``.

        Raises
        ------
        TypeError
            If `i` is not an int.
        IndexError
            If `i` is outside ``[0, n)``.

        Examples
        --------
        >>> from scheduler.heap import MaxHeap
        >>> h = MaxHeap(3)
        >>> h.push(1, 2.0)
        >>> h.remove(1); h.remove(1)
        >>> 1 in h
        False
        """
        i = self._check_id(i)
        _heap_remove(self._state, i)

    def key(self, i):
        """Return the (float32-rounded) key of queued id `i`.

        Parameters
        ----------
        i : int
            Id in ``[0, n)``.

        Returns
        -------
        float

        Raises
        ------
        TypeError
            If `i` is not an int.
        IndexError
            If `i` is outside ``[0, n)``.
        KeyError
            If `i` is not queued.

        Examples
        --------
        >>> from scheduler.heap import MaxHeap
        >>> h = MaxHeap(3)
        >>> h.push(2, 1.5)
        >>> h.key(2)
        1.5
        """
        i = self._check_id(i)
        if self._state.pos[i] < 0:
            raise KeyError(i)
        return float(self._state.keys[i])

    def __len__(self):
        return int(self._state.size[0])

    def __contains__(self, i):
        """Whether `i` is a queued id; False for anything that is not a valid id."""
        if isinstance(i, (bool, np.bool_)) or not isinstance(i, (int, np.integer)):
            return False
        i = int(i)
        return 0 <= i < self._n and bool(self._state.pos[i] >= 0)

    def __repr__(self):
        return f"MaxHeap(n={self._n}, len={len(self)})"
