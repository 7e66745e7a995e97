"""DenseReference against an independent float64 synchronous iteration.

The reference loop below is deliberately naive: dense float64 matrices built
from ``graph.to_scipy()``, the fixed point ``x = ρ(Aᵀx + b)`` iterated
synchronously with the inputs clamped, and multiply-adds counted from the
adjacency's nonzeros rather than from anything DenseReference exposes.
"""

import functools

import numpy as np
import pytest
import scipy.sparse as sp

from eventhorizon import dense as dense_mod
from eventhorizon.dense import DenseReference, DenseResult
from eventhorizon.network import RateNetwork
from topology.generators import input_recurrent, layered, random_sparse

# --------------------------------------------------------------------------
# Independent reference
# --------------------------------------------------------------------------


def _rho64(activation, u):
    if activation == "tanh":
        return np.tanh(u)
    if activation == "hard_sigmoid":
        return np.clip(u, 0.0, 1.0)
    if activation == "clipped_relu":
        return np.clip(u, 0.0, 6.0)
    raise AssertionError(activation)


def _split(net):
    """Dense float64 adjacency A[pre, post] and the input / free id lists."""
    a = net.graph.to_scipy().toarray().astype(np.float64)
    inputs = np.asarray(net.input_ids, dtype=np.int64)
    free = np.setdiff1d(np.arange(net.n), inputs)
    return a, inputs, free


def reference_iterate(net, activation, x_in, eps=None, steps=None, max_sweeps=10_000):
    """Plain float64 synchronous iteration; returns (x, sweeps, changes)."""
    a, inputs, free = _split(net)
    bias = np.asarray(net.bias, dtype=np.float64)
    x = np.zeros(net.n)
    x[inputs] = np.asarray(x_in, dtype=np.float64)
    changes = []
    sweeps = 0
    limit = steps if steps is not None else max_sweeps
    while sweeps < limit:
        u = a.T @ x + bias  # u[post] = sum_pre A[pre, post] x[pre]
        new = _rho64(activation, u[free])
        change = float(np.max(np.abs(new - x[free]))) if free.size else 0.0
        x[free] = new
        sweeps += 1
        changes.append(change)
        if eps is not None and change < eps:
            break
    return x, sweeps, changes


def ops_onto_free(net):
    """Synapses whose target is a free neuron, counted from the adjacency."""
    a, _, free = _split(net)
    return int(np.count_nonzero(a[:, free]))


def ops_block(net, pre, post):
    a, _, _ = _split(net)
    return int(np.count_nonzero(a[np.ix_(pre, post)]))


def assert_same_sweeps(got, want, changes, eps):
    """Sweep counts agree unless a float32-vs-float64 rounding sits right on ε."""
    if got == want:
        return
    near = [c for c in changes[max(0, min(got, want) - 2):max(got, want) + 1] if abs(c - eps) < 1e-5]
    assert near, f"sweeps differ ({got} vs {want}) and no change was within 1e-5 of eps={eps}: {changes}"
    assert abs(got - want) <= 1


# --------------------------------------------------------------------------
# Networks
# --------------------------------------------------------------------------


def _input_recurrent(seed, activation="tanh"):
    return RateNetwork(input_recurrent(6, 14, 0.5, seed), activation, inputs=range(6)), activation


def _random_sparse(seed, activation="tanh"):
    # inputs receive synapses here too (they must be ignored: clamped)
    return RateNetwork(random_sparse(40, 0.3, seed, weight_scale=0.3), activation, inputs=range(5)), activation


def _layered(seed, activation="tanh"):
    # feed-forward: converges exactly in depth sweeps, though not a contraction in norm
    return (RateNetwork(layered([6, 10, 8], seed), activation, inputs=range(6), check_contractive=False),
            activation)


def _biased(seed, activation="hard_sigmoid"):
    g = input_recurrent(5, 12, 0.4, seed)
    bias = np.random.default_rng(seed).uniform(-0.3, 0.6, g.n)
    return RateNetwork(g, activation, inputs=range(5), bias=bias), activation


def _sparse_csr(seed, activation="tanh"):
    return RateNetwork(random_sparse(300, 0.02, seed, weight_scale=0.3), activation, inputs=range(20)), activation


NETWORKS = {
    "input_recurrent": _input_recurrent,
    "input_recurrent_relu6": lambda s: _input_recurrent(s, "clipped_relu"),
    "random_sparse": _random_sparse,
    "random_sparse_hard_sigmoid": lambda s: _random_sparse(s, "hard_sigmoid"),
    "layered": _layered,
    "biased_hard_sigmoid": _biased,
    "sparse_csr": _sparse_csr,
}


def _inputs(net, seed, count=3):
    rng = np.random.default_rng(1000 + seed)
    x = rng.uniform(-1, 1, (count, net.n_inputs))
    x[rng.random(x.shape) < 0.3] = 0.0
    return x.astype(np.float32)


@functools.lru_cache(maxsize=None)
def _built(name, seed):
    net, activation = NETWORKS[name](seed)
    return net, activation, _inputs(net, seed)


@pytest.fixture(params=[(name, seed) for name in NETWORKS for seed in (0, 1)],
                ids=lambda p: f"{p[0]}-{p[1]}")
def case(request):
    return _built(*request.param)


# --------------------------------------------------------------------------
# settle / looped / hoisted vs the reference
# --------------------------------------------------------------------------

EPS = 1e-4


def test_settle_matches_reference(case):
    net, activation, samples = case
    ref = DenseReference(net)
    per_sweep = ops_onto_free(net)
    assert ref.ops_per_sweep == per_sweep
    assert ref.input_ops == 0
    for x_in in samples:
        res = ref.settle(x_in, EPS)
        assert isinstance(res, DenseResult)
        want_x, want_sweeps, changes = reference_iterate(net, activation, x_in, eps=EPS)
        assert res.converged
        assert res.x.dtype == np.float32 and res.x.shape == (net.n,)
        np.testing.assert_allclose(res.x, want_x, atol=1e-5, rtol=0)
        np.testing.assert_array_equal(res.x[net.input_ids], x_in)  # inputs stay clamped
        assert_same_sweeps(res.sweeps, want_sweeps, changes, EPS)
        assert res.synaptic_ops == res.sweeps * per_sweep


def test_hoisted_matches_reference(case):
    net, activation, samples = case
    _, inputs, free = _split(net)
    ref = DenseReference(net, hoist_inputs=True)
    in_ops, ff_ops = ops_block(net, inputs, free), ops_block(net, free, free)
    assert (ref.input_ops, ref.ops_per_sweep) == (in_ops, ff_ops)
    plain = DenseReference(net)
    for x_in in samples:
        res = ref.settle(x_in, EPS)
        want_x, want_sweeps, changes = reference_iterate(net, activation, x_in, eps=EPS)
        assert res.converged
        np.testing.assert_allclose(res.x, want_x, atol=1e-5, rtol=0)
        assert_same_sweeps(res.sweeps, want_sweeps, changes, EPS)
        assert res.synaptic_ops == in_ops + res.sweeps * ff_ops
        # same fixed point as the un-hoisted variant
        np.testing.assert_allclose(res.x, plain.settle(x_in, EPS).x, atol=1e-5, rtol=0)


@pytest.mark.parametrize("hoist", [False, True])
def test_looped_does_exactly_steps_sweeps(case, hoist):
    net, activation, samples = case
    ref = DenseReference(net, hoist_inputs=hoist)
    for x_in in samples[:2]:
        res = ref.looped(x_in, steps=30)
        want_x, want_sweeps, _ = reference_iterate(net, activation, x_in, steps=30)
        assert want_sweeps == 30
        assert res.sweeps == 30 and res.converged
        assert res.synaptic_ops == ref.input_ops + 30 * ref.ops_per_sweep
        if not hoist:
            assert res.synaptic_ops == 30 * ops_onto_free(net)
        np.testing.assert_allclose(res.x, want_x, atol=1e-5, rtol=0)


def test_looped_default_and_few_steps():
    net, activation = _input_recurrent(3)
    ref = DenseReference(net)
    x_in = _inputs(net, 3)[0]
    assert ref.looped(x_in).sweeps == 30
    for steps in (1, 2, 5):
        res = ref.looped(x_in, steps=steps)
        want_x, _, _ = reference_iterate(net, activation, x_in, steps=steps)
        assert res.sweeps == steps and res.synaptic_ops == steps * ref.ops_per_sweep
        np.testing.assert_allclose(res.x, want_x, atol=1e-6, rtol=0)
    res = ref.looped(x_in, steps=np.int64(4))
    assert res.sweeps == 4


def test_layered_feedforward_converges_in_depth_plus_one_sweeps():
    net, activation = _layered(0)
    ref = DenseReference(net)
    x_in = _inputs(net, 0)[0]
    # two layers after the input: exact after 2 sweeps, the 3rd sees no change
    res = ref.settle(x_in, 1e-7)
    assert res.sweeps == 3
    want_x, _, _ = reference_iterate(net, activation, x_in, steps=2)
    np.testing.assert_allclose(res.x, want_x, atol=1e-6, rtol=0)


def test_max_sweeps_caps_and_reports_not_converged():
    net, _ = _input_recurrent(0)
    ref = DenseReference(net)
    x_in = _inputs(net, 0)[0]
    res = ref.settle(x_in, 1e-12, max_sweeps=3)
    assert res.sweeps == 3 and not res.converged
    assert res.synaptic_ops == 3 * ref.ops_per_sweep


def test_warm_start_from_fixed_point_takes_one_sweep():
    net, _ = _random_sparse(0)
    x_in = _inputs(net, 0)[0]
    for hoist in (False, True):
        ref = DenseReference(net, hoist_inputs=hoist)
        first = ref.settle(x_in, 1e-6)
        state = first.x.copy()
        again = ref.settle(x_in, 1e-4, state_x=state)
        assert again.sweeps == 1 and again.converged
        np.testing.assert_array_equal(state, first.x)  # warm start not modified
        np.testing.assert_allclose(again.x, first.x, atol=1e-5)


# --------------------------------------------------------------------------
# settle_batch
# --------------------------------------------------------------------------


def test_settle_batch_agrees_with_per_sample_hoisted(case):
    net, _, samples = case
    ref = DenseReference(net, hoist_inputs=True)
    eps = 1e-6
    x_free, sweeps = ref.settle_batch(samples, eps)
    assert x_free.shape == (samples.shape[0], net.free_ids.shape[0])
    per_sample = [ref.settle(x_in, eps) for x_in in samples]
    assert sweeps >= max(r.sweeps for r in per_sample) - 1
    for row, res in zip(x_free, per_sample):
        np.testing.assert_allclose(row, res.x[net.free_ids], atol=1e-5, rtol=0)


def test_settle_batch_single_row_and_sweep_cap():
    net, _ = _input_recurrent(2)
    ref = DenseReference(net, hoist_inputs=True)
    x_in = _inputs(net, 2)[:1]
    x_free, sweeps = ref.settle_batch(x_in, 1e-4)
    res = ref.settle(x_in[0], 1e-4)
    assert sweeps == res.sweeps
    np.testing.assert_allclose(x_free[0], res.x[net.free_ids], atol=1e-6)
    _, capped = ref.settle_batch(x_in, 1e-12, max_sweeps=2)
    assert capped == 2


# --------------------------------------------------------------------------
# storage: dense ndarray vs CSR
# --------------------------------------------------------------------------


def test_storage_choice_follows_fill():
    dense_net, _ = _input_recurrent(0)
    sparse_net, _ = _sparse_csr(0)
    fill = sparse_net.graph.nnz / sparse_net.n ** 2
    assert fill < dense_mod.DENSE_STORAGE_MIN_FILL
    for hoist in (False, True):
        d = DenseReference(dense_net, hoist_inputs=hoist)
        s = DenseReference(sparse_net, hoist_inputs=hoist)
        assert isinstance(d._w, np.ndarray)
        assert sp.issparse(s._w) and s._w.format == "csr"
        if hoist:
            assert isinstance(d._w_in, np.ndarray)
            assert sp.issparse(s._w_in)


@pytest.mark.parametrize("make", [_input_recurrent, _sparse_csr, _random_sparse], ids=["dense", "csr", "mid"])
@pytest.mark.parametrize("hoist", [False, True])
def test_both_storage_paths_agree(monkeypatch, make, hoist):
    net, _ = make(4)
    samples = _inputs(net, 4, count=2)
    monkeypatch.setattr(dense_mod, "DENSE_STORAGE_MIN_FILL", 0.0)  # always ndarray
    as_dense = DenseReference(net, hoist_inputs=hoist)
    assert isinstance(as_dense._w, np.ndarray)
    monkeypatch.setattr(dense_mod, "DENSE_STORAGE_MIN_FILL", 2.0)  # always CSR
    as_csr = DenseReference(net, hoist_inputs=hoist)
    assert sp.issparse(as_csr._w)
    assert (as_dense.ops_per_sweep, as_dense.input_ops) == (as_csr.ops_per_sweep, as_csr.input_ops)
    for x_in in samples:
        a, b = as_dense.settle(x_in, EPS), as_csr.settle(x_in, EPS)
        assert a.sweeps == b.sweeps and a.synaptic_ops == b.synaptic_ops
        np.testing.assert_allclose(a.x, b.x, atol=1e-6, rtol=0)
        np.testing.assert_allclose(as_dense.looped(x_in, 7).x, as_csr.looped(x_in, 7).x, atol=1e-6, rtol=0)
    if hoist:
        np.testing.assert_allclose(as_dense.settle_batch(samples, 1e-6)[0], as_csr.settle_batch(samples, 1e-6)[0],
                                   atol=1e-6, rtol=0)


# --------------------------------------------------------------------------
# errors
# --------------------------------------------------------------------------


@pytest.fixture
def small():
    net, _ = _input_recurrent(0)
    return net, DenseReference(net), DenseReference(net, hoist_inputs=True)


@pytest.mark.parametrize("eps", [0, 0.0, -1e-3, float("nan"), float("inf"), "1e-3", None])
def test_settle_rejects_bad_eps(small, eps):
    net, ref, hoisted = small
    for r in (ref, hoisted):
        with pytest.raises(ValueError, match="eps"):
            r.settle(np.zeros(net.n_inputs), eps)


@pytest.mark.parametrize("steps", [0, -3, 1.5, 2.0, True, "30", None])
def test_looped_rejects_bad_steps(small, steps):
    net, ref, _ = small
    with pytest.raises(ValueError, match="steps"):
        ref.looped(np.zeros(net.n_inputs), steps=steps)


@pytest.mark.parametrize("bad", [lambda n: np.zeros(n + 1), lambda n: np.zeros(n - 1), lambda n: np.zeros((1, n)),
                                 lambda n: 0.5, lambda n: np.full(n, np.nan)])
def test_wrong_input_shape_or_values(small, bad):
    net, ref, hoisted = small
    for r in (ref, hoisted):
        with pytest.raises(ValueError, match="inputs"):
            r.settle(bad(net.n_inputs), 1e-3)
        with pytest.raises(ValueError, match="inputs"):
            r.looped(bad(net.n_inputs), 3)


def test_wrong_state_shape(small):
    net, ref, _ = small
    with pytest.raises(ValueError, match="state_x"):
        ref.settle(np.zeros(net.n_inputs), 1e-3, state_x=np.zeros(net.n + 1))


def test_settle_batch_needs_hoisting(small):
    net, ref, _ = small
    with pytest.raises(ValueError, match="hoist_inputs=True"):
        ref.settle_batch(np.zeros((2, net.n_inputs)), 1e-3)


@pytest.mark.parametrize("shape", [lambda n: (n,), lambda n: (2, n + 1), lambda n: (2, n, 1)])
def test_settle_batch_wrong_shape(small, shape):
    net, _, hoisted = small
    with pytest.raises(ValueError, match="inputs must have shape"):
        hoisted.settle_batch(np.zeros(shape(net.n_inputs)), 1e-3)


def test_not_a_network():
    with pytest.raises(TypeError, match="RateNetwork"):
        DenseReference(input_recurrent(2, 2, 0.5, 0))


def test_degenerate_networks():
    # every neuron clamped: nothing to sweep, one (empty) sweep to see no change
    net = RateNetwork(input_recurrent(3, 2, 0.5, 0), "tanh", inputs=range(5))
    for hoist in (False, True):
        res = DenseReference(net, hoist_inputs=hoist).settle(np.ones(5), 1e-3)
        assert (res.sweeps, res.synaptic_ops, res.converged) == (1, 0, True)
        np.testing.assert_array_equal(res.x, np.ones(5))
    # no inputs at all: zero bias keeps the zero fixed point
    net = RateNetwork(random_sparse(6, 0.5, 0, weight_scale=0.2), "tanh")
    for hoist in (False, True):
        ref = DenseReference(net, hoist_inputs=hoist)
        res = ref.settle([], 1e-3)
        assert res.sweeps == 1 and res.synaptic_ops == ops_onto_free(net) and ref.input_ops == 0
        np.testing.assert_array_equal(res.x, np.zeros(6))


@pytest.mark.parametrize("eps", [-1.0, float("nan"), 0.0])
def test_settle_batch_rejects_bad_eps(small, eps):
    net, _, hoisted = small
    with pytest.raises(ValueError, match="eps"):
        hoisted.settle_batch(np.zeros((2, net.n_inputs)), eps, max_sweeps=5)


def test_settle_batch_empty_batch(small):
    net, _, hoisted = small
    try:
        x_free, _ = hoisted.settle_batch(np.zeros((0, net.n_inputs)), 1e-3)
    except ValueError as exc:
        assert "zero-size array" not in str(exc)
    else:
        assert x_free.shape == (0, net.free_ids.shape[0])
