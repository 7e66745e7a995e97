"""Tests for :mod:`eventhorizon.eqprop`: event-driven Equilibrium Propagation.

The key scientific check is :func:`test_symmetric_eqprop_gradient_matches_finite_differences`:
on a tiny unsaturated model the EqProp estimate built from the event-driven
nudged equilibria agrees with central finite differences of the free-phase
loss ``½‖y − x_out‖²`` (a symmetric pair ``W_ij = W_ji`` is one parameter).
The measured cosine similarities are printed (``pytest -s`` shows them).
"""

import numpy as np
import pytest

from eventhorizon.eqprop import NUDGING, BatchStats, EqPropConfig, EqPropModel
from eventhorizon.learning import accumulate_gradient
from topology.generators import layered, random_sparse
from topology.store import SynapseGraph

# ---------------------------------------------------------------- helpers


def scaled_model(config, scale=0.5, bias=0.0, seed=None):
    """Glorot-uniform layered model with weights × ``scale`` and a constant bias.

    Glorot weights with all-positive inputs in [0, 1] start the hard-sigmoid
    outputs saturated at 0 or 1, where ρ' = 0 and EqProp (like backprop) gets
    no signal; halving them keeps the units in their linear range.
    """
    g = layered(config.sizes, config.seed if seed is None else seed, feedback=True)
    g = SynapseGraph(g.indptr, g.indices, g.weights * np.float32(scale), g.n)
    return EqPropModel(config, graph=g, bias=np.full(g.n, bias, np.float32))


def synapse_pairs(graph):
    """Parameters of a symmetric graph: ``(k, k_mirror or None)`` with a pair listed once."""
    pre = np.repeat(np.arange(graph.n), graph.fan_out())
    position = {(int(i), int(j)): k for k, (i, j) in enumerate(zip(pre, graph.indices))}
    params = []
    for (i, j), k in position.items():
        mirror = position.get((j, i))
        if mirror is not None and j < i:
            continue  # the pair is listed at (j, i)
        params.append((k, mirror))
    return params


def free_loss(model, x, y):
    out = model.free_phase(x).x[model.output_ids].astype(np.float64)
    return 0.5 * float(np.sum((y - out) ** 2))


def eqprop_gradient(model, x, y, beta, nudging):
    """EqProp estimate of −∂loss/∂θ from the event-driven phases (public methods only)."""
    free = model.free_phase(x)
    a = model.nudged_phase(free, y, beta)
    if nudging == "symmetric":
        b, beta_b = model.nudged_phase(free, y, -beta), -beta
    else:
        b, beta_b = free, 0.0
    gw = np.zeros(model.graph.nnz, np.float32)
    gb = np.zeros(model.graph.n, np.float32)
    accumulate_gradient(model.graph, a.x, b.x, beta, beta_b, model.network.free_mask, gw, gb)
    return gw, gb


def finite_difference_gradient(model, x, y, h=1e-3):
    """Central differences of −loss w.r.t. each weight parameter (pairs perturbed together) and free bias."""
    g, bias = model.graph, model.network.bias  # perturbed in place: the kernels read these very arrays
    params = synapse_pairs(g)
    fd_w = np.empty(len(params))
    for p, (k, mirror) in enumerate(params):
        ks = [k] if mirror is None else [k, mirror]
        w0 = g.weights[ks].copy()
        g.weights[ks] = w0 + np.float32(h)
        plus = free_loss(model, x, y)
        g.weights[ks] = w0 - np.float32(h)
        minus = free_loss(model, x, y)
        g.weights[ks] = w0
        fd_w[p] = -(plus - minus) / (2 * h)
    free_ids = model.network.free_ids
    fd_b = np.empty(free_ids.size)
    for p, i in enumerate(free_ids):
        b0 = bias[i]
        bias[i] = b0 + np.float32(h)
        plus = free_loss(model, x, y)
        bias[i] = b0 - np.float32(h)
        minus = free_loss(model, x, y)
        bias[i] = b0
        fd_b[p] = -(plus - minus) / (2 * h)
    return np.array([k for k, _ in params]), fd_w, free_ids, fd_b


def cosine(u, v):
    u, v = np.asarray(u, np.float64), np.asarray(v, np.float64)
    return float(u @ v / (np.linalg.norm(u) * np.linalg.norm(v)))


def blobs(seed=0, per_class=30, dim=8, classes=3):
    """Gaussian blobs scaled to [0, 1] per feature (a separable problem)."""
    rng = np.random.default_rng(seed)
    centers = rng.normal(0.0, 2.0, (classes, dim))
    X = np.concatenate([c + rng.normal(0.0, 0.5, (per_class, dim)) for c in centers])
    labels = np.repeat(np.arange(classes), per_class)
    X = (X - X.min(0)) / (X.max(0) - X.min(0))
    order = rng.permutation(labels.size)
    return X[order].astype(np.float32), labels[order]


def train(model, X, labels, epochs):
    bs = model.config.batch_size
    total = BatchStats()
    for _ in range(epochs):
        for s in range(0, labels.size, bs):
            total.add(model.train_batch(X[s:s + bs], labels[s:s + bs]))
    return total


def free_block_bits(model):
    A = model.graph.to_scipy().tocsr()
    free = model.network.free_ids
    return A[free][:, free].toarray().view(np.uint32)


# ------------------------------------------------------- gradient checks

TINY = dict(sizes=(5, 7, 3), beta=1e-2, epsilon=1e-6)


@pytest.fixture(scope="module")
def tiny_problem():
    """A tiny, mostly-unsaturated model, one sample and its finite-difference gradient."""
    model = scaled_model(EqPropConfig(**TINY), scale=0.5, bias=0.3)
    rng = np.random.default_rng(1)
    x = rng.random(5).astype(np.float32)
    y = np.array([0.0, 1.0, 0.0], np.float32)
    free = model.free_phase(x)
    assert free.settled
    hidden_out = free.x[model.network.free_ids]
    unsaturated = np.mean((hidden_out > 0) & (hidden_out < 1))
    assert unsaturated >= 0.7, f"only {unsaturated:.0%} of free units unsaturated"
    ks, fd_w, free_ids, fd_b = finite_difference_gradient(model, x, y)
    return model, x, y, ks, fd_w, free_ids, fd_b


def test_symmetric_eqprop_gradient_matches_finite_differences(tiny_problem):
    model, x, y, ks, fd_w, free_ids, fd_b = tiny_problem
    gw, gb = eqprop_gradient(model, x, y, model.config.beta, "symmetric")
    cos_w, ratio_w = cosine(gw[ks], fd_w), np.linalg.norm(gw[ks]) / np.linalg.norm(fd_w)
    cos_b, ratio_b = cosine(gb[free_ids], fd_b), np.linalg.norm(gb[free_ids]) / np.linalg.norm(fd_b)
    print(f"\nsymmetric EqProp vs finite differences (beta={model.config.beta}): "
          f"weights cosine={cos_w:.8f} norm ratio={ratio_w:.5f}; biases cosine={cos_b:.8f} norm ratio={ratio_b:.5f}")
    assert cos_w > 0.999
    assert cos_b > 0.999
    assert abs(ratio_w - 1) < 0.01 and abs(ratio_b - 1) < 0.01
    # the mirror synapse of each pair carries the same estimate (bit for bit)
    for k, mirror in synapse_pairs(model.graph):
        if mirror is not None:
            assert gw[k].view(np.uint32) == gw[mirror].view(np.uint32)
    # clamped inputs have no bias gradient
    assert not gb[model.network.input_ids].any()


def test_positive_nudging_gradient_at_small_beta(tiny_problem):
    model, x, y, ks, fd_w, free_ids, fd_b = tiny_problem
    gw, gb = eqprop_gradient(model, x, y, 1e-2, "positive")
    cos_w, cos_b = cosine(gw[ks], fd_w), cosine(gb[free_ids], fd_b)
    print(f"\npositive EqProp vs finite differences (beta=0.01): weights cosine={cos_w:.8f}, biases {cos_b:.8f}")
    assert cos_w > 0.99 and cos_b > 0.99


def test_gradient_bias_grows_with_beta_symmetric_beats_positive(tiny_problem):
    model, x, y, ks, fd_w, free_ids, fd_b = tiny_problem
    cos = {}
    for beta in (0.01, 0.1, 0.5):
        for nudging in ("symmetric", "positive"):
            gw, _ = eqprop_gradient(model, x, y, beta, nudging)
            cos[beta, nudging] = cosine(gw[ks], fd_w)
    print("\nweight-gradient cosine with finite differences:")
    for beta in (0.01, 0.1, 0.5):
        print(f"  beta={beta:<5} symmetric={cos[beta, 'symmetric']:.8f} positive={cos[beta, 'positive']:.8f}")
    assert cos[0.5, "symmetric"] >= cos[0.5, "positive"]
    assert cos[0.01, "symmetric"] >= cos[0.01, "positive"]
    for nudging in ("symmetric", "positive"):   # the estimate degrades as β grows
        assert cos[0.01, nudging] >= cos[0.1, nudging] >= cos[0.5, nudging]


@pytest.mark.parametrize("nudging", NUDGING)
def test_train_batch_applies_the_eqprop_gradient(nudging):
    """One train_batch moves every parameter by lr × (mean EqProp estimate), with the documented sign."""
    cfg = EqPropConfig(sizes=(5, 7, 3), beta=0.1, nudging=nudging, learning_rates=(0.2, 0.1),
                       batch_size=4, epsilon=1e-5, seed=3)
    model = scaled_model(cfg, bias=0.2)
    rng = np.random.default_rng(0)
    signs = np.random.default_rng(cfg.seed)   # random_sign draws one sign per batch from the seed's generator
    for _ in range(3):
        X = rng.random((4, 5)).astype(np.float32)
        labels = rng.integers(0, 3, 4)
        sign = signs.choice((-1.0, 1.0)) if nudging == "random_sign" else 1.0
        gw = np.zeros(model.graph.nnz, np.float64)
        gb = np.zeros(model.graph.n, np.float64)
        loss = 0.0
        for x, label in zip(X, labels):
            y = np.eye(3, dtype=np.float32)[label]
            w, b = eqprop_gradient(model, x, y, sign * cfg.beta, "symmetric" if nudging == "symmetric" else "x")
            gw += w
            gb += b
            loss += free_loss(model, x, y)
        w0, b0 = model.graph.weights.copy(), model.network.bias.copy()
        stats = model.train_batch(X, labels)
        np.testing.assert_allclose(model.graph.weights - w0, model._opt.lr_w * gw / 4, rtol=1e-3, atol=1e-6)
        np.testing.assert_allclose(model.network.bias - b0, model._opt.lr_b * gb / 4, rtol=1e-3, atol=1e-6)
        assert stats.samples == 4
        assert stats.loss == pytest.approx(loss, rel=1e-6)
        assert stats.not_settled == 0
        assert stats.free_ops > 0 and stats.learning_ops > 0
        assert not model._opt.grad_w.any() and not model._opt.grad_b.any()


# ------------------------------------------------ saturated wrong outputs


def confidently_wrong(straight_through):
    """A model whose output 0 is clipped at 1 with ``u`` ≈ 3 (far past 1 + β) on a sample labelled 1."""
    cfg = EqPropConfig(sizes=(4, 6, 2), beta=0.3, learning_rates=(0.1, 0.1), epsilon=1e-5, seed=2,
                       straight_through=straight_through)
    model = scaled_model(cfg, bias=0.2)
    model.network.bias[model.output_ids[0]] = 3.0
    X = np.random.default_rng(0).random((1, 4)).astype(np.float32)
    free = model.free_phase(X[0])
    assert free.x[model.output_ids[0]] == 1.0 and free.state.u[model.output_ids[0]] > 2.5
    return model, X, np.array([1])


@pytest.mark.parametrize("straight_through", [False, True])
def test_only_straight_through_lets_a_saturated_wrong_output_learn(straight_through):
    """Without the flag the clipped output 0 does not move in either nudged phase, so nothing pushes its
    drive down; with it the nudge reaches it and one step lowers its bias by about lr × ½ (of the two ±β phases
    only the one pushing inward moves it; the hidden layer's response adds a little)."""
    model, X, labels = confidently_wrong(straight_through)
    out0 = model.output_ids[0]
    before = model.network.bias[out0]
    model.train_batch(X, labels)
    change = model.network.bias[out0] - before
    if straight_through:
        assert -0.1 * 0.7 < change < -0.1 * 0.4
    else:
        assert change == 0.0


@pytest.mark.parametrize("nudging", ["symmetric", "positive"])
def test_straight_through_gradient_matches_the_dense_reference(nudging):
    """Event-driven and dense (numpy sweeps) EqProp give the same straight-through gradient on saturated outputs."""
    from eventhorizon.dense_eqprop import DenseEqProp

    cfg = EqPropConfig(sizes=(6, 9, 4), beta=0.3, nudging=nudging, learning_rates=(0.1, 0.1), epsilon=1e-6,
                       seed=5, straight_through=True, batch_size=8)
    model = scaled_model(cfg, bias=0.1)
    rng = np.random.default_rng(1)
    model.network.bias[model.output_ids] = rng.uniform(-2.0, 3.0, 4)  # several outputs clipped, far past the bound
    X = rng.random((8, 6)).astype(np.float32)
    labels = rng.integers(0, 4, 8)
    weights, biases = model.dense_parameters()
    dense = DenseEqProp(weights, biases, activation=cfg.activation, beta=cfg.beta, nudging=nudging,
                        learning_rates=0.1, epsilon=1e-7, straight_through=True, dtype=np.float64)
    gW, gB, _ = dense.gradients(X, labels)
    model.train_batch(X, labels)
    event_W, event_B = model.dense_parameters()
    for l in range(2):
        step_W = (event_W[l] - weights[l]) / 0.1
        step_B = (event_B[l] - biases[l]) / 0.1
        np.testing.assert_allclose(step_W, gW[l], atol=2e-4)
        np.testing.assert_allclose(step_B, gB[l], atol=2e-4)
    assert np.abs(gB[1]).max() > 0.05  # the outputs did learn


# -------------------------------------------- nudged phase starts from x⁰


def test_tiny_beta_leaves_the_free_equilibrium_unchanged():
    model = EqPropModel(EqPropConfig(sizes=(8, 16, 3), epsilon=1e-4))
    rng = np.random.default_rng(0)
    for t in range(6):
        x = rng.random(8).astype(np.float32)
        free = model.free_phase(x)
        y = np.eye(3, dtype=np.float32)[t % 3]
        for beta in (1e-9, -1e-9):
            nudged = model.nudged_phase(free, y, beta)
            assert nudged.settled
            # a nudge far below ε starts no broadcast: the warm start *is* the free equilibrium
            assert nudged.stats.synaptic_ops == 0
            np.testing.assert_array_equal(nudged.x, free.x)
        # the free result is not modified by the nudged phase (settle copies the state)
        np.testing.assert_array_equal(model.free_phase(x).x, free.x)


def test_nudged_phase_is_much_cheaper_than_free_phase_on_wide_input():
    cfg = EqPropConfig(sizes=(200, 50, 10), beta=0.5, epsilon=1e-3, batch_size=8)
    model = EqPropModel(cfg)
    rng = np.random.default_rng(0)
    X = np.zeros((8, 200), np.float32)
    for row in X:
        on = rng.permutation(200)[:100]
        row[on] = rng.uniform(0.05, 1.0, 100)
    labels = rng.integers(0, 10, 8)
    free_ops = nudged_ops = 0
    for x, label in zip(X, labels):
        free = model.free_phase(x)
        assert free.stats.input_synaptic_ops == 100 * 50   # 100 nonzero inputs, 50 targets each
        for beta in (cfg.beta, -cfg.beta):
            nudged = model.nudged_phase(free, np.eye(10, dtype=np.float32)[label], beta)
            assert nudged.settled
            assert nudged.stats.input_synaptic_ops == 0   # inputs are not re-broadcast
            assert nudged.stats.synaptic_ops < free.stats.input_synaptic_ops
            nudged_ops += nudged.stats.synaptic_ops
        free_ops += free.stats.synaptic_ops
        np.testing.assert_array_equal(nudged.x[:200], x)
    per_phase = nudged_ops / 2 / free_ops
    print(f"\nwide input (200, 50, 10): nudged ops per phase / free ops = {per_phase:.3f}")
    assert per_phase < 0.4
    stats = model.train_batch(X, labels)    # the same accounting through train_batch
    assert stats.nudged_ops < stats.free_ops


# ------------------------------------------------------------- training


@pytest.mark.parametrize("nudging", NUDGING)
def test_training_separates_blobs(nudging):
    X, labels = blobs(seed=0)
    cfg = EqPropConfig(sizes=(8, 16, 3), beta=0.5, nudging=nudging, learning_rates=(0.1, 0.05),
                       batch_size=5, epsilon=1e-3, seed=0)
    model = scaled_model(cfg)
    before = model.evaluate(X, labels)
    stats = train(model, X, labels, epochs=5)
    after = model.evaluate(X, labels)
    print(f"\n{nudging}: loss {before['loss']:.3f} -> {after['loss']:.3f}, accuracy "
          f"{before['accuracy']:.2f} -> {after['accuracy']:.2f}")
    assert after["loss"] < 0.5 * before["loss"]
    assert after["accuracy"] > 0.9
    assert (model.predict(X) == labels).mean() == after["accuracy"]
    assert stats.samples == 5 * labels.size and stats.not_settled == 0
    # symmetric pairs stay exactly equal
    bits = free_block_bits(model)
    np.testing.assert_array_equal(bits, bits.T)


def test_zero_learning_rate_freezes_a_layer():
    X, labels = blobs(seed=1)
    cfg = EqPropConfig(sizes=(8, 16, 3), learning_rates=(0.0, 0.1), batch_size=10, momentum=0.5)
    model = scaled_model(cfg)
    W0, b0 = model.dense_parameters()
    train(model, X, labels, epochs=2)
    W1, b1 = model.dense_parameters()
    np.testing.assert_array_equal(W1[0], W0[0])     # input → hidden frozen
    np.testing.assert_array_equal(b1[0], b0[0])     # hidden biases use the rate of the weights feeding them
    assert not np.array_equal(W1[1], W0[1])
    assert not np.array_equal(b1[1], b0[1])
    bits = free_block_bits(model)
    np.testing.assert_array_equal(bits, bits.T)


@pytest.mark.parametrize("nudging", NUDGING)
def test_training_is_deterministic_for_a_seed(nudging):
    X, labels = blobs(seed=2, per_class=10)
    cfg = EqPropConfig(sizes=(8, 16, 3), nudging=nudging, batch_size=6, momentum=0.9, seed=5)
    one, two = EqPropModel(cfg), EqPropModel(cfg)
    np.testing.assert_array_equal(one.graph.weights, two.graph.weights)
    s1, s2 = train(one, X, labels, 2), train(two, X, labels, 2)
    np.testing.assert_array_equal(one.graph.weights, two.graph.weights)
    np.testing.assert_array_equal(one.network.bias, two.network.bias)
    assert (s1.loss, s1.free_ops, s1.nudged_ops, s1.learning_ops) == (s2.loss, s2.free_ops, s2.nudged_ops,
                                                                       s2.learning_ops)


@pytest.mark.parametrize("nudging", NUDGING)
def test_threads_split_the_batch_without_changing_the_update(nudging):
    """Chunks settle concurrently into their own accumulators: the same update up to float summation order."""
    X, labels = blobs(seed=4, per_class=10)
    base = dict(sizes=(8, 16, 3), nudging=nudging, batch_size=7, momentum=0.5, seed=2)
    serial, threaded, again = (EqPropModel(EqPropConfig(**base, threads=t)) for t in (1, 3, 3))
    s1, s3 = train(serial, X, labels, 2), train(threaded, X, labels, 2)
    train(again, X, labels, 2)
    np.testing.assert_allclose(threaded.graph.weights, serial.graph.weights, rtol=1e-4, atol=1e-6)
    np.testing.assert_allclose(threaded.network.bias, serial.network.bias, rtol=1e-4, atol=1e-6)
    np.testing.assert_array_equal(threaded.graph.weights, again.graph.weights)  # reproducible per thread count
    assert s3.samples == s1.samples == 2 * labels.size
    bits = free_block_bits(threaded)
    np.testing.assert_array_equal(bits, bits.T)


def test_random_sign_uses_the_seed():
    X, labels = blobs(seed=3, per_class=8)

    def trained(seed):
        cfg = EqPropConfig(sizes=(8, 16, 3), nudging="random_sign", batch_size=4, seed=seed)
        model = scaled_model(cfg, seed=0)          # the same initial weights whatever the seed
        train(model, X, labels, 1)
        return model.graph.weights.copy()

    signs = [np.random.default_rng(s).choice((-1.0, 1.0), size=6).tolist() for s in (0, 1)]
    assert signs[0] != signs[1]   # the two seeds draw different sign sequences
    np.testing.assert_array_equal(trained(0), trained(0))
    assert not np.array_equal(trained(0), trained(1))


# ------------------------------------------------------------ validation


@pytest.mark.parametrize("kwargs, message", [
    (dict(sizes=(5,)), r"^sizes must list at least two"),
    (dict(sizes=()), r"^sizes must list at least two"),
    (dict(sizes=(5, 0, 3)), r"^sizes must list at least two positive"),
    (dict(sizes=(5, 3), learning_rates=(0.1, 0.1)), r"^learning_rates needs one rate per weight layer \(1\), got 2"),
    (dict(sizes=(5, 4, 3), learning_rates=(0.1,)), r"^learning_rates needs one rate per weight layer \(2\), got 1"),
    (dict(sizes=(5, 3), learning_rates=(0.1,), beta=0.0), r"^beta must be > 0, got 0.0"),
    (dict(sizes=(5, 3), learning_rates=(0.1,), beta=-0.5), r"^beta must be > 0"),
    (dict(sizes=(5, 3), learning_rates=(0.1,), beta=float("nan")), r"^beta must be > 0"),
    (dict(sizes=(5, 3), learning_rates=(0.1,), nudging="negative"), r"^nudging must be one of .*'negative'"),
    (dict(sizes=(5, 3), learning_rates=(0.1,), momentum=1.0), r"^momentum must lie in \[0, 1\)"),
    (dict(sizes=(5, 3), learning_rates=(0.1,), momentum=-0.1), r"^momentum must lie in \[0, 1\)"),
    (dict(sizes=(5, 3), learning_rates=(0.1,), batch_size=0), r"^batch_size must be"),
    (dict(sizes=(5, 3), learning_rates=(0.1,), batch_size=2.5), r"^batch_size must be"),
    (dict(sizes=(5, 3), learning_rates=(0.1,), epsilon=0.0), r"^epsilon must be"),
    (dict(sizes=(5, 3), learning_rates=(0.1,), epsilon=float("inf")), r"^epsilon must be"),
    (dict(sizes=(5, 3), learning_rates=(0.1,), activation="sigmoidish"), r"^activation must be one of"),
    (dict(sizes=(5, 3), learning_rates=(0.1,), init_scale=0.0), r"^init_scale must be > 0"),
    (dict(sizes=(5, 3), learning_rates=(0.1,), threads=0), r"^threads must be an integer >= 1"),
    (dict(sizes=(5, 3), learning_rates=(0.1,), threads=1.5), r"^threads must be an integer >= 1"),
    (dict(sizes=(5, 3), learning_rates=(0.1,), straight_through=1), r"^straight_through must be true or false"),
    (dict(sizes=(5, 3), learning_rates=(0.1,), activation="tanh", straight_through=True),
     r"^straight_through needs a clipped activation .*'tanh'"),
])
def test_config_validation_names_the_field(kwargs, message):
    with pytest.raises(ValueError, match=message):
        EqPropConfig(**kwargs)


def test_config_normalises_and_round_trips():
    cfg = EqPropConfig(sizes=[np.int64(4), 3.0, 2], learning_rates=[np.float32(0.5), 1])
    assert cfg.sizes == (4, 3, 2) and all(type(s) is int for s in cfg.sizes)
    assert cfg.learning_rates == (0.5, 1.0) and all(type(r) is float for r in cfg.learning_rates)
    d = cfg.as_dict()
    assert d["sizes"] == [4, 3, 2] and d["learning_rates"] == [0.5, 1.0]
    assert EqPropConfig(**d) == cfg
    with pytest.raises(TypeError, match="EqPropConfig"):
        EqPropModel(d)


@pytest.fixture(scope="module")
def small_model():
    return EqPropModel(EqPropConfig(sizes=(4, 6, 3), learning_rates=(0.1, 0.1), batch_size=2))


@pytest.mark.parametrize("X, labels, message", [
    (np.zeros((2, 5)), [0, 1], r"^X must have shape \(samples, 4\), got \(2, 5\)"),
    (np.zeros(4), [0], r"^X must have shape \(samples, 4\), got \(4,\)"),
    (np.zeros((2, 4)), [0, 1, 2], r"^labels must be 2 integers, got int64\(3,\)"),
    (np.zeros((2, 4)), [[0, 1]], r"^labels must be 2 integers"),
    (np.zeros((2, 4)), [0.0, 1.0], r"^labels must be 2 integers, got float64"),
    (np.zeros((2, 4)), [True, False], r"^labels must be 2 integers, got bool"),
    (np.zeros((2, 4)), ["0", "1"], r"^labels must be 2 integers"),
    (np.zeros((2, 4)), [0, 3], r"^labels must lie in \[0, 3\), got \[0, 3\]"),
    (np.zeros((2, 4)), [-1, 2], r"^labels must lie in \[0, 3\), got \[-1, 2\]"),
])
def test_train_batch_input_errors_name_the_argument(small_model, X, labels, message):
    w0 = small_model.graph.weights.copy()
    with pytest.raises(ValueError, match=message):
        small_model.train_batch(X, labels)
    with pytest.raises(ValueError, match=message):
        small_model.evaluate(X, labels)
    np.testing.assert_array_equal(small_model.graph.weights, w0)


def test_empty_batch_is_refused_before_any_state_changes():
    cfg = EqPropConfig(sizes=(4, 6, 3), nudging="random_sign", seed=9)
    model, fresh = EqPropModel(cfg), EqPropModel(cfg)
    with pytest.raises(ValueError, match=r"^X must hold at least one sample"):
        model.train_batch(np.zeros((0, 4), np.float32), np.zeros(0, np.int64))
    assert model.evaluate(np.zeros((0, 4), np.float32), np.zeros(0, np.int64))["samples"] == 0
    X, labels = np.random.default_rng(0).random((3, 4)), np.array([0, 1, 2])
    model.train_batch(X, labels)   # the random-sign sequence was not advanced by the refused batch
    fresh.train_batch(X, labels)
    np.testing.assert_array_equal(model.graph.weights, fresh.graph.weights)


def test_model_refuses_non_symmetric_graph():
    cfg = EqPropConfig(sizes=(4, 6, 3))
    g = layered(cfg.sizes, 0, feedback=True)
    A = g.to_scipy().tolil()
    A[5, 11] = A[5, 11] + 0.25          # hidden 5 → output 11 no longer equals 11 → 5
    with pytest.raises(ValueError, match=r"not symmetric"):
        EqPropModel(cfg, graph=SynapseGraph.from_adjacency(A.tocsr()))
    without_feedback = layered(cfg.sizes, 0, feedback=False)
    with pytest.raises(ValueError, match=r"not symmetric"):
        EqPropModel(cfg, graph=without_feedback)


def test_model_refuses_non_layered_graph():
    cfg = EqPropConfig(sizes=(4, 6, 3))
    A = layered(cfg.sizes, 0, feedback=True).to_scipy().tolil()
    A[0, 12] = 0.3                      # input → output skips a layer
    with pytest.raises(ValueError, match=r"adjacent layers"):
        EqPropModel(cfg, graph=SynapseGraph.from_adjacency(A.tocsr()))
    A = layered(cfg.sizes, 0, feedback=True).to_scipy().tolil()
    A[4, 5] = A[5, 4] = 0.3            # lateral, symmetric hidden ↔ hidden pair
    with pytest.raises(ValueError, match=r"adjacent layers"):
        EqPropModel(cfg, graph=SynapseGraph.from_adjacency(A.tocsr()))
    with pytest.raises(ValueError, match=r"graph has 10 neurons but sizes \(4, 6, 3\) add up to 13"):
        EqPropModel(cfg, graph=random_sparse(10, 0.2, seed=0))


# ------------------------------------------------------ dense parameters


def test_dense_parameters_match_the_graph():
    cfg = EqPropConfig(sizes=(6, 5, 4, 3), learning_rates=(0.1, 0.1, 0.1))
    g = layered(cfg.sizes, 7, feedback=True, density=0.6)    # missing synapses are zeros
    bias = np.random.default_rng(0).normal(size=g.n).astype(np.float32)
    model = EqPropModel(cfg, graph=g, bias=bias)
    weights, biases = model.dense_parameters()
    assert [w.shape for w in weights] == [(6, 5), (5, 4), (4, 3)]
    assert [b.shape for b in biases] == [(5,), (4,), (3,)]
    assert all(w.dtype == np.float32 for w in weights + biases)
    offsets = np.cumsum([0, *cfg.sizes])
    expected = [np.zeros(w.shape, np.float32) for w in weights]
    pre = np.repeat(np.arange(g.n), g.fan_out())
    for i, j, w in zip(pre, g.indices, g.weights):
        li, lj = np.searchsorted(offsets, [i, j], side="right") - 1
        if lj == li + 1:
            expected[li][i - offsets[li], j - offsets[lj]] = w
        else:   # feedback synapse: the mirror of a forward one
            assert li == lj + 1
    for w, e in zip(weights, expected):
        np.testing.assert_array_equal(w, e)
    # block assembly gives back the adjacency (forward part and its transpose)
    full = np.zeros((g.n, g.n), np.float32)
    for l, w in enumerate(weights):
        full[offsets[l]:offsets[l + 1], offsets[l + 1]:offsets[l + 2]] = w
        if l > 0:
            full[offsets[l + 1]:offsets[l + 2], offsets[l]:offsets[l + 1]] = w.T
    np.testing.assert_array_equal(full, model.graph.to_scipy().toarray())
    for l, b in enumerate(biases, start=1):
        np.testing.assert_array_equal(b, bias[offsets[l]:offsets[l + 1]])
    biases[0][:] = 99.0          # copies: editing them does not touch the model
    weights[0][:] = 99.0
    assert not np.any(model.network.bias == 99.0) and not np.any(model.graph.weights == 99.0)


# ------------------------------------------- event vs plain numpy fixed point


@pytest.mark.parametrize("eps", [1e-2, 1e-3, 1e-5])
def test_free_phase_is_a_fixed_point(eps):
    cfg = EqPropConfig(sizes=(12, 20, 4), epsilon=eps, seed=4)
    g = layered(cfg.sizes, 4, feedback=True)
    bias = np.random.default_rng(1).normal(0.2, 0.3, g.n).astype(np.float32)
    model = EqPropModel(cfg, graph=g, bias=bias)
    A = model.graph.to_scipy().toarray().astype(np.float64)
    free = model.network.free_ids
    rng = np.random.default_rng(2)
    worst = 0.0
    for _ in range(10):
        x_in = rng.random(12).astype(np.float32)
        x_in[rng.random(12) < 0.4] = 0.0
        res = model.free_phase(x_in)
        assert res.settled
        x = res.x.astype(np.float64)
        np.testing.assert_array_equal(res.x[:12], x_in)           # inputs clamped
        residual = np.abs(np.clip(A.T @ x + bias, 0.0, 1.0) - x)[free]
        worst = max(worst, residual.max())
        assert residual.max() <= eps * (1 + 1e-3) + 1e-6
        assert np.all((res.x >= 0) & (res.x <= 1))
    print(f"\neps={eps}: worst fixed-point residual {worst:.3g}")
