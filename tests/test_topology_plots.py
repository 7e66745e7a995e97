"""Topology-evolution figures (eventhorizon.topology_plots) drawn from fake run directories."""

import json

import numpy as np
import pytest
from PIL import Image

from eventhorizon.topology_plots import (
    GIF_FRAMES,
    _blocks,
    _evenly_spaced,
    _integer_bins,
    _plot_graph,
    _pool_presence,
    _Run,
    _tile_for,
    _write_gif,
    plot_topology_evolution,
)
from topology.generators import layered, random_sparse
from topology.snapshots import changed_pairs, save_snapshot
from topology.store import SynapseGraph

ALWAYS = ["topology_matrices.png", "topology_degrees.png", "topology_metrics.png", "topology_turnover.png"]


def _prune(graph, fraction, seed):
    """``graph`` without a random ``fraction`` of its synapses."""
    keep = np.random.default_rng(seed).random(graph.nnz) >= fraction
    return SynapseGraph.from_edges(graph.n, graph.pre_ids()[keep], graph.indices[keep], graph.weights[keep])


def _metrics(graph, n_layers, step):
    """Synthetic graph metrics with every key the index carries (some None, as metrics may be skipped)."""
    table = np.full((n_layers, n_layers), step + 1).tolist()
    return {"neurons": graph.n, "synapses": graph.nnz, "density": graph.nnz / graph.n ** 2,
            "layer_counts": table, "layer_density": None if n_layers == 1 else
            [[0.1 * (a + 1) if a != b else None for b in range(n_layers)] for a in range(n_layers)],
            "mean_degree": graph.nnz / graph.n, "max_in_degree": int(graph.fan_in().max()),
            "max_out_degree": int(graph.fan_out().max()), "isolated_neurons": step, "dead_units": 2 * step,
            "reciprocity": 0.4, "average_clustering": 0.01 * step, "clustering_sampled": step % 2 == 1,
            "weak_components": 1 + step, "largest_weak_component": graph.n - step, "strong_components": 50,
            "largest_strong_component": 30, "mean_shortest_path": None if step == 1 else 2.5,
            "path_sources": 16, "small_world_sigma": None, "weight_mean_abs": float(np.abs(graph.weights).mean()),
            "weight_std": float(graph.weights.std())}


def _make_run(run_dir, graphs, sizes=()):
    """A run directory with one snapshot per graph and its index.json."""
    topo = run_dir / "topology"
    topo.mkdir(parents=True)
    index, previous = [], None
    for k, graph in enumerate(graphs):
        born, died = changed_pairs(previous, graph) if previous is not None else (0, 0)
        info = {"step": 10 * k, "epoch": 0.5 * k, "samples_seen": 100 * k, "born": born, "died": died,
                "synapses": graph.nnz}
        name = f"snapshot_{10 * k:05d}.npz"
        save_snapshot(topo / name, graph, sizes, info)
        index.append({"file": name, "info": info, "metrics": _metrics(graph, max(len(sizes), 1), k)})
        previous = graph
    (topo / "index.json").write_text(json.dumps(index), encoding="utf-8")
    return run_dir


def _pruned_series(graph, count):
    graphs = [graph]
    for k in range(1, count):
        graphs.append(_prune(graphs[-1], 0.1, seed=k))
    return graphs


def _check_images(paths):
    for path in paths:
        with Image.open(path) as image:
            image.verify()
        with Image.open(path) as image:
            assert image.size[0] > 100 and image.size[1] > 100


def test_image_input_run_writes_fanout_and_gif(tmp_path):
    sizes = (784, 20, 10)
    graphs = _pruned_series(layered(sizes, seed=0, feedback=True, density=0.1), 3)
    run = _make_run(tmp_path / "run", graphs, sizes)
    paths = plot_topology_evolution(run)
    assert [p.name for p in paths] == ALWAYS + ["topology_input_fanout.png", "topology_evolution.gif"]
    assert all(p.parent == run / "figures" for p in paths)  # 804 neurons: no graph drawing
    _check_images(paths)
    with Image.open(run / "figures" / "topology_evolution.gif") as gif:
        assert gif.n_frames == 3


def test_small_layered_run_draws_graph_and_no_fanout(tmp_path):
    sizes = (12, 8, 4)
    graphs = _pruned_series(layered(sizes, seed=1, feedback=True, density=0.5), 2)
    run = _make_run(tmp_path / "run", graphs, sizes)
    out = tmp_path / "figs"
    paths = plot_topology_evolution(run, out_dir=out, gif=False)
    assert [p.name for p in paths] == ALWAYS + ["topology_graph.png"]
    assert all(p.parent == out for p in paths) and not (run / "figures").exists()
    _check_images(paths)


def test_large_non_layered_single_snapshot(tmp_path):
    run = _make_run(tmp_path / "run", [random_sparse(160, 0.05, seed=3)])
    paths = plot_topology_evolution(run)  # one snapshot: no GIF; 160 neurons: no drawing
    assert [p.name for p in paths] == ALWAYS
    _check_images(paths)


def test_non_layered_graph_drawing(tmp_path):
    dense = random_sparse(40, 0.1, seed=2).to_scipy().toarray()
    graphs = [SynapseGraph.from_dense(dense), SynapseGraph.from_dense(np.where(np.abs(dense) > 0.2, dense, 0))]
    run = _Run(_make_run(tmp_path / "run", graphs))
    assert not run.layered
    _check_images([_plot_graph(run, tmp_path / "graph.png")])


def test_gif_frames_are_capped_and_evenly_spaced(tmp_path, monkeypatch):
    assert GIF_FRAMES == 60
    monkeypatch.setattr("eventhorizon.topology_plots.GIF_FRAMES", 3)
    sizes = (6, 4)
    graphs = _pruned_series(layered(sizes, seed=4, density=0.9), 7)
    run = _Run(_make_run(tmp_path / "run", graphs, sizes))
    with Image.open(_write_gif(run, tmp_path / "evolution.gif")) as gif:
        assert gif.n_frames == 3


def test_missing_index_names_the_file(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"index\.json.*no \[plasticity\] snapshots"):
        plot_topology_evolution(tmp_path)


def test_empty_index_is_rejected(tmp_path):
    (tmp_path / "topology").mkdir()
    (tmp_path / "topology" / "index.json").write_text("[]")
    with pytest.raises(ValueError, match="non-empty JSON list"):
        plot_topology_evolution(tmp_path)


def test_pool_presence_matches_a_loop():
    rng = np.random.default_rng(5)
    dense = rng.random((23, 17)) < 0.3
    rows, cols = np.nonzero(dense)
    for tile in [(1, 1), (4, 3), (5, 5), (23, 17), (7, 2)]:
        expected = np.zeros((-(-23 // tile[0]), -(-17 // tile[1])))
        for i in range(expected.shape[0]):
            for j in range(expected.shape[1]):
                expected[i, j] = dense[i * tile[0]:(i + 1) * tile[0], j * tile[1]:(j + 1) * tile[1]].mean()
        np.testing.assert_allclose(_pool_presence(rows, cols, dense.shape, tile), expected)


def test_small_helpers():
    assert _evenly_spaced(100, 6).tolist() == [0, 20, 40, 59, 79, 99]
    assert _evenly_spaced(1, 6).tolist() == [0]
    assert _tile_for((784, 500)) == (8, 5) and _tile_for((100, 3)) == (1, 1)
    edges = _integer_bins(10, 130)
    widths = np.diff(edges)
    assert len(widths) <= 40 and np.all(widths == widths[0]) and widths[0] == int(widths[0])
    assert edges[0] < 10 < edges[-1] and edges[0] < 130 < edges[-1]


def test_feedback_blocks_that_mirror_are_left_out(tmp_path):
    sizes = (5, 4, 3)
    mirrored = layered(sizes, seed=6, feedback=True)
    run = _Run(_make_run(tmp_path / "a", [mirrored], sizes))
    blocks, note = _blocks(run, [mirrored])
    assert [b.name for b in blocks] == ["layer 0 → 1", "layer 1 → 2"] and "2 → 1" in note
    # drop one feedback synapse: the feedback block no longer mirrors and is shown
    adjacency = mirrored.to_scipy().toarray()
    adjacency[9, 5] = 0.0
    broken = SynapseGraph.from_dense(adjacency)
    run = _Run(_make_run(tmp_path / "b", [broken], sizes))
    blocks, note = _blocks(run, [broken])
    assert [b.name for b in blocks] == ["layer 0 → 1", "layer 1 → 2", "layer 2 → 1"] and note == ""
