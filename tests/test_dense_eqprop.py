"""Dense, batched Equilibrium Propagation (``eventhorizon.dense_eqprop``).

Checked against independent references written here: the fixed-point equations (einsum),
a per-sample Gauss–Seidel loop, hand-counted multiply-adds, a per-synapse double loop for the
learning rule, and the true loss gradient (central finite differences and implicit
differentiation). Run with ``-s`` to see the measured cosine similarities.
"""

import numpy as np
import pytest

from eventhorizon.dense_eqprop import DenseEqProp, PhaseStats, init_params

ACTIVATIONS = ("hard_sigmoid", "tanh", "clipped_relu")


# ---------------------------------------------------------------- independent references
def rho(name, u):
    if name == "tanh":
        return np.tanh(u)
    return np.clip(u, 0.0, 1.0 if name == "hard_sigmoid" else 6.0)


def drives(W, b, states, current=None):
    """Drive onto every free layer from the states (einsum, no shared code with the model)."""
    L = len(W)
    u = []
    for l in range(1, L + 1):
        d = np.einsum("ni,ij->nj", states[l - 1].astype(np.float64), W[l - 1].astype(np.float64))
        if l < L:
            d += np.einsum("nj,ij->ni", states[l + 1].astype(np.float64), W[l].astype(np.float64))
        d += b[l - 1]
        if l == L and current is not None:
            d += current
        u.append(d)
    return u


def slow_settle(W, b, act, x0, start, current, eps, max_sweeps=1000):
    """One sample, one layer at a time (block Gauss–Seidel), float64; returns (states, sweeps)."""
    L = len(W)
    x = [np.asarray(s, dtype=np.float64).copy() for s in start]
    x[0] = np.asarray(x0, dtype=np.float64)
    for k in range(1, max_sweeps + 1):
        change = 0.0
        for l in range(1, L + 1):
            u = np.zeros(len(x[l]))
            for j in range(len(x[l])):
                s = sum(x[l - 1][i] * W[l - 1][i, j] for i in range(len(x[l - 1])))
                if l < L:
                    s += sum(x[l + 1][m] * W[l][j, m] for m in range(len(x[l + 1])))
                s += b[l - 1][j]
                if l == L and current is not None:
                    s += current[j]
                u[j] = s
            new = rho(act, u)
            change = max(change, float(np.max(np.abs(new - x[l]))))
            x[l] = new
        if change < eps:
            return x, k
    raise AssertionError("reference did not converge")


def implicit_gradient(W, b, X, labels, act, states):
    """∂Loss/∂θ at the free equilibrium by implicit differentiation (batch mean, float64).

    With the free neurons stacked as ``z``, ``z = ρ(J z + h)``; the adjoint ``λ = (I − J D)⁻¹ g``
    with ``D = diag ρ'(u)`` and ``g = ∂ℓ/∂z`` gives ``μ = D λ = ∂ℓ/∂u`` (explicit drive).
    """
    sizes = [X.shape[1]] + [w.shape[1] for w in W]
    L = len(W)
    offs = np.cumsum([0] + sizes[1:])
    N = offs[-1]
    J = np.zeros((N, N))
    for l in range(1, L):
        J[offs[l - 1] : offs[l], offs[l] : offs[l + 1]] = W[l]
        J[offs[l] : offs[l + 1], offs[l - 1] : offs[l]] = W[l].T
    gW = [np.zeros_like(w, dtype=np.float64) for w in W]
    gb = [np.zeros(n) for n in sizes[1:]]
    u_all = drives(W, b, states)
    for n in range(X.shape[0]):
        u = np.concatenate([u_l[n] for u_l in u_all])
        if act == "tanh":
            dr = 1.0 - np.tanh(u) ** 2
        else:
            cap = 1.0 if act == "hard_sigmoid" else 6.0
            dr = ((u > 0) & (u < cap)).astype(float)
        g = np.zeros(N)
        y = np.eye(sizes[-1])[labels[n]]
        g[offs[L - 1] :] = states[L][n] - y
        mu = dr * np.linalg.solve(np.eye(N) - J * dr[None, :], g)
        mus = [mu[offs[l] : offs[l + 1]] for l in range(L)]  # mus[l] belongs to free layer l + 1
        for l in range(L):
            gb[l] += mus[l]
            gW[l] += np.outer(states[l][n], mus[l])
            if l >= 1:
                gW[l] += np.outer(mus[l - 1], states[l + 1][n])
    B = X.shape[0]
    return [g / B for g in gW], [g / B for g in gb]


def free_loss(W, b, X, labels, act):
    model = DenseEqProp(W, b, activation=act, learning_rates=0, epsilon=1e-13, dtype=np.float64)
    states, _ = model.free(X)
    Y = np.eye(W[-1].shape[1])[labels]
    return 0.5 * np.mean(np.sum((Y - states[-1]) ** 2, axis=1))


def finite_difference_gradient(W, b, X, labels, act, h=1e-6):
    """Central differences of the free-phase loss on every parameter (free phase re-settled)."""
    W = [w.copy() for w in W]
    b = [v.copy() for v in b]
    gW = [np.zeros_like(w) for w in W]
    gb = [np.zeros_like(v) for v in b]
    for params, grads in ((W, gW), (b, gb)):
        for p, g in zip(params, grads):
            for idx in np.ndindex(p.shape):
                old = p[idx]
                p[idx] = old + h
                plus = free_loss(W, b, X, labels, act)
                p[idx] = old - h
                minus = free_loss(W, b, X, labels, act)
                p[idx] = old
                g[idx] = (plus - minus) / (2 * h)
    return gW, gb


def flat(gW, gb):
    return np.concatenate([np.ravel(g) for g in list(gW) + list(gb)]).astype(np.float64)


def cosine(a, b):
    return float(a @ b / (np.linalg.norm(a) * np.linalg.norm(b)))


def random_net(sizes, seed, sd=0.4, bias_mean=0.0, bias_sd=0.1, B=5):
    rng = np.random.default_rng(seed)
    W = [rng.normal(0, sd, (a, c)) for a, c in zip(sizes[:-1], sizes[1:])]
    b = [bias_mean + rng.normal(0, bias_sd, n) for n in sizes[1:]]
    X = rng.random((B, sizes[0]))
    labels = rng.integers(0, sizes[-1], B)
    return W, b, X, labels


def blobs(n, seed):
    """Three Gaussian blobs in [0, 1]^8 (fixed centres)."""
    rng = np.random.default_rng(seed)
    centres = np.random.default_rng(100).uniform(0.15, 0.85, (3, 8))
    labels = rng.integers(0, 3, n)
    X = np.clip(centres[labels] + rng.normal(0, 0.12, (n, 8)), 0, 1).astype(np.float32)
    return X, labels


# ---------------------------------------------------------------- fixed point
@pytest.mark.parametrize("act", ACTIVATIONS)
def test_free_and_nudged_states_are_fixed_points(act):
    sizes = (5, 7, 6, 3)
    W, b = init_params(sizes, seed=1)
    b = [v + 0.2 for v in b]
    eps = 1e-5
    model = DenseEqProp(W, b, activation=act, learning_rates=0.1, epsilon=eps)
    X = np.random.default_rng(2).random((6, 5), dtype=np.float32)
    s0, stats = model.free(X)
    assert np.array_equal(s0[0], X)
    assert stats.converged.all() and (stats.sweeps >= 2).all()
    # After the last sweep, layer l's residual comes only from the last change of layer l + 1 (< ε):
    # |ρ(u) − x_l| ≤ Σ_j |W[l]_ij| ε. The output layer is exact up to rounding.
    bounds = [eps * np.abs(W[l]).sum(axis=1).max() + 1e-6 for l in range(1, 3)] + [1e-6]
    for l, u in enumerate(drives(W, b, s0), start=1):
        assert np.max(np.abs(rho(act, u) - s0[l])) < bounds[l - 1], (act, l)
    Y = np.eye(3, dtype=np.float32)[[0, 1, 2, 0, 1, 2]]
    for beta in (0.5, -0.5):
        s1, st1 = model.nudged(X, s0, Y, beta)
        assert st1.converged.all()
        current = beta * (Y.astype(np.float64) - s0[-1])  # from the FREE equilibrium, held fixed
        for l, u in enumerate(drives(W, b, s1, current), start=1):
            assert np.max(np.abs(rho(act, u) - s1[l])) < bounds[l - 1], (act, beta, l)
        assert not np.allclose(s1[-1], s0[-1])
    assert np.array_equal(s0[0], X)  # free_states untouched by nudged()


@pytest.mark.parametrize("act", ("hard_sigmoid", "tanh"))
def test_states_and_sweeps_match_per_sample_loop(act):
    """The masked batched solver does per sample exactly what a one-sample loop does."""
    sizes = (5, 7, 6, 3)
    W, b = init_params(sizes, seed=3, dtype=np.float64)
    b = [v + 0.3 for v in b]
    eps = 1e-9
    model = DenseEqProp(W, b, activation=act, learning_rates=0.1, epsilon=eps, dtype=np.float64)
    X = np.random.default_rng(4).random((7, 5))
    X[2] = 0.0  # a sample that settles fast
    s0, stats = model.free(X)
    Y = np.eye(3)[[0, 1, 2, 0, 1, 2, 0]]
    s1, st1 = model.nudged(X, s0, Y, 0.3)
    for n in range(X.shape[0]):
        rest = [np.zeros(k) for k in sizes]
        ref0, k0 = slow_settle(W, b, act, X[n], rest, None, eps)
        ref1, k1 = slow_settle(W, b, act, X[n], [s[n] for s in s0], 0.3 * (Y[n] - s0[-1][n]), eps)
        assert stats.sweeps[n] == k0 and st1.sweeps[n] == k1, n
        for l in range(1, len(sizes)):
            np.testing.assert_allclose(s0[l][n], ref0[l], atol=1e-12)
            np.testing.assert_allclose(s1[l][n], ref1[l], atol=1e-12)
    assert len(set(stats.sweeps.tolist())) > 1  # the mask was exercised


# ---------------------------------------------------------------- multiply-adds
def test_mac_hand_count_tiny_network():
    """Sizes (3, 4, 2), B = 2, saturating weights so the sweeps are known by hand.

    Per active row and sweep: hidden feedback 2·4 + output forward 4·2 = 16; input drive 3·4 = 12
    per row once per phase (hoisted) or every sweep (unhoisted).
    """
    W = [np.full((3, 4), 5.0, np.float32), np.full((4, 2), 5.0, np.float32)]
    b = [np.zeros(4, np.float32), np.zeros(2, np.float32)]
    model = DenseEqProp(W, b, learning_rates=0.1)
    assert (model.macs_per_sweep, model.input_macs) == (16, 12)
    X = np.array([[0, 0, 0], [1, 1, 1]], np.float32)
    # sample 0: nothing moves in sweep 1 -> 1 sweep; sample 1: all saturate in sweep 1, sweep 2 confirms.
    s0, st = model.free(X)
    assert st.sweeps.tolist() == [1, 2] and st.sweeps.dtype == np.int64
    assert st.macs == 16 * 3 + 12 * 2 == 72
    assert st.macs_unhoisted == (16 + 12) * 3 == 84
    assert s0[1].tolist() == [[0] * 4, [1] * 4] and s0[2].tolist() == [[0, 0], [1, 1]]
    # nudged, y = [1, 0], β = 0.5: sample 0 gets current [0.5, 0]: output [0.5, 0] (sweep 1), then the
    # hidden layer saturates and the output follows (sweep 2), sweep 3 confirms -> 3 sweeps.
    # sample 1 gets [0, -0.5], which cannot unsaturate drive 20 -> 1 sweep.
    s1, st1 = model.nudged(X, s0, np.array([[1, 0], [1, 0]], np.float32), 0.5)
    assert st1.sweeps.tolist() == [3, 1]
    assert st1.macs == 16 * 4 + 12 * 2 == 88
    assert st1.macs_unhoisted == 28 * 4 == 112
    assert s1[2].tolist() == [[1, 1], [1, 1]]


def test_mac_count_single_layer_and_three_layers():
    rng = np.random.default_rng(0)
    # (3, 2): no recurrence; sweep 1 reaches ρ(drive), sweep 2 confirms; only the hoisted input drive.
    W, b = init_params((3, 2), seed=0)
    model = DenseEqProp(W, b, learning_rates=0.1, activation="tanh")
    X = rng.random((4, 3), dtype=np.float32) + 0.1
    s, st = model.free(X)
    assert model.macs_per_sweep == 0
    assert st.sweeps.tolist() == [2, 2, 2, 2]
    assert st.macs == 4 * 6 and st.macs_unhoisted == 8 * 6
    # (5, 7, 6, 3): layer 1: 6·7 (feedback); layer 2: 7·6 + 3·6; layer 3: 6·3; input 5·7.
    W, b = init_params((5, 7, 6, 3), seed=0)
    model = DenseEqProp(W, b, learning_rates=0.1)
    assert model.macs_per_sweep == 42 + 42 + 18 + 18 and model.input_macs == 35
    s, st = model.free(rng.random((4, 5), dtype=np.float32))
    total = int(st.sweeps.sum())
    assert st.macs == total * 120 + 4 * 35 and st.macs_unhoisted == total * 155


# ---------------------------------------------------------------- learning rule
@pytest.mark.parametrize("nudging", ("symmetric", "positive", "random_sign"))
def test_learning_rule_matches_double_loop(nudging):
    sizes = (4, 5, 3)
    W, b = init_params(sizes, seed=5)
    b = [v + 0.3 for v in b]
    model = DenseEqProp(W, b, learning_rates=0.1, beta=0.4, nudging=nudging, epsilon=1e-6, seed=11)
    rng = np.random.default_rng(6)
    X = rng.random((6, 4), dtype=np.float32)
    labels = rng.integers(0, 3, 6)
    gW, gb, info = model.gradients(X, labels)
    beta_a, beta_b = info["betas"]
    expected = {"symmetric": (0.4, -0.4), "positive": (0.4, 0.0)}.get(nudging)
    if expected is None:  # random_sign: ±β against the free state
        assert abs(beta_a) == 0.4 and beta_b == 0.0
    else:
        assert (beta_a, beta_b) == expected
    Y = np.eye(3, dtype=np.float32)[labels]
    s0, _ = model.free(X)
    a, _ = model.nudged(X, s0, Y, beta_a)
    bst = model.nudged(X, s0, Y, beta_b)[0] if nudging == "symmetric" else s0
    B = X.shape[0]
    for l in range(len(W)):
        ref = np.zeros(W[l].shape)
        for n in range(B):
            for i in range(sizes[l]):
                for j in range(sizes[l + 1]):
                    ref[i, j] += (
                        float(a[l][n, i]) * float(a[l + 1][n, j]) - float(bst[l][n, i]) * float(bst[l + 1][n, j])
                    ) / (beta_a - beta_b)
        np.testing.assert_allclose(gW[l], ref / B, rtol=1e-4, atol=1e-6)
        refb = np.zeros(sizes[l + 1])
        for n in range(B):
            for j in range(sizes[l + 1]):
                refb[j] += (float(a[l + 1][n, j]) - float(bst[l + 1][n, j])) / (beta_a - beta_b)
        np.testing.assert_allclose(gb[l], refb / B, rtol=1e-4, atol=1e-6)
    # the reported loss / correct are those of the free phase
    assert info["loss"] == pytest.approx(0.5 * np.mean(np.sum((Y - s0[-1]) ** 2, axis=1)), rel=1e-6)
    assert info["correct"] == int(np.sum(np.argmax(s0[-1], axis=1) == labels))
    assert len(info["nudged"]) == (2 if nudging == "symmetric" else 1)


# ---------------------------------------------------------------- gradient check
GRADCHECK_CASES = {
    # activation: (network kwargs, seed); hard-sigmoid needs every unit unsaturated (checked below)
    "tanh": (dict(sd=0.4, bias_mean=0.0, bias_sd=0.1), 0),
    "hard_sigmoid": (dict(sd=0.1, bias_mean=0.5, bias_sd=0.05), 0),
}


@pytest.mark.parametrize("act", sorted(GRADCHECK_CASES))
def test_eqprop_gradient_matches_true_gradient(act):
    kwargs, seed = GRADCHECK_CASES[act]
    W, b, X, labels = random_net((4, 6, 3), seed, **kwargs)
    ref_model = DenseEqProp(W, b, activation=act, learning_rates=0, epsilon=1e-13, dtype=np.float64)
    s0, _ = ref_model.free(X)
    if act == "hard_sigmoid":
        margin = min(np.minimum(u, 1 - u).min() for u in drives(W, b, s0))
        assert margin > 0.03, margin  # off the kinks, so the loss is differentiable here
    fdW, fdb = finite_difference_gradient(W, b, X, labels, act)
    imW, imb = implicit_gradient(W, b, X, labels, act, s0)
    true = -flat(fdW, fdb)  # EqProp estimates −∂Loss/∂θ
    np.testing.assert_allclose(true, -flat(imW, imb), rtol=1e-5, atol=1e-9)
    cos = {}
    for nudging, beta, dtype, eps in (
        ("symmetric", 1e-3, np.float64, 1e-13),
        ("positive", 1e-3, np.float64, 1e-13),
        ("symmetric", 1e-2, np.float32, 1e-6),
        ("positive", 1e-2, np.float32, 1e-6),
    ):
        model = DenseEqProp(
            W, b, activation=act, learning_rates=0, epsilon=eps, dtype=dtype, nudging=nudging, beta=beta
        )
        gW, gb, _ = model.gradients(X.astype(dtype), labels)
        cos[(nudging, beta, np.dtype(dtype).name)] = cosine(flat(gW, gb), true)
    print(f"\n[gradcheck {act}] cosine(EqProp, finite differences):")
    for key, c in cos.items():
        print(f"    {key[0]:>9s} beta={key[1]:g} {key[2]}: {c:.10f}  (1 - cos = {1 - c:.1e})")
    assert cos[("symmetric", 1e-3, "float64")] > 0.95
    assert cos[("symmetric", 1e-2, "float32")] > 0.95
    assert cos[("positive", 1e-3, "float64")] > 0.9
    assert cos[("positive", 1e-2, "float32")] > 0.9


@pytest.mark.parametrize("seed", (0, 1, 2))
def test_symmetric_nudging_beats_positive_at_large_beta(seed):
    """Symmetric nudging removes the O(β) bias. Checked with tanh at β = 0.5 (held on 30/30 seeds
    tried, 6–8 sweeps of β in [0.01, 1]); with hard-sigmoid at β ≥ 0.5 the nudged states hit the
    kinks and it held on only 6 of 8 unsaturated seeds, so hard-sigmoid is not tested here."""
    W, b, X, labels = random_net((4, 6, 3), seed, sd=0.4, bias_sd=0.1)
    fdW, fdb = finite_difference_gradient(W, b, X, labels, "tanh")
    true = -flat(fdW, fdb)
    cos = {}
    for nudging in ("symmetric", "positive"):
        model = DenseEqProp(
            W, b, activation="tanh", learning_rates=0, epsilon=1e-13, dtype=np.float64, nudging=nudging, beta=0.5
        )
        gW, gb, _ = model.gradients(X, labels)
        cos[nudging] = cosine(flat(gW, gb), true)
    print(f"\n[beta=0.5 tanh seed {seed}] cosine symmetric {cos['symmetric']:.4f}  positive {cos['positive']:.4f}")
    assert cos["symmetric"] > cos["positive"]


# ---------------------------------------------------------------- training
@pytest.mark.parametrize("nudging", ("symmetric", "random_sign"))
def test_training_on_blobs_reduces_loss_and_reaches_high_accuracy(nudging):
    """Hard-sigmoid (8, 16, 3) on three blobs, 5 epochs, explicitly chosen init seed (1).

    On a net this small about 2 in 8 init seeds leave an output unit clipped (always 0 or always 1)
    within 5 epochs, so that class is never learnt: a property of the hard sigmoid (the true gradient
    through a clipped unit is zero as well), not of the solver; hence the fixed seed.
    """
    X, y = blobs(300, 0)
    Xt, yt = blobs(300, 1)
    W, b = init_params((8, 16, 3), seed=1)
    model = DenseEqProp(
        W, b, learning_rates=[0.02, 0.01], momentum=0.9, beta=0.5, nudging=nudging, epsilon=1e-4, seed=1
    )
    before = model.evaluate(Xt, yt)
    for _ in range(5):
        for i in range(0, 300, 10):
            info = model.train_batch(X[i : i + 10], y[i : i + 10])
    after = model.evaluate(Xt, yt)
    print(f"\n[blobs {nudging}] loss {before['loss']:.3f} -> {after['loss']:.3f}, "
          f"accuracy {before['accuracy']:.2f} -> {after['accuracy']:.2f}")
    assert after["loss"] < 0.5 * before["loss"]
    assert after["accuracy"] >= 0.9
    assert info["batch_size"] == 10 and info["free_sweeps"].shape == (10,)
    phases = 2 if nudging == "symmetric" else 1
    assert info["nudged_sweeps"].shape == (phases, 10)
    assert info["free_macs"] == int(info["free_sweeps"].sum()) * model.macs_per_sweep + 10 * model.input_macs
    nudged_total = int(info["nudged_sweeps"].sum())
    assert info["nudged_macs"] == nudged_total * model.macs_per_sweep + phases * 10 * model.input_macs
    assert info["nudged_macs_unhoisted"] == int(info["nudged_sweeps"].sum()) * (model.macs_per_sweep + model.input_macs)
    assert min(info["free_seconds"], info["nudged_seconds"], info["update_seconds"]) >= 0


def test_momentum_update_rule():
    """Two steps: θ1 = θ0 + lr·g0, θ2 = θ1 + lr·(m·g0 + g1), gradients from an independent model."""
    W, b = init_params((4, 5, 3), seed=7, dtype=np.float64)
    rng = np.random.default_rng(8)
    X = rng.random((6, 4))
    labels = rng.integers(0, 3, 6)
    lr, m = [0.3, 0.2], 0.9
    kw = dict(epsilon=1e-12, dtype=np.float64, beta=0.2)
    model = DenseEqProp(W, b, learning_rates=lr, momentum=m, **kw)
    g0W, g0b, _ = DenseEqProp(W, b, learning_rates=0, **kw).gradients(X, labels)
    model.train_batch(X, labels)
    W1, b1 = [w.copy() for w in model.weights], [v.copy() for v in model.biases]
    for l in range(2):
        np.testing.assert_allclose(W1[l], W[l] + lr[l] * g0W[l], rtol=0, atol=1e-12)
        np.testing.assert_allclose(b1[l], b[l] + lr[l] * g0b[l], rtol=0, atol=1e-12)
    g1W, g1b, _ = DenseEqProp(W1, b1, learning_rates=0, **kw).gradients(X, labels)
    model.train_batch(X, labels)
    for l in range(2):
        np.testing.assert_allclose(model.weights[l], W1[l] + lr[l] * (m * g0W[l] + g1W[l]), rtol=0, atol=1e-12)
        np.testing.assert_allclose(model.biases[l], b1[l] + lr[l] * (m * g0b[l] + g1b[l]), rtol=0, atol=1e-12)


@pytest.mark.parametrize("frozen", (0, 1))
def test_per_layer_learning_rates(frozen):
    W, b = init_params((8, 16, 3), seed=0)
    lr = [0.05, 0.05]
    lr[frozen] = 0.0
    model = DenseEqProp(W, b, learning_rates=lr, momentum=0.5, beta=0.5)
    X, y = blobs(40, 0)
    for i in range(0, 40, 10):
        model.train_batch(X[i : i + 10], y[i : i + 10])
    other = 1 - frozen
    assert np.array_equal(model.weights[frozen], W[frozen]) and np.array_equal(model.biases[frozen], b[frozen])
    assert not np.array_equal(model.weights[other], W[other])
    assert not np.array_equal(model.biases[other], b[other])


def test_random_sign_is_deterministic_for_a_seed():
    X, y = blobs(200, 3)
    W, b = init_params((8, 16, 3), seed=1)

    def run(seed):
        model = DenseEqProp(W, b, learning_rates=0.05, beta=0.5, nudging="random_sign", seed=seed)
        signs = [np.sign(model.gradients(X[i : i + 10], y[i : i + 10])[2]["betas"][0]) for i in range(0, 200, 10)]
        infos = [model.train_batch(X[i : i + 10], y[i : i + 10]) for i in range(0, 200, 10)]
        return signs, infos, model

    s1, i1, m1 = run(3)
    s2, i2, m2 = run(3)
    s3, _, _ = run(4)
    assert s1 == s2 and s1 != s3 and {-1.0, 1.0} <= set(s1)
    assert [i["betas"] for i in i1] == [i["betas"] for i in i2]
    for l in range(2):
        assert np.array_equal(m1.weights[l], m2.weights[l]) and np.array_equal(m1.biases[l], m2.biases[l])


# ---------------------------------------------------------------- API details
def test_parameters_are_copied_and_read_only():
    W, b = init_params((3, 4, 2), seed=0)
    model = DenseEqProp(W, b, learning_rates=0.1)
    W[0][0, 0] = 99.0
    b[1][0] = 99.0
    assert model.weights[0][0, 0] != 99.0 and model.biases[1][0] != 99.0
    with pytest.raises(ValueError):
        model.weights[0][0, 0] = 1.0
    assert all(w.dtype == np.float32 for w in model.weights + model.biases)
    assert model.sizes == (3, 4, 2) and model.n_layers == 2


def test_predict_and_evaluate_agree_with_free_phase():
    W, b = init_params((8, 16, 3), seed=2)
    model = DenseEqProp(W, b, learning_rates=0.1, epsilon=1e-5)
    X, y = blobs(50, 5)
    s0, st = model.free(X)
    pred = model.predict(X)
    assert pred.dtype == np.int64 and np.array_equal(pred, np.argmax(s0[-1], axis=1))
    r_all = model.evaluate(X, y, batch_size=1000)
    r_small = model.evaluate(X, y, batch_size=7)
    assert r_all["accuracy"] == pytest.approx(np.mean(pred == y))
    assert r_all["loss"] == pytest.approx(0.5 * np.mean(np.sum((np.eye(3)[y] - s0[-1]) ** 2, axis=1)), rel=1e-6)
    assert r_all["macs"] == st.macs and r_all["macs_unhoisted"] == st.macs_unhoisted
    assert r_small["accuracy"] == r_all["accuracy"] and r_small["loss"] == pytest.approx(r_all["loss"], rel=1e-5)


def test_nonconvergence_policies():
    W, b = init_params((5, 7, 6, 3), seed=1)
    X = np.random.default_rng(0).random((4, 5), dtype=np.float32)
    with pytest.raises(RuntimeError, match=r"4 of 4 samples did not converge within max_sweeps=2"):
        DenseEqProp(W, b, learning_rates=0.1, max_sweeps=2, epsilon=1e-7).free(X)
    with pytest.warns(RuntimeWarning, match="did not converge"):
        s, st = DenseEqProp(W, b, learning_rates=0.1, max_sweeps=2, epsilon=1e-7, on_nonconvergence="warn").free(X)
    assert not st.converged.any() and st.sweeps.tolist() == [2] * 4
    s, st = DenseEqProp(W, b, learning_rates=0.1, max_sweeps=2, epsilon=1e-7, on_nonconvergence="ignore").free(X)
    assert isinstance(st, PhaseStats) and not st.converged.any()


def _good():
    W, b = init_params((3, 4, 2), seed=0)
    return W, b


@pytest.mark.parametrize(
    "mutate, exc, match",
    [
        (lambda W, b, kw: W.__setitem__(1, np.zeros((5, 2), np.float32)), ValueError, r"weights\[1\] has shape"),
        (lambda W, b, kw: W.__setitem__(0, np.zeros((3, 4), np.int32)), TypeError, r"weights\[0\] must be a real"),
        (lambda W, b, kw: W[1].__setitem__((0, 0), np.nan), ValueError, r"weights\[1\] contains non-finite"),
        (lambda W, b, kw: W.__setitem__(0, np.zeros(4, np.float32)), ValueError, r"weights\[0\] must be a non-empty"),
        (lambda W, b, kw: b.__setitem__(0, np.zeros(3, np.float32)), ValueError, r"biases\[0\] must have shape \(4,\)"),
        (lambda W, b, kw: b.pop(), ValueError, r"biases must hold 2 vectors"),
        (lambda W, b, kw: b[1].__setitem__(0, np.inf), ValueError, r"biases\[1\] contains non-finite"),
        (lambda W, b, kw: kw.update(learning_rates=[0.1]), ValueError, r"learning_rates must be a number or hold 2"),
        (lambda W, b, kw: kw.update(learning_rates=[0.1, -1.0]), ValueError, r"learning_rates\[1\]"),
        (lambda W, b, kw: kw.update(beta=0.0), ValueError, r"beta must be a finite number > 0"),
        (lambda W, b, kw: kw.update(nudging="both"), ValueError, r"nudging must be one of"),
        (lambda W, b, kw: kw.update(activation="relu"), ValueError, r"activation must be one of"),
        (lambda W, b, kw: kw.update(momentum=1.0), ValueError, r"momentum must be"),
        (lambda W, b, kw: kw.update(epsilon=0), ValueError, r"eps must be"),
        (lambda W, b, kw: kw.update(max_sweeps=0), ValueError, r"max_sweeps must be"),
        (lambda W, b, kw: kw.update(dtype=np.float16), ValueError, r"dtype must be"),
        (lambda W, b, kw: kw.update(on_nonconvergence="retry"), ValueError, r"on_nonconvergence must be"),
        (lambda W, b, kw: kw.update(activation="tanh", straight_through=True), ValueError,
         r"straight_through needs a clipped activation"),
    ],
)
def test_constructor_errors(mutate, exc, match):
    W, b = _good()
    kw = dict(learning_rates=[0.1, 0.1])
    mutate(W, b, kw)
    with pytest.raises(exc, match=match):
        DenseEqProp(W, b, **kw)


def test_call_errors():
    W, b = _good()
    model = DenseEqProp(W, b, learning_rates=0.1)
    X = np.zeros((2, 3), np.float32)
    with pytest.raises(ValueError, match=r"X must have shape \(B, 3\)"):
        model.free(np.zeros((2, 4), np.float32))
    with pytest.raises(ValueError, match="X contains non-finite"):
        model.free(np.array([[0, np.nan, 0]], np.float32))
    with pytest.raises(ValueError, match=r"labels must lie in \[0, 2\), got 2"):
        model.gradients(X, np.array([0, 2]))
    with pytest.raises(ValueError, match=r"labels must lie in \[0, 2\), got -1"):
        model.train_batch(X, np.array([-1, 0]))
    with pytest.raises(ValueError, match=r"labels must have shape \(2,\)"):
        model.gradients(X, np.array([0]))
    with pytest.raises(TypeError, match="labels must be integers"):
        model.evaluate(X, np.array([0.0, 1.0]))
    s0, _ = model.free(X)
    with pytest.raises(ValueError, match=r"Y_onehot must have shape \(2, 2\)"):
        model.nudged(X, s0, np.zeros((2, 3), np.float32), 0.5)
    with pytest.raises(ValueError, match="free_states must hold 3 arrays"):
        model.nudged(X, s0[:2], np.zeros((2, 2), np.float32), 0.5)
    with pytest.raises(ValueError, match=r"free_states\[0\] must equal X"):
        model.nudged(X + 1, s0, np.zeros((2, 2), np.float32), 0.5)
    with pytest.raises(ValueError, match="beta must be a finite number"):
        model.nudged(X, s0, np.zeros((2, 2), np.float32), np.inf)
    with pytest.raises(ValueError, match="batch_size must be"):
        model.evaluate(X, np.array([0, 1]), batch_size=0)
