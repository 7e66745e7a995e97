"""The fused EqProp kernel (:mod:`eventhorizon.eqprop_rows`) against the per-sample public path.

The reference runs :meth:`EqPropModel.free_phase`, :meth:`EqPropModel.nudged_phase`
and :func:`accumulate_gradient` one Python call at a time; the fused kernel
must give the same counts, outputs and float32 gradient sums, bit for bit.
"""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from eventhorizon.checks import settle_rule
from eventhorizon.eqprop import NUDGING, EqPropConfig, EqPropModel
from eventhorizon.eqprop_rows import FREE, NUDGED_A, NUDGED_B, Nudge, _nudge_current, eqprop_rows
from eventhorizon.kernels import NEURON_UPDATES, SYNAPTIC_OPS
from eventhorizon.learning import accumulate_gradient, sgd_step
from eventhorizon.models import get_model


def reference(model, X, labels, beta_a, beta_b, symmetric):
    """Per-sample path: gradients (float32, row order), free outputs, per-phase (ops, updates), and the
    learning rule's two equilibria (rows × (a, b) × neurons)."""
    gw = np.zeros(model.graph.nnz, np.float32)
    gb = np.zeros(model.graph.n, np.float32)
    outs, counts, states = [], [], []
    for x, label in zip(X, labels):
        y = np.eye(model.n_classes, dtype=np.float32)[label]
        free = model.free_phase(x)
        a = model.nudged_phase(free, y, beta_a)
        b = model.nudged_phase(free, y, beta_b) if symmetric else free
        accumulate_gradient(model.graph, a.x, b.x, beta_a, beta_b, model.network.free_mask, gw, gb)
        outs.append(free.x[model.output_ids])
        phases = (free, a, b) if symmetric else (free, a)
        counts.append([(r.stats.synaptic_ops, r.stats.neuron_updates) for r in phases])
        states.append((a.x, b.x))
    return gw, gb, np.array(outs), counts, np.array(states)


def model_and_batch(sizes, seed, rows, eps=1e-4, nudging="symmetric", straight_through=False):
    model = EqPropModel(EqPropConfig(sizes=sizes, epsilon=eps, seed=seed, nudging=nudging,
                                     straight_through=straight_through))
    rng = np.random.default_rng(seed)
    model.network.bias[model.network.free_ids] = rng.uniform(-0.2, 0.4, model.network.free_ids.size)
    if straight_through:  # outputs clipped at 0 or 1, some far past the bound: the case the flag is for
        model.network.bias[model.output_ids] = rng.uniform(-2.0, 3.0, model.output_ids.size)
    X = rng.random((rows, sizes[0]), dtype=np.float32)
    X[rng.random(X.shape) < 0.4] = 0  # zero pixels: rows the gradient kernel skips
    return model, X, rng.integers(0, sizes[-1], rows)


def fused(model, X, labels, nudge):
    gw = np.zeros(model.graph.nnz, np.float32)
    gb = np.zeros(model.graph.n, np.float32)
    res = eqprop_rows(model.network, X, labels, model.output_ids, nudge, rule=settle_rule(model.config.epsilon, 1.0),
                      max_updates=model._max_updates, grad_w=gw, grad_b=gb)
    return gw, gb, res


@settings(max_examples=40, deadline=None)
@given(sizes=st.tuples(st.integers(1, 12), st.integers(1, 16), st.integers(1, 5)),
       seed=st.integers(0, 2**16), rows=st.integers(1, 6), beta=st.floats(0.01, 1.0),
       sign=st.sampled_from([1.0, -1.0]), symmetric=st.booleans(), straight_through=st.booleans())
def test_fused_rows_match_the_per_sample_path(sizes, seed, rows, beta, sign, symmetric, straight_through):
    model, X, labels = model_and_batch(sizes, seed, rows, straight_through=straight_through)
    beta_a = sign * beta
    beta_b = -beta_a if symmetric else 0.0
    gw_ref, gb_ref, out_ref, counts_ref, states_ref = reference(model, X, labels, beta_a, beta_b, symmetric)
    gw, gb, res = fused(model, X, labels, Nudge(beta_a, beta_b, symmetric, straight_through))
    np.testing.assert_array_equal(gw, gw_ref)
    np.testing.assert_array_equal(gb, gb_ref)
    np.testing.assert_array_equal(res.free_out, out_ref)
    assert res.settled.all()
    phases = (FREE, NUDGED_A, NUDGED_B) if symmetric else (FREE, NUDGED_A)
    for r, expected in enumerate(counts_ref):
        got = [(int(res.stats[r, p, SYNAPTIC_OPS]), int(res.stats[r, p, NEURON_UPDATES])) for p in phases]
        assert got == expected
    if not symmetric:
        assert not res.stats[:, NUDGED_B].any()
    assert res.states_a.shape == (0, model.graph.n)
    kept = eqprop_rows(model.network, X, labels, model.output_ids, Nudge(beta_a, beta_b, symmetric, straight_through),
                       rule=settle_rule(model.config.epsilon, 1.0), max_updates=model._max_updates,
                       keep_states=True)
    np.testing.assert_array_equal(kept.states_a, states_ref[:, 0])
    np.testing.assert_array_equal(kept.states_b, states_ref[:, 1])
    np.testing.assert_array_equal(kept.stats, res.stats)
    assert not kept.learning_ops.any()  # no accumulators given: no gradient work


@pytest.mark.parametrize("nudging", NUDGING)
def test_train_batch_equals_sgd_on_the_per_sample_gradients(nudging):
    """One thread: train_batch's weights are sgd_step applied to the reference's float32 sums, exactly."""
    model, X, labels = model_and_batch((9, 11, 4), seed=7, rows=5, nudging=nudging)
    sign = np.random.default_rng(model.config.seed).choice((-1.0, 1.0)) if nudging == "random_sign" else 1.0
    beta_a = float(sign * model.config.beta)
    symmetric = nudging == "symmetric"
    gw, gb, out, counts, _ = reference(model, X, labels, beta_a, -beta_a if symmetric else 0.0, symmetric)
    weights, bias = model.graph.weights.copy(), model.network.bias.copy()
    zeros_w, zeros_b = np.zeros_like(weights), np.zeros_like(bias)
    sgd_step(weights, zeros_w, gw, model._opt.lr_w, bias, zeros_b, gb, model._opt.lr_b, 0.0, 5)
    stats = model.train_batch(X, labels)
    np.testing.assert_array_equal(model.graph.weights, weights)
    np.testing.assert_array_equal(model.network.bias, bias)
    y = np.eye(4)[labels]
    assert stats.loss == pytest.approx(0.5 * np.sum((y - out) ** 2), rel=1e-6)
    assert stats.correct == int(np.sum(np.argmax(out, axis=1) == labels))
    assert stats.free_ops == sum(c[0][0] for c in counts)
    assert stats.nudged_ops == sum(sum(ops for ops, _ in c[1:]) for c in counts)
    assert stats.phases_seconds > 0 and stats.update_seconds > 0


def test_budget_overrun_is_reported_per_phase():
    model, X, labels = model_and_batch((6, 8, 3), seed=1, rows=3)
    gw = np.zeros(model.graph.nnz, np.float32)
    gb = np.zeros(model.graph.n, np.float32)
    res = eqprop_rows(model.network, X, labels, model.output_ids, Nudge(0.5, -0.5, True),
                      rule=settle_rule(1e-6, 1.0), max_updates=2, grad_w=gw, grad_b=gb)
    assert not res.settled[:, FREE].all()
    assert (res.stats[:, :, NEURON_UPDATES] <= 2).all()


@pytest.mark.parametrize("change, message", [
    (dict(inputs=np.zeros((2, 5), np.float32)), r"inputs must be float32 of shape \(rows, 6\)"),
    (dict(inputs=np.zeros((2, 6), np.float64)), "inputs must be float32"),
    (dict(labels=np.array([0, 3])), "labels must be 2 indices into the 3 outputs"),
    (dict(labels=np.array([0])), "labels must be 2 indices"),
    (dict(grad_w=np.zeros(3, np.float32)), r"grad_w must be float32 of shape \("),
    (dict(grad_b=np.zeros(14, np.float64)), r"grad_b must be float32 of shape \(17,\)"),
    (dict(nudge=Nudge(0.5, 0.5, True)), "the two nudges must differ"),
    (dict(grad_b=None), "grad_w and grad_b must be given together"),
])
def test_bad_arguments_are_named(change, message):
    model, X, labels = model_and_batch((6, 8, 3), seed=1, rows=2)
    args = dict(inputs=X, labels=labels, nudge=Nudge(0.5, -0.5, True),
                grad_w=np.zeros(model.graph.nnz, np.float32), grad_b=np.zeros(model.graph.n, np.float32))
    args.update(change)
    with pytest.raises(ValueError, match=message):
        eqprop_rows(model.network, args["inputs"], args["labels"], model.output_ids, args["nudge"],
                    rule=settle_rule(1e-3, 1.0), max_updates=1000, grad_w=args["grad_w"], grad_b=args["grad_b"])


@settings(max_examples=200, deadline=None)
@given(beta=st.floats(-2.0, 2.0), target=st.sampled_from([0.0, 1.0]), u=st.floats(-10.0, 10.0, width=32),
       activation=st.sampled_from(["hard_sigmoid", "clipped_relu"]), straight_through=st.booleans())
def test_nudge_current_matches_the_formula(beta, target, u, activation, straight_through):
    """The output current against its definition in plain numpy: β(y − x), and −(u − ρ(u)) if wrong and flagged.

    Float64 arithmetic on the float32 error ``y − x`` and excess ``u − ρ(u)``, rounded once to float32."""
    rho = get_model(activation)
    u = np.float32(u)
    x = rho(np.array([u], np.float32))[0]
    expected = beta * np.float64(np.float32(target) - x)  # the error in float32, as the outputs are
    if straight_through and x != target:
        expected -= np.float64(u - x)  # float32 excess
    got = _nudge_current(beta, np.float32(target), x, u, rho.code, straight_through)
    assert got == np.float32(expected)


def test_straight_through_is_ignored_for_tanh():
    tanh = get_model("tanh")
    assert _nudge_current(0.5, np.float32(0), np.float32(0.9), np.float32(1.5), tanh.code, True) == np.float32(-0.45)
