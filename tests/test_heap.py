"""Tests for :mod:`scheduler.heap`."""

import numpy as np
import pytest
from hypothesis import HealthCheck, settings
from queue_model import make_queue_machine

from scheduler.heap import (
    IndexedHeap,
    MaxHeap,
    _heap_contains,
    _heap_peek_max,
    _heap_pop_max,
    _heap_remove,
    _heap_set,
    new_heap,
)
from scheduler.jit import kernel


def check_heap_structure(queue):
    """Heap property and ``pos``/``heap`` consistency, read from the arrays."""
    h = queue.state
    assert h.keys.dtype == np.float32 and h.heap.dtype == np.int32
    assert h.pos.dtype == np.int32 and h.size.dtype == np.int64
    n = h.keys.shape[0]
    assert h.heap.shape == h.pos.shape == (n,) and h.size.shape == (1,)
    size = int(h.size[0])
    assert 0 <= size <= n
    ids = h.heap[:size].astype(np.int64)
    assert np.all((ids >= 0) & (ids < n))
    assert np.unique(ids).size == size, "an id occurs twice in the heap"
    np.testing.assert_array_equal(h.pos[ids], np.arange(size))
    absent = np.ones(n, dtype=bool)
    absent[ids] = False
    assert np.all(h.pos[absent] == -1), "absent id with pos != -1"
    k = h.keys[ids]
    assert np.all(np.isfinite(k))
    p = np.arange(1, size)
    parent, child = (p - 1) // 2, p
    above = (k[parent] > k[child]) | ((k[parent] == k[child]) & (ids[parent] < ids[child]))
    assert np.all(above), "heap order (key, then lowest id) violated"


HeapMachine = make_queue_machine(MaxHeap, 12, check_structure=check_heap_structure)
HeapMachine.TestCase.settings = settings(
    max_examples=100,
    stateful_step_count=60,
    deadline=None,  # the first example pays for Numba compilation
    suppress_health_check=[HealthCheck.too_slow],
)
TestMaxHeapMachine = HeapMachine.TestCase

SmallHeapMachine = make_queue_machine(MaxHeap, 2, check_structure=check_heap_structure)
SmallHeapMachine.TestCase.settings = settings(
    max_examples=30, stateful_step_count=30, deadline=None
)
TestSmallMaxHeapMachine = SmallHeapMachine.TestCase


# -- wrapper argument checks -------------------------------------------------


@pytest.mark.parametrize("bad", [-1, 5, 100, np.int64(5)])
@pytest.mark.parametrize("method", ["push", "remove", "key"])
def test_id_out_of_range(method, bad):
    h = MaxHeap(5)
    args = (bad, 1.0) if method == "push" else (bad,)
    with pytest.raises(IndexError, match=r"i must be in \[0, 5\)"):
        getattr(h, method)(*args)
    assert len(h) == 0


@pytest.mark.parametrize("bad", [1.0, "1", None, True, np.float64(1.0)])
def test_id_not_int(bad):
    h = MaxHeap(5)
    with pytest.raises(TypeError, match="i must be an int"):
        h.push(bad, 1.0)


def test_numpy_int_ids_accepted():
    h = MaxHeap(5)
    h.push(np.int32(3), np.float64(2.0))
    assert np.int64(3) in h
    i, k = h.pop_max()
    assert (i, k) == (3, 2.0) and type(i) is int and type(k) is float


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf, 1e39, -1e39, float("nan")])
def test_key_not_finite(bad):
    h = MaxHeap(3)
    with pytest.raises(ValueError, match="key"):
        h.push(0, bad)
    assert len(h) == 0 and 0 not in h


@pytest.mark.parametrize("bad", ["1.0", None, True, 1j])
def test_key_not_real(bad):
    h = MaxHeap(3)
    with pytest.raises(TypeError, match="key"):
        h.push(0, bad)


def test_key_rounded_to_float32():
    h = MaxHeap(2)
    h.push(0, 0.1)
    assert h.key(0) == float(np.float32(0.1)) != 0.1
    assert h.pop_max() == (0, float(np.float32(0.1)))


def test_empty_pop_and_peek():
    h = MaxHeap(3)
    with pytest.raises(IndexError, match="pop from an empty MaxHeap"):
        h.pop_max()
    with pytest.raises(IndexError, match="empty MaxHeap"):
        h.peek_max()
    h.push(1, 1.0)
    h.pop_max()
    with pytest.raises(IndexError, match="pop from an empty MaxHeap"):
        h.pop_max()


def test_zero_capacity():
    h = MaxHeap(0)
    assert len(h) == 0 and 0 not in h
    with pytest.raises(IndexError, match=r"\[0, 0\)"):
        h.push(0, 1.0)
    with pytest.raises(IndexError):
        h.pop_max()


def test_key_absent_and_remove_absent():
    h = MaxHeap(3)
    with pytest.raises(KeyError):
        h.key(1)
    h.remove(1)  # no-op
    assert len(h) == 0


def test_contains_non_ids():
    h = MaxHeap(3)
    h.push(0, 1.0)
    assert 0 in h and np.int64(0) in h
    for x in (-1, 3, 0.0, "0", None, False):
        assert x not in h


@pytest.mark.parametrize("bad", [-1, -100])
def test_new_heap_negative(bad):
    with pytest.raises(ValueError, match="non-negative"):
        new_heap(bad)
    with pytest.raises(ValueError, match="non-negative"):
        MaxHeap(bad)


@pytest.mark.parametrize("bad", [2.0, "3", None, True])
def test_new_heap_not_int(bad):
    with pytest.raises(TypeError, match="non-negative int"):
        new_heap(bad)


def test_new_heap_layout():
    h = new_heap(4)
    assert isinstance(h, IndexedHeap)
    assert h.keys.dtype == np.float32 and h.keys.shape == (4,)
    assert h.heap.dtype == np.int32 and h.pos.dtype == np.int32
    assert h.size.dtype == np.int64 and h.size.shape == (1,) and h.size[0] == 0
    assert np.all(h.pos == -1)


def test_state_is_live():
    h = MaxHeap(4)
    h.push(2, 3.0)
    s = h.state
    assert isinstance(s, IndexedHeap) and s.size[0] == 1 and s.pos[2] == 0
    _heap_set(s, 1, 5.0)  # building block on the shared state
    assert len(h) == 2 and h.peek_max() == (1, 5.0)


def test_ties_deterministic():
    def run():
        h = MaxHeap(8)
        for i in (5, 2, 7, 0, 3):
            h.push(i, 1.0)
        h.push(2, 2.0)
        h.push(2, 1.0)
        return [h.pop_max() for _ in range(len(h))]

    first = run()
    assert first == run()
    assert first == [(i, 1.0) for i in (0, 2, 3, 5, 7)]  # ties: lowest id first, whatever the history


# -- building blocks inside other kernels -----------------------------------


@kernel
def _heapsort_desc(h, keys):
    n = keys.shape[0]
    # Push everything with key 0, then update to the real key (exercises
    # update-key both up and down), then pop everything.
    for i in range(n):
        _heap_set(h, i, np.float32(0.0))
    for i in range(n):
        _heap_set(h, i, keys[i])
    out_keys = np.empty(n, dtype=np.float32)
    out_ids = np.empty(n, dtype=np.int64)
    for j in range(n):
        pi, pk = _heap_peek_max(h)
        i, k = _heap_pop_max(h)
        if pi != i or pk != k:
            out_ids[j] = -2
        else:
            out_ids[j] = i
        out_keys[j] = k
    empty_id, empty_key = _heap_pop_max(h)
    peek_id, peek_key = _heap_peek_max(h)
    return out_ids, out_keys, empty_id, empty_key, peek_id, peek_key


@pytest.mark.parametrize("n", [0, 1, 2, 7, 100, 1000])
def test_heapsort_in_kernel(n):
    rng = np.random.default_rng(n)
    keys = rng.standard_normal(n).astype(np.float32)
    keys[: n // 3] = np.round(keys[: n // 3])  # plenty of ties
    ids, got, empty_id, empty_key, peek_id, peek_key = _heapsort_desc(new_heap(n), keys)
    np.testing.assert_array_equal(got, np.sort(keys)[::-1])
    assert np.all(ids >= 0), "peek disagreed with pop"
    assert sorted(ids.tolist()) == list(range(n))
    np.testing.assert_array_equal(keys[ids], got)
    assert (empty_id, empty_key) == (-1, -np.inf)
    assert (peek_id, peek_key) == (-1, -np.inf)


@kernel
def _remove_evens(h, keys):
    n = keys.shape[0]
    for i in range(n):
        _heap_set(h, i, keys[i])
    for i in range(0, n, 2):
        _heap_remove(h, i)
        _heap_remove(h, i)  # absent now: no-op
    count = 0
    for i in range(n):
        if _heap_contains(h, i):
            count += 1
    out = np.empty(h.size[0], dtype=np.int64)
    for j in range(out.shape[0]):
        out[j] = _heap_pop_max(h)[0]
    return count, out


def test_remove_contains_in_kernel():
    rng = np.random.default_rng(1)
    keys = rng.standard_normal(51).astype(np.float32)
    h = new_heap(51)
    count, order = _remove_evens(h, keys)
    odd = np.arange(1, 51, 2)
    assert count == odd.size
    np.testing.assert_array_equal(order, odd[np.argsort(-keys[odd], kind="stable")])
    assert h.size[0] == 0 and np.all(h.pos == -1)
