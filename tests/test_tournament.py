"""Tests for :mod:`scheduler.tournament` (and the shared kernel interface in :mod:`scheduler.queues`)."""

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from queue_model import make_queue_machine

from scheduler.heap import new_heap
from scheduler.jit import kernel
from scheduler.queues import _q_changed, _q_changed_range, _q_peek_max, new_queue
from scheduler.tournament import (
    BLOCK,
    TournamentQueue,
    TournamentState,
    _tq_mark_range,
    _tq_peek_max,
    _tq_pop_max,
    _tq_remove,
    _tq_set,
    new_tournament,
)


def sortable(keys):
    """numpy version of the queue's float32 -> order-preserving int32 map."""
    bits = np.asarray(keys, dtype=np.float32).view(np.int32)
    return bits ^ ((bits >> 31) & np.int32(0x7FFFFFFF))


SORTABLE_NEG_INF = int(sortable(np.float32(-np.inf)))


def check_tournament_structure(queue):
    """Structure check for the state machine: see :func:`check_state`."""
    check_state(queue.state)


def check_state(q):
    """Cached block maxima of clean blocks are right; the dirty list matches the flags."""
    n = q.keys.shape[0]
    n_blocks = max(1, -(-n // BLOCK))
    assert q.keys.dtype == np.float32 and q.block_max.dtype == np.int32
    assert q.dirty.dtype == np.uint8 and q.dirty_list.dtype == np.int32 and q.dirty_count.dtype == np.int64
    assert q.block_max.shape == q.dirty.shape == q.dirty_list.shape == (n_blocks,)
    assert not np.isnan(q.keys).any()
    count = int(q.dirty_count[0])
    listed = q.dirty_list[:count]
    assert np.unique(listed).size == count, "a block is listed twice"
    assert sorted(listed.tolist()) == np.flatnonzero(q.dirty).tolist()
    for b in np.flatnonzero(q.dirty == 0):
        block = q.keys[b * BLOCK:(b + 1) * BLOCK]
        expect = int(sortable(block).max()) if block.size else SORTABLE_NEG_INF
        assert q.block_max[b] == expect, f"block {b}"
        if block.size:  # and it decodes to the float maximum
            decoded = sortable(np.int32(q.block_max[b]).view(np.float32)).view(np.float32)
            assert decoded == block.max()


class ProtocolTournamentQueue(TournamentQueue):
    """TournamentQueue with ``x in q`` False for non-ids, as the queue protocol asks.

    Works around the bug shown by :func:`test_contains_non_ids` so that the
    state machine can check everything else.
    """

    def __contains__(self, i):
        if isinstance(i, (bool, np.bool_)) or not isinstance(i, (int, np.integer)) or not 0 <= i < self._n:
            return False
        return super().__contains__(i)


def _machine_test(n, examples, steps):
    machine = make_queue_machine(ProtocolTournamentQueue, n, check_structure=check_tournament_structure)
    machine.TestCase.settings = settings(max_examples=examples, stateful_step_count=steps, deadline=None,
                                         suppress_health_check=[HealthCheck.too_slow])
    return machine.TestCase


TestTournamentMachine5 = _machine_test(5, 80, 50)
TestTournamentMachine70 = _machine_test(70, 50, 60)  # two blocks, the second partial
TestTournamentMachine200 = _machine_test(200, 30, 80)  # four blocks
TestTournamentMachine1 = _machine_test(1, 20, 20)


# ------------------------------------------------------------ plain tests


def test_negative_keys_order():
    q = TournamentQueue(130)
    keys = {3: -3.0, 70: -1.0, 5: -2.0, 129: -0.5, 64: -100.0, 0: -1e3, 1: 2.0}
    for i, k in keys.items():
        q.push(i, k)
    popped = [q.pop_max() for _ in range(len(keys))]
    assert popped == sorted(keys.items(), key=lambda item: -item[1])
    assert len(q) == 0


def test_ties_go_to_lowest_id():
    q = TournamentQueue(200)
    for i in (150, 70, 3, 199, 64, 63):
        q.push(i, 1.5)
    q.push(100, 0.5)
    assert q.peek_max() == (3, 1.5)
    assert [q.pop_max()[0] for _ in range(7)] == [3, 63, 64, 70, 150, 199, 100]


def test_signed_zero_ties_go_to_lowest_id():
    q = TournamentQueue(4)
    q.push(0, -0.0)
    q.push(1, 0.0)
    assert q.pop_max()[0] == 0


def test_contains_non_ids():
    q = TournamentQueue(5)
    assert -1 not in q and 5 not in q


def test_update_key_moves_both_ways_across_blocks():
    q = TournamentQueue(300)
    for i in range(300):
        q.push(i, float(i % 17))
    q.push(5, 100.0)
    assert q.peek_max() == (5, 100.0)
    q.push(5, -1.0)
    assert q.peek_max() == (16, 16.0)
    q.remove(16)
    q.remove(16)  # absent: no-op
    assert q.peek_max() == (33, 16.0)
    assert len(q) == 299 and 16 not in q and q.key(5) == -1.0


def test_new_tournament_with_keys():
    keys = np.linspace(-1, 1, 150)[::-1].copy()
    keys[[10, 80]] = 5.0
    keys[20] = -np.inf  # absent
    q = new_tournament(150, keys)
    assert isinstance(q, TournamentState)
    assert q.dirty.all() and q.dirty_count[0] == 3 and q.block_max.shape == (3,)
    assert _tq_peek_max(q) == (10, 5.0)
    assert _tq_pop_max(q) == (10, 5.0)
    assert _tq_pop_max(q) == (80, 5.0)
    _tq_remove(q, 0)
    assert _tq_peek_max(q)[0] == 1


def test_empty_queue():
    for n in (0, 1, 64, 65):
        q = TournamentQueue(n)
        assert len(q) == 0
        with pytest.raises(IndexError, match="pop from an empty TournamentQueue"):
            q.pop_max()
        with pytest.raises(IndexError, match="empty TournamentQueue"):
            q.peek_max()
        assert _tq_peek_max(new_tournament(n)) == (-1, -np.inf)


# ------------------------------------------------ building blocks in kernels


@kernel
def _tq_sort_desc(q, keys):
    n = keys.shape[0]
    for i in range(n):  # insert with a placeholder, then update-key
        _tq_set(q, i, np.float32(0.0))
    for i in range(n):
        _tq_set(q, i, keys[i])
    ids = np.empty(n, dtype=np.int64)
    out = np.empty(n, dtype=np.float32)
    for j in range(n):
        ids[j], out[j] = _tq_pop_max(q)
    empty = _tq_pop_max(q)
    return ids, out, empty[0], empty[1]


@pytest.mark.parametrize("n", [0, 1, 2, 63, 64, 65, 200, 1000])
def test_heapsort_in_kernel(n):
    rng = np.random.default_rng(n)
    keys = rng.standard_normal(n).astype(np.float32)
    keys[: n // 3] = np.round(keys[: n // 3]) + np.float32(0.0)  # ties; no -0.0
    q = new_tournament(n)
    ids, got, empty_id, empty_key = _tq_sort_desc(q, keys)
    np.testing.assert_array_equal(got, np.sort(keys)[::-1])
    # ties lowest id first: the order is fully determined
    np.testing.assert_array_equal(ids, np.lexsort((np.arange(n), -keys)))
    assert (empty_id, empty_key) == (-1, -np.inf)
    assert np.all(q.keys == -np.inf)


@kernel
def _fill(q, keys):
    for i in range(keys.shape[0]):
        q.keys[i] = keys[i]
        _q_changed(q, i)
    return _q_peek_max(q)


@kernel
def _write_range(q, lo, values):
    hi = lo + values.shape[0]
    for k in range(values.shape[0]):
        q.keys[lo + k] = values[k]
    _q_changed_range(q, lo, hi)
    return _q_peek_max(q)


@kernel
def _tq_write_range(q, lo, values):
    for k in range(values.shape[0]):
        q.keys[lo + k] = values[k]
    _tq_mark_range(q, lo, lo + values.shape[0])
    return _tq_peek_max(q)


@settings(max_examples=60, deadline=None)
@given(data=st.data(), n=st.integers(1, 300), kind=st.sampled_from(["tournament", "heap"]))
def test_queue_interface_single_updates(data, n, kind):
    """Writing keys one at a time and calling ``_q_changed`` keeps both queues exact."""
    keys = np.array(data.draw(st.lists(st.integers(-5, 5), min_size=n, max_size=n)), np.float32)
    q = new_queue(kind, n)
    i, k = _fill(q, keys)
    assert k == keys.max()
    if kind == "tournament":
        assert i == int(np.argmax(keys))


@settings(max_examples=60, deadline=None)
@given(data=st.data(), n=st.integers(1, 300))
def test_tournament_range_updates(data, n):
    """Direct writes to a key range then ``_q_changed_range``: the max is exact, ties to lowest id."""
    keys = np.array(data.draw(st.lists(st.integers(-5, 5), min_size=n, max_size=n)), np.float32)
    for variant in (_write_range, _tq_write_range):
        q = new_queue("tournament", n)
        _fill(q, keys)
        current = keys.copy()
        for _ in range(data.draw(st.integers(1, 4))):
            lo = data.draw(st.integers(0, n - 1))
            hi = data.draw(st.integers(lo, n))
            values = np.array(data.draw(st.lists(st.integers(-5, 5), min_size=hi - lo, max_size=hi - lo)),
                              np.float32)
            current[lo:hi] = values
            i, k = variant(q, lo, values)
            assert (i, k) == (int(np.argmax(current)), current.max())
        check_state(q)


def test_heap_range_update_restores_order():
    h = new_heap(3)
    _fill(h, np.array([1.0, 7.0, 7.0], np.float32))  # heap layout: ids [1, 0, 2]
    assert _write_range(h, 0, np.array([4.0, 2.0], np.float32)) == (2, 7.0)


def test_tournament_range_update_same_case():
    q = new_tournament(3)
    _fill(q, np.array([1.0, 7.0, 7.0], np.float32))
    assert _write_range(q, 0, np.array([4.0, 2.0], np.float32)) == (2, 7.0)


def test_queue_interface_not_callable_from_python():
    q = new_tournament(2)
    for fn, args in ((_q_changed, (q, 0)), (_q_changed_range, (q, 0, 1)), (_q_peek_max, (q,))):
        with pytest.raises(NotImplementedError, match="only callable from Numba kernels"):
            fn(*args)


@pytest.mark.parametrize("kind", ["fifo", "Tournament", None])
def test_new_queue_unknown(kind):
    with pytest.raises(ValueError, match="scheduler must be one of"):
        new_queue(kind, 3)


# ------------------------------------------------------ wrapper arguments


@pytest.mark.parametrize("bad", [-1, 5, 64, np.int64(5), True])
@pytest.mark.parametrize("method", ["push", "remove", "key"])
def test_id_out_of_range(method, bad):
    q = TournamentQueue(5)
    args = (bad, 1.0) if method == "push" else (bad,)
    with pytest.raises(IndexError, match=r"id must be an int in \[0, 5\)"):
        getattr(q, method)(*args)
    assert len(q) == 0


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf, 1e39, -1e39])
def test_key_not_finite(bad):
    q = TournamentQueue(3)
    with np.errstate(over="ignore"), pytest.raises(ValueError, match="key must be finite"):
        q.push(0, bad)
    assert len(q) == 0 and 0 not in q


def test_key_rounded_to_float32_and_numpy_ids():
    q = TournamentQueue(3)
    q.push(np.int32(2), 0.1)
    assert q.key(2) == float(np.float32(0.1))
    i, k = q.pop_max()
    assert (i, k) == (2, float(np.float32(0.1))) and type(i) is int and type(k) is float


def test_key_absent():
    q = TournamentQueue(3)
    with pytest.raises(KeyError):
        q.key(1)
    q.push(1, 2.0)
    q.remove(1)
    with pytest.raises(KeyError):
        q.key(1)


@pytest.mark.parametrize("bad", [-1, 2.0, "3", None, True])
def test_new_tournament_bad_n(bad):
    with pytest.raises(ValueError, match="n must be a non-negative int"):
        new_tournament(bad)


def test_new_tournament_bad_keys():
    with pytest.raises(ValueError, match=r"keys must have shape \(3,\)"):
        new_tournament(3, [1.0, 2.0])
    with pytest.raises(ValueError, match="keys must not be NaN"):
        new_tournament(3, [1.0, np.nan, 2.0])


def test_state_is_live():
    q = TournamentQueue(100)
    q.push(70, 3.0)
    _tq_set(q.state, 7, np.float32(5.0))
    assert len(q) == 2 and q.peek_max() == (7, 5.0)
