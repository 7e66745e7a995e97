"""flops.compare / lower_bound_ops against recounts done here, sample by sample."""

import math

import numpy as np
import pytest

from eventhorizon.datasets import generated_inputs
from eventhorizon.dense import DenseReference
from eventhorizon.flops import FlopsReport, compare, lower_bound_ops
from eventhorizon.network import RateNetwork
from eventhorizon.settle import settle
from topology.generators import input_recurrent, random_sparse

# --------------------------------------------------------------------------
# lower_bound_ops
# --------------------------------------------------------------------------


def independent_bound(net, x_in, x_final):
    """Σ out-degree (from the adjacency) of nonzero inputs and of free neurons with nonzero output."""
    a = net.graph.to_scipy().toarray()
    out_degree = np.count_nonzero(a, axis=1)
    inputs = list(net.input_ids)
    free = [i for i in range(net.n) if i not in set(inputs)]
    total = sum(int(out_degree[i]) for i, v in zip(inputs, x_in) if v != 0)
    total += sum(int(out_degree[i]) for i in free if x_final[i] != 0)
    return total


def test_lower_bound_docstring_example():
    net = RateNetwork(input_recurrent(2, 3, 0.5, seed=0), "tanh", inputs=[0, 1])
    x_final = np.array([1, 0, 0.1, 0, 0.2], np.float32)
    assert lower_bound_ops(net, [1.0, 0.0], x_final) == 7 == independent_bound(net, [1.0, 0.0], x_final)


@pytest.mark.parametrize("seed", range(6))
def test_lower_bound_random(seed):
    rng = np.random.default_rng(seed)
    if seed % 2:
        net = RateNetwork(random_sparse(30, 0.25, seed, weight_scale=0.3), "tanh", inputs=rng.permutation(30)[:6])
    else:
        net = RateNetwork(input_recurrent(5, 12, 0.5, seed), "tanh", inputs=range(5))
    for _ in range(5):
        x_in = rng.uniform(-1, 1, net.n_inputs) * (rng.random(net.n_inputs) < 0.5)
        x_final = (rng.uniform(-1, 1, net.n) * (rng.random(net.n) < 0.5)).astype(np.float32)
        x_final[net.input_ids] = x_in
        assert lower_bound_ops(net, x_in, x_final) == independent_bound(net, x_in, x_final)
    zeros = np.zeros(net.n, np.float32)
    assert lower_bound_ops(net, np.zeros(net.n_inputs), zeros) == 0


def test_lower_bound_ignores_clamped_values_in_x_final():
    # an input's contribution depends on the input vector, not on x_final
    net = RateNetwork(input_recurrent(3, 4, 0.5, 0), "tanh", inputs=range(3))
    x_final = np.zeros(net.n, np.float32)
    x_final[:3] = 1.0
    assert lower_bound_ops(net, [0.0, 0.0, 0.0], x_final) == 0
    assert lower_bound_ops(net, [0.0, 2.0, 0.0], np.zeros(net.n, np.float32)) == 4


# --------------------------------------------------------------------------
# compare
# --------------------------------------------------------------------------


NETS = {
    "input_recurrent": lambda: RateNetwork(input_recurrent(12, 24, 0.5, seed=3), "tanh", inputs=range(12)),
    # inputs receive synapses here: the event kernel delivers to them too
    "random_sparse": lambda: RateNetwork(random_sparse(40, 0.3, 2, weight_scale=0.3), "tanh", inputs=range(6)),
    "hard_sigmoid": lambda: RateNetwork(input_recurrent(10, 20, 0.6, seed=1), "hard_sigmoid", inputs=range(10)),
}


def recount(net, inputs, eps, scheduler="tournament"):
    dense, hoisted = DenseReference(net), DenseReference(net, hoist_inputs=True)
    t = dict(event=0, event_input=0, broadcasts=0, updates=0, dense=0, hoisted=0, looped=0, bound=0, sweeps=0)
    dev = 0.0
    for x_in in inputs:
        ev = settle(net, x_in, eps=eps, scheduler=scheduler)
        de = dense.settle(x_in, eps)
        ho = hoisted.settle(x_in, eps)
        lo = dense.looped(x_in, 30)
        assert ev.settled and de.converged and ho.converged and lo.sweeps == 30
        t["event"] += ev.stats.synaptic_ops
        t["event_input"] += ev.stats.input_synaptic_ops
        t["broadcasts"] += ev.stats.broadcasts
        t["updates"] += ev.stats.neuron_updates
        t["dense"] += de.synaptic_ops
        t["sweeps"] += de.sweeps
        t["hoisted"] += ho.synaptic_ops
        t["looped"] += lo.synaptic_ops
        t["bound"] += independent_bound(net, x_in, ev.x)
        dev = max(dev, float(np.max(np.abs(ev.x.astype(np.float64) - de.x.astype(np.float64)))))
    return t, dev


@pytest.fixture(params=sorted(NETS), scope="module")
def compared(request):
    net = NETS[request.param]()
    inputs = generated_inputs(7, net.n_inputs, seed=5, density=0.6)
    eps = 1e-3
    calls = []
    report = compare(net, inputs, eps, repeats=1, progress=calls.append)
    return net, inputs, eps, report, calls


def test_op_totals_equal_recount(compared):
    net, inputs, eps, r, _ = compared
    t, _ = recount(net, inputs, eps)
    assert isinstance(r, FlopsReport)
    assert r.samples == inputs.shape[0] and r.repeats == 1 and r.epsilon == eps
    assert r.event_synaptic_ops == t["event"]
    assert r.event_input_synaptic_ops == t["event_input"]
    assert r.event_broadcasts == t["broadcasts"]
    assert r.event_neuron_updates == t["updates"]
    assert r.dense_synaptic_ops == t["dense"]
    assert r.dense_hoisted_synaptic_ops == t["hoisted"]
    assert r.looped30_synaptic_ops == t["looped"]
    assert r.lower_bound_ops == t["bound"]
    assert r.dense_sweeps_mean == pytest.approx(t["sweeps"] / inputs.shape[0])


def test_op_totals_against_adjacency(compared):
    """LoopedMLP-30 and the input broadcasts can be counted without running anything."""
    net, inputs, _, r, _ = compared
    a = net.graph.to_scipy().toarray()
    free = np.setdiff1d(np.arange(net.n), net.input_ids)
    onto_free = np.count_nonzero(a[:, free])
    assert r.looped30_synaptic_ops == inputs.shape[0] * 30 * onto_free
    out_degree = np.count_nonzero(a, axis=1)[net.input_ids]
    assert r.event_input_synaptic_ops == int(sum(out_degree[row != 0].sum() for row in inputs))


def test_max_state_deviation_equals_recount(compared):
    net, inputs, eps, r, _ = compared
    _, dev = recount(net, inputs, eps)
    assert r.max_state_deviation == pytest.approx(dev, abs=1e-7)
    assert r.max_state_deviation <= 10 * eps


def test_derived_quantities(compared):
    net, inputs, _, r, _ = compared
    assert r.saving_vs_dense == pytest.approx(1 - r.event_synaptic_ops / r.dense_synaptic_ops)
    assert r.saving_vs_dense_hoisted == pytest.approx(1 - r.event_synaptic_ops / r.dense_hoisted_synaptic_ops)
    assert r.saving_vs_looped30 == pytest.approx(1 - r.event_synaptic_ops / r.looped30_synaptic_ops)
    assert r.ratio_to_lower_bound == pytest.approx(r.event_synaptic_ops / r.lower_bound_ops)
    n_free = net.n - net.n_inputs
    assert r.broadcasts_per_free_neuron == pytest.approx(r.event_broadcasts / (inputs.shape[0] * n_free))
    assert r.wall_ratio_event_over_dense == pytest.approx(r.event_seconds_per_sample / r.dense_seconds_per_sample)
    assert r.wall_ratio_event_over_dense_hoisted == pytest.approx(
        r.event_seconds_per_sample / r.dense_hoisted_seconds_per_sample)
    assert r.wall_ratio_event_all_cores_over_dense == pytest.approx(
        r.event_all_cores_seconds_per_sample / r.dense_loop_seconds_per_sample)
    assert r.wall_ratio_event_over_dense_1thread == pytest.approx(
        r.event_seconds_per_sample / r.dense_1thread_seconds_per_sample)
    assert 1 <= r.event_threads <= inputs.shape[0]
    for name in ("event_seconds_per_sample", "dense_seconds_per_sample", "dense_hoisted_seconds_per_sample",
                 "dense_batch128_seconds_per_sample", "event_all_cores_seconds_per_sample",
                 "dense_loop_seconds_per_sample", "dense_1thread_seconds_per_sample"):
        value = getattr(r, name)
        assert math.isfinite(value) and value > 0, name


def test_orderings(compared):
    _, _, _, r, _ = compared
    assert r.lower_bound_ops <= r.event_synaptic_ops <= r.looped30_synaptic_ops
    assert r.ratio_to_lower_bound >= 1.0
    assert r.event_input_synaptic_ops <= r.event_synaptic_ops
    assert r.event_broadcasts <= r.event_neuron_updates
    # hoisting never adds work: input drive once instead of every sweep
    assert r.dense_hoisted_synaptic_ops <= r.dense_synaptic_ops


def test_progress_and_as_dict(compared):
    _, inputs, _, r, calls = compared
    assert calls == [1] * inputs.shape[0]
    d = r.as_dict()
    assert d["event_synaptic_ops"] == r.event_synaptic_ops and len(d) == len(FlopsReport.__dataclass_fields__)


def test_repeats_multiply_progress_but_not_counts():
    net = NETS["input_recurrent"]()
    inputs = generated_inputs(3, net.n_inputs, seed=1)
    calls = []
    r2 = compare(net, inputs, 1e-3, repeats=2, progress=calls.append)
    r1 = compare(net, inputs, 1e-3, repeats=1)
    assert len(calls) == 6 and r2.repeats == 2
    for name in ("event_synaptic_ops", "dense_synaptic_ops", "dense_hoisted_synaptic_ops", "looped30_synaptic_ops",
                 "lower_bound_ops", "event_broadcasts", "max_state_deviation"):
        assert getattr(r1, name) == getattr(r2, name), name


def test_heap_scheduler_counts_match_recount():
    net = NETS["random_sparse"]()
    inputs = generated_inputs(4, net.n_inputs, seed=2)
    r = compare(net, inputs, 1e-3, repeats=1, scheduler="heap")
    t, dev = recount(net, inputs, 1e-3, scheduler="heap")
    assert (r.event_synaptic_ops, r.event_broadcasts, r.lower_bound_ops) == (t["event"], t["broadcasts"], t["bound"])
    assert r.max_state_deviation == pytest.approx(dev, abs=1e-7)


def test_single_sample_and_zero_input():
    net = NETS["input_recurrent"]()
    r = compare(net, np.zeros((1, net.n_inputs), np.float32), 1e-3, repeats=1)
    # nothing to broadcast from a cold start at zero input with zero bias
    assert r.event_synaptic_ops == 0 and r.lower_bound_ops == 0
    assert r.dense_synaptic_ops == DenseReference(net).ops_per_sweep  # one sweep to see no change
    assert r.max_state_deviation == 0.0


# --------------------------------------------------------------------------
# validation
# --------------------------------------------------------------------------


@pytest.fixture(scope="module")
def net12():
    return NETS["input_recurrent"]()


@pytest.mark.parametrize("make", [
    lambda n: np.zeros(n),  # 1-D
    lambda n: np.zeros((2, n + 1)),
    lambda n: np.zeros((2, n - 1)),
    lambda n: np.zeros((0, n)),
    lambda n: np.zeros((2, n, 1)),
], ids=["1d", "wide", "narrow", "empty", "3d"])
def test_compare_rejects_bad_inputs(net12, make):
    with pytest.raises(ValueError, match="inputs must have shape"):
        compare(net12, make(net12.n_inputs), 1e-3, repeats=1)


@pytest.mark.parametrize("repeats", [0, -1, 1.0, True, "2", None])
def test_compare_rejects_bad_repeats(net12, repeats):
    with pytest.raises(ValueError, match="repeats"):
        compare(net12, np.zeros((1, net12.n_inputs)), 1e-3, repeats=repeats)


@pytest.mark.parametrize("eps", [0.0, -1.0, float("nan")])
def test_compare_rejects_bad_eps(net12, eps):
    with pytest.raises(ValueError, match="eps"):
        compare(net12, np.zeros((1, net12.n_inputs)), eps, repeats=1)


def test_compare_rejects_unknown_scheduler(net12):
    with pytest.raises((ValueError, KeyError)):
        compare(net12, np.zeros((1, net12.n_inputs)), 1e-3, repeats=1, scheduler="fifo")
