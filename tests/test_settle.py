"""Tests for :func:`eventhorizon.settle.settle` (and the kernels behind it).

The central check compares the Numba kernel with :func:`naive.naive_settle`,
a dense, argmax-scan re-implementation of the documented algorithm that
makes the same float32 decisions. When a run is ill-conditioned (some
decision within ``MARGIN`` of flipping, see ``NaiveResult.min_margin``)
only the fixed-point accuracy is compared, since an ulp of difference may
then legitimately change the broadcast sequence.
"""

from typing import NamedTuple

import numpy as np
import pytest
import scipy.sparse as sp
from hypothesis import HealthCheck, event, given, note, settings
from hypothesis import strategies as st
from naive import naive_fixed_point, naive_mac_count, naive_settle, rho64

from eventhorizon.models import RATE_MODELS
from eventhorizon.network import RateNetwork
from eventhorizon.settle import NotSettledError, RateState, SettleResult, SettleStats, settle
from topology.generators import input_recurrent, spectral_norm
from topology.store import SynapseGraph

ACTIVATIONS = tuple(sorted(RATE_MODELS))
SCHEDULERS = ("tournament", "heap")
MARGIN = 1e-5  # decisions closer than this to flipping are "ill-conditioned"

SETTINGS = settings(max_examples=60, deadline=None,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])


# ---------------------------------------------------------------- helpers


def dense(graph):
    """``(A, mask)``: float32 dense adjacency and which synapses exist (explicit zeros too)."""
    adj = graph.to_scipy()
    mask = sp.csr_array((np.ones(graph.nnz, bool), adj.indices, adj.indptr), shape=adj.shape).toarray()
    return adj.toarray(), mask


def run_naive(net, inputs, eps, max_updates=None, **kw):
    A, mask = dense(net.graph)
    return naive_settle(A, net.bias, net.input_ids, inputs, net.model.name, net.model.lipschitz, eps,
                        1000 * net.n if max_updates is None else max_updates, edge_mask=mask, **kw)


def assert_matches_naive(res, nv):
    """Same decisions as the reference: identical counts, states equal to ~1e-6."""
    assert res.settled == nv.settled
    assert res.stats.as_dict() == nv.stats
    np.testing.assert_array_equal(res.broadcast_counts, nv.counts)
    np.testing.assert_allclose(res.x, nv.x, rtol=0, atol=1e-6)
    np.testing.assert_allclose(res.state.u, nv.u, rtol=0, atol=1e-6)


def assert_same_result(a, b):
    assert a.settled == b.settled
    assert a.stats == b.stats
    np.testing.assert_array_equal(a.broadcast_counts, b.broadcast_counts)
    np.testing.assert_array_equal(a.state.x, b.state.x)
    np.testing.assert_array_equal(a.state.u, b.state.u)


def residual(net, x, extra=None):
    """``ρ(Aᵀx + b) − x`` on free neurons, recomputed in float64 from ``x``."""
    A = net.graph.to_scipy().toarray().astype(np.float64)
    u = A.T @ x.astype(np.float64) + net.bias.astype(np.float64)
    if extra is not None:
        u += extra
    return (rho64(net.model.name, u) - x)[net.free_ids]


class Case(NamedTuple):
    net: RateNetwork
    inputs: np.ndarray  # float32[n_inputs]
    eps: float


def make_case(seed, n, density, n_inputs, act, contraction, eps, self_loops=True, bias_scale=0.5,
              block=False):
    """A random network whose free block has ``L·‖W_free‖₂ == contraction`` (<= 0.9)."""
    rng = np.random.default_rng(seed)
    A = rng.standard_normal((n, n)) * (rng.random((n, n)) < density)
    if block:  # rows lo..hi-1 only target the dense block lo..hi-1: the segment path
        lo = int(rng.integers(0, max(1, n - 20)))
        hi = min(n, lo + 20)
        A[lo:hi] = 0.0
        A[lo:hi, lo:hi] = rng.standard_normal((hi - lo, hi - lo))
    if not self_loops:
        np.fill_diagonal(A, 0.0)
    ids = rng.permutation(n)[:n_inputs]
    free = np.setdiff1d(np.arange(n), ids)
    norm = spectral_norm(A[np.ix_(free, free)].astype(np.float32))
    if norm > 0:
        A[np.ix_(free, free)] *= contraction / norm
    bias = rng.standard_normal(n) * bias_scale
    inputs = rng.uniform(-1.0, 1.0, n_inputs).astype(np.float32)
    net = RateNetwork(SynapseGraph.from_dense(A), act, inputs=ids, bias=bias)
    assert net.contraction <= contraction + 1e-5
    return Case(net, inputs, eps)


@st.composite
def cases(draw, max_n=60, min_eps=1e-5, max_eps=1e-1):
    n = draw(st.integers(1, max_n))
    return make_case(
        seed=draw(st.integers(0, 2**32 - 1)),
        n=n,
        density=draw(st.sampled_from([0.05, 0.2, 0.5, 0.9, 1.0]) | st.floats(0.01, 1.0)),
        n_inputs=draw(st.integers(0, n // 3)),
        act=draw(st.sampled_from(ACTIVATIONS)),
        contraction=draw(st.floats(0.0, 0.9)),
        eps=draw(st.floats(min_eps, max_eps)),
        self_loops=draw(st.booleans()),
        bias_scale=draw(st.sampled_from([0.0, 0.5, 2.0])),
        block=draw(st.booleans()),
    )


def handmade(act):
    """24 neurons (inputs 0, 1) mixing segment rows, scatter rows and self-loops.

    * row 0 (input) -> 4..19: one 16-long segment;
    * row 1 (input) -> 5, 9, 22: scattered;
    * row 2 -> 3..12, 14..23: two 10-long segments;
    * row 3 -> 3, 8, 20: scattered, with a self-loop;
    * row 10 -> 0..11: one segment containing its own self-loop and the inputs;
    * a few random sparse rows.
    Weights are distinct; the free block is scaled to contraction 0.7.
    """
    rng = np.random.default_rng(12345)
    n = 24
    A = np.zeros((n, n))
    A[0, 4:20] = rng.uniform(0.2, 1.0, 16) * rng.choice([-1, 1], 16)
    A[1, [5, 9, 22]] = [0.9, -0.7, 0.45]
    A[2, 3:13] = rng.uniform(-1, 1, 10)
    A[2, 14:24] = rng.uniform(-1, 1, 10)
    A[3, [3, 8, 20]] = [0.35, -0.6, 0.8]
    A[10, 0:12] = rng.uniform(-1, 1, 12)
    for row in (5, 7, 13, 17, 21, 23):
        cols = rng.choice(n, 3, replace=False)
        A[row, cols] = rng.uniform(-1, 1, 3)
    free = np.arange(2, n)
    A[np.ix_(free, free)] *= 0.7 / spectral_norm(A[np.ix_(free, free)])
    bias = np.linspace(-0.6, 0.9, n)
    return RateNetwork(SynapseGraph.from_dense(A), act, inputs=[0, 1], bias=bias)


# ------------------------------------------------------- kernel vs naive


def test_handmade_uses_both_delivery_paths():
    g = handmade("tanh").graph
    has_segments = np.diff(g.seg_ptr) > 0
    assert has_segments[[0, 2, 10]].all()
    assert not has_segments[[1, 3, 5]].any()
    assert g.to_scipy()[3, 3] != 0 and g.to_scipy()[10, 10] != 0  # self-loops


HANDMADE_INPUTS = ([1.0, -0.5], [0.0, 0.8], [0.3, 0.0])


def _handmade_params():
    for scheduler in SCHEDULERS:
        for act in ACTIVATIONS:
            for k, inputs in enumerate(HANDMADE_INPUTS):
                yield pytest.param(act, scheduler, inputs, id=f"{scheduler}-{act}-{k}")


@pytest.mark.parametrize("act, scheduler, inputs", _handmade_params())
def test_handmade_matches_naive(act, scheduler, inputs):
    net = handmade(act)
    eps = 2e-3  # every decision at least 1.6e-5 from flipping for these inputs
    res = settle(net, inputs, eps=eps, scheduler=scheduler)
    nv = run_naive(net, inputs, eps)
    assert nv.min_margin > MARGIN and not nv.had_tie  # well-conditioned by construction
    assert res.settled and res.stats.broadcasts > 0
    assert_matches_naive(res, nv)


@pytest.mark.parametrize("act", ACTIVATIONS)
def test_small_feedback_loop_matches_naive(act):
    """Two neurons in a loop plus a self-loop, one input: a trace short enough to read."""
    A = np.array([[0.0, 0.9, 0.0],
                  [0.0, 0.3, -0.5],
                  [0.0, 0.6, 0.0]])
    net = RateNetwork(SynapseGraph.from_dense(A), act, inputs=[0], bias=[0.0, 0.1, 0.2])
    for scheduler in SCHEDULERS:
        res = settle(net, [1.0], eps=1e-4, scheduler=scheduler)
        nv = run_naive(net, [1.0], 1e-4)
        assert_matches_naive(res, nv)
    assert nv.events[0] == (0, 1.0)
    assert {j for j, _ in nv.events[1:]} <= {1, 2}


def test_explicit_zero_weights_are_delivered_and_counted():
    """``from_adjacency`` keeps stored zeros: they cost a synaptic op each."""
    rows = [0, 0, 0, 1, 2, 2]
    cols = [1, 2, 3, 2, 1, 3]
    vals = [0.5, 0.0, -0.4, 0.3, 0.0, 0.2]
    g = SynapseGraph.from_adjacency(sp.coo_array((vals, (rows, cols)), shape=(4, 4)))
    assert g.nnz == 6
    net = RateNetwork(g, "tanh", inputs=[0])
    res = settle(net, [1.0], eps=1e-5)
    assert res.stats.input_synaptic_ops == 3
    assert_matches_naive(res, run_naive(net, [1.0], 1e-5))


@settings(SETTINGS, max_examples=150)
@given(case=cases(max_n=30, min_eps=1e-3))
def test_random_matches_naive(case):
    net, inputs, eps = case
    res = settle(net, inputs, eps=eps)
    nv = run_naive(net, inputs, eps)
    note(f"margin={nv.min_margin:.3g} tie={nv.had_tie} segments={net.graph.seg_ptr[-1]}")
    assert res.settled and nv.settled
    event("segment rows" if net.graph.seg_ptr[-1] else "scatter only")
    event("well-conditioned" if nv.min_margin > MARGIN else "ill-conditioned")
    if nv.min_margin > MARGIN:
        assert_matches_naive(res, nv)
    else:  # ill-conditioned: both must still be eps-accurate fixed points
        bound = 2 * np.sqrt(net.n) * (eps + 1e-5) / (1 - net.contraction)
        np.testing.assert_allclose(res.x, nv.x, rtol=0, atol=bound)
    heap = settle(net, inputs, eps=eps, scheduler="heap")
    # Only tie-free runs are comparable (the heap breaks ties differently), and
    # only scatter-only graphs for now: see test_heap_segment_rows_match_tournament.
    if not nv.had_tie and net.graph.seg_ptr[-1] == 0:
        event("heap compared")
        assert_same_result(heap, res)


def _heap_bug_network():
    """9 neurons, every row dense enough for segments (found by random search)."""
    A = np.array([
        [-0.14, -0.19, 0.11, -0.22, 0.08, -0.22, -0.03, 0.08, -0.0],
        [0.24, 0.0, -0.19, 0.16, 0.24, -0.0, 0.14, 0.08, 0.11],
        [0.19, 0.08, -0.24, 0.19, -0.0, 0.0, -0.19, -0.22, 0.24],
        [0.24, 0.19, -0.03, -0.08, -0.16, 0.08, 0.03, -0.08, -0.0],
        [-0.0, -0.0, -0.03, 0.03, 0.0, 0.14, 0.11, -0.11, 0.27],
        [-0.11, 0.24, 0.11, -0.05, 0.19, 0.16, -0.22, 0.08, 0.0],
        [0.16, -0.19, -0.14, -0.0, -0.22, -0.16, -0.19, -0.24, -0.16],
        [-0.14, -0.19, 0.03, -0.22, 0.19, -0.16, -0.19, 0.05, 0.05],
        [0.03, 0.14, -0.16, -0.11, -0.0, 0.27, -0.11, -0.08, 0.19]])
    bias = [0.4, -0.3, 0.5, -0.7, 0.9, -0.8, -0.1, -0.9, 0.5]
    return RateNetwork(SynapseGraph.from_dense(A), "hard_sigmoid", bias=bias)


def test_heap_bug_network_is_tie_free_and_uses_segments():
    net = _heap_bug_network()
    nv = run_naive(net, None, 0.01)
    assert not nv.had_tie and nv.min_margin > MARGIN
    assert net.graph.seg_ptr[-1] > 0
    assert_matches_naive(settle(net, eps=0.01), nv)


def test_heap_segment_rows_match_tournament():
    net = _heap_bug_network()
    assert_same_result(settle(net, eps=0.01, scheduler="heap"), settle(net, eps=0.01))


# ------------------------------------------------- properties of settling


@SETTINGS
@given(case=cases())
def test_settles_without_drift(case):
    """(a) settles; (b) ``|ρ(u_exact) − x| <= eps + 1e-5`` for every free neuron.

    ``u_exact = Aᵀx + b`` is recomputed in float64 from the returned ``x``,
    so this also checks that the incrementally accumulated ``u`` did not
    drift from the broadcast values.
    """
    net, inputs, eps = case
    res = settle(net, inputs, eps=eps)
    assert res.settled, res.message
    r = residual(net, res.x)
    assert np.all(np.abs(r) <= eps + 1e-5), np.abs(r).max()
    A = net.graph.to_scipy().toarray().astype(np.float64)
    u_exact = A.T @ res.x.astype(np.float64) + net.bias
    np.testing.assert_allclose(res.state.u[net.free_ids], u_exact[net.free_ids], rtol=0, atol=1e-4)
    np.testing.assert_array_equal(res.x[net.input_ids], inputs)


@SETTINGS
@given(case=cases())
def test_error_bound_to_fixed_point(case):
    r"""(c) ``‖x_free − x*_free‖₂ <= ‖r‖₂/(1 − c) + 1e-4``.

    Derivation: on the free neurons, with the inputs clamped, the fixed
    point is ``x* = F(x*)`` for ``F(y) = ρ(W_freeᵀ y + h)`` (``h`` collects
    the bias and the clamped inputs' contribution). ``ρ`` is applied
    element-wise and is L-Lipschitz, so ``‖F(y) − F(z)‖₂ <= L‖W_free‖₂‖y − z‖₂
    = c‖y − z‖₂`` with ``c < 1``. For the settled ``x`` with residual
    ``r = F(x) − x``:
    ``‖x − x*‖ <= ‖x − F(x)‖ + ‖F(x) − F(x*)‖ <= ‖r‖ + c‖x − x*‖``, hence
    ``‖x − x*‖ <= ‖r‖/(1 − c)``. The slack covers the float64 reference's own
    tolerance. Since (b) bounds each ``|r_i|`` by about ``eps``, the error is
    also at most ``sqrt(n_free)·eps/(1 − c)``.
    """
    net, inputs, eps = case
    res = settle(net, inputs, eps=eps)
    A = net.graph.to_scipy().toarray().astype(np.float64)
    x_star = naive_fixed_point(A, net.bias, net.input_ids, inputs, net.model.name, tol=1e-10)
    err = np.linalg.norm((res.x.astype(np.float64) - x_star)[net.free_ids])
    r = np.linalg.norm(residual(net, res.x))
    c = net.contraction
    assert c < 1
    assert err <= r / (1 - c) + 1e-4
    assert err <= np.sqrt(net.free_ids.size) * (eps + 1e-5) / (1 - c) + 1e-4


@SETTINGS
@given(case=cases())
def test_stats_recount(case):
    """(d) synaptic ops equal broadcasts times fan-out, recounted from the dense matrix."""
    net, inputs, eps = case
    res = settle(net, inputs, eps=eps)
    A, mask = dense(net.graph)
    fan_out = np.count_nonzero(A, axis=1)
    counts = res.broadcast_counts.astype(np.int64)
    s = res.stats
    assert res.broadcast_counts.shape == (net.n,) and res.broadcast_counts.dtype == np.int32
    assert s.synaptic_ops == int(counts @ fan_out) == naive_mac_count(mask, counts)
    assert s.input_synaptic_ops == int(counts[net.input_ids] @ fan_out[net.input_ids])
    assert s.broadcasts == counts[net.free_ids].sum()
    assert s.input_broadcasts == counts[net.input_ids].sum()
    assert np.all(counts[net.input_ids] <= 1)
    assert s.input_broadcasts == np.count_nonzero(inputs)  # cold start: x was 0
    assert s.broadcasts <= s.neuron_updates
    assert s.queue_ops == s.neuron_updates + s.synaptic_ops


@SETTINGS
@given(case=cases(), scheduler=st.sampled_from(SCHEDULERS))
def test_deterministic(case, scheduler):
    """(e) two runs give identical arrays and stats."""
    net, inputs, eps = case
    a = settle(net, inputs, eps=eps, scheduler=scheduler)
    b = settle(net, inputs, eps=eps, scheduler=scheduler)
    assert_same_result(a, b)


@SETTINGS
@given(case=cases())
def test_warm_restart_is_idle(case):
    """Settling again from a settled state with the same inputs broadcasts nothing."""
    net, inputs, eps = case
    first = settle(net, inputs, eps=eps)
    again = settle(net, inputs, eps=eps, state=first.state)
    assert again.settled
    assert again.stats.synaptic_ops == again.stats.broadcasts == again.stats.input_broadcasts == 0
    np.testing.assert_array_equal(again.x, first.x)


# ------------------------------------------------------------ boundary events


@pytest.mark.parametrize("act", ACTIVATIONS)
@pytest.mark.parametrize("inputs", [None, [0.0, 0.0, 0.0]])
def test_zero_input_zero_bias_is_idle(act, inputs):
    net = RateNetwork(input_recurrent(3, 5, 0.5, seed=0), act, inputs=range(3))
    res = settle(net, inputs, eps=1e-6)
    assert res.settled
    assert res.stats == SettleStats(0, 0, 0, 0, 0, 0)
    assert not res.x.any() and not res.broadcast_counts.any()


@pytest.mark.parametrize("k", [0, 2])
def test_single_active_input(k):
    g = input_recurrent(3, 5, 0.5, seed=0)
    net = RateNetwork(g, "tanh", inputs=range(3))
    inputs = np.zeros(3)
    inputs[k] = 0.7
    res = settle(net, inputs, eps=1e-5)
    assert res.stats.input_broadcasts == 1
    assert res.stats.input_synaptic_ops == g.fan_out()[k] == 5
    np.testing.assert_array_equal(res.broadcast_counts[:3], np.eye(3, dtype=np.int32)[k])


def test_doc_example():
    net = RateNetwork(input_recurrent(3, 4, 0.5, seed=0), "tanh", inputs=range(3))
    res = settle(net, [1.0, 0.0, 0.5], eps=1e-4)
    assert (res.settled, res.stats.input_broadcasts, res.stats.input_synaptic_ops) == (True, 2, 8)
    assert isinstance(res, SettleResult) and res.x is res.state.x


def _recurrent_net(act="tanh"):
    return RateNetwork(input_recurrent(4, 12, 0.6, seed=3), act, inputs=range(4),
                       bias=np.linspace(-0.3, 0.3, 16))


@pytest.mark.parametrize("scheduler", SCHEDULERS)
def test_warm_start_one_input_changed(scheduler):
    net = _recurrent_net()
    inputs = np.array([0.5, -0.2, 0.9, 0.1], np.float32)
    first = settle(net, inputs, eps=1e-5, scheduler=scheduler)
    same = settle(net, inputs, eps=1e-5, state=first.state, scheduler=scheduler)
    assert same.stats.broadcasts == same.stats.input_broadcasts == same.stats.synaptic_ops == 0
    keep = settle(net, None, eps=1e-5, state=first.state, scheduler=scheduler)
    assert keep.stats.synaptic_ops == 0

    changed = inputs.copy()
    changed[2] = -0.4
    second = settle(net, changed, eps=1e-5, state=first.state, scheduler=scheduler)
    assert second.settled
    assert second.stats.input_broadcasts == 1
    assert second.stats.input_synaptic_ops == net.graph.fan_out()[2]
    np.testing.assert_array_equal(second.broadcast_counts[:4], [0, 0, 1, 0])
    assert_matches_naive(second, run_naive(net, changed, 1e-5, state=(first.state.u, first.state.x)))
    A = net.graph.to_scipy().toarray()
    x_star = naive_fixed_point(A, net.bias, net.input_ids, changed, "tanh", tol=1e-10)
    np.testing.assert_allclose(second.x, x_star, atol=1e-4)


def test_state_is_copied_not_modified():
    net = _recurrent_net()
    first = settle(net, [1, 0, 0, 0], eps=1e-5)
    u, x = first.state.u.copy(), first.state.x.copy()
    second = settle(net, [0, 1, 0, 0], eps=1e-5, state=first.state)
    np.testing.assert_array_equal(first.state.u, u)
    np.testing.assert_array_equal(first.state.x, x)
    assert second.state.u is not first.state.u


@pytest.mark.parametrize("act", ACTIVATIONS)
def test_currents_shift_fixed_point(act):
    net = _recurrent_net(act)
    inputs = [0.5, -0.2, 0.9, 0.1]
    ids = np.array([5, 9, 15])
    vals = np.array([0.4, -0.25, 0.1])
    current = np.zeros(net.n)
    current[ids] = vals
    A = net.graph.to_scipy().toarray()
    x_star = naive_fixed_point(A, net.bias + current, net.input_ids, inputs, act, tol=1e-10)
    x_plain = naive_fixed_point(A, net.bias, net.input_ids, inputs, act, tol=1e-10)
    assert np.abs(x_star - x_plain).max() > 1e-2  # the nudge matters

    cold = settle(net, inputs, eps=1e-6, currents=(ids, vals))
    np.testing.assert_allclose(cold.x, x_star, atol=1e-4)
    assert cold.stats.queue_ops == cold.stats.neuron_updates + cold.stats.synaptic_ops + 3
    # currents persist in u
    u_exact = A.T.astype(np.float64) @ cold.x + net.bias + current
    np.testing.assert_allclose(cold.state.u[net.free_ids], u_exact[net.free_ids], atol=1e-5)
    assert_matches_naive(cold, run_naive(net, inputs, 1e-6, currents=(ids, vals)))

    # nudge a settled free phase (EqProp style): warm start plus currents
    free_phase = settle(net, inputs, eps=1e-6)
    np.testing.assert_allclose(free_phase.x, x_plain, atol=1e-4)
    nudged = settle(net, inputs, eps=1e-6, state=free_phase.state, currents=(ids, vals))
    assert nudged.stats.input_broadcasts == 0
    np.testing.assert_allclose(nudged.x, x_star, atol=1e-4)
    assert_matches_naive(nudged, run_naive(net, inputs, 1e-6, currents=(ids, vals),
                                           state=(free_phase.state.u, free_phase.state.x)))


# ------------------------------------------------------------------- budget


def _oscillator():
    """``x = tanh(Aᵀx + b)`` with a rotation-like loop of gain 5: event updates cycle forever."""
    A = np.array([[0.0, -5.0], [5.0, 0.0]])
    return RateNetwork(SynapseGraph.from_dense(A), "tanh", bias=[1.0, 0.0], check_contractive=False)


def test_oscillator_never_settles():
    res = settle(_oscillator(), eps=1e-4, max_updates=100_000, on_budget="return")
    assert not res.settled and res.stats.neuron_updates == 100_000


@pytest.mark.parametrize("scheduler", SCHEDULERS)
def test_budget_raises_with_partial_result(scheduler):
    net = _oscillator()
    with pytest.raises(NotSettledError, match="max_updates=50") as info:
        settle(net, eps=1e-4, max_updates=50, scheduler=scheduler)
    assert isinstance(info.value, RuntimeError)
    partial = info.value.result
    assert isinstance(partial, SettleResult) and not partial.settled
    assert partial.stats.neuron_updates == 50
    assert 0 < partial.stats.broadcasts <= 50
    assert partial.broadcast_counts.sum() == partial.stats.broadcasts
    assert partial.message == str(info.value)

    returned = settle(net, eps=1e-4, max_updates=50, scheduler=scheduler, on_budget="return")
    assert_same_result(returned, partial)
    assert_matches_naive(returned, run_naive(net, None, 1e-4, max_updates=50))


def test_budget_zero():
    net = _oscillator()
    res = settle(net, eps=1e-4, max_updates=0, on_budget="return")
    assert not res.settled and res.stats.neuron_updates == 0
    # nothing pending: settled even with no budget
    idle = RateNetwork(SynapseGraph.from_dense(np.zeros((2, 2))), "tanh")
    assert settle(idle, eps=1e-4, max_updates=0).settled


def test_default_budget_is_1000n():
    res = settle(_oscillator(), eps=1e-4, on_budget="return")
    assert res.stats.neuron_updates == 2000
    assert "max_updates=2000" in res.message


# ---------------------------------------------------------------- bad input


@pytest.fixture(scope="module")
def net3():
    return RateNetwork(input_recurrent(2, 3, 0.5, seed=0), "tanh", inputs=[0, 1])


@pytest.mark.parametrize("inputs", [[1.0], [1.0, 2.0, 3.0], [[1.0, 2.0]], 1.0])
def test_bad_inputs_shape(net3, inputs):
    with pytest.raises(ValueError, match=r"inputs must have shape \(2,\)"):
        settle(net3, inputs, eps=1e-3)


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_bad_inputs_not_finite(net3, bad):
    with pytest.raises(ValueError, match="inputs must be finite; entry 1"):
        settle(net3, [0.5, bad], eps=1e-3)


# ------------------------------------------------------- over-relaxation


@settings(SETTINGS, max_examples=100)
@given(case=cases(max_n=30, min_eps=1e-3), relaxation=st.floats(0.7, 1.05))
def test_relaxed_matches_naive(case, relaxation):
    """ω ≠ 1 broadcasts ω·d; the kernel makes the reference's decisions and ends at an ε-fixed point."""
    net, inputs, eps = case
    res = settle(net, inputs, eps=eps, relaxation=relaxation, on_budget="return")
    nv = run_naive(net, inputs, eps, relaxation=relaxation)
    note(f"margin={nv.min_margin:.3g}")
    assert res.settled == nv.settled
    if nv.min_margin > MARGIN:
        assert_matches_naive(res, nv)
    if res.settled:  # pending changes, recomputed in float64, are within eps (+ float32 rounding)
        assert np.max(np.abs(residual(net, res.x)), initial=0.0) <= eps * (1 + 1e-3) + 1e-5


def test_relaxation_one_is_the_plain_rule():
    net = handmade("tanh")
    plain = settle(net, [0.7, -0.2], eps=1e-5)
    assert_same_result(settle(net, [0.7, -0.2], eps=1e-5, relaxation=1.0), plain)
    assert_matches_naive(plain, run_naive(net, [0.7, -0.2], 1e-5))


def test_relaxed_warm_restart_is_idle():
    net = handmade("tanh")
    res = settle(net, [0.7, -0.2], eps=1e-5, relaxation=1.05)
    again = settle(net, [0.7, -0.2], eps=1e-5, relaxation=1.05, state=res.state)
    assert again.stats.neuron_updates == 0 and again.stats.synaptic_ops == 0


@pytest.mark.parametrize("relaxation", [0, 2, 2.5, -1, np.nan, np.inf, True, "1", None])
def test_bad_relaxation(net3, relaxation):
    with pytest.raises(ValueError, match=r"relaxation must be a number in \(0, 2\)"):
        settle(net3, [0, 0], eps=1e-3, relaxation=relaxation)


@pytest.mark.parametrize("eps", [0, 0.0, -1e-3, np.nan, np.inf, True, False, "0.1", None, np.float32(np.nan)])
def test_bad_eps(net3, eps):
    with pytest.raises(ValueError, match="eps must be a finite number > 0"):
        settle(net3, [0, 0], eps=eps)


def test_eps_accepts_numpy_and_int(net3):
    assert settle(net3, [1, 0], eps=np.float64(1e-3)).settled
    assert settle(net3, [1, 0], eps=1).settled


@pytest.mark.parametrize("maker", [SynapseGraph.from_dense])
def test_nan_weight(maker):
    with pytest.raises(ValueError, match="adjacency must be finite"):
        maker([[0.0, np.nan], [1.0, 0.0]])


def test_nan_weight_in_edges():
    with pytest.raises(ValueError, match="weights must be finite; synapse 1"):
        SynapseGraph.from_edges(2, [0, 1], [1, 0], [1.0, np.inf])


@pytest.mark.parametrize("bias", [[0.0] * 4, [0.0] * 6, [[0.0] * 5]])
def test_bad_bias_shape(bias):
    with pytest.raises(ValueError, match=r"bias must have shape \(5,\)"):
        RateNetwork(input_recurrent(2, 3, 0.5, seed=0), bias=bias)


def test_bad_bias_nan():
    with pytest.raises(ValueError, match="bias must be finite"):
        RateNetwork(input_recurrent(2, 3, 0.5, seed=0), bias=[0, 0, np.nan, 0, 0])


@pytest.mark.parametrize("act", ["relu", "Tanh", "", None, 3])
def test_unknown_activation(act):
    with pytest.raises(ValueError, match="activation must be one of"):
        RateNetwork(input_recurrent(2, 3, 0.5, seed=0), act)


@pytest.mark.parametrize("scheduler", ["fifo", "Heap", None, 0])
def test_unknown_scheduler(net3, scheduler):
    with pytest.raises(ValueError, match="scheduler must be one of"):
        settle(net3, [0, 0], eps=1e-3, scheduler=scheduler)


@pytest.mark.parametrize("on_budget", ["warn", None, True])
def test_bad_on_budget(net3, on_budget):
    with pytest.raises(ValueError, match="on_budget"):
        settle(net3, [0, 0], eps=1e-3, on_budget=on_budget)


@pytest.mark.parametrize("max_updates", [-1, 1.5, True, "10"])
def test_bad_max_updates(net3, max_updates):
    with pytest.raises(ValueError, match="max_updates must be an int >= 0"):
        settle(net3, [0, 0], eps=1e-3, max_updates=max_updates)


def test_non_contractive_rejected():
    g = SynapseGraph.from_dense([[0.0, 1.5], [1.5, 0.0]])
    with pytest.raises(ValueError, match="contractive"):
        RateNetwork(g, "tanh")
    with pytest.raises(ValueError, match="contractive"):  # exactly 1 is refused too
        RateNetwork(SynapseGraph.from_dense([[0.0, 1.0], [1.0, 0.0]]), "tanh")
    assert RateNetwork(g, "tanh", check_contractive=False).contraction == pytest.approx(1.5)
    # the check is on the free block only: input weights may be large
    assert RateNetwork(g, "tanh", inputs=[0]).contraction == 0.0


def test_bad_state(net3):
    good = settle(net3, [1, 0], eps=1e-3).state
    with pytest.raises(ValueError, match=r"state.u must have shape \(5,\)"):
        settle(net3, [1, 0], eps=1e-3, state=RateState(u=good.u[:4], x=good.x))
    with pytest.raises(ValueError, match=r"state.x must have shape \(5,\)"):
        settle(net3, [1, 0], eps=1e-3, state=RateState(u=good.u, x=np.zeros((5, 1))))
    with pytest.raises(ValueError, match="state.x must be finite"):
        settle(net3, [1, 0], eps=1e-3, state=RateState(u=good.u, x=np.full(5, np.nan)))
    with pytest.raises(TypeError, match="state must be a RateState"):
        settle(net3, [1, 0], eps=1e-3, state=(good.u, good.x))


@pytest.mark.parametrize("currents, match", [
    (([1, 2], [0.5]), "currents must be"),
    (([[1, 2]], [[0.5, 0.1]]), "currents must be"),
    (([5], [0.5]), "current ids must lie in"),
    (([-1], [0.5]), "current ids must lie in"),
    (([1], [np.nan]), "current values must be finite"),
])
def test_bad_currents(net3, currents, match):
    with pytest.raises(ValueError, match=match):
        settle(net3, [1, 0], eps=1e-3, currents=currents)


def test_bad_network_type():
    with pytest.raises(TypeError, match="network must be a RateNetwork"):
        settle(SynapseGraph.from_dense(np.eye(2) * 0.5), eps=1e-3)
    with pytest.raises(TypeError, match="graph must be a topology.SynapseGraph"):
        RateNetwork(np.eye(2) * 0.5)


@pytest.mark.parametrize("inputs, match", [
    ([0, 5], r"inputs must be neuron ids in \[0, 5\)"),
    ([-1], r"inputs must be neuron ids in \[0, 5\)"),
    ([1, 1], "inputs must not repeat"),
    ([[0, 1]], "inputs must be a 1-D list"),
])
def test_bad_input_ids(inputs, match):
    with pytest.raises(ValueError, match=match):
        RateNetwork(input_recurrent(2, 3, 0.5, seed=0), inputs=inputs)


def test_empty_graph():
    g = SynapseGraph.from_dense(np.zeros((0, 0)))
    assert g.n == 0 and g.nnz == 0 and g.seg_ptr.tolist() == [0]
    with pytest.raises(ValueError, match="graph has no neurons"):
        RateNetwork(g)


def test_all_inputs_network():
    """Every neuron clamped: the free block is empty, only input broadcasts happen."""
    g = SynapseGraph.from_dense([[0.0, 2.0], [3.0, 0.0]])
    net = RateNetwork(g, "tanh", inputs=[0, 1])
    res = settle(net, [1.0, -1.0], eps=1e-3)
    assert res.settled and res.stats.neuron_updates == 0 and res.stats.input_synaptic_ops == 2
    np.testing.assert_array_equal(res.x, [1.0, -1.0])


def test_single_neuron_self_loop():
    net = RateNetwork(SynapseGraph.from_dense([[0.5]]), "tanh", bias=[1.0])
    res = settle(net, eps=1e-6)
    x_star = naive_fixed_point([[0.5]], [1.0], [], None, "tanh", tol=1e-12)
    assert abs(res.x[0] - x_star[0]) <= 1e-6 / (1 - 0.5) + 1e-6
    assert_matches_naive(res, run_naive(net, None, 1e-6))
