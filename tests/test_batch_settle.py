"""Tests for :func:`eventhorizon.batch_settle.settle_batch`: every row exactly as :func:`settle` would do it."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from test_settle import SETTINGS, _oscillator, cases, handmade

from eventhorizon.batch_settle import BatchSettleResult, default_threads, settle_batch
from eventhorizon.network import RateNetwork
from eventhorizon.settle import NotSettledError, RateState, SettleStats, settle
from topology.generators import input_recurrent


def assert_rows_equal_settle(net, inputs, eps, res, state=None, scheduler="tournament"):
    for k, row in enumerate(inputs):
        one = settle(net, row, eps=eps, state=state, scheduler=scheduler, on_budget="return")
        assert res.settled[k] == one.settled
        assert res.sample_stats(k) == one.stats
        np.testing.assert_array_equal(res.x[k], one.state.x)
        np.testing.assert_array_equal(res.u[k], one.state.u)


@settings(SETTINGS, max_examples=40)
@given(case=cases(max_n=40, min_eps=1e-3), rows=st.integers(1, 5), threads=st.integers(1, 3),
       seed=st.integers(0, 2**16))
def test_rows_equal_settle(case, rows, threads, seed):
    net, _, eps = case
    inputs = np.random.default_rng(seed).uniform(-1, 1, (rows, net.n_inputs)).astype(np.float32)
    res = settle_batch(net, inputs, eps=eps, threads=threads, on_budget="return")
    assert res.threads == min(threads, rows)
    assert_rows_equal_settle(net, inputs, eps, res)


@pytest.mark.parametrize("scheduler", ["tournament", "heap"])
@pytest.mark.parametrize("act", ["tanh", "hard_sigmoid"])
def test_handmade_rows_both_schedulers(scheduler, act):
    net = handmade(act)
    inputs = np.array([[1.0, -0.5], [0.0, 0.0], [0.3, 0.9], [1.0, -0.5]], np.float32)
    res = settle_batch(net, inputs, eps=1e-5, threads=2, scheduler=scheduler)
    assert_rows_equal_settle(net, inputs, 1e-5, res, scheduler=scheduler)
    np.testing.assert_array_equal(res.x[0], res.x[3])  # a row's result does not depend on the rows before it


def test_warm_start_from_a_state():
    net = handmade("tanh")
    start = settle(net, [0.2, 0.2], eps=1e-5).state
    inputs = np.array([[0.2, 0.2], [0.2, 0.6]], np.float32)
    res = settle_batch(net, inputs, eps=1e-5, state=start, threads=2)
    assert_rows_equal_settle(net, inputs, 1e-5, res, state=start)
    assert res.total("synaptic_ops") == res.stats[1, 0] > 0  # the unchanged row costs nothing
    assert res.stats[0].sum() == 0


def test_thread_counts_give_identical_results():
    net = RateNetwork(input_recurrent(20, 40, 0.6, seed=3), "tanh", inputs=range(20))
    inputs = np.random.default_rng(0).random((7, 20), dtype=np.float32)
    results = [settle_batch(net, inputs, eps=1e-4, threads=t) for t in (1, 2, 3, 16)]
    assert [r.threads for r in results] == [1, 2, 3, 7]
    for r in results[1:]:
        np.testing.assert_array_equal(r.x, results[0].x)
        np.testing.assert_array_equal(r.stats, results[0].stats)


def test_totals_and_sample_stats():
    net = RateNetwork(input_recurrent(5, 8, 0.5, seed=1), "tanh", inputs=range(5))
    inputs = np.eye(5, dtype=np.float32)
    res = settle_batch(net, inputs, eps=1e-4)
    assert isinstance(res, BatchSettleResult)
    assert isinstance(res.sample_stats(2), SettleStats)
    assert res.total("input_broadcasts") == 5
    assert res.total("synaptic_ops") == sum(res.sample_stats(k).synaptic_ops for k in range(5))
    with pytest.raises(ValueError, match="name must be one of"):
        res.total("macs")


def test_no_rows():
    net = RateNetwork(input_recurrent(3, 4, 0.5, seed=0), "tanh", inputs=range(3))
    res = settle_batch(net, np.zeros((0, 3)), eps=1e-3)
    assert res.x.shape == (0, net.n) and res.settled.shape == (0,)


def test_budget_names_the_rows():
    net = _oscillator()
    inputs = np.zeros((3, 0), np.float32)
    with pytest.raises(NotSettledError, match=r"3 of 3 samples did not settle within max_updates=50.*rows \[0, 1, 2\]"):
        settle_batch(net, inputs, eps=1e-4, max_updates=50)
    res = settle_batch(net, inputs, eps=1e-4, max_updates=50, on_budget="return", threads=2)
    assert not res.settled.any()
    assert (res.stats[:, 4] == 50).all()  # neuron updates: the whole budget, per row


@pytest.fixture
def net3():
    return RateNetwork(input_recurrent(3, 4, 0.5, seed=0), "tanh", inputs=range(3))


@pytest.mark.parametrize("inputs, match", [
    (np.zeros(3), r"inputs must have shape \(samples, 3\)"),
    (np.zeros((2, 4)), r"inputs must have shape \(samples, 3\).*got \(2, 4\)"),
    (np.array([[0, 0, 0], [0, np.nan, 0]]), "row 1, entry 1 is nan"),
    (np.array([[np.inf, 0, 0]]), "row 0, entry 0 is inf"),
])
def test_bad_inputs(net3, inputs, match):
    with pytest.raises(ValueError, match=match):
        settle_batch(net3, inputs, eps=1e-3)


@pytest.mark.parametrize("threads", [0, -1, True, 1.5, "2"])
def test_bad_threads(net3, threads):
    with pytest.raises(ValueError, match="threads must be an int >= 1"):
        settle_batch(net3, np.zeros((2, 3)), eps=1e-3, threads=threads)


@pytest.mark.parametrize("kwargs, error, match", [
    (dict(eps=0.0), ValueError, "eps"),
    (dict(eps=1e-3, scheduler="fifo"), ValueError, "scheduler must be one of"),
    (dict(eps=1e-3, on_budget="ignore"), ValueError, "on_budget must be"),
    (dict(eps=1e-3, max_updates=-1), ValueError, "max_updates must be an int"),
    (dict(eps=1e-3, state=np.zeros(7)), TypeError, "state must be a RateState"),
    (dict(eps=1e-3, state=RateState(np.zeros(2), np.zeros(2))), ValueError, r"state.u must have shape \(7,\)"),
])
def test_bad_arguments(net3, kwargs, error, match):
    with pytest.raises(error, match=match):
        settle_batch(net3, np.zeros((2, 3)), **kwargs)


def test_bad_network():
    with pytest.raises(TypeError, match="network must be a RateNetwork"):
        settle_batch("net", np.zeros((1, 3)), eps=1e-3)


def test_default_threads_is_positive():
    assert default_threads() >= 1


def test_relaxation_passes_through():
    net = handmade("tanh")
    inputs = np.array([[0.7, -0.2], [0.1, 0.4]], np.float32)
    res = settle_batch(net, inputs, eps=1e-5, relaxation=1.04, threads=2)
    for k, row in enumerate(inputs):
        one = settle(net, row, eps=1e-5, relaxation=1.04)
        assert res.sample_stats(k) == one.stats
        np.testing.assert_array_equal(res.x[k], one.state.x)
    with pytest.raises(ValueError, match="relaxation must be a number in"):
        settle_batch(net, inputs, eps=1e-5, relaxation=2.0)
