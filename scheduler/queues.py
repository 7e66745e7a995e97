"""One kernel interface over both priority queues, resolved at compile time.

A kernel that schedules ids writes ``q.keys[i]`` and then calls
``_q_changed(q, i)`` (or ``_q_changed_range(q, lo, hi)`` for a contiguous
range), and asks ``_q_peek_max(q)`` for the id with the largest key. ``q`` is
a :class:`~scheduler.tournament.TournamentState` or an
:class:`~scheduler.heap.IndexedHeap`; Numba compiles the calling kernel once
per queue type, so there is no run-time branch on the queue in hot loops
(such a branch, with a real call in its arm, measured 15× slower per
synapse).

Use :func:`new_queue` to allocate either by name.
"""

from numba.core import types
from numba.extending import overload

from scheduler.heap import IndexedHeap, _heap_changed, _heap_peek_max, _sift_down, new_heap
from scheduler.jit import jit_options
from scheduler.tournament import TournamentState, _tq_mark, _tq_mark_range, _tq_peek_max, new_tournament

__all__ = ["QUEUES", "new_queue"]

QUEUES = {"tournament": new_tournament, "heap": new_heap}


def new_queue(kind, n):
    """Allocate an empty queue of ``kind`` (``"tournament"`` or ``"heap"``) over ``n`` ids.

    Examples
    --------
    >>> q = new_queue("heap", 4)
    >>> type(q).__name__
    'IndexedHeap'
    """
    try:
        factory = QUEUES[kind]
    except (KeyError, TypeError):
        raise ValueError(f"scheduler must be one of {sorted(QUEUES)}, got {kind!r}") from None
    return factory(n)


# The queue kernels allocate nothing: compile the overloads without reference
# counting, like the kernels they dispatch to (see ``scheduler.jit.kernel``).
_NO_REFCOUNT = jit_options(refcount=False)


def _is(q, cls):
    return isinstance(q, types.BaseNamedTuple) and q.instance_class is cls


def _q_changed(q, i):
    """``q.keys[i]`` was written: restore the queue's order (Numba only)."""
    raise NotImplementedError("_q_changed is only callable from Numba kernels")


def _q_changed_range(q, lo, hi):
    """``q.keys[lo:hi]`` were written: restore the queue's order (Numba only)."""
    raise NotImplementedError("_q_changed_range is only callable from Numba kernels")


def _q_peek_max(q):
    """``(id, key)`` with the largest key, ``(-1, -inf)`` when empty (Numba only)."""
    raise NotImplementedError("_q_peek_max is only callable from Numba kernels")


@overload(_q_changed, jit_options=_NO_REFCOUNT)
def _ov_changed(q, i):
    if _is(q, TournamentState):
        return lambda q, i: _tq_mark(q, i)
    if _is(q, IndexedHeap):
        return lambda q, i: _heap_changed(q, i)
    return None


def _heap_changed_range(q, lo, hi):
    # Several keys changed at once, so sifting them one by one is not valid
    # (each sift assumes the rest is in order): append the absent ids, then
    # re-heapify the whole heap (Floyd, O(size)).
    for i in range(lo, hi):
        if q.pos[i] < 0:
            n = q.size[0]
            q.heap[n] = i
            q.pos[i] = n
            q.size[0] = n + 1
    for p in range(q.size[0] // 2 - 1, -1, -1):
        _sift_down(q, p)


@overload(_q_changed_range, jit_options=_NO_REFCOUNT)
def _ov_changed_range(q, lo, hi):
    if _is(q, TournamentState):
        return lambda q, lo, hi: _tq_mark_range(q, lo, hi)
    if _is(q, IndexedHeap):
        return _heap_changed_range
    return None


@overload(_q_peek_max, jit_options=_NO_REFCOUNT)
def _ov_peek_max(q):
    if _is(q, TournamentState):
        return lambda q: _tq_peek_max(q)
    if _is(q, IndexedHeap):
        return lambda q: _heap_peek_max(q)
    return None
