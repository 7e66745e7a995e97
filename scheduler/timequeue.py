"""Time-ordered event queue for spiking simulation (SimPy's core, compiled).

One binary min-heap of events ``(time, priority, seq, kind, target, value)``
ordered lexicographically by ``(time, priority, seq)``: earlier time first; on
equal times the lower ``priority`` value first; ``seq`` -- a counter assigned at
push -- breaks the remaining ties in insertion order, so the pop order is a
pure function of the pushes (deterministic, like SimPy's event id).

The state is an :class:`EventHeap` named tuple of fixed-dtype arrays, so it
can be passed into and through Numba kernels.  Two ways to use it:

* From Python, through the validating, SimPy-like wrapper :class:`EventQueue`
  (``push``, ``peek``, ``step``, ``run(until, handler)``, ``drain_until``).
* From other Numba kernels, through the private building blocks below.  They
  are compiled with :func:`scheduler.jit.kernel` and do **no argument checks**
  (times are not checked for NaN, infinity or being in the past; integers are
  cast to the storage dtypes and may wrap); the calling kernel is responsible
  for valid arguments.

Building blocks (``h`` is an :class:`EventHeap`):

``_eq_push(h, time, priority, kind, target, value) -> bool``
    Insert an event; ``False`` (and ``h`` unchanged) when the heap is full.
    Never allocates.
``_eq_push_grow(h, time, priority, kind, target, value) -> EventHeap``
    Insert an event, first doubling the capacity when full; returns the heap
    to use from now on (``h`` itself, or a new tuple after growth -- rebind:
    ``h = _eq_push_grow(h, ...)``).  Allocates when it grows.
``_eq_push_many(h, time, priority, kind, target, value) -> int``
    Push ``time[i], priority[i], ...`` in index order (equal-length arrays)
    until full; return how many were pushed.  Never allocates.
``_eq_reserve(h, capacity) -> EventHeap``
    ``h`` if it holds ``capacity`` events, else a copy with capacity
    ``max(capacity, 2 * old capacity)``.
``_eq_pop(h) -> (time, priority, seq, kind, target, value)``
    Remove and return the first event, typed ``(float64, int32, int64,
    int32, int64, float64)``; ``(inf, 0, -1, -1, -1, 0.0)`` when empty
    (``seq == -1`` marks "empty").
``_eq_peek(h)``
    Like ``_eq_pop`` without removing anything.
``_eq_peek_time(h) -> float64``
    Time of the first event, ``inf`` when empty.
``_eq_size(h) -> int64`` and ``_eq_capacity(h) -> int64``
``_eq_pop_until(h, until, out) -> int``
    Pop the events with ``time < until`` in order into the
    :class:`EventBatch` ``out`` (stops early when ``out`` is full); return
    the count.  Never allocates.
``_eq_discard_until(h, until) -> (count, last_time)``
    Pop and drop the events with ``time < until``.

Growth: the capacity is fixed per tuple.  ``_eq_push`` refuses to overfill
(returns ``False``; it never drops an event silently).  Growth always returns
a *new* tuple with new arrays (and a copy of ``counters``), so a kernel that
grows must return the new tuple to its caller; :class:`EventQueue` grows
automatically and its :attr:`EventQueue.state` is replaced when it does.

``run(until)`` follows SimPy: it processes the events strictly *before*
``until`` (``time < until``); events at exactly ``until`` stay queued for the
next call, and afterwards ``now == until``.

Which structure for spike delivery
----------------------------------
Measured with ``python benchmarks/bench_timequeue.py`` (N = 5000 Poisson
sources at 20 Hz for 1 s, 100 188 spikes, one arrival per spike at a random
target, every arrival delivered in time order; compiled loops, median of 5
repeats, on a 2-core machine shared with another job -- a second run gave
20-25 % lower numbers with the same ratios)::

    workload                                       events   M ev/s
    (a) heap, constant delay 1.5 ms                100188     10.1
    (b) FIFO per delay, 1 delay 1.5 ms             100188     51.1
    (b') FIFO per delay, 4 projection delays       100188     23.9
    (c) heap, per-synapse delay U[0.5, 3] ms       100188      9.6
    (d) DelayRing dt=0.1 ms, U[0.5, 3] ms          100188      4.7
    (e) heap, sources in queue + arrivals          200386      5.9

* Constant delay per projection: arrivals of one delay are pushed in time
  order, so a FIFO per distinct delay, merged by taking the minimum head, is
  O(1) per event: 5x the heap's rate with one delay ((b) vs (a)), 2.4x with
  four (the head scan grows with the number of distinct delays).  Use FIFOs
  when delays are per projection and few.
* Per-synapse (heterogeneous) delays break that order: use this heap, about
  100 ns per event (push + pop).  Its cost depends on ``log(pending
  events)``, not on the delay distribution: (a) and (c) hold ~150 pending
  arrivals and cost the same; with every source's next spike queued too
  (~5000 pending, (e)) an event costs about 1.7x as much.
* Clock-driven integration with delays rounded to ``dt``: use
  :class:`scheduler.delayring.DelayRing`.  Its cost is O(1) per spike plus
  O(n) per step (take a slot; the benchmark also adds it into a running sum),
  about 2 us per 0.1 ms step for n = 5000 here, so it wins once there are
  more than ~20 arrivals per step (any realistic fan-out); at one
  arrival per spike (~10 per step) it is 2x slower per event than the heap.

Examples
--------
>>> from scheduler.timequeue import EventQueue
>>> q = EventQueue(capacity=2)
>>> q.push(2.0, kind=1, target=7, value=0.5)
0
>>> q.push(1.0, kind=0, target=3)
1
>>> q.push(1.0, kind=0, target=4, priority=-1)  # same time, lower priority value first
2
>>> q.step()
Event(time=1.0, priority=-1, seq=2, kind=0, target=4, value=0.0)
>>> q.now, q.peek(), len(q)
(1.0, 1.0, 2)
>>> q.run(until=5.0)
2
>>> q.now, len(q), bool(q)
(5.0, 0, False)
"""

import math
import numbers
from typing import NamedTuple

import numpy as np

from scheduler.jit import kernel

__all__ = ["EmptyQueue", "Event", "EventBatch", "EventHeap", "EventQueue", "new_event_heap"]

_INT32 = np.iinfo(np.int32)
_INT64 = np.iinfo(np.int64)


class EventHeap(NamedTuple):
    """State of a binary min-heap of events, ordered by ``(time, priority, seq)``.

    Create it with :func:`new_event_heap`.  The arrays are mutated in place by
    the kernels; growing the capacity returns a new tuple.

    Attributes
    ----------
    time : numpy.ndarray of float64, shape (capacity,)
    priority : numpy.ndarray of int32, shape (capacity,)
    seq : numpy.ndarray of int64, shape (capacity,)
    kind : numpy.ndarray of int32, shape (capacity,)
    target : numpy.ndarray of int64, shape (capacity,)
        int64 so that it can hold a synapse (edge) index as well as a neuron id.
    value : numpy.ndarray of float64, shape (capacity,)
        Position ``p < size`` of each array holds one field of the same event;
        for every ``p > 0`` the event at ``(p - 1) // 2`` is not later in
        ``(time, priority, seq)`` than the one at ``p``.
    counters : numpy.ndarray of int64, shape (2,)
        ``counters[0]`` is the number of queued events, ``counters[1]`` the
        ``seq`` the next push will get (the number of pushes so far).

    Examples
    --------
    >>> from scheduler.timequeue import new_event_heap
    >>> h = new_event_heap(4)
    >>> [a.dtype.name for a in h]
    ['float64', 'int32', 'int64', 'int32', 'int64', 'float64', 'int64']
    >>> h.counters.tolist()
    [0, 0]
    """

    time: np.ndarray
    priority: np.ndarray
    seq: np.ndarray
    kind: np.ndarray
    target: np.ndarray
    value: np.ndarray
    counters: np.ndarray


class EventBatch(NamedTuple):
    """Events as parallel arrays, in pop order (see :meth:`EventQueue.drain_until`).

    Attributes
    ----------
    time : numpy.ndarray of float64
    priority : numpy.ndarray of int32
    seq : numpy.ndarray of int64
    kind : numpy.ndarray of int32
    target : numpy.ndarray of int64
    value : numpy.ndarray of float64

    Examples
    --------
    >>> from scheduler.timequeue import EventBatch
    >>> EventBatch._fields
    ('time', 'priority', 'seq', 'kind', 'target', 'value')
    """

    time: np.ndarray
    priority: np.ndarray
    seq: np.ndarray
    kind: np.ndarray
    target: np.ndarray
    value: np.ndarray


class Event(NamedTuple):
    """One popped event (Python scalars).

    Examples
    --------
    >>> from scheduler.timequeue import Event
    >>> Event(1.5, 0, 3, 2, 10, 0.25).time
    1.5
    """

    time: float
    priority: int
    seq: int
    kind: int
    target: int
    value: float


class EmptyQueue(IndexError):
    """Raised by :meth:`EventQueue.step` when no event is queued.

    Examples
    --------
    >>> from scheduler.timequeue import EmptyQueue
    >>> issubclass(EmptyQueue, IndexError)
    True
    """


def _check_count(name, x):
    if isinstance(x, (bool, np.bool_)) or not isinstance(x, (int, np.integer)):
        raise TypeError(f"{name} must be a non-negative int, got {type(x).__name__}")
    x = int(x)
    if x < 0:
        raise ValueError(f"{name} must be a non-negative int, got {x}")
    return x


def _alloc(capacity):
    return EventHeap(
        time=np.zeros(capacity, dtype=np.float64),
        priority=np.zeros(capacity, dtype=np.int32),
        seq=np.zeros(capacity, dtype=np.int64),
        kind=np.zeros(capacity, dtype=np.int32),
        target=np.zeros(capacity, dtype=np.int64),
        value=np.zeros(capacity, dtype=np.float64),
        counters=np.zeros(2, dtype=np.int64),
    )


def new_event_heap(capacity=64):
    """Return an empty :class:`EventHeap` with room for `capacity` events.

    Parameters
    ----------
    capacity : int
        Initial number of event slots, a non-negative int (growth doubles it,
        starting from at least 1).

    Returns
    -------
    EventHeap

    Raises
    ------
    TypeError
        If `capacity` is not an int (``bool`` is rejected).
    ValueError
        If `capacity` is negative.

    Examples
    --------
    >>> from scheduler.timequeue import new_event_heap
    >>> h = new_event_heap(8)
    >>> h.time.shape, int(h.counters[0])
    ((8,), 0)
    >>> new_event_heap(-1)
    Traceback (most recent call last):
        ...
    ValueError: capacity must be a non-negative int, got -1
    """
    return _alloc(_check_count("capacity", capacity))


# --------------------------------------------------------------------------
# Numba building blocks (no argument checks; see the module docstring).
# --------------------------------------------------------------------------


@kernel(refcount=False)
def _before(t1, p1, s1, t2, p2, s2):
    """Whether ``(t1, p1, s1)`` comes strictly before ``(t2, p2, s2)``."""
    if t1 != t2:
        return t1 < t2
    if p1 != p2:
        return p1 < p2
    return s1 < s2


@kernel(refcount=False, inline=True)
def _copy_event(h, dst, src):
    """Copy the event at heap position ``src`` to position ``dst``."""
    h.time[dst] = h.time[src]
    h.priority[dst] = h.priority[src]
    h.seq[dst] = h.seq[src]
    h.kind[dst] = h.kind[src]
    h.target[dst] = h.target[src]
    h.value[dst] = h.value[src]


@kernel(refcount=False, inline=True)
def _set_event(h, p, time, priority, seq, kind, target, value):
    """Write an event's fields at position ``p`` of ``h`` (the heap, or anything with its six event arrays)."""
    h.time[p] = time
    h.priority[p] = priority
    h.seq[p] = seq
    h.kind[p] = kind
    h.target[p] = target
    h.value[p] = value


@kernel(refcount=False)
def _eq_size(h):
    return h.counters[0]


@kernel(refcount=False)
def _eq_capacity(h):
    return np.int64(h.time.shape[0])


@kernel(refcount=False)
def _eq_peek_time(h):
    if h.counters[0] == 0:
        return np.inf
    return h.time[0]


@kernel(refcount=False)
def _eq_peek(h):
    if h.counters[0] == 0:
        return np.inf, np.int32(0), np.int64(-1), np.int32(-1), np.int64(-1), 0.0
    return h.time[0], h.priority[0], h.seq[0], h.kind[0], h.target[0], h.value[0]


@kernel(refcount=False)
def _eq_push(h, time, priority, kind, target, value):
    counters = h.counters
    n = counters[0]
    if n >= h.time.shape[0]:
        return False
    t = np.float64(time)
    pr = np.int32(priority)
    k = np.int32(kind)
    g = np.int64(target)
    v = np.float64(value)
    s = counters[1]
    counters[0] = n + 1
    counters[1] = s + 1
    T, P = h.time, h.priority
    p = n
    while p > 0:
        q = (p - 1) >> 1
        tq = T[q]
        # The new event has the largest seq, so it moves above its parent
        # only if it is strictly earlier in (time, priority).
        if t < tq or (t == tq and pr < P[q]):
            _copy_event(h, p, q)
            p = q
        else:
            break
    _set_event(h, p, t, pr, s, k, g, v)
    return True


@kernel(refcount=False)
def _eq_pop(h):
    counters = h.counters
    n = counters[0]
    if n == 0:
        return np.inf, np.int32(0), np.int64(-1), np.int32(-1), np.int64(-1), 0.0
    T, P, S, K, G, V = h.time, h.priority, h.seq, h.kind, h.target, h.value
    top = (T[0], P[0], S[0], K[0], G[0], V[0])
    n -= 1
    counters[0] = n
    if n > 0:
        # Move the last event into the hole at the root and sift it down.
        t, pr, s, k, g, v = T[n], P[n], S[n], K[n], G[n], V[n]
        p = 0
        while True:
            c = 2 * p + 1
            if c >= n:
                break
            r = c + 1
            if r < n and _before(T[r], P[r], S[r], T[c], P[c], S[c]):
                c = r
            if not _before(T[c], P[c], S[c], t, pr, s):
                break
            _copy_event(h, p, c)
            p = c
        _set_event(h, p, t, pr, s, k, g, v)
    return top


@kernel(refcount=False)
def _eq_push_many(h, time, priority, kind, target, value):
    m = time.shape[0]
    for i in range(m):
        if not _eq_push(h, time[i], priority[i], kind[i], target[i], value[i]):
            return i
    return m


@kernel
def _eq_reserve(h, capacity):
    old = h.time.shape[0]
    if capacity <= old:
        return h
    new = max(capacity, 2 * old)
    n = h.counters[0]
    time = np.zeros(new, dtype=np.float64)
    priority = np.zeros(new, dtype=np.int32)
    seq = np.zeros(new, dtype=np.int64)
    kind = np.zeros(new, dtype=np.int32)
    target = np.zeros(new, dtype=np.int64)
    value = np.zeros(new, dtype=np.float64)
    time[:n] = h.time[:n]
    priority[:n] = h.priority[:n]
    seq[:n] = h.seq[:n]
    kind[:n] = h.kind[:n]
    target[:n] = h.target[:n]
    value[:n] = h.value[:n]
    return EventHeap(time, priority, seq, kind, target, value, h.counters.copy())


@kernel
def _eq_push_grow(h, time, priority, kind, target, value):
    if h.counters[0] >= h.time.shape[0]:
        h = _eq_reserve(h, h.counters[0] + 1)
    _eq_push(h, time, priority, kind, target, value)
    return h


@kernel(refcount=False)
def _eq_pop_until(h, until, out):
    m = out.time.shape[0]
    i = 0
    while i < m and h.counters[0] > 0 and h.time[0] < until:
        t, pr, s, k, g, v = _eq_pop(h)
        _set_event(out, i, t, pr, s, k, g, v)  # out has the heap's six event arrays
        i += 1
    return i


@kernel(refcount=False)
def _eq_discard_until(h, until):
    count = 0
    last = -np.inf
    while h.counters[0] > 0 and h.time[0] < until:
        last = _eq_pop(h)[0]
        count += 1
    return count, last


# --------------------------------------------------------------------------
# Python wrapper
# --------------------------------------------------------------------------


def _check_int(name, x, info):
    if isinstance(x, (bool, np.bool_)) or not isinstance(x, (int, np.integer)):
        raise TypeError(f"{name} must be an int, got {type(x).__name__}")
    x = int(x)
    if not info.min <= x <= info.max:
        raise ValueError(f"{name} must fit in {info.dtype} [{info.min}, {info.max}], got {x}")
    return x


def _check_real(name, x):
    if isinstance(x, (bool, np.bool_)) or not isinstance(x, numbers.Real):
        raise TypeError(f"{name} must be a real number, got {type(x).__name__}")
    return float(x)


def _check_int_array(name, x, info, m):
    a = np.asarray(x)
    if a.dtype.kind not in "iu" or a.dtype == np.bool_:
        raise TypeError(f"{name} must be integers, got dtype {a.dtype}")
    if a.ndim > 1:
        raise ValueError(f"{name} must be a scalar or 1-D, got shape {a.shape}")
    if a.size and (a.min() < info.min or a.max() > info.max):
        bad = a[(a < info.min) | (a > info.max)][0]
        raise ValueError(f"{name} must fit in {info.dtype} [{info.min}, {info.max}], got {bad}")
    return np.ascontiguousarray(np.broadcast_to(a, (m,)), dtype=info.dtype)


class EventQueue:
    """Time-ordered event queue with a simulated clock, SimPy style.

    Events are ``(time, priority, seq, kind, target, value)``; they are
    popped in ``(time, priority, seq)`` order, where ``seq`` is the push
    counter, so ties pop in insertion order.  ``kind``, ``target`` and
    ``value`` are payload for the caller (e.g. event type, neuron id,
    weight).  The clock :attr:`now` starts at 0.0 and only moves forward;
    pushing an event before :attr:`now` is an error.  The work is done by the
    Numba building blocks of :mod:`scheduler.timequeue`; this class validates
    arguments and grows the capacity (doubling) as needed.

    Parameters
    ----------
    capacity : int
        Initial number of event slots (a non-negative int).

    Raises
    ------
    TypeError
        If `capacity` is not an int.
    ValueError
        If `capacity` is negative.

    Notes
    -----
    :meth:`run` processes the events strictly before ``until``, like
    ``simpy.Environment.run(until)``: an event at exactly ``until`` stays
    queued.  Times must be finite (``math.inf`` is what :meth:`peek` returns
    for "no event").

    Examples
    --------
    >>> from scheduler.timequeue import EventQueue
    >>> q = EventQueue()
    >>> for t, target in [(0.3, 1), (0.1, 2), (0.3, 0)]:
    ...     _ = q.push(t, kind=0, target=target)
    >>> def relay(ev):  # each event schedules a follow-up 0.5 later, once
    ...     if ev.kind == 0:
    ...         q.push(ev.time + 0.5, kind=1, target=ev.target, value=1.0)
    >>> q.run(until=0.5, handler=relay)
    3
    >>> [(e.time, e.target) for e in (q.step(), q.step())]
    [(0.6, 2), (0.8, 1)]
    >>> q.run(until=0.1)
    Traceback (most recent call last):
        ...
    ValueError: until (0.1) is in the past: now is 0.8
    """

    __slots__ = ("_now", "_state")

    def __init__(self, capacity=64):
        self._state = new_event_heap(capacity)
        self._now = 0.0

    # -- properties ----------------------------------------------------------

    @property
    def now(self):
        """float: the current simulated time (starts at 0.0)."""
        return self._now

    @property
    def state(self):
        """EventHeap: the live state arrays (shared, not a copy).

        Kernels may push and pop through the building blocks; the wrapper sees
        the changes.  Growing replaces the tuple, so fetch it again after any
        push through the wrapper, and do not grow it from a kernel (the
        wrapper would keep the old tuple).
        """
        return self._state

    @property
    def capacity(self):
        """int: the number of event slots currently allocated."""
        return int(self._state.time.shape[0])

    # -- validation ----------------------------------------------------------

    def _check_time(self, name, x):
        x = _check_real(name, x)
        if not math.isfinite(x):
            raise ValueError(f"{name} must be a finite number, got {x!r}")
        if x < self._now:
            raise ValueError(f"{name} ({x!r}) is in the past: now is {self._now!r}")
        return x

    def _reserve(self, capacity):
        if capacity > self._state.time.shape[0]:
            self._state = _eq_reserve(self._state, max(capacity, 1))

    # -- operations ------------------------------------------------------------

    def push(self, time, kind, target, value=0.0, priority=0):
        """Schedule an event at `time`; return its sequence number.

        Parameters
        ----------
        time : float
            Finite, not before :attr:`now` (``time == now`` is allowed).
        kind : int
            Event type (payload), fits in int32.
        target : int
            Target id (payload), fits in int64.
        value : float
            Payload, e.g. a synaptic weight.
        priority : int
            Tie-breaker on equal times, fits in int32: lower values first.

        Returns
        -------
        int
            The event's ``seq`` (0 for the first push, then 1, 2, ...).

        Raises
        ------
        TypeError
            If `time` or `value` is not a real number, or `kind`, `target` or
            `priority` is not an int.
        ValueError
            If `time` is NaN or infinite or before :attr:`now`, or an int
            does not fit its dtype.

        Examples
        --------
        >>> from scheduler.timequeue import EventQueue
        >>> q = EventQueue()
        >>> q.push(1.0, kind=0, target=5)
        0
        >>> q.push(float("nan"), kind=0, target=5)
        Traceback (most recent call last):
            ...
        ValueError: time must be a finite number, got nan
        """
        t = self._check_time("time", time)
        k = _check_int("kind", kind, _INT32)
        g = _check_int("target", target, _INT64)
        v = _check_real("value", value)
        pr = _check_int("priority", priority, _INT32)
        state = self._state
        size = int(state.counters[0])
        if size >= state.time.shape[0]:
            self._reserve(size + 1)
            state = self._state
        seq = int(state.counters[1])
        _eq_push(state, t, pr, k, g, v)
        return seq

    def push_many(self, time, kind, target, value=0.0, priority=0):
        """Schedule several events; sequence numbers follow the array order.

        Parameters
        ----------
        time : array_like of float, 1-D
            Finite times, none before :attr:`now`.
        kind, target, priority : int or array_like of int
            Broadcast to the length of `time` (dtypes as in :meth:`push`).
        value : float or array_like of float
            Broadcast to the length of `time`.

        Raises
        ------
        TypeError
            If an integer field is not of an integer dtype.
        ValueError
            If `time` is not 1-D, holds NaN, infinite or past times, or the
            other arguments do not broadcast to it.

        Examples
        --------
        >>> from scheduler.timequeue import EventQueue
        >>> q = EventQueue(capacity=1)
        >>> q.push_many([3.0, 1.0, 1.0], kind=0, target=[7, 8, 9])
        >>> [q.step().target for _ in range(len(q))]
        [8, 9, 7]
        """
        t = np.asarray(time)
        if t.ndim != 1:
            raise ValueError(f"time must be 1-D, got shape {t.shape}")
        if t.dtype.kind not in "iuf" or t.dtype == np.bool_:
            raise TypeError(f"time must be real numbers, got dtype {t.dtype}")
        t = np.ascontiguousarray(t, dtype=np.float64)
        m = t.shape[0]
        if not np.all(np.isfinite(t)):
            bad = t[~np.isfinite(t)][0]
            raise ValueError(f"time must be finite numbers, got {bad!r}")
        if m and t.min() < self._now:
            raise ValueError(f"time ({float(t.min())!r}) is in the past: now is {self._now!r}")
        k = _check_int_array("kind", kind, _INT32, m)
        g = _check_int_array("target", target, _INT64, m)
        pr = _check_int_array("priority", priority, _INT32, m)
        v = np.asarray(value)
        if v.dtype.kind not in "iuf" or v.ndim > 1:
            raise TypeError(f"value must be real numbers (scalar or 1-D), got {v.dtype}, shape {v.shape}")
        v = np.ascontiguousarray(np.broadcast_to(v, (m,)), dtype=np.float64)
        self._reserve(int(self._state.counters[0]) + m)
        pushed = _eq_push_many(self._state, t, pr, k, g, v)
        assert pushed == m  # capacity was reserved

    def peek(self):
        """Return the time of the next event, or ``math.inf`` if none is queued.

        Examples
        --------
        >>> from scheduler.timequeue import EventQueue
        >>> q = EventQueue()
        >>> q.peek()
        inf
        >>> _ = q.push(2.5, kind=0, target=0)
        >>> q.peek()
        2.5
        """
        state = self._state
        return float(state.time[0]) if state.counters[0] > 0 else math.inf

    def step(self):
        """Pop the next event, advance :attr:`now` to its time and return it.

        Returns
        -------
        Event

        Raises
        ------
        EmptyQueue
            If no event is queued (an ``IndexError``).

        Examples
        --------
        >>> from scheduler.timequeue import EventQueue
        >>> q = EventQueue()
        >>> _ = q.push(0.5, kind=2, target=9, value=1.5)
        >>> q.step()
        Event(time=0.5, priority=0, seq=0, kind=2, target=9, value=1.5)
        >>> q.step()
        Traceback (most recent call last):
            ...
        scheduler.timequeue.EmptyQueue: step() on an empty EventQueue (now is 0.5)
        """
        if self._state.counters[0] == 0:
            raise EmptyQueue(f"step() on an empty EventQueue (now is {self._now!r})")
        t, pr, s, k, g, v = _eq_pop(self._state)
        self._now = float(t)
        return Event(float(t), int(pr), int(s), int(k), int(g), float(v))

    def _check_until(self, until):
        if until is None:
            return None
        x = _check_real("until", until)
        if not math.isfinite(x):
            raise ValueError(
                f"until must be a finite number (or None: until the queue is empty), got {x!r}"
            )
        if x < self._now:
            raise ValueError(f"until ({x!r}) is in the past: now is {self._now!r}")
        return x

    def run(self, until=None, handler=None):
        """Process every event with ``time < until``, in order; return how many.

        Like ``simpy.Environment.run(until)``: events at exactly `until` stay
        queued, and afterwards :attr:`now` is `until`.  Before each
        ``handler(event)`` call :attr:`now` is the event's time; the handler
        may push new events (at or after :attr:`now`), which are processed in
        this run if they fall before `until`.

        Parameters
        ----------
        until : float or None
            Finite, not before :attr:`now`.  ``None`` runs until the queue is
            empty and leaves :attr:`now` at the last event's time (a handler
            that always pushes makes that run forever).
        handler : callable or None
            Called with each :class:`Event`.  ``None`` drops the events (in a
            compiled loop).  If the handler raises, the exception propagates;
            that event is consumed, the later ones stay queued and :attr:`now`
            is that event's time.

        Returns
        -------
        int
            The number of events processed.

        Raises
        ------
        ValueError
            If `until` is NaN, infinite or before :attr:`now`.

        Examples
        --------
        >>> from scheduler.timequeue import EventQueue
        >>> q = EventQueue()
        >>> q.push_many([1.0, 2.0, 3.0], kind=0, target=0)
        >>> seen = []
        >>> q.run(until=2.0, handler=seen.append)  # 2.0 is not before 2.0
        1
        >>> q.now, q.peek(), [e.time for e in seen]
        (2.0, 2.0, [1.0])
        >>> q.run()
        2
        >>> q.now
        3.0
        """
        until = self._check_until(until)
        limit = math.inf if until is None else until
        count = 0
        if handler is None:
            count, last = _eq_discard_until(self._state, limit)
            count = int(count)
            if count:
                self._now = float(last)
        else:
            while True:
                state = self._state  # the handler may grow it
                if state.counters[0] == 0 or not state.time[0] < limit:
                    break
                event = self.step()
                count += 1
                handler(event)
        if until is not None:
            self._now = until
        return count

    def drain_until(self, until=None):
        """Pop every event with ``time < until`` and return them as arrays.

        For callers that process the events in a compiled kernel.  :attr:`now`
        moves as in :meth:`run` without a handler.

        Parameters
        ----------
        until : float or None
            Finite, not before :attr:`now`; ``None`` drains the whole queue.

        Returns
        -------
        EventBatch
            Parallel arrays (fresh copies) in pop order.

        Raises
        ------
        ValueError
            If `until` is NaN, infinite or before :attr:`now`.

        Examples
        --------
        >>> from scheduler.timequeue import EventQueue
        >>> q = EventQueue()
        >>> q.push_many([0.2, 0.1, 0.7], kind=0, target=[1, 2, 3], value=0.5)
        >>> b = q.drain_until(0.5)
        >>> b.time.tolist(), b.target.tolist(), q.now, len(q)
        ([0.1, 0.2], [2, 1], 0.5, 1)
        """
        until = self._check_until(until)
        limit = math.inf if until is None else until
        state = self._state
        out = EventBatch(*_alloc(int(state.counters[0]))[:6])
        m = int(_eq_pop_until(state, limit, out))
        batch = EventBatch(*(a[:m].copy() for a in out))
        if until is not None:
            self._now = until
        elif m:
            self._now = float(batch.time[-1])
        return batch

    def __len__(self):
        return int(self._state.counters[0])

    def __bool__(self):
        return bool(self._state.counters[0] > 0)

    def __repr__(self):
        return f"EventQueue(now={self._now!r}, len={len(self)}, capacity={self.capacity})"
