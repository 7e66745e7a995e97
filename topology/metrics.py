"""Structural metrics of a synapse graph, as one JSON-serialisable record.

:func:`graph_metrics` returns a dict of plain Python values (int, float,
bool, None and lists; no numpy scalars) with exactly these keys:

* ``neurons`` — ``graph.n``;
* ``synapses`` — ``graph.nnz``;
* ``density`` — ``synapses / (n (n - 1))`` (``0.0`` when ``n < 2``);
* ``layer_counts`` — ``L x L`` synapse counts from layer ``a`` (row) to layer ``b`` (column);
* ``layer_density`` — ``layer_counts`` over each block's capacity (``None`` where it is 0);
* ``mean_degree`` — ``synapses / neurons`` (mean in- or out-degree);
* ``max_in_degree``, ``max_out_degree`` — the largest fan-in and fan-out;
* ``isolated_neurons`` — neurons with neither in- nor out-synapses;
* ``dead_units`` — neurons of layers ``1..L-1`` without a synapse from the previous layer;
* ``reciprocity`` — fraction of synapses whose reverse synapse exists;
* ``average_clustering`` — mean clustering coefficient of the undirected simple graph;
* ``clustering_sampled`` — whether ``average_clustering`` was *sampled* (``n > exact_limit``);
* ``weak_components``, ``largest_weak_component`` — weakly connected components and the largest's size;
* ``strong_components``, ``largest_strong_component`` — the same for strongly connected components;
* ``mean_shortest_path`` — mean directed hop count over reachable ordered pairs, *sampled*
  from ``path_sources`` source neurons when ``n > path_sources``;
* ``path_sources`` — how many source neurons the path lengths used (``n`` when exact);
* ``small_world_sigma`` — Humphries' small-world sigma (uses the same, possibly sampled,
  clustering and path estimates);
* ``weight_mean_abs``, ``weight_std`` — mean ``|w|`` and (population) standard deviation of ``w``.

Layers are consecutive id ranges given by ``layer_sizes`` (as in
:func:`topology.generators.layered` and :mod:`topology.snapshots`); without
them ``layer_counts`` and ``layer_density`` are ``[]`` and ``dead_units`` is 0.
Synapses are structural: one of weight 0 still counts.
"""

import math

import networkx as nx
import numpy as np
import scipy.sparse as sp
from networkx.algorithms import approximation
from scipy.sparse import csgraph

__all__ = ["CLUSTERING_TRIALS", "graph_metrics", "layer_of"]

CLUSTERING_TRIALS = 5000
"""Random node/neighbour-pair trials of the sampled clustering estimate (standard error <= 0.007)."""


def _check_int(name, value, minimum):
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < minimum:
        raise ValueError(f"{name} must be an int >= {minimum}, got {value!r}")
    return int(value)


def layer_of(layer_sizes, n):
    """Layer index of every neuron (int64 array) for layers of consecutive ids.

    Parameters
    ----------
    layer_sizes : sequence of int
        Neurons per layer in id order; non-negative and summing to ``n``.
    n : int
        Number of neurons.

    Examples
    --------
    >>> layer_of([2, 0, 3], 5).tolist()
    [0, 0, 2, 2, 2]
    """
    sizes = np.asarray(layer_sizes)
    valid = sizes.ndim == 1 and (sizes.size == 0 or np.issubdtype(sizes.dtype, np.integer))
    if not valid or (sizes.size and (sizes.min() < 0 or int(sizes.sum()) != n)):
        raise ValueError(f"layer_sizes must be non-negative integer layer sizes summing to n = {n}, "
                         f"got {np.asarray(layer_sizes).tolist()}")
    return np.repeat(np.arange(sizes.size, dtype=np.int64), sizes.astype(np.int64))


def _pattern(graph):
    """Structural adjacency (all stored synapses, weight 1) as float64 CSR."""
    return sp.csr_array((np.ones(graph.nnz), graph.indices, graph.indptr), shape=(graph.n, graph.n))


def _undirected(pattern):
    """The undirected simple graph (no self-loops) as a symmetric CSR and a networkx Graph."""
    sym = sp.triu(pattern + pattern.T, k=1, format="coo")
    graph = nx.Graph()
    graph.add_nodes_from(range(pattern.shape[0]))
    graph.add_edges_from(zip(sym.row.tolist(), sym.col.tolist()))
    return sp.csr_array(sym + sym.T), graph


def _layer_metrics(graph, layer_sizes):
    layer = layer_of(layer_sizes, graph.n)
    n_layers = int(np.asarray(layer_sizes).size)
    if n_layers == 0:
        return {"layer_counts": [], "layer_density": [], "dead_units": 0}
    pre, post = layer[graph.pre_ids()], layer[graph.indices]
    counts = np.bincount(pre * n_layers + post, minlength=n_layers * n_layers).reshape(n_layers, n_layers)
    sizes = np.bincount(layer, minlength=n_layers)
    capacity = np.outer(sizes, sizes) - np.diag(sizes)
    density = [[int(c) / int(cap) if cap else None for c, cap in zip(row, cap_row)]
               for row, cap_row in zip(counts, capacity)]
    fed = np.zeros(graph.n, bool)
    fed[graph.indices[pre == post - 1]] = True
    dead = int(np.count_nonzero(~fed & (layer > 0)))
    return {"layer_counts": counts.tolist(), "layer_density": density, "dead_units": dead}


def _reciprocity(graph):
    if graph.nnz == 0:
        return 0.0
    digraph = nx.DiGraph()
    digraph.add_nodes_from(range(graph.n))
    digraph.add_edges_from(zip(graph.pre_ids().tolist(), graph.indices.tolist()))
    return float(nx.reciprocity(digraph))


def _average_clustering(undirected, exact_limit, seed):
    """``(clustering, sampled)``; exact from :func:`networkx.triangles` (as ``nx.average_clustering``)."""
    n = undirected.number_of_nodes()
    if n == 0:
        return 0.0, False
    if n > exact_limit:
        return float(approximation.average_clustering(undirected, trials=CLUSTERING_TRIALS, seed=seed)), True
    triangles = nx.triangles(undirected)
    total = sum(2.0 * triangles[v] / (d * (d - 1)) for v, d in undirected.degree() if d > 1)
    return total / n, False


def _components(pattern, connection):
    if pattern.shape[0] == 0:
        return 0, 0
    count, labels = csgraph.connected_components(pattern, directed=True, connection=connection)
    return int(count), int(np.bincount(labels).max())


def _path_sources(n, path_sources, seed):
    if n <= path_sources:
        return np.arange(n)
    return np.sort(np.random.default_rng(seed).choice(n, size=path_sources, replace=False))


def _mean_path(matrix, sources, directed):
    if sources.size == 0:
        return None
    dist = csgraph.shortest_path(matrix, directed=directed, unweighted=True, indices=sources)
    reachable = dist[np.isfinite(dist) & (dist > 0)]
    return float(reachable.mean()) if reachable.size else None


def _small_world_sigma(clustering, path_length, n_edges, n):
    k = 2.0 * n_edges / n if n else 0.0
    if clustering == 0 or k <= 1 or path_length is None:
        return None
    return (clustering / (k / n)) / (path_length / (math.log(n) / math.log(k)))


def graph_metrics(graph, layer_sizes=(), seed=0, exact_limit=3000, path_sources=64):
    """Structural metrics of ``graph`` as a JSON-serialisable dict (keys in the module docstring).

    Parameters
    ----------
    graph : SynapseGraph
    layer_sizes : sequence of int
        Neurons per layer in id order, summing to ``graph.n``; empty for no layers.
    seed : int
        Seeds the sampled estimates, which are deterministic for it.
    exact_limit : int
        Largest ``n`` whose clustering is computed exactly (triangle counts of
        :func:`networkx.triangles`, equal to :func:`networkx.average_clustering`);
        above it, :func:`networkx.algorithms.approximation.average_clustering`
        samples :data:`CLUSTERING_TRIALS` nodes (``clustering_sampled`` is True).
    path_sources : int
        Shortest paths start from every neuron when ``n <= path_sources``, else
        from ``path_sources`` neurons drawn without replacement by
        ``np.random.default_rng(seed)``.

    Returns
    -------
    dict

    Notes
    -----
    Components come from :func:`scipy.sparse.csgraph.connected_components`
    (an isolated neuron is a component of its own) and path lengths from
    :func:`scipy.sparse.csgraph.shortest_path` in hops. ``small_world_sigma``
    is Humphries' ``sigma = (C / C_rand) / (L / L_rand)`` with ``C`` the
    clustering and ``L`` the mean shortest path of the undirected graph (same
    sources), against the Erdős–Rényi estimates ``C_rand = k / n`` and
    ``L_rand = ln(n) / ln(k)`` for mean undirected degree ``k``. It is None
    when ``C == 0``, ``k <= 1`` or no pair is connected; in particular a
    strictly layered graph (feed-forward, with or without symmetric feedback)
    has no triangles, so its sigma is undefined (None).

    Examples
    --------
    >>> from topology.generators import layered
    >>> m = graph_metrics(layered([4, 3, 2], seed=0, feedback=True), layer_sizes=[4, 3, 2])
    >>> m["synapses"], m["layer_counts"], m["reciprocity"]
    (24, [[0, 12, 0], [0, 0, 6], [0, 6, 0]], 0.5)
    >>> m["weak_components"], m["strong_components"], m["small_world_sigma"]
    (1, 5, None)
    """
    seed = _check_int("seed", seed, 0)
    exact_limit = _check_int("exact_limit", exact_limit, 0)
    path_sources = _check_int("path_sources", path_sources, 1)
    n, nnz = graph.n, graph.nnz
    layers = _layer_metrics(graph, layer_sizes)
    fan_in, fan_out = graph.fan_in(), graph.fan_out()
    pattern = _pattern(graph)
    sym, undirected = _undirected(pattern)
    clustering, sampled = _average_clustering(undirected, exact_limit, seed)
    weak, largest_weak = _components(pattern, "weak")
    strong, largest_strong = _components(pattern, "strong")
    sources = _path_sources(n, path_sources, seed)
    path = _mean_path(pattern, sources, directed=True)
    undirected_path = _mean_path(sym, sources, directed=False)
    weights = graph.weights.astype(np.float64)
    return {
        "neurons": n,
        "synapses": nnz,
        "density": nnz / (n * (n - 1)) if n >= 2 else 0.0,
        "layer_counts": layers["layer_counts"],
        "layer_density": layers["layer_density"],
        "mean_degree": nnz / n if n else 0.0,
        "max_in_degree": int(fan_in.max()) if n else 0,
        "max_out_degree": int(fan_out.max()) if n else 0,
        "isolated_neurons": int(np.count_nonzero((fan_in == 0) & (fan_out == 0))),
        "dead_units": layers["dead_units"],
        "reciprocity": _reciprocity(graph),
        "average_clustering": clustering,
        "clustering_sampled": sampled,
        "weak_components": weak,
        "largest_weak_component": largest_weak,
        "strong_components": strong,
        "largest_strong_component": largest_strong,
        "mean_shortest_path": path,
        "path_sources": int(sources.size),
        "small_world_sigma": _small_world_sigma(clustering, undirected_path, undirected.number_of_edges(), n),
        "weight_mean_abs": float(np.abs(weights).mean()) if nnz else 0.0,
        "weight_std": float(weights.std()) if nnz else 0.0,
    }
