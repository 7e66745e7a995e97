"""Graph metrics and GraphML/GEXF export against plain-Python references."""

import json
import math
import statistics
from collections import deque
from itertools import combinations

import networkx as nx
import numpy as np
import pytest
import scipy.sparse as sp
from hypothesis import given, settings
from hypothesis import strategies as st

from topology.export import GRAPH_FORMATS, write_graph
from topology.generators import layered, random_sparse
from topology.metrics import graph_metrics, layer_of
from graph_strategies import small_graphs
from topology.store import SynapseGraph

PROPS = settings(max_examples=60, deadline=None, derandomize=True)

KEYS = {"neurons", "synapses", "density", "layer_counts", "layer_density", "mean_degree", "max_in_degree",
        "max_out_degree", "isolated_neurons", "dead_units", "reciprocity", "average_clustering",
        "clustering_sampled", "weak_components", "largest_weak_component", "strong_components",
        "largest_strong_component", "mean_shortest_path", "path_sources", "small_world_sigma",
        "weight_mean_abs", "weight_std"}


def graphs(max_n=9):
    return small_graphs(max_n=max_n, min_density=0.05)


@st.composite
def layer_splits(draw, n):
    cuts = sorted(draw(st.lists(st.integers(0, n), max_size=3)))
    bounds = [0, *cuts, n]
    return [b - a for a, b in zip(bounds[:-1], bounds[1:])]


# ------------------------------------------------------------- plain-Python references
def edges(graph):
    pre = np.repeat(np.arange(graph.n), np.diff(graph.indptr))
    return [(int(i), int(j)) for i, j in zip(pre, graph.indices)]


def successors(graph, undirected=False):
    succ = {v: set() for v in range(graph.n)}
    for i, j in edges(graph):
        succ[i].add(j)
        if undirected:
            succ[j].add(i)
    return succ


def bfs(succ, source):
    dist, queue = {source: 0}, deque([source])
    while queue:
        v = queue.popleft()
        for w in succ[v]:
            if w not in dist:
                dist[w] = dist[v] + 1
                queue.append(w)
    return dist


def mean_path(succ, sources):
    lengths = [d for s in sources for d in bfs(succ, s).values() if d > 0]
    return sum(lengths) / len(lengths) if lengths else None


def weak_components(graph):
    succ, seen, sizes = successors(graph, undirected=True), set(), []
    for v in range(graph.n):
        if v not in seen:
            comp = set(bfs(succ, v))
            seen |= comp
            sizes.append(len(comp))
    return sizes


def strong_components(graph):
    succ = successors(graph)
    reach = {v: set(bfs(succ, v)) for v in range(graph.n)}
    classes = {frozenset(w for w in reach[v] if v in reach[w]) for v in range(graph.n)}
    return [len(c) for c in classes]


def clustering(graph):
    nbrs = {v: s - {v} for v, s in successors(graph, undirected=True).items()}
    coeffs = []
    for v in range(graph.n):
        pairs = list(combinations(sorted(nbrs[v]), 2))
        coeffs.append(sum(b in nbrs[a] for a, b in pairs) / len(pairs) if pairs else 0.0)
    return sum(coeffs) / graph.n


def reference(graph, layer_sizes):
    n, es = graph.n, edges(graph)
    edge_set = set(es)
    layer = [a for a, size in enumerate(layer_sizes) for _ in range(size)]
    n_layers = len(layer_sizes)
    counts = [[0] * n_layers for _ in range(n_layers)]
    fed = set()
    for i, j in es:
        if n_layers:
            counts[layer[i]][layer[j]] += 1
            if layer[i] == layer[j] - 1:
                fed.add(j)
    density = [[counts[a][b] / (layer_sizes[a] * layer_sizes[b] - (layer_sizes[a] if a == b else 0))
                if layer_sizes[a] * layer_sizes[b] - (layer_sizes[a] if a == b else 0) else None
                for b in range(n_layers)] for a in range(n_layers)]
    fan_out = [sum(i == v for i, _ in es) for v in range(n)]
    fan_in = [sum(j == v for _, j in es) for v in range(n)]
    weights = [float(w) for w in graph.weights]
    c = clustering(graph)
    undirected = successors(graph, undirected=True)
    n_undirected = len({frozenset(e) for e in es if e[0] != e[1]})
    k = 2 * n_undirected / n
    path_u = mean_path(undirected, range(n))
    sigma = None if c == 0 or k <= 1 or path_u is None else (c / (k / n)) / (path_u / (math.log(n) / math.log(k)))
    weak, strong = weak_components(graph), strong_components(graph)
    return {
        "neurons": n,
        "synapses": len(es),
        "density": len(es) / (n * (n - 1)),
        "layer_counts": counts,
        "layer_density": density,
        "mean_degree": len(es) / n,
        "max_in_degree": max(fan_in),
        "max_out_degree": max(fan_out),
        "isolated_neurons": sum(fan_in[v] == fan_out[v] == 0 for v in range(n)),
        "dead_units": sum(layer[v] > 0 and v not in fed for v in range(n)),
        "reciprocity": sum((j, i) in edge_set and i != j for i, j in es) / len(es) if es else 0.0,
        "average_clustering": c,
        "clustering_sampled": False,
        "weak_components": len(weak),
        "largest_weak_component": max(weak),
        "strong_components": len(strong),
        "largest_strong_component": max(strong),
        "mean_shortest_path": mean_path(successors(graph), range(n)),
        "path_sources": n,
        "small_world_sigma": sigma,
        "weight_mean_abs": sum(abs(w) for w in weights) / len(weights) if weights else 0.0,
        "weight_std": statistics.pstdev(weights) if weights else 0.0,
    }


def assert_same(got, want):
    assert set(got) == set(want) == KEYS
    for key, value in want.items():
        if isinstance(value, float):
            assert got[key] == pytest.approx(value, rel=1e-9, abs=1e-12), key
        elif key == "layer_density":
            assert got[key] == [[pytest.approx(x) if x is not None else None for x in row] for row in value]
        else:
            assert got[key] == value, key


def assert_plain(value):
    """Only builtin JSON types, recursively (numpy scalars are rejected even when they subclass float)."""
    assert type(value) in (int, float, bool, type(None), list, dict), (value, type(value))
    if isinstance(value, list):
        for item in value:
            assert_plain(item)
    if isinstance(value, dict):
        for item in value.values():
            assert_plain(item)


# ------------------------------------------------------------------------------ metrics
@PROPS
@given(st.data())
def test_metrics_match_plain_python_references(data):
    graph = data.draw(graphs())
    sizes = data.draw(layer_splits(graph.n))
    got = graph_metrics(graph, layer_sizes=sizes, path_sources=graph.n)
    assert_same(got, reference(graph, sizes))
    assert_plain(got)


@PROPS
@given(graphs())
def test_clustering_and_reciprocity_agree_with_networkx(graph):
    got = graph_metrics(graph)
    undirected = nx.Graph(graph.to_networkx())
    assert got["average_clustering"] == pytest.approx(nx.average_clustering(undirected))
    if graph.nnz:
        assert got["reciprocity"] == pytest.approx(nx.reciprocity(graph.to_networkx()))


def test_self_loops_are_unreciprocated_and_ignored_by_clustering():
    g = SynapseGraph.from_edges(3, pre=[0, 0, 1, 1, 2, 2], post=[0, 1, 0, 2, 0, 2], weight=[1.0] * 6)
    m = graph_metrics(g)
    assert m["reciprocity"] == pytest.approx(2 / 6)  # 0->1 and 1->0; self-loops and 1->2, 2->0 are not
    assert m["average_clustering"] == 1.0  # the triangle 0-1-2
    assert m["density"] == 6 / 6


def test_zero_weight_synapses_count():
    adjacency = sp.csr_array((np.array([0.0, 2.0], np.float32), np.array([1, 0]), np.array([0, 1, 2])), shape=(2, 2))
    m = graph_metrics(SynapseGraph.from_adjacency(adjacency))
    assert m["synapses"] == 2 and m["reciprocity"] == 1.0 and m["strong_components"] == 1
    assert m["mean_shortest_path"] == 1.0


def test_sampled_paths_are_deterministic_and_use_the_seeded_sources():
    g = random_sparse(150, 0.03, seed=3)
    a = graph_metrics(g, seed=7, path_sources=16)
    assert a == graph_metrics(g, seed=7, path_sources=16)
    assert a["path_sources"] == 16
    sources = np.random.default_rng(7).choice(g.n, size=16, replace=False).tolist()
    assert a["mean_shortest_path"] == pytest.approx(mean_path(successors(g), sources))
    exact = graph_metrics(g, path_sources=g.n)
    assert exact["path_sources"] == g.n
    assert exact["mean_shortest_path"] == pytest.approx(mean_path(successors(g), range(g.n)))


def test_sampled_clustering_is_deterministic_and_close_to_exact():
    g = random_sparse(200, 0.1, seed=1)
    exact = graph_metrics(g)
    sampled = graph_metrics(g, seed=5, exact_limit=100)
    assert not exact["clustering_sampled"] and sampled["clustering_sampled"]
    assert sampled == graph_metrics(g, seed=5, exact_limit=100)
    assert exact["average_clustering"] > 0.1
    assert sampled["average_clustering"] == pytest.approx(exact["average_clustering"], abs=0.03)


def test_small_world_sigma_of_a_watts_strogatz_graph():
    ws = nx.watts_strogatz_graph(60, 6, 0.1, seed=1)
    pairs = [(i, j) for u, v in ws.edges() for i, j in ((u, v), (v, u))]
    pre, post = zip(*pairs)
    g = SynapseGraph.from_edges(60, pre, post, [1.0] * len(pairs))
    m = graph_metrics(g, path_sources=60)
    expected = (nx.average_clustering(ws) / (6 / 60)) / (
        nx.average_shortest_path_length(ws) / (math.log(60) / math.log(6)))
    assert m["small_world_sigma"] == pytest.approx(expected)
    assert m["small_world_sigma"] > 1
    assert m["reciprocity"] == 1.0


def test_layered_network_has_no_triangles_so_sigma_is_undefined():
    sizes = (784, 500, 10)
    g = layered(sizes, 0, feedback=True, density=0.1)
    m = graph_metrics(g, layer_sizes=sizes)
    json.loads(json.dumps(m))
    assert m["average_clustering"] == 0.0 and m["small_world_sigma"] is None
    assert m["layer_counts"][1][2] == m["layer_counts"][2][1] and m["layer_counts"][1][0] == 0
    assert m["layer_density"][0][1] == pytest.approx(0.1, abs=0.01)
    assert m["path_sources"] == 64 and m["weak_components"] == 1


def test_dead_units_and_none_density_for_empty_blocks():
    # layers [0,1] -> [2,3] -> [4]; neuron 3 gets nothing from layer 0, layer [5] is fed by nobody
    g = SynapseGraph.from_edges(6, pre=[0, 1, 2, 3, 4], post=[2, 2, 4, 4, 5], weight=[1.0] * 5)
    m = graph_metrics(g, layer_sizes=[2, 2, 1, 1])
    assert m["dead_units"] == 1
    assert m["layer_density"][2][2] is None and m["layer_density"][2][3] == 1.0
    m = graph_metrics(g, layer_sizes=[2, 0, 4])
    assert m["dead_units"] == 4  # the previous layer of [2..5] is the empty one
    assert m["layer_density"][1] == [None, None, None]


def test_edge_cases():
    empty = SynapseGraph(np.zeros(1), [], [], 0)
    m = graph_metrics(empty)
    assert set(m) == KEYS
    assert m["neurons"] == m["synapses"] == m["weak_components"] == m["path_sources"] == 0
    assert m["density"] == m["mean_degree"] == m["reciprocity"] == m["average_clustering"] == 0.0
    assert m["mean_shortest_path"] is None and m["small_world_sigma"] is None

    single = graph_metrics(SynapseGraph.from_dense([[0.0]]), layer_sizes=[1])
    assert single["isolated_neurons"] == 1 and single["weak_components"] == single["strong_components"] == 1
    assert single["layer_counts"] == [[0]] and single["layer_density"] == [[None]] and single["dead_units"] == 0

    no_edges = graph_metrics(SynapseGraph.from_dense(np.zeros((4, 4))), layer_sizes=[2, 2])
    assert no_edges["isolated_neurons"] == 4 and no_edges["dead_units"] == 2 and no_edges["weight_std"] == 0.0
    assert no_edges["largest_strong_component"] == 1 and no_edges["mean_shortest_path"] is None

    no_layers = graph_metrics(layered([3, 2], seed=0))
    assert no_layers["layer_counts"] == [] and no_layers["layer_density"] == [] and no_layers["dead_units"] == 0
    for m in (m, single, no_edges, no_layers):
        assert json.loads(json.dumps(m)) == m
        assert_plain(m)


@pytest.mark.parametrize("kwargs, message", [
    ({"layer_sizes": [2, 2]}, "layer_sizes must be non-negative integer layer sizes summing to n = 5"),
    ({"layer_sizes": [6, -1]}, "layer_sizes"),
    ({"layer_sizes": [2.5, 2.5]}, "layer_sizes"),
    ({"seed": -1}, "seed must be an int >= 0"),
    ({"path_sources": 0}, "path_sources must be an int >= 1"),
    ({"exact_limit": 1.5}, "exact_limit must be an int >= 0"),
])
def test_bad_arguments(kwargs, message):
    with pytest.raises(ValueError, match=message):
        graph_metrics(layered([3, 2], seed=0), **kwargs)


def test_layer_of():
    assert layer_of(np.array([1, 2]), 3).tolist() == [0, 1, 1]
    assert layer_of((), 4).tolist() == []


# ------------------------------------------------------------------------------- export
def read(path, fmt):
    return (nx.read_graphml if fmt == "graphml" else nx.read_gexf)(path, node_type=int)


@pytest.mark.parametrize("fmt", GRAPH_FORMATS)
@pytest.mark.parametrize("with_layers", [True, False])
def test_export_round_trip(tmp_path, fmt, with_layers):
    sizes = [4, 3, 2]
    g = layered(sizes, seed=2, feedback=True, density=0.7)
    out = write_graph(g, tmp_path / f"net.{fmt}", layer_sizes=sizes if with_layers else ())
    assert out == tmp_path / f"net.{fmt}" and [p.name for p in tmp_path.iterdir()] == [out.name]
    h = read(out, fmt)
    assert h.is_directed() and sorted(h.nodes) == list(range(g.n))
    expected = {e: float(w) for e, w in zip(edges(g), g.weights)}
    got = {(u, v): w for u, v, w in h.edges(data="weight")}
    assert set(got) == set(expected)
    for e, w in expected.items():
        assert type(got[e]) is float and np.float32(got[e]) == np.float32(w)
    layers = dict(h.nodes(data="layer"))
    if with_layers:
        assert layers == {v: int(layer) for v, layer in enumerate(layer_of(sizes, g.n))}
    else:
        assert set(layers.values()) == {None}


def test_export_explicit_format_and_overwrite(tmp_path):
    g = SynapseGraph.from_edges(2, [0], [1], [0.25])
    path = tmp_path / "net.xml"
    write_graph(SynapseGraph.from_edges(2, [1], [0], [1.0]), path, fmt="gexf")
    write_graph(g, str(path), fmt="gexf")
    assert list(read(path, "gexf").edges(data="weight")) == [(0, 1, 0.25)]


@pytest.mark.parametrize("name, fmt", [("net.txt", None), ("net", None), ("net.graphml", "dot")])
def test_export_bad_format(tmp_path, name, fmt):
    g = SynapseGraph.from_edges(2, [0], [1], [0.25])
    with pytest.raises(ValueError, match=r"cannot write .*net.* must be one of graphml, gexf"):
        write_graph(g, tmp_path / name, fmt=fmt)
    assert list(tmp_path.iterdir()) == []


def test_export_bad_layer_sizes(tmp_path):
    with pytest.raises(ValueError, match="layer_sizes"):
        write_graph(SynapseGraph.from_edges(2, [0], [1], [0.25]), tmp_path / "g.gexf", layer_sizes=[3])
    assert list(tmp_path.iterdir()) == []
