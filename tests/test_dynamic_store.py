"""Tests for :mod:`topology.dynamic`: the store against a dict-of-edges model."""

import doctest

import numpy as np
import pytest
from hypothesis import HealthCheck, event, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, precondition, rule

import topology.dynamic
from topology.dynamic import DynamicSynapseStore, Deletions, EditResult, Insertions
from topology.generators import layered
from topology.store import SynapseGraph

WEIGHTS = st.floats(-4.0, 4.0, width=32, allow_subnormal=False) | st.sampled_from([0.0, -0.0, 1.5])
ARRAYS = ("indptr", "indices", "weights", "seg_ptr", "seg_pos", "seg_first")


def edges_of(graph):
    """``{(pre, post): weight}`` of a SynapseGraph."""
    pre = np.repeat(np.arange(graph.n), np.diff(graph.indptr))
    return {(int(i), int(j)): w for i, j, w in zip(pre, graph.indices, graph.weights)}


def fresh_graph(n, model):
    """A SynapseGraph built from scratch from ``{(pre, post): weight}``."""
    keys = sorted(model)
    return SynapseGraph.from_edges(n, [k[0] for k in keys], [k[1] for k in keys], [model[k] for k in keys])


def check_layout(graph):
    assert graph.indptr.dtype == np.int64 and graph.indices.dtype == np.int32
    assert graph.weights.dtype == np.float32
    assert graph.indptr.shape == (graph.n + 1,) and graph.indptr[0] == 0
    assert graph.indices.shape == graph.weights.shape == (graph.nnz,)
    for i in range(graph.n):
        row = graph.indices[graph.indptr[i]:graph.indptr[i + 1]]
        assert np.all(np.diff(row) > 0), f"row {i} unsorted or duplicated"


class StoreMachine(RuleBasedStateMachine):
    """Random batches of edits (valid and invalid) applied to the store and to a dict model.

    The model maps each edge to ``[weight, velocity, lr]``; ``velocity`` and
    ``lr`` are carried through every edit as the optimizer's arrays would be.
    """

    @initialize(n=st.integers(1, 7) | st.integers(9, 20), loops=st.booleans(),
                pairing=st.sampled_from(["none", "all", "mask"]), data=st.data())
    def start(self, n, loops, pairing, data):
        self.n, self.loops = n, loops
        if pairing == "mask":
            self.mask = np.array(data.draw(st.lists(st.booleans(), min_size=n, max_size=n)), dtype=bool)
        else:
            self.mask = np.full(n, pairing == "all")
        self.model = {}
        edges = data.draw(st.dictionaries(self.pairs(), WEIGHTS, max_size=12))
        full_rows = data.draw(st.lists(st.integers(0, n - 1), max_size=3, unique=True)) if n >= 9 else []
        edges.update({(i, j): np.float32(0.25 * i - j) for i in full_rows for j in range(n)})  # segments
        for (i, j), w in edges.items():
            if (i, j) not in self.model and (i != j or loops):
                self.model[(i, j)] = [np.float32(w), np.float32(len(self.model)), np.float32(-len(self.model))]
                if self.paired(i, j):
                    self.model[(j, i)] = [np.float32(w), np.float32(0.5), np.float32(0.25)]
        graph = fresh_graph(n, {k: v[0] for k, v in self.model.items()})
        symmetric = self.mask if pairing == "mask" else pairing == "all"
        self.store = DynamicSynapseStore(graph, allow_self_loops=loops, symmetric_pairs=symmetric)
        self.carry = self.carried_from_model(graph)

    def pairs(self):
        return st.tuples(st.integers(0, self.n - 1), st.integers(0, self.n - 1))

    def paired(self, i, j):
        return bool(self.mask[i] and self.mask[j] and i != j)

    def carried_from_model(self, graph):
        edges = list(edges_of(graph))
        return [np.array([self.model[e][k] for e in edges], np.float32) for k in (1, 2)]

    def canonical(self, edges):
        """Edges with each pair listed once (as its smaller-first member when both are present)."""
        return [(i, j) for i, j in edges if not (self.paired(i, j) and j < i)]

    def snapshot(self):
        g = self.store.graph
        return [getattr(g, a).copy() for a in ARRAYS], [c.copy() for c in self.carry]

    # -------------------------------------------------------------- valid edits
    @rule(data=st.data())
    def edit(self, data):
        deletes = data.draw(st.lists(st.sampled_from(self.canonical(sorted(self.model))), unique=True)
                            if self.model else st.just([]))
        deleted = set(deletes) | {(j, i) for i, j in deletes if self.paired(i, j)}
        missing = [(i, j) for i in range(self.n) for j in range(self.n)
                   if ((i, j) not in self.model or (i, j) in deleted) and (i != j or self.loops)]
        once = lambda e: tuple(sorted(e)) if self.paired(*e) else e  # noqa: E731
        inserts = data.draw(st.lists(st.sampled_from(missing), unique_by=once) if missing else st.just([]))
        weights = data.draw(st.lists(WEIGHTS, min_size=len(inserts), max_size=len(inserts)))
        inits = [data.draw(st.floats(-1, 1, width=32) | st.lists(st.floats(-1, 1, width=32),
                                                                  min_size=len(inserts), max_size=len(inserts)))
                 for _ in range(2)]
        old_edges = list(edges_of(self.store.graph))
        out = self.store.apply_edits(
            Deletions(np.array([e[0] for e in deletes], np.int64), np.array([e[1] for e in deletes], np.int64)),
            Insertions(np.array([e[0] for e in inserts], np.int32), np.array([e[1] for e in inserts], np.int32),
                       np.array(weights, np.float32)),
            carry=self.carry, carry_init=inits)
        assert isinstance(out, EditResult) and out.graph is self.store.graph
        self.update_model(deletes, inserts, weights, inits)
        self.check_maps(out, old_edges, deleted, inserts)
        self.carry = list(out.carried)

    def update_model(self, deletes, inserts, weights, inits):
        for i, j in deletes:
            del self.model[(i, j)]
            if self.paired(i, j):
                del self.model[(j, i)]
        for k, ((i, j), w) in enumerate(zip(inserts, weights)):
            values = [np.float32(w)] + [np.float32(v if np.ndim(v) == 0 else v[k]) for v in inits]
            self.model[(i, j)] = values
            if self.paired(i, j):
                self.model[(j, i)] = list(values)

    def check_maps(self, out, old_edges, deleted, inserts):
        new_edges = list(edges_of(out.graph))
        assert out.old_to_new.dtype == np.int64 and out.old_to_new.shape == (len(old_edges),)
        for old, new in zip(old_edges, out.old_to_new):
            assert (new == -1) if old in deleted else (new_edges[new] == old)
        assert [new_edges[p] for p in out.inserted] == inserts
        for (i, j), p in zip(inserts, out.mirrored):
            assert new_edges[p] == (j, i) if self.paired(i, j) else p == -1

    @rule(data=st.data())
    def optimizer_step(self, data):
        """Change weights (pairs alike) and carried values in place, as training would."""
        g = self.store.graph
        seed = data.draw(st.integers(0, 2**16))
        rng = np.random.default_rng(seed)
        for k, (i, j) in enumerate(edges_of(g)):
            if not (self.paired(i, j) and j < i):
                w = np.float32(rng.normal())
                self.model[(i, j)][0] = w
                if self.paired(i, j):
                    self.model[(j, i)][0] = w
        for c in self.carry:
            c[:] = rng.normal(size=c.shape).astype(np.float32)
        g.weights[:] = [self.model[e][0] for e in edges_of(g)]
        for e, v, lr in zip(edges_of(g), *self.carry):
            self.model[e][1:] = [v, lr]

    # ------------------------------------------------------------ invalid edits
    def expect_error(self, match, **kwargs):
        before = self.snapshot()
        with pytest.raises(ValueError, match=match):
            self.store.apply_edits(carry=self.carry, **kwargs)
        after = self.snapshot()
        for x, y in zip(before[0] + before[1], after[0] + after[1]):
            np.testing.assert_array_equal(x, y)

    @precondition(lambda self: self.model)
    @rule(data=st.data(), w=WEIGHTS)
    def insert_existing(self, data, w):
        i, j = data.draw(st.sampled_from(sorted(self.model)))
        self.expect_error(rf"inserts: synapse \({i}, {j}\) already exists", inserts=([i], [j], [w]))

    @rule(data=st.data())
    def delete_missing(self, data):
        missing = [e for e in np.ndindex(self.n, self.n) if e not in self.model]
        if missing:
            i, j = data.draw(st.sampled_from(missing))
            self.expect_error(rf"deletes: synapse \({i}, {j}\) does not exist", deletes=([i], [j]))

    @rule(bad=st.integers(-3, -1) | st.integers(7, 12), which=st.sampled_from(["deletes", "inserts"]),
          end=st.sampled_from([0, 1]))
    def out_of_range(self, bad, which, end):
        bad = bad if bad < 0 else self.n + bad - 7
        ids = [[0], [0]]
        ids[end] = [bad]
        part = ("pre", "post")[end]
        kwargs = {"deletes": tuple(ids)} if which == "deletes" else {"inserts": (*ids, [1.0])}
        self.expect_error(rf"{which}: {part} ids must lie in \[0, {self.n}\), got {bad}", **kwargs)

    @precondition(lambda self: not self.loops)
    @rule(i=st.integers(0, 6))
    def self_loop(self, i):
        i %= self.n
        if (i, i) not in self.model:
            self.expect_error(rf"inserts: self-loop \({i}, {i}\) not allowed", inserts=([i], [i], [1.0]))

    @precondition(lambda self: self.model)
    @rule(data=st.data())
    def delete_twice(self, data):
        i, j = data.draw(st.sampled_from(sorted(self.model)))
        pre, post = ([i, j], [j, i]) if self.paired(i, j) else ([i, i], [j, j])
        self.expect_error("deletes lists synapse .* more than once", deletes=(pre, post))

    # ---------------------------------------------------------------- invariants
    @invariant()
    def matches_model(self):
        g = self.store.graph
        check_layout(g)
        edges = edges_of(g)
        assert set(edges) == set(self.model)
        for e, w in edges.items():
            assert w.tobytes() == self.model[e][0].tobytes(), e
        for k, c in enumerate(self.carry):
            assert c.dtype == np.float32 and c.shape == (g.nnz,)
            np.testing.assert_array_equal(c, [self.model[e][k + 1] for e in edges])

    @invariant()
    def same_as_fresh_graph(self):
        fresh = fresh_graph(self.n, {k: v[0] for k, v in self.model.items()})
        event(f"segments: {'some' if fresh.seg_pos.size else 'none'}")
        for name in ARRAYS:
            x, y = getattr(self.store.graph, name), getattr(fresh, name)
            assert x.dtype == y.dtype, name
            np.testing.assert_array_equal(x, y, err_msg=name)

    @invariant()
    def loops_and_pairs(self):
        edges = edges_of(self.store.graph)
        for (i, j), w in edges.items():
            assert i != j or self.loops
            if self.paired(i, j):
                assert edges[(j, i)].tobytes() == w.tobytes(), (i, j)
        np.testing.assert_array_equal(self.store.positions(*zip(*edges)) if edges else [], np.arange(len(edges)))


TestStoreMachine = StoreMachine.TestCase
TestStoreMachine.settings = settings(max_examples=150, stateful_step_count=25, deadline=None,
                                     suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much])


# ------------------------------------------------------------------ plain tests


def test_docstring_examples():
    result = doctest.testmod(topology.dynamic, optionflags=doctest.ELLIPSIS)
    assert result.attempted > 0 and result.failed == 0


def test_layered_eqprop_rewire_keeps_free_pairs_and_carries_state():
    g = layered([20, 10, 4], seed=0, feedback=True, density=0.3)
    free = np.arange(g.n) >= 20
    store = DynamicSynapseStore(g, symmetric_pairs=free)
    velocity = np.arange(g.nnz, dtype=np.float32)
    pre = np.repeat(np.arange(g.n), np.diff(g.indptr))
    hidden_out = np.flatnonzero((pre >= 20) & (pre < 30) & (g.indices >= 30))[:3]
    missing = [(i, j) for i in range(20, 30) for j in range(30, 34) if store.positions([i], [j])[0] < 0][:2]
    out = store.apply_edits(deletes=(pre[hidden_out], g.indices[hidden_out]),
                            inserts=([m[0] for m in missing], [m[1] for m in missing], [0.5, -0.5]),
                            carry=[velocity], carry_init=[7.0])
    assert out.graph.nnz == g.nnz - 6 + 4
    A = out.graph.to_scipy().toarray()
    np.testing.assert_array_equal(A[20:, 20:], A[20:, 20:].T)
    assert np.all(out.mirrored >= 0)
    np.testing.assert_array_equal(out.carried[0][np.concatenate([out.inserted, out.mirrored])], 7.0)
    kept = out.old_to_new >= 0
    np.testing.assert_array_equal(out.carried[0][out.old_to_new[kept]], velocity[kept])
    np.testing.assert_array_equal(out.graph.weights[out.old_to_new[kept]], g.weights[kept])


def test_input_synapses_are_not_paired_by_a_mask():
    g = SynapseGraph.from_edges(3, [0], [1], [1.0])
    store = DynamicSynapseStore(g, symmetric_pairs=np.array([False, True, True]))
    out = store.apply_edits(inserts=([0, 1], [2, 2], [2.0, 3.0]))
    assert sorted(edges_of(out.graph)) == [(0, 1), (0, 2), (1, 2), (2, 1)]
    assert out.mirrored.tolist() == [-1, 3]


def test_delete_then_reinsert_resets_the_synapse():
    store = DynamicSynapseStore(SynapseGraph.from_edges(2, [0], [1], [1.0]))
    out = store.apply_edits(deletes=([0], [1]), inserts=([0], [1], [2.0]),
                            carry=[np.array([5.0], np.float32)], carry_init=[0.0])
    assert out.graph.weights.tolist() == [2.0] and out.carried[0].tolist() == [0.0]
    assert out.old_to_new.tolist() == [-1] and out.inserted.tolist() == [0]


@pytest.mark.parametrize("kwargs, match", [
    ({"inserts": ([0], [1], [np.nan])}, "inserts: weights must be finite"),
    ({"inserts": ([0], [1], [1.0, 2.0])}, r"inserts: weight must have shape \(1,\)"),
    ({"inserts": ([0.5], [1], [1.0])}, None),
    ({"deletes": ([0, 1], [1])}, "deletes: pre and post must be 1-D of one length"),
    ({"inserts": ([0], [2])}, r"inserts must be \(pre, post, weight\)"),
    ({"deletes": ([0], [1], [2])}, r"deletes must be \(pre, post\)"),
    ({"carry": [np.zeros(3, np.float64)]}, r"carry\[0\] must be a float32 array of shape \(1,\)"),
    ({"carry": [np.zeros(1, np.float32)], "carry_init": [0.0, 1.0]}, "carry_init must have one entry"),
    ({"inserts": ([0], [2], [1.0]), "carry": [np.zeros(1, np.float32)], "carry_init": [[1.0, 2.0]]},
     r"carry_init\[0\] must be a scalar or have one value per insert \(1\)"),
])
def test_bad_arguments_are_named(kwargs, match):
    store = DynamicSynapseStore(SynapseGraph.from_edges(3, [0], [1], [1.0]))
    with pytest.raises(TypeError if match is None else ValueError, match=match or "inserts: pre ids must be integers"):
        store.apply_edits(**kwargs)
    assert store.nnz == 1


def test_pairs_listed_twice_or_both_ways_are_rejected():
    store = DynamicSynapseStore(SynapseGraph.from_edges(3, [0, 1], [1, 0], [1.0, 1.0]), symmetric_pairs=True)
    with pytest.raises(ValueError, match=r"deletes lists synapse \(.*\) more than once \(with symmetric_pairs"):
        store.apply_edits(deletes=([0, 1], [1, 0]))
    with pytest.raises(ValueError, match=r"inserts lists synapse \(.*\) more than once"):
        store.apply_edits(inserts=([1, 2], [2, 1], [1.0, 1.0]))


@pytest.mark.parametrize("pre, post, weight, match", [
    ([0], [1], [1.0], r"paired synapse \(0, 1\) without its mirror"),
    ([0, 1], [1, 0], [1.0, -1.0], "different weights"),
    ([0, 1], [1, 0], [0.0, -0.0], "different weights"),
])
def test_unpaired_start_graph_is_rejected(pre, post, weight, match):
    with pytest.raises(ValueError, match=match):
        DynamicSynapseStore(SynapseGraph.from_edges(2, pre, post, weight), symmetric_pairs=True)


def test_constructor_arguments():
    g = SynapseGraph.from_edges(2, [0], [0], [1.0])
    with pytest.raises(ValueError, match="self-loops but allow_self_loops is False"):
        DynamicSynapseStore(g)
    with pytest.raises(ValueError, match=r"symmetric_pairs must be a bool or a bool mask of shape \(2,\)"):
        DynamicSynapseStore(g, allow_self_loops=True, symmetric_pairs=[1, 0])
    with pytest.raises(TypeError, match="graph must be a topology.SynapseGraph"):
        DynamicSynapseStore(np.zeros((2, 2)))
