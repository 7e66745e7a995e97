"""Structural edits on a live EqProp model: optimizer state follows the synapses, growth scores are the gradient."""

import numpy as np
import pytest

from eventhorizon.eqprop import EqPropConfig, EqPropModel, StateWindow
from eventhorizon.learning import accumulate_gradient
from eventhorizon.modelfile import load_model, save_model
from topology.dynamic import Deletions, Insertions
from topology.generators import layered
from topology.rules import block_capacity, budget_for_density, grow_top_scores, prune_smallest

SIZES = (6, 5, 3)
BLOCKS = [(0, 6, 6, 11), (6, 11, 11, 14)]  # forward blocks; the store mirrors hidden-output pairs


def sparse_model(momentum=0.5, seed=0):
    cfg = EqPropConfig(sizes=SIZES, learning_rates=(0.2, 0.1), momentum=momentum, batch_size=4, seed=seed)
    graph = layered(SIZES, seed, feedback=True, density=0.6)
    graph.weights *= np.float32(cfg.init_scale)
    return EqPropModel(cfg, graph=graph)


def data(seed=0, n=24):
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, 3, n)
    X = rng.random((n, 6)).astype(np.float32) * 0.3
    X[np.arange(n), labels] += 0.7
    return X, labels


def synapse_map(model, array):
    pre = np.repeat(np.arange(model.graph.n), np.diff(model.graph.indptr))
    return {(int(i), int(j)): float(v) for i, j, v in zip(pre, model.graph.indices, array)}


def test_rewire_carries_weights_momentum_and_rates():
    model = sparse_model()
    X, labels = data()
    model.train_batch(X[:4], labels[:4])  # non-zero momentum
    before_w = synapse_map(model, model.graph.weights)
    before_v = synapse_map(model, model._opt.velocity_w)
    existing = set(before_w)
    hidden_out = max((key for key in existing if 6 <= key[0] < 11 <= key[1]), key=lambda k: abs(before_w[k]))
    missing_in = next((i, j) for i in range(6) for j in range(6, 11) if (i, j) not in existing)
    missing_ho = next((i, j) for i in range(6, 11) for j in range(11, 14) if (i, j) not in existing)
    model.scale_learning_rates(0.5)
    model.rewire(deletes=Deletions(np.array([hidden_out[0]]), np.array([hidden_out[1]])),
                 inserts=Insertions(np.array([missing_in[0], missing_ho[0]]), np.array([missing_in[1], missing_ho[1]]),
                                    np.array([0.0, 0.0], np.float32)))
    after_w = synapse_map(model, model.graph.weights)
    after_v = synapse_map(model, model._opt.velocity_w)
    after_lr = synapse_map(model, model._opt.lr_w)
    mirror = hidden_out[::-1]
    assert hidden_out not in after_w and mirror not in after_w
    for key in existing - {hidden_out, mirror}:
        assert after_w[key] == before_w[key] and after_v[key] == before_v[key]
    for key, rate in ((missing_in, 0.2), (missing_ho, 0.1), (missing_ho[::-1], 0.1)):
        assert after_w[key] == 0.0 and after_v[key] == 0.0
        assert after_lr[key] == pytest.approx(0.5 * rate)
    A = model.graph.to_scipy().tocsr()[6:, 6:]
    assert (A != A.T).nnz == 0
    from topology.store import SynapseGraph

    g = model.graph
    fresh = EqPropModel(model.config, graph=SynapseGraph(g.indptr, g.indices, g.weights.copy(), g.n),
                        bias=model.network.bias.copy())
    for x in X:  # the kernels see the new graph
        np.testing.assert_array_equal(model.free_phase(x).x, fresh.free_phase(x).x)
    stats = model.train_batch(X[4:8], labels[4:8])
    assert stats.samples == 4 and stats.not_settled == 0


def test_rewire_refuses_non_adjacent_layers_and_changes_nothing():
    model = sparse_model()
    weights = model.graph.weights.copy()
    with pytest.raises(ValueError, match="adjacent layers"):
        model.rewire(inserts=(np.array([0]), np.array([12]), np.array([0.1], np.float32)))
    with pytest.raises(ValueError, match="does not exist"):
        model.rewire(deletes=(np.array([0]), np.array([0])))
    np.testing.assert_array_equal(model.graph.weights, weights)


def test_candidate_scores_equal_the_learning_rule_on_existing_synapses():
    model = sparse_model()
    X, labels = data(seed=1, n=6)
    score = model.candidate_scores(X, labels)
    gw = np.zeros(model.graph.nnz, np.float32)
    gb = np.zeros(model.graph.n, np.float32)
    beta = model.config.beta
    for x, label in zip(X, labels):
        free = model.free_phase(x)
        y = np.eye(3, dtype=np.float32)[label]
        a, b = model.nudged_phase(free, y, beta), model.nudged_phase(free, y, -beta)
        accumulate_gradient(model.graph, a.x, b.x, beta, -beta, model.network.free_mask, gw, gb)
    pre = np.repeat(np.arange(model.graph.n), np.diff(model.graph.indptr))
    np.testing.assert_allclose(score(pre, model.graph.indices), gw / len(X), rtol=1e-4, atol=1e-6)


def test_gradient_growth_at_constant_density_keeps_learning():
    """RigL-style loop: prune smallest |W|, grow the largest EqProp scores, density held, loss still falls."""
    model = sparse_model(momentum=0.0, seed=3)
    X, labels = data(seed=2, n=60)
    capacity = block_capacity(BLOCKS, model.graph.n)
    forward = lambda: int(np.sum(np.repeat(np.arange(model.graph.n), np.diff(model.graph.indptr))  # noqa: E731
                                 < model.graph.indices))
    start = forward()
    losses = []
    for epoch in range(6):
        total = 0.0
        for s in range(0, 60, 4):
            total += model.train_batch(X[s:s + 4], labels[s:s + 4]).loss
        losses.append(total / 60)
        prune, grow = budget_for_density(forward(), capacity, start / capacity, rewire_fraction=0.1)
        model.rewire(deletes=prune_smallest(model.graph, prune, one_direction=True))
        score = model.candidate_scores(X[:8], labels[:8])
        model.rewire(inserts=grow_top_scores(model.graph, grow, BLOCKS, score))
        assert forward() == start
    assert losses[-1] < losses[0]


def test_model_file_round_trip_after_rewiring(tmp_path):
    model = sparse_model()
    model.rewire(deletes=prune_smallest(model.graph, 3, one_direction=True))
    save_model(tmp_path / "m.npz", model)
    again, _ = load_model(tmp_path / "m.npz")
    np.testing.assert_array_equal(again.graph.indices, model.graph.indices)
    np.testing.assert_array_equal(again.graph.weights, model.graph.weights)
    np.testing.assert_array_equal(again._opt.velocity_w, model._opt.velocity_w)


def test_candidate_score_blocks_equal_the_pairwise_score():
    model = sparse_model()
    X, labels = data(seed=4, n=5)
    score = model.candidate_scores(X, labels)
    for lo_a, hi_a, lo_b, hi_b in BLOCKS:
        pre, post = np.meshgrid(np.arange(lo_a, hi_a), np.arange(lo_b, hi_b), indexing="ij")
        np.testing.assert_allclose(score.block(lo_a, hi_a, lo_b, hi_b), score(pre.ravel(), post.ravel()).reshape(pre.shape),
                                   rtol=1e-10, atol=1e-12)


def block_counts(model):
    """Forward synapses per block (grown synapses start at weight 0, so count the structure)."""
    pre, post = model.graph.pre_ids(), model.graph.indices
    return [int(np.sum((pre >= a) & (pre < b) & (post >= c) & (post < d))) for a, b, c, d in BLOCKS]


@pytest.mark.parametrize("grow", ["gradient", "random"])
def test_per_block_budget_keeps_each_block_and_leaves_a_dense_block_alone(grow):
    from types import SimpleNamespace

    from eventhorizon.plasticity import plasticity_step

    cfg = EqPropConfig(sizes=SIZES, batch_size=4, seed=1)
    model = EqPropModel(cfg, graph=layered(SIZES, 1, feedback=True, density=[0.5, 1.0]))
    readout = model.graph.to_scipy().toarray()[6:, 6:].copy()
    X, labels = data(seed=1, n=8)
    rules = SimpleNamespace(rewire_fraction=0.5, grow=grow, score_samples=8, budget="per_block")
    before = block_counts(model)
    out = plasticity_step(model, rules, X, labels, [0])
    assert block_counts(model) == before == [before[0], 15]
    assert out["pruned"] == out["grown"] == round(0.5 * before[0]) > 0
    np.testing.assert_array_equal(model.graph.to_scipy().toarray()[6:, 6:], readout)  # dense block untouched

    model = EqPropModel(cfg, graph=layered(SIZES, 1, feedback=True, density=[0.5, 0.6]))
    before = block_counts(model)
    out = plasticity_step(model, rules, X, labels, [0])
    assert block_counts(model) == before and out["pruned"] == sum(round(0.5 * c) for c in before)


def test_global_budget_moves_synapses_between_blocks():
    """With one budget for the network, the smallest |W| go wherever they are: a block with tiny weights empties."""
    from types import SimpleNamespace

    from eventhorizon.plasticity import plasticity_step

    model = EqPropModel(EqPropConfig(sizes=SIZES, batch_size=4, seed=1),
                        graph=layered(SIZES, 1, feedback=True, density=[0.5, 0.6]))
    readout = (model.graph.pre_ids() >= 11) | (model.graph.indices >= 11)
    model.graph.weights[readout] *= np.float32(1e-3)
    before = block_counts(model)
    X, labels = data(seed=1, n=8)
    rules = SimpleNamespace(rewire_fraction=0.3, grow="random", score_samples=8, budget="global")
    out = plasticity_step(model, rules, X, labels, [0])
    after = block_counts(model)
    assert sum(after) == sum(before) and out["pruned"] == round(0.3 * sum(before))
    assert after[1] < before[1]


@pytest.mark.parametrize("nudging", ["symmetric", "random_sign"])
def test_state_window_scores_what_training_settled(nudging):
    """train_batch(keep=window) keeps the equilibria it trained with: those candidate_scores settles on the same
    samples with the weights before the step; under random_sign each row keeps the scale of its batch's sign."""
    cfg = EqPropConfig(sizes=SIZES, learning_rates=(0.2, 0.1), batch_size=4, nudging=nudging, seed=5)
    X, labels = data(seed=6, n=12)
    model, window = EqPropModel(cfg, graph=sparse_model().graph), StateWindow(6)
    scales = []
    for s in range(0, 12, 4):
        g = model.graph
        before = EqPropModel(cfg, graph=type(g)(g.indptr, g.indices, g.weights.copy(), g.n),
                             bias=model.network.bias.copy())
        fresh = before.candidate_scores(X[s:s + 4], labels[s:s + 4])  # nudged with +beta
        model.train_batch(X[s:s + 4], labels[s:s + 4], keep=window)
        kept = window.score()
        scales.append(float(kept.scale[-1, 0]))
        if scales[-1] > 0:  # this batch was nudged with +beta too
            np.testing.assert_array_equal(kept.A[-4:], fresh.A)
            np.testing.assert_array_equal(kept.B[-4:], fresh.B)
            np.testing.assert_allclose(kept.scale[-4:, 0], fresh.scale[:, 0])
    score = window.score()
    assert len(window) == 6 and score.A.shape == (6, model.graph.n)
    np.testing.assert_array_equal(score.scale[:, 0], np.repeat(scales[-2:], [2, 4]))
    assert nudging == "symmetric" or len(set(scales)) == 2  # both signs, so the rows are scaled apart
    assert {abs(v) for v in scales} == {1 / (2 * cfg.beta) if nudging == "symmetric" else 1 / cfg.beta}
    pre, post = np.meshgrid(np.arange(0, 6), np.arange(6, 11), indexing="ij")
    np.testing.assert_allclose(score.block(0, 6, 6, 11), score(pre.ravel(), post.ravel()).reshape(pre.shape),
                               rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("grow", ["gradient", "random"])
def test_without_regrow_pruned_no_synapse_is_pruned_and_grown_in_one_step(grow):
    from types import SimpleNamespace

    from eventhorizon.plasticity import plasticity_step

    def pairs(model):
        pre = np.repeat(np.arange(model.graph.n), np.diff(model.graph.indptr))
        return {(int(i), int(j)) for i, j in zip(pre, model.graph.indices) if i < j}

    X, labels = data(seed=8, n=12)
    for regrow in (True, False):
        model = sparse_model(seed=2)
        model.train_batch(X[:4], labels[:4])
        before = pairs(model)
        section = SimpleNamespace(rewire_fraction=0.5, grow=grow, score_samples=8, budget="global",
                                  regrow_pruned=regrow)
        out = plasticity_step(model, section, X, labels, [0])
        after = pairs(model)
        assert len(after) == len(before) and out["pruned"] == out["grown"] > 0
        if not regrow:  # every pruned synapse is gone and as many new pairs came
            assert len(before - after) == out["pruned"] and len(after - before) == out["grown"]
