"""Tests for :mod:`eventhorizon.learning` against slow, obviously-correct numpy references.

:func:`ref_accumulate` is a float64 double loop over synapses of the
definition ``g_ij = (a_i a_j − b_i b_j) / (β_a − β_b)`` (biases
``(a_i − b_i) / (β_a − β_b)`` for free neurons only); :func:`ref_sgd` is the
documented momentum update written out. The kernels work in float32 (and
may fuse multiply-adds), so values are compared to a tolerance derived from
the magnitudes involved; counts and symmetry are compared exactly.
"""

import numpy as np
import pytest
from hypothesis import HealthCheck, given, note, settings
from hypothesis import strategies as st

from eventhorizon.learning import accumulate_gradient, sgd_step
from topology.generators import random_sparse
from topology.store import SynapseGraph

SETTINGS = settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])
F32_EPS = float(np.finfo(np.float32).eps)


# ---------------------------------------------------------------- references


def ref_accumulate(graph, a, b, beta_a, beta_b, free, grad_w, grad_b):
    """Float64 double loop: returns (new grad_w, new grad_b, ops, per-synapse error scale)."""
    gw, gb = grad_w.astype(np.float64), grad_b.astype(np.float64)
    scale_w = np.abs(gw).copy()
    a64, b64 = a.astype(np.float64), b.astype(np.float64)
    inv = 1.0 / (float(beta_a) - float(beta_b))
    ops = 0
    for i in range(graph.n):
        if free[i] != 0:
            gb[i] += (a64[i] - b64[i]) * inv
        row = range(graph.indptr[i], graph.indptr[i + 1])
        if a64[i] != 0 or b64[i] != 0:
            ops += len(row)
        for k in row:
            j = graph.indices[k]
            gw[k] += (a64[i] * a64[j] - b64[i] * b64[j]) * inv
            scale_w[k] += (abs(a64[i] * a64[j]) + abs(b64[i] * b64[j])) * abs(inv)
    return gw, gb, ops, scale_w


def ref_sgd(weights, velocity, grad_w, lr_w, bias, velocity_b, grad_b, lr_b, momentum, batch):
    """The documented update in float64: v ← m·v + g/batch; θ ← θ + lr·v."""
    out = []
    for theta, v, g, lr in ((weights, velocity, grad_w, lr_w), (bias, velocity_b, grad_b, lr_b)):
        v_new = momentum * v.astype(np.float64) + g.astype(np.float64) / batch
        out += [theta.astype(np.float64) + lr.astype(np.float64) * v_new, v_new]
    return out  # weights, velocity, bias, velocity_b


def random_state(rng, n, zero_fraction):
    """float32 outputs in [-1, 1] (hard-sigmoid states live in [0, 1]; signs test the algebra) with exact zeros."""
    x = rng.uniform(-1.0, 1.0, n).astype(np.float32)
    x[rng.random(n) < zero_fraction] = 0.0
    return x


def random_graph(rng, n, kind):
    if kind == "random_sparse":
        return random_sparse(n, float(rng.uniform(0.05, 0.8)), seed=int(rng.integers(2**31)))
    m = int(rng.integers(0, 3 * n + 1))  # from_edges sums duplicate edges; self loops allowed
    return SynapseGraph.from_edges(n, rng.integers(0, n, m), rng.integers(0, n, m), rng.normal(size=m))


def symmetrize(graph):
    """A graph with both i→j and j→i for every synapse of ``graph`` (self loops kept once)."""
    A = graph.to_scipy()
    return SynapseGraph.from_adjacency((A + A.T).tocsr())


def assert_close_to_ref(graph, a, b, beta_a, beta_b, free, gw0, gb0):
    gw, gb = gw0.copy(), gb0.copy()
    ops = accumulate_gradient(graph, a, b, beta_a, beta_b, free, gw, gb)
    ref_w, ref_b, ref_ops, err_w = ref_accumulate(graph, a, b, beta_a, beta_b, free, gw0, gb0)
    assert isinstance(ops, int)
    assert ops == ref_ops
    # float32 products, one subtraction, a float32 scale and the += : a few ulps of the magnitudes
    np.testing.assert_array_less(np.abs(gw - ref_w), 8 * F32_EPS * err_w + 1e-30)
    inv = abs(1.0 / (beta_a - beta_b))
    err_b = np.abs(gb0) + (np.abs(a) + np.abs(b)) * inv
    np.testing.assert_array_less(np.abs(gb - ref_b), 8 * F32_EPS * err_b + 1e-30)
    # clamped neurons' bias accumulators are never touched
    np.testing.assert_array_equal(gb[free == 0], gb0[free == 0])
    return gw, gb, ops


# ------------------------------------------------------ accumulate_gradient


def test_docstring_example_values():
    g = SynapseGraph.from_dense(np.array([[0, 1], [1, 0]], np.float32))
    gw, gb = np.zeros(2, np.float32), np.zeros(2, np.float32)
    a, b = np.array([1, .5], np.float32), np.array([1, .25], np.float32)
    free = np.array([0, 1], np.float32)
    assert accumulate_gradient(g, a, b, 0.5, 0.0, free, gw, gb) == 2
    assert gw.tolist() == [0.5, 0.5]        # (1·0.5 − 1·0.25) / 0.5
    assert gb.tolist() == [0.0, 0.5]        # neuron 0 is clamped: no bias gradient


def test_small_graph_by_hand_with_negative_beta_and_accumulation():
    # 0 → 1, 1 → 2, 2 → 0, 0 → 2
    g = SynapseGraph.from_edges(3, [0, 1, 2, 0], [1, 2, 0, 2], [1.0, 1.0, 1.0, 1.0])
    a = np.array([0.5, 1.0, 0.0], np.float32)
    b = np.array([0.25, 0.0, 0.5], np.float32)
    free = np.ones(3, np.float32)
    gw, gb = np.full(4, 1.0, np.float32), np.full(3, -1.0, np.float32)
    ops = accumulate_gradient(g, a, b, -0.25, 0.25, free, gw, gb)  # scale = 1 / (−0.5) = −2
    assert ops == 4
    # CSR order: (0,1), (0,2), (1,2), (2,0)
    expected = 1.0 + np.array([0.5 * 1.0 - 0.25 * 0.0, 0.5 * 0.0 - 0.25 * 0.5,
                               1.0 * 0.0 - 0.0 * 0.5, 0.0 * 0.5 - 0.5 * 0.25]) * -2.0
    np.testing.assert_allclose(gw, expected, rtol=1e-6)
    np.testing.assert_allclose(gb, -1.0 + (a - b) * -2.0, rtol=1e-6)


def test_silent_rows_are_skipped_and_not_counted():
    # neuron 0 silent in both phases: its row (2 synapses) is skipped, its bias still gets 0
    g = SynapseGraph.from_edges(3, [0, 0, 1, 2], [1, 2, 0, 0], [1.0] * 4)
    a = np.array([0.0, 0.5, 0.0], np.float32)
    b = np.array([0.0, 0.0, 0.25], np.float32)   # neuron 2 silent in a only: not skipped
    gw, gb = np.zeros(4, np.float32), np.zeros(3, np.float32)
    ops = accumulate_gradient(g, a, b, 1.0, 0.0, np.ones(3, np.float32), gw, gb)
    assert ops == 2
    assert gw[:2].tolist() == [0.0, 0.0]


def test_negative_zero_counts_as_silent():
    g = SynapseGraph.from_edges(2, [0, 1], [1, 0], [1.0, 1.0])
    a = np.array([-0.0, 0.5], np.float32)
    b = np.array([0.0, 0.5], np.float32)
    assert accumulate_gradient(g, a, b, 1.0, 0.0, np.ones(2, np.float32),
                               np.zeros(2, np.float32), np.zeros(2, np.float32)) == 1


def test_empty_graph_and_all_silent():
    g = SynapseGraph.from_edges(4, [], [], [])
    gw, gb = np.zeros(0, np.float32), np.zeros(4, np.float32)
    x = np.array([0, 1, 0, 0.5], np.float32)
    assert accumulate_gradient(g, x, np.zeros(4, np.float32), 0.5, 0.0, np.ones(4, np.float32), gw, gb) == 0
    np.testing.assert_allclose(gb, x / 0.5)
    g = random_sparse(20, 0.3, seed=1)
    z = np.zeros(20, np.float32)
    gw = np.zeros(g.nnz, np.float32)
    assert accumulate_gradient(g, z, z.copy(), 0.5, -0.5, np.ones(20, np.float32), gw, z.copy()) == 0
    assert not gw.any()


@SETTINGS
@given(seed=st.integers(0, 2**32 - 1), n=st.integers(1, 40),
       kind=st.sampled_from(["random_sparse", "from_edges"]),
       zero_fraction=st.sampled_from([0.0, 0.3, 0.7, 0.95, 1.0]),
       beta_a=st.floats(-2.0, 2.0, allow_nan=False), beta_gap=st.floats(1e-3, 2.0),
       gap_sign=st.sampled_from([-1.0, 1.0]))
def test_accumulate_matches_reference(seed, n, kind, zero_fraction, beta_a, beta_gap, gap_sign):
    rng = np.random.default_rng(seed)
    graph = random_graph(rng, n, kind)
    a = random_state(rng, n, zero_fraction)
    b = random_state(rng, n, zero_fraction)
    # many rows silent in one phase only, some in both
    both = rng.random(n) < 0.3
    b[both & (a == 0)] = 0.0
    free = (rng.random(n) < 0.7).astype(np.float32)
    beta_b = beta_a + gap_sign * beta_gap
    gw0 = rng.normal(size=graph.nnz).astype(np.float32)
    gb0 = rng.normal(size=n).astype(np.float32)
    note(f"nnz={graph.nnz} silent rows={int(np.sum((a == 0) & (b == 0)))} beta=({beta_a}, {beta_b})")
    assert_close_to_ref(graph, a, b, beta_a, beta_b, free, gw0, gb0)


@SETTINGS
@given(seed=st.integers(0, 2**32 - 1), n=st.integers(2, 40),
       zero_fraction=st.sampled_from([0.0, 0.5, 0.9]), samples=st.integers(1, 4),
       betas=st.sampled_from([(0.5, -0.5), (0.1, 0.0), (-0.3, 0.0), (1.0, 0.25)]))
def test_symmetric_pairs_get_bit_identical_gradients(seed, n, zero_fraction, samples, betas):
    rng = np.random.default_rng(seed)
    graph = symmetrize(random_sparse(n, float(rng.uniform(0.1, 0.9)), seed=seed))
    A = graph.to_scipy().tocsr()
    pre = np.repeat(np.arange(n), graph.fan_out())
    position = {(int(i), int(j)): k for k, (i, j) in enumerate(zip(pre, graph.indices))}
    mirror = np.array([position[(int(j), int(i))] for i, j in zip(pre, graph.indices)], dtype=np.int64)
    assert (A != A.T).nnz == 0
    gw = np.zeros(graph.nnz, np.float32)
    gb = np.zeros(n, np.float32)
    free = np.ones(n, np.float32)
    for _ in range(samples):  # accumulated over several samples, in the same order for both synapses
        a = random_state(rng, n, zero_fraction)
        b = random_state(rng, n, zero_fraction)
        accumulate_gradient(graph, a, b, *betas, free, gw, gb)
    np.testing.assert_array_equal(gw.view(np.uint32), gw[mirror].view(np.uint32))


def test_op_count_equals_fan_out_of_active_rows():
    rng = np.random.default_rng(7)
    graph = random_sparse(300, 0.05, seed=7)
    a = random_state(rng, 300, 0.8)
    b = a.copy()
    b[rng.random(300) < 0.1] = 0.25   # a few neurons changed between the phases
    active = (a != 0) | (b != 0)
    gw, gb = np.zeros(graph.nnz, np.float32), np.zeros(300, np.float32)
    ops = accumulate_gradient(graph, a, b, 0.2, 0.0, np.ones(300, np.float32), gw, gb)
    assert ops == int(graph.fan_out()[active].sum())
    assert 0 < ops < graph.nnz


@pytest.mark.parametrize("arg, bad, message", [
    ("a", np.zeros(5, np.float64), r"^a must be a float32 array of shape \(5,\), got float64\(5,\)"),
    ("a", [0.0] * 5, r"^a must be a float32 array of shape \(5,\), got list"),
    ("b", np.zeros(4, np.float32), r"^b must be a float32 array of shape \(5,\), got float32\(4,\)"),
    ("b", np.zeros((5, 1), np.float32), r"^b must .*got float32\(5, 1\)"),
    ("free", np.ones(5, bool), r"^free must be a float32 array"),
    ("grad_w", np.zeros(3, np.float32), r"^grad_w must be a float32 array of shape \(4,\)"),
    ("grad_w", np.zeros(4, np.float64), r"^grad_w must be a float32 array"),
    ("grad_b", np.zeros(6, np.float32), r"^grad_b must be a float32 array of shape \(5,\)"),
    ("grad_b", None, r"^grad_b must be a float32 array .*got NoneType"),
])
def test_accumulate_argument_errors_name_the_argument(arg, bad, message):
    g = SynapseGraph.from_edges(5, [0, 1, 2, 3], [1, 2, 3, 4], [1.0] * 4)
    args = dict(a=np.ones(5, np.float32), b=np.zeros(5, np.float32), beta_a=0.5, beta_b=0.0,
                free=np.ones(5, np.float32), grad_w=np.zeros(4, np.float32), grad_b=np.zeros(5, np.float32))
    args[arg] = bad
    with pytest.raises(ValueError, match=message):
        accumulate_gradient(g, **args)


@pytest.mark.parametrize("beta", [0.0, 0.5, -1.0])
def test_accumulate_refuses_equal_betas(beta):
    g = SynapseGraph.from_edges(2, [0], [1], [1.0])
    z = np.zeros(2, np.float32)
    gw = np.zeros(1, np.float32)
    with pytest.raises(ValueError, match=r"beta_a and beta_b must differ"):
        accumulate_gradient(g, z, z, beta, beta, z, gw, z.copy())
    assert not gw.any()


# ------------------------------------------------------------------ sgd_step


def _sgd_arrays(rng, m, nb):
    f = lambda k, lo=-1.0, hi=1.0: rng.uniform(lo, hi, k).astype(np.float32)  # noqa: E731
    return dict(weights=f(m), velocity=f(m), grad_w=f(m), lr_w=f(m, 0.0, 0.5),
                bias=f(nb), velocity_b=f(nb), grad_b=f(nb), lr_b=f(nb, 0.0, 0.5))


@SETTINGS
@given(seed=st.integers(0, 2**32 - 1), m=st.integers(0, 60), nb=st.integers(0, 20),
       momentum=st.sampled_from([0.0, 0.5, 0.9, 0.999]), batch=st.integers(1, 64), steps=st.integers(1, 4))
def test_sgd_matches_reference(seed, m, nb, momentum, batch, steps):
    rng = np.random.default_rng(seed)
    arrs = _sgd_arrays(rng, m, nb)
    arrs["lr_w"][rng.random(m) < 0.3] = 0.0   # frozen synapses
    ref = {k: v.astype(np.float64) for k, v in arrs.items()}
    for _ in range(steps):
        grad_w, grad_b = arrs["grad_w"].copy(), arrs["grad_b"].copy()
        ref["weights"], ref["velocity"], ref["bias"], ref["velocity_b"] = ref_sgd(
            ref["weights"], ref["velocity"], grad_w, ref["lr_w"], ref["bias"], ref["velocity_b"], grad_b,
            ref["lr_b"], momentum, batch)
        assert sgd_step(**arrs, momentum=momentum, batch=batch) is None
        # gradients are consumed (zeroed) by the step
        assert not arrs["grad_w"].any() and not arrs["grad_b"].any()
        for name in ("weights", "velocity", "bias", "velocity_b"):
            assert arrs[name].dtype == np.float32
            np.testing.assert_allclose(arrs[name], ref[name], rtol=1e-5, atol=1e-6, err_msg=name)
        # next step's gradients
        arrs["grad_w"][:] = rng.uniform(-1, 1, m)
        arrs["grad_b"][:] = rng.uniform(-1, 1, nb)
    # a learning rate of 0 freezes the parameter exactly
    frozen = arrs["lr_w"] == 0
    np.testing.assert_array_equal(arrs["weights"][frozen], ref["weights"][frozen].astype(np.float32))


def test_sgd_by_hand():
    w, v, g, lr = (np.array([1.0, 2.0], np.float32), np.array([0.5, 0.0], np.float32),
                   np.array([2.0, -4.0], np.float32), np.array([0.1, 0.0], np.float32))
    b, vb, gb, lrb = (np.array([0.0], np.float32), np.array([1.0], np.float32),
                      np.array([4.0], np.float32), np.array([0.5], np.float32))
    sgd_step(w, v, g, lr, b, vb, gb, lrb, momentum=0.5, batch=4)
    # v = 0.5·0.5 + 2/4 = 0.75 → w = 1 + 0.075; second synapse frozen (lr 0) but its velocity moves
    np.testing.assert_allclose(v, [0.75, -1.0])
    np.testing.assert_allclose(w, [1.075, 2.0])
    assert w[1] == 2.0
    np.testing.assert_allclose(vb, [1.5])        # 0.5·1 + 4/4
    np.testing.assert_allclose(b, [0.75])        # 0 + 0.5·1.5
    assert g.tolist() == [0.0, 0.0] and gb.tolist() == [0.0]


def test_sgd_batch_averages():
    one = np.ones(1, np.float32)
    results = []
    for batch in (1, 2, 8):
        w, v, g = np.zeros(1, np.float32), np.zeros(1, np.float32), np.array([8.0], np.float32)
        z = np.zeros(0, np.float32)
        sgd_step(w, v, g, one, z, z, z, z, momentum=0.0, batch=batch)
        results.append(float(w[0]))
    assert results == [8.0, 4.0, 1.0]


@pytest.mark.parametrize("arg, bad, message", [
    ("weights", np.zeros(3, np.float64), r"^weights must be a (1-D )?float32 array"),
    ("weights", [0.0, 0.0, 0.0], r"^weights must be a (1-D )?float32 array.*got list"),
    ("weights", np.float32(1.0), r"^weights must be a (1-D )?float32 array"),
    ("velocity", np.zeros(2, np.float32), r"^velocity must be a float32 array of shape \(3,\)"),
    ("grad_w", np.zeros(4, np.float32), r"^grad_w must be a float32 array of shape \(3,\)"),
    ("lr_w", np.zeros(3, np.int32), r"^lr_w must be a float32 array"),
    ("bias", [0.0, 0.0], r"^bias must be a (1-D )?float32 array.*got list"),
    ("velocity_b", np.zeros(3, np.float32), r"^velocity_b must be a float32 array of shape \(2,\)"),
    ("grad_b", np.zeros(2, np.float16), r"^grad_b must be a float32 array"),
    ("lr_b", np.zeros((2, 1), np.float32), r"^lr_b must be a float32 array of shape \(2,\)"),
    ("momentum", 1.0, r"^momentum must lie in \[0, 1\)"),
    ("momentum", -0.1, r"^momentum must lie in \[0, 1\)"),
    ("momentum", float("nan"), r"^momentum must lie in \[0, 1\)"),
    ("batch", 0, r"^batch must be"),
    ("batch", -3, r"^batch must be"),
    ("batch", 2.5, r"^batch must be"),
    ("batch", True, r"^batch must be"),
])
def test_sgd_argument_errors_name_the_argument(arg, bad, message):
    args = dict(weights=np.ones(3, np.float32), velocity=np.zeros(3, np.float32), grad_w=np.ones(3, np.float32),
                lr_w=np.ones(3, np.float32), bias=np.ones(2, np.float32), velocity_b=np.zeros(2, np.float32),
                grad_b=np.ones(2, np.float32), lr_b=np.ones(2, np.float32), momentum=0.5, batch=2)
    before = {k: v.copy() for k, v in args.items() if isinstance(v, np.ndarray)}
    args[arg] = bad
    with pytest.raises(ValueError, match=message):
        sgd_step(**args)
    for k, v in before.items():   # nothing was modified
        if k != arg:
            np.testing.assert_array_equal(args[k], v)


def test_accumulate_then_sgd_keeps_symmetric_pairs_equal():
    rng = np.random.default_rng(3)
    graph = symmetrize(random_sparse(30, 0.3, seed=3))
    n = graph.n
    pre = np.repeat(np.arange(n), graph.fan_out())
    position = {(int(i), int(j)): k for k, (i, j) in enumerate(zip(pre, graph.indices))}
    mirror = np.array([position[(int(j), int(i))] for i, j in zip(pre, graph.indices)])
    gw, gb = np.zeros(graph.nnz, np.float32), np.zeros(n, np.float32)
    vw, vb = np.zeros(graph.nnz, np.float32), np.zeros(n, np.float32)
    lr_w, lr_b = np.full(graph.nnz, 0.05, np.float32), np.full(n, 0.05, np.float32)
    for _ in range(5):
        for _ in range(3):
            accumulate_gradient(graph, random_state(rng, n, 0.5), random_state(rng, n, 0.5), 0.3, -0.3,
                                np.ones(n, np.float32), gw, gb)
        sgd_step(graph.weights, vw, gw, lr_w, np.zeros(n, np.float32), vb, gb, lr_b, 0.9, 3)
    np.testing.assert_array_equal(graph.weights.view(np.uint32), graph.weights[mirror].view(np.uint32))
