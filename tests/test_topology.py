"""Tests for :mod:`topology.store` and :mod:`topology.generators`."""

import networkx as nx
import numpy as np
import pytest
import scipy.sparse as sp
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from topology.generators import block_densities, input_recurrent, layered, random_sparse, spectral_norm, symmetric_recurrent
from topology.store import MIN_SEGMENT_MEAN, SynapseArrays, SynapseGraph

SETTINGS = settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def assert_same_graph(a, b):
    assert a.n == b.n
    for name in ("indptr", "indices", "weights", "seg_ptr", "seg_pos", "seg_first"):
        x, y = getattr(a, name), getattr(b, name)
        assert x.dtype == y.dtype, name
        np.testing.assert_array_equal(x, y, err_msg=name)


def check_csr_layout(g):
    assert g.indptr.dtype == np.int64 and g.indices.dtype == np.int32 and g.weights.dtype == np.float32
    assert g.indptr.shape == (g.n + 1,) and g.indptr[0] == 0 and np.all(np.diff(g.indptr) >= 0)
    for i in range(g.n):
        row = g.indices[g.indptr[i]:g.indptr[i + 1]]
        assert np.all(np.diff(row) > 0), f"row {i} not sorted / has duplicates"


# ------------------------------------------------------------------ strategies


@st.composite
def small_matrices(draw, max_n=12):
    """Dense float32 matrices with many zeros (and -0.0) and some repeated values."""
    n = draw(st.integers(0, max_n))
    value = st.one_of(st.just(0.0), st.just(0.0), st.just(-0.0), st.sampled_from([0.5, -1.25, 3.0]),
                      st.floats(-1e3, 1e3, width=32, allow_subnormal=False))
    flat = draw(st.lists(value, min_size=n * n, max_size=n * n))
    return np.array(flat, dtype=np.float32).reshape(n, n)


@st.composite
def interval_rows(draw):
    """A 0/1 pattern whose rows are unions of random intervals and stray singletons."""
    n = draw(st.integers(1, 7) | st.integers(8, 120) | st.sampled_from([16, 64, 100]))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    max_len = draw(st.sampled_from([1, 4, 9, 14, 16, 16, 40, 40]))
    max_runs = draw(st.integers(1, 5))
    stray = draw(st.sampled_from([0.0, 0.0, 0.02, 0.2]))
    mask = rng.random((n, n)) < stray
    for i in range(n):
        for _ in range(int(rng.integers(0, max_runs + 1))):
            lo = int(rng.integers(0, n))
            mask[i, lo:lo + int(rng.integers(max_len // 2 + 1, max_len + 1))] = True
    return mask


# --------------------------------------------------------------------- builders


def test_from_dense_drops_zeros():
    A = np.array([[0.0, 1.5, 0.0], [-2.0, 0.0, 0.25], [0.0, -0.0, 0.0]])
    g = SynapseGraph.from_dense(A)
    assert (g.n, g.nnz) == (3, 3)
    np.testing.assert_array_equal(g.indptr, [0, 1, 3, 3])
    np.testing.assert_array_equal(g.indices, [1, 0, 2])
    np.testing.assert_array_equal(g.weights, [1.5, -2.0, 0.25])
    check_csr_layout(g)


def test_from_adjacency_keeps_explicit_zeros_and_sums_duplicates():
    coo = sp.coo_array(([1.0, 0.0, 2.0, 3.0], ([0, 0, 1, 1], [1, 2, 0, 0])), shape=(3, 3))
    g = SynapseGraph.from_adjacency(coo)
    assert g.nnz == 3
    np.testing.assert_array_equal(g.indices, [1, 2, 0])
    np.testing.assert_array_equal(g.weights, [1.0, 0.0, 5.0])
    check_csr_layout(g)


def test_from_adjacency_unsorted_csr():
    csr = sp.csr_array((np.array([3.0, 1.0, 2.0]), np.array([2, 0, 1]), np.array([0, 3, 3, 3])), shape=(3, 3))
    assert not csr.has_sorted_indices
    g = SynapseGraph.from_adjacency(csr)
    np.testing.assert_array_equal(g.indices, [0, 1, 2])
    np.testing.assert_array_equal(g.weights, [1.0, 2.0, 3.0])
    assert csr.indices.tolist() == [2, 0, 1]  # the input is not modified


def test_from_edges_sums_duplicates():
    g = SynapseGraph.from_edges(3, pre=[0, 0, 1, 0, 2], post=[1, 1, 2, 1, 2], weight=[0.5, 0.25, 1.0, -0.75, 2.0])
    assert g.nnz == 3  # the cancelled 0->1 stays a (zero-weight) synapse
    np.testing.assert_array_equal(g.to_scipy().toarray(), [[0, 0, 0], [0, 0, 1.0], [0, 0, 2.0]])
    np.testing.assert_array_equal(g.indices, [1, 2, 2])


@SETTINGS
@given(n=st.integers(1, 10), data=st.data())
def test_from_edges_matches_add_at(n, data):
    m = data.draw(st.integers(0, 40))
    pre = data.draw(st.lists(st.integers(0, n - 1), min_size=m, max_size=m))
    post = data.draw(st.lists(st.integers(0, n - 1), min_size=m, max_size=m))
    w = data.draw(st.lists(st.sampled_from([0.5, -1.0, 2.0, 0.25]), min_size=m, max_size=m))
    g = SynapseGraph.from_edges(n, pre, post, w)
    expect = np.zeros((n, n), np.float32)
    np.add.at(expect, (np.array(pre, int), np.array(post, int)), np.array(w, np.float32))
    np.testing.assert_array_equal(g.to_scipy().toarray(), expect)
    assert g.nnz == len(set(zip(pre, post)))
    check_csr_layout(g)


def test_empty_graphs():
    for g in (SynapseGraph.from_dense(np.zeros((0, 0))), SynapseGraph.from_edges(0, [], [], [])):
        assert (g.n, g.nnz) == (0, 0)
        assert g.fan_in().shape == g.fan_out().shape == (0,)
        assert g.seg_ptr.tolist() == [0] and g.to_networkx().number_of_nodes() == 0
    g = SynapseGraph.from_dense(np.zeros((4, 4)))
    assert g.nnz == 0 and g.seg_ptr.tolist() == [0] * 5 and g.fan_in().tolist() == [0] * 4


def test_arrays_are_views():
    g = SynapseGraph.from_dense(np.eye(3))
    arr = g.arrays()
    assert isinstance(arr, SynapseArrays)
    assert arr.indptr is g.indptr and arr.weights is g.weights and arr.seg_first is g.seg_first
    assert repr(g) == "SynapseGraph(n=3, nnz=3)"


# ------------------------------------------------------------------ validation


@pytest.mark.parametrize("adjacency", [np.zeros((2, 3)), np.zeros(3), [[1.0, 2.0]], np.zeros((2, 2, 2))])
def test_from_dense_not_square(adjacency):
    with pytest.raises(ValueError, match="adjacency must be a square 2-D array"):
        SynapseGraph.from_dense(adjacency)


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_from_dense_not_finite(bad):
    with pytest.raises(ValueError, match="adjacency must be finite"):
        SynapseGraph.from_dense([[0.0, bad], [0.0, 0.0]])


def test_from_dense_overflows_float32():
    with np.errstate(over="ignore"), pytest.raises(ValueError, match="adjacency must be finite"):
        SynapseGraph.from_dense([[0.0, 1e39], [0.0, 0.0]])


def test_from_adjacency_errors():
    with pytest.raises(TypeError, match="adjacency must be a scipy.sparse matrix"):
        SynapseGraph.from_adjacency(np.eye(2))
    with pytest.raises(ValueError, match="adjacency must be square"):
        SynapseGraph.from_adjacency(sp.csr_array((2, 3)))
    with pytest.raises(ValueError, match="weights must be finite; synapse 1"):
        SynapseGraph.from_adjacency(sp.csr_array(np.array([[0, 1.0], [np.nan, 0]])))


@pytest.mark.parametrize("pre, post, weight, match", [
    ([0, 1], [1], [1.0, 1.0], "pre, post and weight must be 1-D of one length"),
    ([0], [1], [1.0, 2.0], "pre, post and weight must be 1-D of one length"),
    ([[0]], [[1]], [[1.0]], "pre, post and weight must be 1-D of one length"),
    ([0, 3], [1, 1], [1.0, 1.0], r"pre ids must lie in \[0, 3\)"),
    ([-1], [1], [1.0], r"pre ids must lie in \[0, 3\)"),
    ([0], [7], [1.0], r"post ids must lie in \[0, 3\)"),
    ([0], [1], [np.nan], "weights must be finite; synapse 0"),
])
def test_from_edges_errors(pre, post, weight, match):
    with pytest.raises(ValueError, match=match):
        SynapseGraph.from_edges(3, pre, post, weight)


@pytest.mark.parametrize("args, match", [
    (([0, 1], [0], [1.0], 2), r"indptr must have shape \(3,\)"),
    (([0, 1, 2], [0], [1.0], 2), r"indices and weights must have shape \(2,\)"),
    (([0, 1, 2], [0, 1], [1.0], 2), r"indices and weights must have shape \(2,\)"),
    (([0, 1, 2], [0, 2], [1.0, 1.0], 2), r"indices must lie in \[0, 2\)"),
    (([0, 1, 2], [0, -1], [1.0, 1.0], 2), r"indices must lie in \[0, 2\)"),
    (([0, 1, 2], [0, 1], [1.0, np.inf], 2), "weights must be finite; synapse 1"),
])
def test_constructor_errors(args, match):
    with pytest.raises(ValueError, match=match):
        SynapseGraph(*args)


def test_constructor_rejects_decreasing_indptr():
    with pytest.raises(ValueError, match="indptr"):
        SynapseGraph([0, 2, 1, 2], [0, 1], [1.0, 1.0], 3)


# ------------------------------------------------------- conversions, degrees


@SETTINGS
@given(A=small_matrices())
def test_scipy_round_trip(A):
    g = SynapseGraph.from_dense(A)
    check_csr_layout(g)
    adj = g.to_scipy()
    assert isinstance(adj, sp.csr_array) and adj.shape == (g.n, g.n) and adj.dtype == np.float32
    np.testing.assert_array_equal(adj.toarray(), A)
    assert g.nnz == np.count_nonzero(A)
    assert_same_graph(SynapseGraph.from_adjacency(adj), g)
    weights = g.weights.copy()
    adj.data[:] = 7.0  # a copy: the graph is unchanged
    np.testing.assert_array_equal(g.weights, weights)


@SETTINGS
@given(A=small_matrices())
def test_networkx_round_trip(A):
    g = SynapseGraph.from_dense(A)
    G = g.to_networkx()
    assert isinstance(G, nx.DiGraph) and sorted(G.nodes) == list(range(g.n))
    pre, post = np.nonzero(A)
    assert set(G.edges(data="weight")) == {(int(i), int(j), float(A[i, j])) for i, j in zip(pre, post)}
    if g.n:  # the store's A[pre, post] is networkx's convention
        back = nx.to_scipy_sparse_array(G, nodelist=range(g.n), weight="weight", dtype=np.float32)
        np.testing.assert_array_equal(back.toarray(), A)
        assert_same_graph(SynapseGraph.from_adjacency(back), g)


@SETTINGS
@given(A=small_matrices(max_n=20))
def test_fan_in_fan_out(A):
    g = SynapseGraph.from_dense(A)
    mask = A != 0
    assert g.fan_out().dtype == np.int64 and g.fan_in().dtype == np.int64
    np.testing.assert_array_equal(g.fan_out(), mask.sum(axis=1))
    np.testing.assert_array_equal(g.fan_in(), mask.sum(axis=0))
    assert g.fan_in().sum() == g.fan_out().sum() == g.nnz


# ----------------------------------------------------------------- segments


def reconstruct_rows(g):
    """Each row's targets rebuilt from the segment table alone (None for rows without segments)."""
    rows = []
    for i in range(g.n):
        s0, s1 = g.seg_ptr[i], g.seg_ptr[i + 1]
        if s0 == s1:
            rows.append(None)
            continue
        assert g.seg_pos[s0] == g.indptr[i], f"row {i}: first segment does not start the row"
        parts = []
        for s in range(s0, s1):
            p0 = g.seg_pos[s]
            p1 = g.seg_pos[s + 1] if s + 1 < s1 else g.indptr[i + 1]
            assert p1 > p0
            parts.append(g.seg_first[s] + np.arange(p1 - p0))
        rows.append(np.concatenate(parts))
    return rows


def run_count(row):
    return 0 if row.size == 0 else 1 + int(np.count_nonzero(np.diff(row) != 1))


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(mask=interval_rows())
def test_segment_table(mask):
    n = mask.shape[0]
    rng = np.random.default_rng(0)
    g = SynapseGraph.from_dense(mask * rng.uniform(0.5, 1.5, mask.shape))
    assert g.seg_ptr.dtype == np.int64 and g.seg_pos.dtype == np.int64 and g.seg_first.dtype == np.int32
    assert g.seg_ptr.shape == (n + 1,) and g.seg_ptr[0] == 0 and np.all(np.diff(g.seg_ptr) >= 0)
    assert g.seg_pos.shape == g.seg_first.shape == (g.seg_ptr[-1],)
    with_segments = np.diff(g.seg_ptr) > 0
    event("some rows with segments" if with_segments.any() else "no segments")
    event("some non-empty rows without" if (~with_segments & (np.diff(g.indptr) > 0)).any() else "none without")
    for i, rebuilt in enumerate(reconstruct_rows(g)):
        row = g.indices[g.indptr[i]:g.indptr[i + 1]]
        runs = run_count(row)
        if rebuilt is None:
            assert row.size == 0 or row.size < MIN_SEGMENT_MEAN * runs, f"row {i} should use segments"
        else:
            np.testing.assert_array_equal(rebuilt, row, err_msg=f"row {i}")
            assert row.size >= MIN_SEGMENT_MEAN * runs
            assert g.seg_ptr[i + 1] - g.seg_ptr[i] == runs  # maximal runs


@pytest.mark.parametrize("targets, n_segments", [
    (list(range(8)), 1),  # mean 8: exactly enough
    (list(range(7)), 0),
    (list(range(3, 11)) + list(range(20, 28)), 2),
    (list(range(8)) + list(range(10, 17)), 0),  # mean 7.5
    (list(range(0, 40, 2)), 0),
    ([0] + list(range(5, 30)), 2),  # a stray target still fits: mean 13
])
def test_segment_threshold(targets, n_segments):
    n = 40
    g = SynapseGraph.from_edges(n, [1] * len(targets), targets, np.linspace(0.1, 1.0, len(targets)))
    assert g.seg_ptr[2] - g.seg_ptr[1] == n_segments
    assert g.seg_ptr[1] == 0 and g.seg_ptr[-1] == n_segments
    if n_segments:
        np.testing.assert_array_equal(reconstruct_rows(g)[1], targets)


# ---------------------------------------------------------------- generators


def test_spectral_norm():
    assert spectral_norm(np.diag([3.0, -4.0])) == pytest.approx(4.0)
    assert spectral_norm(sp.csr_array(np.diag([3.0, -4.0]))) == pytest.approx(4.0)
    assert spectral_norm(np.zeros((0, 5))) == 0.0
    big = sp.diags_array(np.linspace(-2.5, 1.0, 2500)).tocsr()  # svds path
    assert spectral_norm(big) == pytest.approx(2.5, rel=1e-6)
    assert spectral_norm(sp.csr_array((2500, 2500))) == 0.0


@pytest.mark.parametrize("make", [
    lambda seed: random_sparse(50, 0.2, seed=seed),
    lambda seed: layered([5, 7, 3], seed=seed, feedback=True, density=0.6),
    lambda seed: symmetric_recurrent(30, 0.5, seed=seed, density=0.4),
    lambda seed: input_recurrent(4, 20, 0.7, seed=seed, recurrent_density=0.5),
], ids=["random_sparse", "layered", "symmetric_recurrent", "input_recurrent"])
def test_generators_deterministic(make):
    assert_same_graph(make(3), make(3))
    a, b = make(3), make(4)
    assert a.nnz != b.nnz or not np.array_equal(a.weights, b.weights)


@pytest.mark.parametrize("n, target, density", [(1, 0.6, 1.0), (2, 0.6, 1.0), (50, 0.6, 1.0), (80, 0.3, 0.2),
                                                (40, 1.7, 0.5)])
def test_symmetric_recurrent(n, target, density):
    g = symmetric_recurrent(n, target, seed=n, density=density)
    A = g.to_scipy().toarray()
    np.testing.assert_array_equal(A, A.T)
    assert not np.diag(A).any()
    if n > 1:
        assert spectral_norm(g.to_scipy()) == pytest.approx(target, abs=1e-4)
    if density == 1.0:
        assert g.nnz == n * (n - 1)
    else:
        assert g.nnz < n * (n - 1)


def test_symmetric_recurrent_zero_norm():
    g = symmetric_recurrent(10, 0.0, seed=0)
    assert spectral_norm(g.to_scipy()) == 0.0


@pytest.mark.parametrize("n_in, n_h, density", [(3, 5, 1.0), (10, 30, 1.0), (1, 1, 1.0), (6, 40, 0.3)])
def test_input_recurrent(n_in, n_h, density):
    g = input_recurrent(n_in, n_h, 0.6, seed=1, recurrent_density=density)
    A = g.to_scipy().toarray()
    assert g.n == n_in + n_h
    assert not g.fan_in()[:n_in].any(), "inputs receive synapses"
    assert not A[n_in:, :n_in].any() and not A[:n_in, :n_in].any()
    w_in = A[:n_in, n_in:]
    assert np.all(w_in != 0) and np.abs(w_in).max() <= np.sqrt(6.0 / (n_in + n_h))
    hidden = A[n_in:, n_in:]
    np.testing.assert_array_equal(hidden, hidden.T)
    assert not np.diag(hidden).any()
    if n_h > 1:
        assert spectral_norm(hidden) == pytest.approx(0.6, abs=1e-4)
    if density == 1.0:
        assert g.nnz == n_in * n_h + n_h * (n_h - 1)


def test_input_recurrent_doc_example():
    g = input_recurrent(784, 500, 0.6, seed=0)
    assert g.n == 1284 and g.nnz == 784 * 500 + 500 * 499
    assert g.seg_ptr[-1] > 0  # dense rows take the segment path


@pytest.mark.parametrize("sizes", [[4, 3, 2], [5, 1], [2, 6, 6, 3]])
def test_layered(sizes):
    offsets = np.concatenate([[0], np.cumsum(sizes)])
    forward = sum(a * b for a, b in zip(sizes[:-1], sizes[1:]))
    layer = np.repeat(np.arange(len(sizes)), sizes)

    g = layered(sizes, seed=0)
    A = g.to_scipy().toarray()
    assert g.n == offsets[-1] and g.nnz == forward
    pre, post = np.nonzero(A)
    assert np.all(layer[post] == layer[pre] + 1)
    for k, (a, b) in enumerate(zip(sizes[:-1], sizes[1:])):
        assert np.abs(A[offsets[k]:offsets[k + 1], offsets[k + 1]:offsets[k + 2]]).max() <= np.sqrt(6 / (a + b))

    fb = layered(sizes, seed=0, feedback=True, feedback_to_input=True).to_scipy().toarray()
    np.testing.assert_array_equal(fb, fb.T)
    np.testing.assert_array_equal(np.triu(fb), A)  # forward weights unchanged, same seed

    fb_hidden = layered(sizes, seed=0, feedback=True).to_scipy().toarray()
    assert fb_hidden.astype(bool).sum() == 2 * forward - sizes[0] * sizes[1]
    assert not fb_hidden[:, :sizes[0]].any(), "feedback into the input layer"
    rest = fb_hidden[sizes[0]:, sizes[0]:]
    np.testing.assert_array_equal(rest, rest.T)
    np.testing.assert_array_equal(np.triu(fb_hidden), A)


def test_layered_density():
    g = layered([30, 40, 20], seed=2, density=0.5)
    forward = 30 * 40 + 40 * 20
    assert 0.4 * forward < g.nnz < 0.6 * forward


@settings(max_examples=200, deadline=None)
@given(sizes=st.lists(st.integers(1, 2000), min_size=2, max_size=5), density=st.floats(0.001, 1.0))
def test_erdos_renyi_block_densities_keep_the_overall_density(sizes, density):
    pairs = np.array([a * b for a, b in zip(sizes[:-1], sizes[1:])], dtype=np.float64)
    uniform = block_densities(sizes, density)
    er = np.array(block_densities(sizes, density, "erdos_renyi"))
    assert uniform == [density] * pairs.size
    assert np.all((er > 0) & (er <= 1))
    assert (er * pairs).sum() == pytest.approx(density * pairs.sum(), rel=1e-9)
    raw = np.array([(a + b) / (a * b) for a, b in zip(sizes[:-1], sizes[1:])])
    free = er < 1
    if free.sum() > 1:  # the blocks that are not dense keep ER's proportions
        np.testing.assert_allclose(er[free] / raw[free], (er[free] / raw[free])[0], rtol=1e-9)
    if free.any() and not free.all():  # the dense blocks are the ones ER would make densest
        assert raw[~free].min() >= raw[free].max()


def test_block_densities_rejects_unknown_distribution_and_bad_density():
    with pytest.raises(ValueError, match="distribution must be 'uniform' or 'erdos_renyi', got 'erk'"):
        block_densities([4, 3], 0.5, "erk")
    with pytest.raises(ValueError, match="density must be a number in"):
        block_densities([4, 3], 0.0)


def test_block_densities_per_block_list_is_checked_and_returned_as_given():
    assert block_densities([4, 3, 2], [0.25, 1.0]) == [0.25, 1.0]
    with pytest.raises(ValueError, match="one per layer-to-layer block \\(2\\), got 1"):
        block_densities([4, 3, 2], [0.25])
    with pytest.raises(ValueError, match="density\\[1\\]"):
        block_densities([4, 3, 2], [0.25, 1.5])
    with pytest.raises(ValueError, match="shares a single density"):
        block_densities([4, 3, 2], [0.25, 1.0], "erdos_renyi")


def test_layered_per_block_density():
    g = layered([200, 100, 10], seed=1, feedback=True, density=[0.05, 1.0])
    A = g.to_scipy().toarray().astype(bool)
    assert 0.03 < A[:200, 200:300].mean() < 0.07
    assert A[200:300, 300:].all() and A[300:, 200:300].all()
    np.testing.assert_array_equal(layered([6, 4], seed=0, density=[0.5]).weights,
                                  layered([6, 4], seed=0, density=0.5).weights)
    with pytest.raises(ValueError, match=r"one per layer-to-layer block \(2\), got 3"):
        layered([4, 3, 2], seed=0, density=[0.5, 0.5, 0.5])
    with pytest.raises(ValueError, match=r"density\[1\] must be a number in \(0, 1\]"):
        layered([4, 3, 2], seed=0, density=[0.5, 1.5])


def test_random_sparse_statistics():
    n, density = 300, 0.05
    g = random_sparse(n, density, seed=7, weight_scale=2.0)
    A = g.to_scipy().toarray()
    assert not np.diag(A).any()
    expect = density * n * n
    assert abs(g.nnz - expect) < 0.1 * expect
    assert np.std(g.weights) == pytest.approx(2.0 / np.sqrt(n * density), rel=0.1)
    assert abs(np.mean(g.weights)) < 0.05


def test_random_sparse_self_loops():
    assert random_sparse(10, 1.0, seed=0).nnz == 90
    g = random_sparse(10, 1.0, seed=0, self_loops=True)
    assert g.nnz == 100 and np.all(np.diag(g.to_scipy().toarray()) != 0)


def test_random_sparse_single_neuron():
    assert random_sparse(1, 1.0, seed=0).nnz == 0


@pytest.mark.parametrize("call, match", [
    (lambda: random_sparse(0, 0.5, seed=0), "n must be an int >= 1"),
    (lambda: random_sparse(5.0, 0.5, seed=0), "n must be an int >= 1"),
    (lambda: random_sparse(True, 0.5, seed=0), "n must be an int >= 1"),
    (lambda: random_sparse(5, 0.0, seed=0), r"density must be a number in \(0, 1\]"),
    (lambda: random_sparse(5, 1.5, seed=0), r"density must be a number in \(0, 1\]"),
    (lambda: random_sparse(5, np.nan, seed=0), r"density must be a number in \(0, 1\]"),
    (lambda: layered([5], seed=0), "sizes must list at least two positive layer sizes"),
    (lambda: layered([5, 0, 3], seed=0), "sizes must list at least two positive layer sizes"),
    (lambda: layered([5, 3], seed=0, density=0), r"density must be a number in \(0, 1\]"),
    (lambda: symmetric_recurrent(0, 0.5, seed=0), "n must be an int >= 1"),
    (lambda: symmetric_recurrent(5, -0.5, seed=0), "spectral_norm_target must be a finite number >= 0"),
    (lambda: symmetric_recurrent(5, np.nan, seed=0), "spectral_norm_target must be a finite number >= 0"),
    (lambda: symmetric_recurrent(5, 0.5, seed=0, density=2.0), r"density must be a number in \(0, 1\]"),
    (lambda: input_recurrent(0, 5, 0.5, seed=0), "n_inputs must be an int >= 1"),
    (lambda: input_recurrent(3, 0, 0.5, seed=0), "n_hidden must be an int >= 1"),
    (lambda: input_recurrent(3, 2.5, 0.5, seed=0), "n_hidden must be an int >= 1"),
])
def test_generator_errors(call, match):
    with pytest.raises(ValueError, match=match):
        call()


@pytest.mark.parametrize("call, match", [
    (lambda: random_sparse(5, "0.5", seed=0), "density"),
    (lambda: symmetric_recurrent(5, None, seed=0), "spectral_norm_target"),
    (lambda: input_recurrent(3, 4, -0.5, seed=0), "spectral_norm_target"),
    (lambda: input_recurrent(3, 4, 0.5, seed=0, recurrent_density=0.0), "density"),
    (lambda: input_recurrent(3, 4, 0.5, seed=0, recurrent_density=7.0), "density"),
], ids=["density-str", "target-None", "ir-negative-target", "ir-density-0", "ir-density-7"])
def test_generator_errors_gaps(call, match):
    with pytest.raises(ValueError, match=match):
        call()
