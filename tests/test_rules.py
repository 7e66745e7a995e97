"""Structural plasticity rules against plain-Python references, and with the dynamic store."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from topology.dynamic import DynamicSynapseStore
from topology.generators import layered
from topology.rules import (
    block_capacity,
    budget_for_density,
    grow_random,
    grow_top_scores,
    prune_lowest_score,
    prune_smallest,
)
from graph_strategies import small_graphs
from topology.store import SynapseGraph

PROPS = settings(max_examples=60, deadline=None, derandomize=True)


def graphs(max_n=9):
    return small_graphs(max_n=max_n, min_density=0.1)


def edges(graph):
    pre = np.repeat(np.arange(graph.n), np.diff(graph.indptr))
    return [(int(i), int(j)) for i, j in zip(pre, graph.indices)]


def missing_in(graph, blocks, allow_self_loops=False):
    present = set(edges(graph))
    return sorted({(i, j) for a, b, c, d in blocks for i in range(a, b) for j in range(c, d)
                   if (i, j) not in present and (allow_self_loops or i != j)})


@PROPS
@given(graphs(), st.data())
def test_prune_lowest_score_matches_a_sorted_list(graph, data):
    score = np.array(data.draw(st.lists(st.integers(-3, 3), min_size=graph.nnz, max_size=graph.nnz)), float)
    eligible = np.array(data.draw(st.lists(st.booleans(), min_size=graph.nnz, max_size=graph.nnz)), bool)
    one_direction = data.draw(st.booleans())
    pool = [(score[p], p) for p, (i, j) in enumerate(edges(graph)) if eligible[p] and (not one_direction or i < j)]
    k = data.draw(st.integers(0, len(pool)))
    expected = sorted(p for _, p in sorted(pool)[:k])
    got = prune_lowest_score(graph, score, k, eligible=eligible, one_direction=one_direction)
    assert list(zip(got.pre.tolist(), got.post.tolist())) == [edges(graph)[p] for p in expected]


def test_prune_smallest_is_magnitude():
    g = SynapseGraph.from_dense(np.array([[0, -.05, .2], [.3, 0, -.4], [.01, .5, 0]], np.float32))
    d = prune_smallest(g, 3)
    assert sorted(zip(d.pre.tolist(), d.post.tolist())) == [(0, 1), (0, 2), (2, 0)]


@PROPS
@given(graphs(), st.data())
def test_grow_top_scores_matches_a_sorted_list(graph, data):
    n = graph.n
    a, b = sorted(data.draw(st.lists(st.integers(0, n), min_size=2, max_size=2)))
    c, d = sorted(data.draw(st.lists(st.integers(0, n), min_size=2, max_size=2)))
    blocks = [(a, b, c, d)]
    score = np.array(data.draw(st.lists(st.integers(-4, 4), min_size=n * n, max_size=n * n)), float).reshape(n, n)
    pool = missing_in(graph, blocks)
    k = data.draw(st.integers(0, len(pool)))
    expected = sorted(sorted(pool, key=lambda e: (-abs(score[e]), e))[:k])
    got = grow_top_scores(graph, k, blocks, score, weight=0.25)
    assert list(zip(got.pre.tolist(), got.post.tolist())) == expected
    assert got.weight.dtype == np.float32 and np.all(got.weight == np.float32(0.25))


@PROPS
@given(graphs(), st.data())
def test_grow_random_draws_distinct_missing_pairs_inside_the_blocks(graph, data):
    n = graph.n
    blocks = [(0, n // 2 + 1, n // 2, n), (n // 2, n, 0, n // 2 + 1)]
    pool = set(missing_in(graph, blocks))
    k = data.draw(st.integers(0, len(pool)))
    seed = data.draw(st.integers(0, 1000))
    got = grow_random(graph, k, blocks, np.random.default_rng(seed))
    pairs = list(zip(got.pre.tolist(), got.post.tolist()))
    assert len(pairs) == len(set(pairs)) == k and set(pairs) <= pool
    again = grow_random(graph, k, blocks, np.random.default_rng(seed))
    assert np.array_equal(again.pre, got.pre) and np.array_equal(again.post, got.post)


def test_grow_random_reaches_every_candidate():
    g = SynapseGraph.from_dense(np.zeros((4, 4), np.float32))
    seen = set()
    rng = np.random.default_rng(0)
    for _ in range(200):
        ins = grow_random(g, 1, [(0, 4, 0, 4)], rng)
        seen.add((int(ins.pre[0]), int(ins.post[0])))
    assert seen == set(missing_in(g, [(0, 4, 0, 4)]))  # all 12 off-diagonal pairs


@PROPS
@given(st.integers(0, 500), st.integers(0, 500), st.floats(0, 1), st.floats(0, 1))
def test_budget_reaches_the_target_density(nnz, extra, density, rewire):
    capacity = nnz + extra
    prune, grow = budget_for_density(nnz, capacity, density, rewire_fraction=rewire)
    assert nnz - prune + grow == int(round(density * capacity))
    assert 0 <= prune <= nnz and 0 <= grow <= capacity


def test_block_capacity_counts_the_diagonal_once():
    assert block_capacity([(0, 3, 0, 3)], 3) == 6
    assert block_capacity([(0, 3, 0, 3)], 3, allow_self_loops=True) == 9
    assert block_capacity([(0, 784, 784, 1284), (784, 1284, 1284, 1294)], 1294) == 784 * 500 + 500 * 10


@pytest.mark.parametrize("call, message", [
    (lambda g: prune_smallest(g, -1), "k must be an integer >= 0"),
    (lambda g: prune_smallest(g, 10**6), "only"),
    (lambda g: prune_lowest_score(g, np.zeros(3), 1), "score must have shape"),
    (lambda g: prune_smallest(g, 1, eligible=np.ones(2, bool)), "eligible must be a boolean mask"),
    (lambda g: grow_random(g, 1, [(0, 99, 0, 1)], np.random.default_rng(0)), "block"),
    (lambda g: grow_top_scores(g, 1, [(0, 2, 0, 2)], lambda p, q: np.zeros(1)), "one non-NaN value"),
    (lambda g: budget_for_density(5, 3, 0.5), "nnz <= capacity"),
])
def test_errors_name_the_argument(call, message):
    g = layered([3, 2], seed=0)
    with pytest.raises(ValueError, match=message):
        call(g)


def test_constant_density_rewiring_with_symmetric_pairs():
    """Prune by magnitude and regrow at random on an EqProp-style graph: density held, pairs kept."""
    sizes = [6, 5, 3]
    g = layered(sizes, seed=1, feedback=True, density=0.5)
    free = np.arange(g.n) >= sizes[0]
    store = DynamicSynapseStore(g, symmetric_pairs=free)
    blocks = [(0, 6, 6, 11), (6, 11, 11, 14)]  # forward blocks; the store mirrors free-free ones
    capacity = block_capacity(blocks, g.n)
    forward = lambda graph: sum(1 for i, j in edges(graph) if i < j)  # noqa: E731
    start = forward(store.graph)
    rng = np.random.default_rng(0)
    for _ in range(5):
        prune, grow = budget_for_density(forward(store.graph), capacity, start / capacity, rewire_fraction=0.2)
        dels = prune_smallest(store.graph, prune, one_direction=True)
        store.apply_edits(deletes=dels)
        ins = grow_random(store.graph, grow, blocks, rng)
        store.apply_edits(inserts=ins)
        assert forward(store.graph) == start
        A = store.graph.to_scipy().tocsr()[6:, 6:]
        assert (A != A.T).nnz == 0


class _BlockScorer:
    """A block scorer over a dense matrix (what EqPropModel.candidate_scores returns, simplified)."""

    def __init__(self, m):
        self.m = m

    def block(self, a, b, c, d):
        return self.m[a:b, c:d]


@PROPS
@given(graphs(), st.data())
def test_grow_top_scores_is_the_same_for_arrays_callables_and_block_scorers(graph, data):
    """Overlapping blocks too (a pair in two blocks is one candidate), and disjoint ones (the dense-matrix path)."""
    n = graph.n
    blocks = [tuple(sorted(data.draw(st.lists(st.integers(0, n), min_size=2, max_size=2)))
                    + sorted(data.draw(st.lists(st.integers(0, n), min_size=2, max_size=2))))
              for _ in range(data.draw(st.integers(1, 3)))]
    score = np.array(data.draw(st.lists(st.integers(-3, 3), min_size=n * n, max_size=n * n)), float).reshape(n, n)
    pool = missing_in(graph, blocks)
    k = data.draw(st.integers(0, len(pool)))
    expected = sorted(sorted(pool, key=lambda e: (-abs(score[e]), e))[:k])
    for form in (score, lambda p, q: score[p, q], _BlockScorer(score)):
        got = grow_top_scores(graph, k, blocks, form)
        assert list(zip(got.pre.tolist(), got.post.tolist())) == expected
