"""Blocked tournament queue: a max-priority queue with O(1) update-key.

Ids ``0..n-1`` are split into blocks of :data:`BLOCK` consecutive ids; each
block caches the maximum of its keys, and the queue's maximum is the maximum
of the block maxima. Changing a key only marks its block dirty (O(1));
:func:`_tq_peek_max` first re-scans the dirty blocks, then scans the block
maxima, then searches the winning block for the id. Every scan is a
branch-free maximum over contiguous memory that the compiler vectorises:
keys are compared as *sortable int32* (the IEEE bit pattern with the
magnitude bits flipped for negative numbers, which orders like the floats),
because Numba's float ``max`` does not vectorise.

Why this structure for event-driven settling: a broadcast changes the keys
of *all* its out-neighbours, often a contiguous id range. An indexed binary
heap pays ``O(log n)`` sift work per changed key; here a contiguous range of
``k`` keys costs ``k / BLOCK`` dirty marks, and the re-scan at the next pop
reads each dirty block once however many of its keys changed. A pop costs
``O(n / BLOCK + BLOCK)`` vector work, which is small next to a broadcast up
to some 10^5 neurons. ``benchmarks/bench_queue.py`` measures both queues
inside the real settle kernel.

Absent ids hold the key ``-inf``. Keys must not be NaN, and kernels should
not write ``-0.0`` (it orders below ``+0.0``; the wrapper normalises it). The ``_tq_*``
functions are Numba building blocks for other kernels and check nothing;
:class:`TournamentQueue` is the checked Python wrapper.
"""

from typing import NamedTuple

import numpy as np

from scheduler.jit import kernel

__all__ = ["BLOCK", "TournamentState", "TournamentQueue", "new_tournament"]

BLOCK_SHIFT = 6
BLOCK = 1 << BLOCK_SHIFT
_NEG_INF = np.float32(-np.inf)
_SIGN_FREE = np.int32(0x7FFFFFFF)


class TournamentState(NamedTuple):
    """Arrays of a blocked tournament queue over ``n`` ids.

    Attributes
    ----------
    keys : float32[n]
        Key of each id, ``-inf`` when absent. Kernels may write keys directly
        and then call ``_tq_mark`` / ``_tq_mark_range``.
    block_max : int32[n_blocks]
        Sortable-int maximum of each block's keys (stale while dirty).
    dirty : uint8[n_blocks]
        Blocks whose cached maximum is stale.
    dirty_list : int32[n_blocks]
        The dirty block numbers, ``dirty_count[0]`` of them.
    dirty_count : int64[1]
    """

    keys: np.ndarray
    block_max: np.ndarray
    dirty: np.ndarray
    dirty_list: np.ndarray
    dirty_count: np.ndarray


def new_tournament(n, keys=None):
    """Allocate a queue over ``n`` ids, empty or holding ``keys``.

    Parameters
    ----------
    n : int
        Number of ids (``>= 0``).
    keys : array_like of float, optional
        Initial keys (``-inf`` = absent); converted to float32.

    Returns
    -------
    TournamentState

    Examples
    --------
    >>> q = new_tournament(3, [0.5, 2.0, 1.0])
    >>> q.keys.dtype.name
    'float32'
    """
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 0:
        raise ValueError(f"n must be a non-negative int, got {n!r}")
    n_blocks = max(1, (n + BLOCK - 1) >> BLOCK_SHIFT)
    key_arr = np.full(n, _NEG_INF, dtype=np.float32)
    if keys is not None:
        given = np.asarray(keys, dtype=np.float32)
        if given.shape != (n,):
            raise ValueError(f"keys must have shape ({n},), got {given.shape}")
        if np.isnan(given).any():
            raise ValueError("keys must not be NaN")
        key_arr[:] = given
    return TournamentState(
        keys=key_arr,
        block_max=np.zeros(n_blocks, dtype=np.int32),
        dirty=np.ones(n_blocks, dtype=np.uint8),
        dirty_list=np.arange(n_blocks, dtype=np.int32),
        dirty_count=np.array([n_blocks], dtype=np.int64),
    )


@kernel(inline=True)
def _sortable(bits):
    """Map float32 bits (as int32) to an int32 that orders like the float.

    It is its own inverse. The result is cast back to int32: Numba computes
    int32 arithmetic in int64, and a max over int64 vectorises at half the
    width.
    """
    return np.int32(bits ^ ((bits >> 31) & _SIGN_FREE))


_SORTABLE_NEG_INF = np.int32(_NEG_INF.view(np.int32) ^ _SIGN_FREE)


@kernel(inline=True)
def _tq_mark_block(q, b):
    """Record that block ``b`` holds a changed key."""
    if q.dirty[b] == 0:
        q.dirty[b] = 1
        q.dirty_list[q.dirty_count[0]] = b
        q.dirty_count[0] += 1


@kernel(inline=True)
def _tq_mark(q, i):
    """Record that ``q.keys[i]`` changed."""
    _tq_mark_block(q, i >> BLOCK_SHIFT)


@kernel(inline=True)
def _tq_mark_range(q, lo, hi):
    """Record that ``q.keys[lo:hi]`` changed."""
    if hi <= lo:
        return
    for b in range(lo >> BLOCK_SHIFT, ((hi - 1) >> BLOCK_SHIFT) + 1):
        _tq_mark_block(q, b)


@kernel(inline=True)
def _tq_set(q, i, key):
    """Insert ``i`` with ``key`` or change its key."""
    q.keys[i] = key
    _tq_mark(q, i)


@kernel(inline=True)
def _first_equal(values, target, none):
    """Lowest ``k`` with ``values[k] == target``, else ``none``.

    Branch-free (a min reduction) so that it vectorises, unlike a loop that
    stops at the first match.
    """
    none32 = np.int32(none)  # an int32 min reduction vectorises (AVX2 has no int64 min)
    first = none32
    for k in range(values.shape[0]):
        first = min(first, np.int32(k) if values[k] == target else none32)
    return np.int64(first)


@kernel(inline=True)
def _block_sortable_max(bits):
    """Largest sortable key of a block's keys (given as int32 bits)."""
    best = _SORTABLE_NEG_INF
    for k in range(bits.shape[0]):
        best = max(best, _sortable(bits[k]))
    return best


@kernel(refcount=False)
def _tq_refresh(q):
    """Recompute the maxima of dirty blocks."""
    bits = q.keys.view(np.int32)
    n = bits.shape[0]
    for d in range(q.dirty_count[0]):
        b = q.dirty_list[d]
        q.dirty[b] = 0
        q.block_max[b] = _block_sortable_max(bits[b << BLOCK_SHIFT:min((b + 1) << BLOCK_SHIFT, n)])
    q.dirty_count[0] = 0


@kernel(refcount=False)
def _tq_peek_max(q):
    """Id with the largest key and that key; ``(-1, -inf)`` when empty.

    Ties go to the lowest id, so results are deterministic.
    """
    if q.dirty_count[0] > 0:
        _tq_refresh(q)
    block_max = q.block_max
    best = _SORTABLE_NEG_INF
    for b in range(block_max.shape[0]):
        best = max(best, block_max[b])
    if best == _SORTABLE_NEG_INF:
        return -1, _NEG_INF
    b = _first_equal(block_max, best, block_max.shape[0])
    bits = q.keys.view(np.int32)
    lo = b << BLOCK_SHIFT
    # _sortable is its own inverse: search the block for the raw bits
    i = lo + _first_equal(bits[lo:min(lo + BLOCK, bits.shape[0])], _sortable(best), BLOCK)
    return i, q.keys[i]


@kernel(refcount=False)
def _tq_pop_max(q):
    """Remove and return the id with the largest key and that key."""
    i, key = _tq_peek_max(q)
    if i >= 0:
        q.keys[i] = _NEG_INF
        _tq_mark(q, i)
    return i, key


@kernel(refcount=False)
def _tq_remove(q, i):
    """Remove ``i`` (no-op when absent)."""
    if q.keys[i] > _NEG_INF:
        q.keys[i] = _NEG_INF
        _tq_mark(q, i)


class TournamentQueue:
    """Max-priority queue over ids ``0..n-1`` with O(1) update-key.

    Parameters
    ----------
    n : int
        Number of ids.

    Notes
    -----
    Keys are stored as float32. Among equal keys the lowest id pops first.

    Examples
    --------
    >>> q = TournamentQueue(100)
    >>> q.push(7, 0.25)
    >>> q.push(42, 3.0)
    >>> q.push(7, 5.0)          # update-key
    >>> q.pop_max()
    (7, 5.0)
    >>> len(q), 42 in q
    (1, True)
    """

    def __init__(self, n):
        self._state = new_tournament(n)
        self._n = n

    @property
    def state(self):
        """The :class:`TournamentState` arrays, for use in kernels."""
        return self._state

    def _check_id(self, i):
        if isinstance(i, bool) or not isinstance(i, (int, np.integer)) or not 0 <= i < self._n:
            raise IndexError(f"id must be an int in [0, {self._n}), got {i!r}")
        return int(i)

    def push(self, i, key):
        """Insert id ``i`` with ``key``, or change its key if present."""
        i = self._check_id(i)
        key = float(key)
        if not np.isfinite(key) or not np.isfinite(np.float32(key)):
            raise ValueError(f"key must be finite, got {key!r}")
        # + 0.0 turns -0.0 into +0.0: sortable ints would order -0.0 below +0.0
        _tq_set(self._state, i, np.float32(key) + np.float32(0.0))

    def pop_max(self):
        """Remove and return ``(id, key)`` with the largest key."""
        i, key = _tq_pop_max(self._state)
        if i < 0:
            raise IndexError("pop from an empty TournamentQueue")
        return int(i), float(key)

    def peek_max(self):
        """Return ``(id, key)`` with the largest key without removing it."""
        i, key = _tq_peek_max(self._state)
        if i < 0:
            raise IndexError("peek into an empty TournamentQueue")
        return int(i), float(key)

    def remove(self, i):
        """Remove id ``i`` (no error when absent)."""
        _tq_remove(self._state, self._check_id(i))

    def key(self, i):
        """Key of id ``i``; ``KeyError`` when absent."""
        i = self._check_id(i)
        value = self._state.keys[i]
        if value == _NEG_INF:
            raise KeyError(i)
        return float(value)

    def __contains__(self, i):
        if isinstance(i, bool) or not isinstance(i, (int, np.integer)) or not 0 <= i < self._n:
            return False
        return bool(self._state.keys[i] > _NEG_INF)

    def __len__(self):
        return int(np.count_nonzero(self._state.keys > _NEG_INF))
