"""Tests for :mod:`scheduler.timequeue` and :mod:`scheduler.delayring`."""

import heapq
import math

import numpy as np
import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from scheduler.delayring import DelayRing, _ring_add, _ring_take, new_delay_ring, ring_add, ring_take
from scheduler.jit import kernel
from scheduler.timequeue import (
    EmptyQueue,
    Event,
    EventBatch,
    EventHeap,
    EventQueue,
    _eq_capacity,
    _eq_peek,
    _eq_peek_time,
    _eq_pop,
    _eq_pop_until,
    _eq_push,
    _eq_push_grow,
    _eq_push_many,
    _eq_size,
    new_event_heap,
)

# -- the plain-Python model (heapq on (time, priority, seq, kind, target, value)) ----

# Time increments biased towards 0 and a few round values, so that exact ties
# (equal times, and equal times with equal priorities) are common.
deltas = st.one_of(
    st.sampled_from([0.0, 0.0, 0.0, 0.5, 1.0, 1.0, 2.0]),
    st.floats(0.0, 5.0, allow_nan=False),
)
priorities = st.integers(-2, 2)
kinds = st.integers(0, 3)
targets = st.one_of(st.integers(0, 5), st.sampled_from([2**31, 2**62, -1]))
values = st.one_of(st.sampled_from([0.0, 1.0, -0.5]), st.floats(-1e6, 1e6, allow_nan=False))
followups = st.lists(st.tuples(deltas, priorities, kinds), max_size=6)


def _key(e):
    return (e[0], e[1], e[2])


def check_event_heap(h, next_seq):
    """dtypes, counters and the (time, priority, seq) heap property, from the arrays."""
    assert isinstance(h, EventHeap)
    dtypes = [a.dtype for a in h]
    assert dtypes == [np.float64, np.int32, np.int64, np.int32, np.int64, np.float64, np.int64]
    cap = h.time.shape[0]
    assert all(a.shape == (cap,) for a in h[:6]) and h.counters.shape == (2,)
    size = int(h.counters[0])
    assert 0 <= size <= cap
    assert int(h.counters[1]) == next_seq
    keys = list(zip(h.time[:size].tolist(), h.priority[:size].tolist(), h.seq[:size].tolist()))
    for p in range(1, size):
        assert keys[(p - 1) // 2] < keys[p], f"heap property violated at {p}"
    assert len({k[2] for k in keys}) == size, "duplicate seq"


class EventQueueMachine(RuleBasedStateMachine):
    capacity = 1

    def __init__(self):
        super().__init__()
        self.queue = EventQueue(capacity=self.capacity)
        self.model = []
        self.now = 0.0
        self.next_seq = 0
        self.last_key = None  # key of the last pop, None after a push
        self.last_time = -math.inf

    # -- model helpers ---------------------------------------------------------
    def _model_push(self, t, pr, k, g, v):
        heapq.heappush(self.model, (t, pr, self.next_seq, k, g, v))
        self.next_seq += 1
        self.last_key = None

    def _record_pop(self, event):
        """Check a popped real event against the model and the ordering rules."""
        expected = heapq.heappop(self.model)
        assert isinstance(event, Event)
        assert tuple(event) == expected, f"popped {event}, model {expected}"
        assert event.time >= self.last_time, "time went backwards"
        if self.last_key is not None:
            assert _key(event) > self.last_key, "pop order not increasing in (time, priority, seq)"
        self.last_key = _key(event)
        self.last_time = event.time
        self.now = event.time

    # -- rules -------------------------------------------------------------------
    @rule(delta=deltas, pr=priorities, k=kinds, g=targets, v=values)
    def push(self, delta, pr, k, g, v):
        t = self.now + delta
        assert self.queue.push(t, k, g, value=v, priority=pr) == self.next_seq
        self._model_push(t, pr, k, g, v)

    @precondition(lambda self: self.model)
    @rule(data=st.data(), pr=priorities, k=kinds, g=targets)
    def push_at_queued_time(self, data, pr, k, g):
        t = data.draw(st.sampled_from(sorted({e[0] for e in self.model})), label="t")
        assert self.queue.push(t, k, g, priority=pr) == self.next_seq
        self._model_push(t, pr, k, g, 0.0)

    @rule(batch=st.lists(st.tuples(deltas, priorities, kinds, targets, values), max_size=8))
    def push_many(self, batch):
        t = [self.now + b[0] for b in batch]
        self.queue.push_many(
            np.array(t, dtype=np.float64),
            kind=np.array([b[2] for b in batch], dtype=np.int64),
            target=np.array([b[3] for b in batch], dtype=np.int64),
            value=np.array([b[4] for b in batch], dtype=np.float64),
            priority=np.array([b[1] for b in batch], dtype=np.int64),
        )
        for ti, (_, pr, k, g, v) in zip(t, batch):
            self._model_push(ti, pr, k, g, v)

    @rule()
    def step(self):
        if self.model:
            self._record_pop(self.queue.step())
        else:
            with pytest.raises(EmptyQueue, match=r"empty EventQueue \(now is"):
                self.queue.step()

    @rule()
    def peek(self):
        assert self.queue.peek() == (self.model[0][0] if self.model else math.inf)

    @rule(data=st.data(), delta=deltas, specs=followups, at_event=st.booleans())
    def run_with_handler(self, data, delta, specs, at_event):
        until = self.now + delta
        if at_event and self.model:  # until exactly at a queued time: that event must stay
            until = data.draw(st.sampled_from(sorted({e[0] for e in self.model})), label="until")
        queue = self.queue
        handled = []

        def handler(event):
            # The model decides which event comes next (heapq pop in _record_pop);
            # follow-ups are pushed to both, so the two stay in step.
            assert queue.now == event.time
            self._record_pop(event)
            handled.append(event)
            if len(handled) <= len(specs):
                d, pr, k = specs[len(handled) - 1]
                t = event.time + d
                assert queue.push(t, k, event.target, value=1.0, priority=pr) == self.next_seq
                self._model_push(t, pr, k, event.target, 1.0)

        count = queue.run(until, handler=handler)
        assert count == len(handled)
        assert not self.model or self.model[0][0] >= until, "run stopped before until"
        assert queue.now == until
        self.now = until
        self.last_key = None

    @rule(delta=deltas)
    def run_no_handler(self, delta):
        until = self.now + delta
        expected = sum(1 for e in self.model if e[0] < until)
        assert self.queue.run(until) == expected
        for _ in range(expected):
            e = heapq.heappop(self.model)
            self.last_time, self.last_key = e[0], _key(e)
        self.now = until

    @rule()
    def run_until_empty(self):
        n = len(self.model)
        assert self.queue.run() == n
        if n:
            last = max(self.model)
            self.now = self.last_time = last[0]
            self.last_key = _key(last)
        self.model = []

    @rule(delta=deltas, to_end=st.booleans())
    def drain_until(self, delta, to_end):
        until = None if to_end else self.now + delta
        batch = self.queue.drain_until(until)
        assert isinstance(batch, EventBatch)
        expected = []
        while self.model and (until is None or self.model[0][0] < until):
            expected.append(heapq.heappop(self.model))
        got = list(zip(*(a.tolist() for a in batch)))
        assert got == expected
        assert [a.dtype for a in batch] == [np.float64, np.int32, np.int64, np.int32, np.int64, np.float64]
        if until is not None:
            self.now = until
        elif expected:
            self.now = expected[-1][0]
        if expected:
            self.last_time, self.last_key = expected[-1][0], _key(expected[-1])

    @precondition(lambda self: self.now > 0)
    @rule(back=st.floats(1e-3, 10.0))
    def past_is_rejected(self, back):
        t = self.now - back
        if not t < self.now:
            return
        with pytest.raises(ValueError, match=rf"time \({t!r}\) is in the past: now is {self.now!r}"):
            self.queue.push(t, 0, 0)
        with pytest.raises(ValueError, match=rf"until \({t!r}\) is in the past: now is {self.now!r}"):
            self.queue.run(t)
        with pytest.raises(ValueError, match=r"until .* is in the past"):
            self.queue.drain_until(t)

    # -- invariants ----------------------------------------------------------------
    @invariant()
    def same_size(self):
        assert len(self.queue) == len(self.model)
        assert bool(self.queue) == bool(self.model)

    @invariant()
    def same_next_event(self):
        assert self.queue.now == self.now
        if self.model:
            assert self.queue.peek() == self.model[0][0]
            assert tuple(_eq_peek(self.queue.state)) == self.model[0]
        else:
            assert self.queue.peek() == math.inf

    @invariant()
    def structure(self):
        check_event_heap(self.queue.state, self.next_seq)


_MACHINE_SETTINGS = dict(deadline=None, suppress_health_check=[HealthCheck.too_slow])

EventQueueMachine.TestCase.settings = settings(max_examples=60, stateful_step_count=40, **_MACHINE_SETTINGS)
TestEventQueueMachine = EventQueueMachine.TestCase


class RoomyEventQueueMachine(EventQueueMachine):
    capacity = 64


RoomyEventQueueMachine.TestCase.settings = settings(max_examples=25, stateful_step_count=40, **_MACHINE_SETTINGS)
TestRoomyEventQueueMachine = RoomyEventQueueMachine.TestCase


# -- errors -----------------------------------------------------------------


def test_push_in_the_past():
    q = EventQueue()
    q.push(2.0, 0, 0)
    q.step()
    with pytest.raises(ValueError, match=r"^time \(1\.5\) is in the past: now is 2\.0$"):
        q.push(1.5, 0, 0)
    with pytest.raises(ValueError, match=r"^time \(1\.0\) is in the past: now is 2\.0$"):
        q.push_many([3.0, 1.0], 0, 0)
    assert len(q) == 0
    assert q.push(2.0, 0, 0) == 1  # time == now is fine


def test_until_in_the_past():
    q = EventQueue()
    q.run(3.0)
    for call in (q.run, q.drain_until):
        with pytest.raises(ValueError, match=r"^until \(2\.5\) is in the past: now is 3\.0$"):
            call(2.5)
    assert q.run(3.0) == 0 and q.now == 3.0  # until == now is fine


@pytest.mark.parametrize("bad", [math.nan, math.inf, -math.inf, np.float64("nan")])
def test_non_finite_time(bad):
    q = EventQueue()
    with pytest.raises(ValueError, match=rf"^time must be a finite number, got {float(bad)!r}$"):
        q.push(bad, 0, 0)
    with pytest.raises(ValueError, match="time must be finite"):
        q.push_many([1.0, bad], 0, 0)
    with pytest.raises(ValueError, match=rf"^until must be a finite number .*got {float(bad)!r}$"):
        q.run(bad)
    assert len(q) == 0


def test_pop_on_empty():
    q = EventQueue()
    with pytest.raises(EmptyQueue, match=r"^step\(\) on an empty EventQueue \(now is 0\.0\)$"):
        q.step()
    q.push(1.0, 0, 0)
    q.run(4.0)
    with pytest.raises(IndexError, match=r"now is 4\.0"):
        q.step()


@pytest.mark.parametrize(
    "kwargs, exc, match",
    [
        (dict(time="1"), TypeError, "time must be a real number"),
        (dict(time=True), TypeError, "time must be a real number"),
        (dict(kind=1.0), TypeError, "kind must be an int"),
        (dict(kind=2**31), ValueError, r"kind must fit in int32 .*got 2147483648"),
        (dict(target=2**63), ValueError, "target must fit in int64"),
        (dict(priority=-(2**31) - 1), ValueError, "priority must fit in int32"),
        (dict(value="x"), TypeError, "value must be a real number"),
    ],
)
def test_push_argument_checks(kwargs, exc, match):
    q = EventQueue()
    args = dict(time=1.0, kind=0, target=0) | kwargs
    with pytest.raises(exc, match=match):
        q.push(**args)
    assert len(q) == 0 and q.state.counters[1] == 0


def test_push_many_argument_checks():
    q = EventQueue()
    with pytest.raises(ValueError, match="time must be 1-D"):
        q.push_many(1.0, 0, 0)
    with pytest.raises(TypeError, match="kind must be integers"):
        q.push_many([1.0], [0.5], 0)
    with pytest.raises(ValueError, match=r"target must fit in int64|broadcast"):
        q.push_many([1.0, 2.0], 0, [1, 2, 3])
    with pytest.raises(ValueError, match="priority must fit in int32"):
        q.push_many([1.0], 0, 0, priority=[2**40])
    assert len(q) == 0


@pytest.mark.parametrize("bad", [-1, 1.5, None, True])
def test_capacity_checks(bad):
    with pytest.raises((TypeError, ValueError), match="capacity must be a non-negative int"):
        EventQueue(capacity=bad)


def test_run_handler_exception_leaves_queue_consistent():
    q = EventQueue()
    q.push_many([1.0, 2.0, 3.0], 0, [0, 1, 2])

    def handler(event):
        if event.target == 1:
            raise RuntimeError("boom")

    with pytest.raises(RuntimeError, match="boom"):
        q.run(10.0, handler)
    assert q.now == 2.0 and len(q) == 1 and q.step().target == 2


def test_run_is_strictly_before_until():
    q = EventQueue()
    q.push_many([1.0, 2.0, 2.0], 0, [0, 1, 2])
    seen = []
    assert q.run(2.0, seen.append) == 1
    assert q.now == 2.0 and q.peek() == 2.0 and len(q) == 2
    # a handler pushing at `now` gets its event processed in the same run
    q2 = EventQueue()
    q2.push(0.5, 0, 0)
    assert q2.run(1.0, lambda e: q2.push(e.time, 1, 0) if e.kind == 0 else None) == 2


# -- capacity growth ---------------------------------------------------------


def test_growth_past_initial_capacity():
    rng = np.random.default_rng(0)
    q = EventQueue(capacity=1)
    times = np.round(rng.uniform(0, 10, 1000), 1)  # many exact ties
    prios = rng.integers(-1, 2, 1000)
    for i, (t, p) in enumerate(zip(times, prios)):
        assert q.push(float(t), 0, i, priority=int(p)) == i
    assert len(q) == 1000 and q.capacity == 1024
    q.push_many(np.full(3000, 5.0), 1, np.arange(1000, 4000))
    assert len(q) == 4000 and q.capacity == 4000  # max(needed, 2 * old)
    order = np.lexsort((np.arange(4000), np.r_[prios, np.zeros(3000, int)], np.r_[times, np.full(3000, 5.0)]))
    got = q.drain_until()
    np.testing.assert_array_equal(got.target, order)
    np.testing.assert_array_equal(got.seq, order)
    assert q.now == max(float(times.max()), 5.0) and len(q) == 0


def test_grown_state_is_a_new_tuple():
    q = EventQueue(capacity=2)
    s = q.state
    q.push(1.0, 0, 0)
    q.push(1.0, 0, 1)
    assert q.state is s
    q.push(1.0, 0, 2)
    assert q.state is not s and q.capacity == 4
    assert int(s.counters[0]) == 2  # the old tuple is a stale but consistent snapshot
    assert [q.step().target for _ in range(3)] == [0, 1, 2]


def test_kernel_push_refuses_when_full():
    h = new_event_heap(2)
    assert _eq_push(h, 1.0, 0, 0, 0, 0.0) and _eq_push(h, 0.5, 0, 0, 1, 0.0)
    before = [a.copy() for a in h]
    assert not _eq_push(h, 0.1, 0, 0, 2, 0.0)
    for a, b in zip(h, before):
        np.testing.assert_array_equal(a, b)
    t = np.array([0.1, 0.2, 0.3])
    z = np.zeros(3, dtype=np.int64)
    assert _eq_push_many(new_event_heap(2), t, z, z, z, t) == 2


# -- building blocks inside other kernels ----------------------------------------


@kernel
def _sort_events(times, prios):
    h = new_event_heap_in_kernel()
    for i in range(times.shape[0]):
        h = _eq_push_grow(h, times[i], prios[i], 7, i, 0.5 * i)
    n = _eq_size(h)
    cap = _eq_capacity(h)
    order = np.empty(n, dtype=np.int64)
    ok = True
    for j in range(n):
        pt = _eq_peek_time(h)
        peeked = _eq_peek(h)
        t, pr, s, k, g, v = _eq_pop(h)
        ok = ok and pt == t and peeked[2] == s and s == g and k == 7 and v == 0.5 * g
        order[j] = g
    empty = _eq_pop(h)
    return order, cap, ok, empty, _eq_peek_time(h), _eq_size(h)


@kernel
def new_event_heap_in_kernel():
    return EventHeap(
        np.zeros(1, dtype=np.float64),
        np.zeros(1, dtype=np.int32),
        np.zeros(1, dtype=np.int64),
        np.zeros(1, dtype=np.int32),
        np.zeros(1, dtype=np.int64),
        np.zeros(1, dtype=np.float64),
        np.zeros(2, dtype=np.int64),
    )


@pytest.mark.parametrize("n", [0, 1, 2, 7, 100, 3000])
def test_heap_sort_in_kernel(n):
    rng = np.random.default_rng(n)
    times = np.floor(rng.uniform(0, 20, n)) / 4  # plenty of exact ties
    prios = rng.integers(-2, 3, n).astype(np.int32)
    order, cap, ok, empty, peek_empty, size = _sort_events(times, prios)
    assert ok, "peek disagreed with pop, or the payload was scrambled"
    np.testing.assert_array_equal(order, np.lexsort((np.arange(n), prios, times)))
    assert cap >= n and (n <= 1 or cap < 2 * n)
    assert empty == (math.inf, 0, -1, -1, -1, 0.0) and peek_empty == math.inf and size == 0


def test_pop_until_into_small_buffer():
    q = EventQueue()
    q.push_many(np.arange(10.0), 0, np.arange(10))
    out = EventBatch(*(a[:6] for a in new_event_heap(4)[:6]))
    assert _eq_pop_until(q.state, 5.5, out) == 4  # stops when out is full
    assert out.target.tolist() == [0, 1, 2, 3]
    assert _eq_pop_until(q.state, 5.5, out) == 2
    assert out.target[:2].tolist() == [4, 5] and len(q) == 4


# -- DelayRing ----------------------------------------------------------------


@pytest.mark.parametrize("seed", range(4))
@pytest.mark.parametrize("n, max_delay", [(1, 0), (5, 3), (17, 8)])
def test_delay_ring_matches_numpy_reference(seed, n, max_delay):
    rng = np.random.default_rng(seed)
    r = new_delay_ring(n, max_delay)
    steps = 40
    ref = np.zeros((steps + max_delay + 1, n))  # ref[global step, target]
    step = 0
    out = np.empty(n)
    while step < steps:
        if rng.random() < 0.6:
            m = int(rng.integers(0, 12))
            off = rng.integers(0, max_delay + 1, m)
            tgt = rng.integers(0, n, m)
            val = rng.choice([1.0, -0.5, 0.25], m)
            if rng.random() < 0.5:
                ring_add(r, off, tgt, val)
            else:
                for o, t, v in zip(off, tgt, val):
                    _ring_add(r, o, t, v)
            for o, t, v in zip(off, tgt, val):  # sequential, same order as the ring
                ref[step + o, t] += v
        else:
            if rng.random() < 0.5:
                np.testing.assert_array_equal(ring_take(r, out), ref[step])
            else:
                _ring_take(r, out)
                np.testing.assert_array_equal(out, ref[step])
            step += 1
            assert r.current[0] == step % (max_delay + 1)
    # what is still pending comes out in the next takes, then zeros
    for s in range(step, step + max_delay + 2):
        np.testing.assert_array_equal(ring_take(r), ref[s] if s < ref.shape[0] else 0.0)
    assert not r.buf.any()


def test_delay_ring_checks():
    r = new_delay_ring(3, 2)
    assert isinstance(r, DelayRing) and r.buf.shape == (3, 3)
    with pytest.raises(ValueError, match=r"offset must be in \[0, 2\], got 3"):
        ring_add(r, 3, 0, 1.0)
    with pytest.raises(ValueError, match=r"offset must be in \[0, 2\], got -1"):
        ring_add(r, [0, -1], 0, 1.0)
    with pytest.raises(ValueError, match=r"target must be in \[0, 3\), got 3"):
        ring_add(r, 0, [3], 1.0)
    with pytest.raises(TypeError, match="offset must be integers"):
        ring_add(r, 0.5, 0, 1.0)
    with pytest.raises(TypeError, match="value must be real"):
        ring_add(r, 0, 0, "x")
    assert not r.buf.any()
    with pytest.raises(ValueError, match=r"out must be .* shape \(3,\), got float32\(3,\)"):
        ring_take(r, np.empty(3, dtype=np.float32))
    with pytest.raises(ValueError, match=r"shape \(3,\), got float64\(4,\)"):
        ring_take(r, np.empty(4))
    for bad in (-1, 1.0, True):
        with pytest.raises((TypeError, ValueError), match="max_delay_steps must be a non-negative int"):
            new_delay_ring(3, bad)
    with pytest.raises(ValueError, match="n must be a non-negative int, got -2"):
        new_delay_ring(-2, 1)
