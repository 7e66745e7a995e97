"""One structural-plasticity step on an EqProp model: prune by magnitude, regrow, density held.

The rules themselves live in :mod:`topology.rules` (they only choose edits);
this module applies them to a live :class:`~eventhorizon.eqprop.EqPropModel`
through :meth:`~eventhorizon.eqprop.EqPropModel.rewire`, counting forward
synapses only (a free-free synapse and its mirror are one pair).
"""

import json
import time

import numpy as np

from eventhorizon.learning import schedule_factor
from topology.dynamic import Insertions
from topology.rules import (block_capacity, budget_for_density, grow_random, grow_top_scores, in_blocks,
                            prune_smallest)
from topology.snapshots import changed_pairs, index_path, load_snapshot, save_snapshot

__all__ = ["forward_blocks", "forward_count", "plasticity_step", "SnapshotRecorder"]


def forward_blocks(sizes):
    """``(pre_lo, pre_hi, post_lo, post_hi)`` of every layer-to-next-layer block.

    Examples
    --------
    >>> forward_blocks((4, 3, 2))
    [(0, 4, 4, 7), (4, 7, 7, 9)]
    """
    o = np.concatenate([[0], np.cumsum(sizes)]).astype(int).tolist()
    return [(o[l], o[l + 1], o[l + 1], o[l + 2]) for l in range(len(sizes) - 1)]


def forward_count(graph):
    """Synapses ``pre → post`` with ``pre < post`` (each symmetric pair once)."""
    return int(np.count_nonzero(graph.pre_ids() < graph.indices))


def rewire_fraction_at(section, progress):
    """Fraction of the synapses a plasticity step rewires when ``progress`` of the training is done.

    ``section.rewire_fraction`` throughout (``rewire_schedule = "constant"``)
    or decayed as ``½(1 + cos(π·progress/stop_after))`` (``"cosine"``, RigL's
    schedule, which reaches 0 at ``stop_after``); 0 after ``section.stop_after``.

    Examples
    --------
    >>> from types import SimpleNamespace
    >>> rigl = SimpleNamespace(rewire_fraction=0.3, rewire_schedule="cosine", stop_after=0.75)
    >>> [round(rewire_fraction_at(rigl, p), 3) for p in (0.0, 0.375, 0.75, 0.9)]
    [0.3, 0.15, 0.0, 0.0]
    """
    if progress > section.stop_after:
        return 0.0
    return section.rewire_fraction * schedule_factor(section.rewire_schedule, progress, section.stop_after)


def plasticity_step(model, section, X, labels, seed, fraction=None, score=None):
    """Prune ``rewire_fraction`` of the synapses by magnitude and grow as many, keeping the density.

    With ``section.regrow_pruned`` false, only pairs that were missing before
    the step may grow, so a synapse just pruned is not grown again at once
    (with its weight reset to 0) and the step rewires its whole budget.

    With ``section.budget == "global"`` the smallest ``|W|`` of the whole
    network go and the new synapses may land in any layer-to-layer block;
    with ``"per_block"`` (RigL) each block that has missing synapses rewires
    its own fraction, so every block keeps its density (a dense block is left
    alone).

    Parameters
    ----------
    model : EqPropModel
    section : eventhorizon.scenario.PlasticitySection
    X, labels : ndarray
        Samples for the gradient growth score (the first ``score_samples`` are used).
    seed : sequence of int
        Seeds random regrowth (e.g. ``[seed, epoch, step]``, so a resumed run repeats it).
    fraction : float, optional
        Fraction rewired (default ``section.rewire_fraction``; see :func:`rewire_fraction_at`).
    score : eventhorizon.eqprop.CandidateScore, optional
        The gradient growth score, if already at hand (e.g. from a
        :class:`~eventhorizon.eqprop.StateWindow`); else it is measured on ``X``.

    Returns
    -------
    dict
        ``pruned``, ``grown`` (forward synapses), ``density`` (of the allowed
        layer-to-layer synapses) and ``seconds``.

    Examples
    --------
    >>> from types import SimpleNamespace
    >>> from eventhorizon.eqprop import EqPropConfig, EqPropModel
    >>> from topology.generators import layered
    >>> model = EqPropModel(EqPropConfig(sizes=(4, 3, 2)), graph=layered((4, 3, 2), 0, feedback=True, density=0.5))
    >>> rules = SimpleNamespace(rewire_fraction=0.5, grow="random", score_samples=2, budget="per_block")
    >>> out = plasticity_step(model, rules, np.ones((2, 4), np.float32), np.array([0, 1]), [0])
    >>> out["pruned"] == out["grown"] > 0
    True
    """
    start = time.perf_counter()
    blocks = forward_blocks(model.config.sizes)
    fraction = section.rewire_fraction if fraction is None else fraction
    groups = [blocks] if section.budget == "global" else [[b] for b in blocks]
    budgets = [_budget(model.graph, group, fraction) for group in groups]
    g = model.graph  # its pairs (copied: edits may reuse arrays) bound the growth without regrow_pruned
    unpruned = g if getattr(section, "regrow_pruned", True) else type(g)(g.indptr.copy(), g.indices.copy(),
                                                                          g.weights.copy(), g.n)
    for group, (prune, _) in zip(groups, budgets):
        model.rewire(deletes=prune_smallest(model.graph, prune, in_blocks(model.graph, group), one_direction=True))
    if section.grow != "gradient":
        score = None
    elif score is None:
        k = section.score_samples
        score = model.candidate_scores(X[:k], labels[:k])
    rng = np.random.default_rng(list(seed))
    candidates = model.graph if unpruned is g else unpruned  # missing now, or already missing before this step
    inserts = [grow_top_scores(candidates, grow, group, score) if score is not None
               else grow_random(candidates, grow, group, rng) for group, (_, grow) in zip(groups, budgets)]
    model.rewire(inserts=Insertions(*(np.concatenate(column) for column in zip(*inserts))))
    capacity = block_capacity(blocks, model.graph.n)
    return {"pruned": sum(p for p, _ in budgets), "grown": sum(g for _, g in budgets),
            "density": forward_count(model.graph) / capacity, "seconds": time.perf_counter() - start}


def _budget(graph, blocks, fraction):
    """``(prune, grow)`` of one group of blocks at its own density; a full group is left alone."""
    capacity = block_capacity(blocks, graph.n)
    nnz = int(np.count_nonzero(in_blocks(graph, blocks)))
    if nnz == capacity:  # nothing missing: rewiring would only reset pruned weights to 0
        return 0, 0
    return budget_for_density(nnz, capacity, nnz / capacity, rewire_fraction=fraction)


class SnapshotRecorder:
    """Saves the topology of a training run at plasticity steps: ``RUN/topology/`` (see :mod:`topology.snapshots`).

    Each snapshot is ``snapshot_NNNNN.npz`` (``NNNNN`` the plasticity step,
    0 before training) plus an entry of ``index.json`` with its ``info``
    (``step``, ``epoch`` elapsed as a float, ``samples_seen``, ``synapses``,
    ``born``/``died``: synapses gained and lost since the previous snapshot,
    counting both directions of a symmetric pair) and its
    :func:`topology.metrics.graph_metrics`.

    Parameters
    ----------
    run_dir : path
    layer_sizes : sequence of int
    every : int
        Snapshot every ``every`` plasticity steps.
    seed : int
        Seeds the sampled metrics.

    Examples
    --------
    >>> import tempfile
    >>> from topology.generators import layered
    >>> rec = SnapshotRecorder(tempfile.mkdtemp(), (4, 3, 2), every=2)
    >>> g = layered((4, 3, 2), 0, feedback=True, density=0.5)
    >>> rec.record(g, step=0, epoch=0.0, samples_seen=0)["info"]["synapses"] == g.nnz
    True
    >>> rec.due(3), rec.due(4)
    (False, True)
    """

    def __init__(self, run_dir, layer_sizes, every, seed=0):
        self.index_file = index_path(run_dir)
        self.directory = self.index_file.parent
        self.directory.mkdir(parents=True, exist_ok=True)
        self.layer_sizes, self.every, self.seed = tuple(int(v) for v in layer_sizes), int(every), seed
        self.index = json.loads(self.index_file.read_text(encoding="utf-8")) if self.index_file.exists() else []
        self._last_graph = None  # its synapses (not weights, which training changes in place) give births/deaths

    def due(self, step):
        """Whether plasticity step ``step`` gets a snapshot."""
        return step % self.every == 0

    @property
    def last_step(self):
        """Step of the latest snapshot (None before the first)."""
        return self.index[-1]["info"]["step"] if self.index else None

    def resume(self, steps_done):
        """Forget snapshots after step ``steps_done`` (an unfinished epoch that will be redone)."""
        self.index = [e for e in self.index if e["info"]["step"] <= steps_done]
        self._write_index()
        self._last_graph = load_snapshot(self.directory / self.index[-1]["file"])[0] if self.index else None

    def record(self, graph, step, epoch, samples_seen):
        """Save ``graph`` as the snapshot of ``step``; returns its index entry."""
        from topology.metrics import graph_metrics

        born, died = changed_pairs(self._last_graph, graph) if self._last_graph is not None else (0, 0)
        name = f"snapshot_{step:05d}.npz"
        info = {"step": int(step), "epoch": float(epoch), "samples_seen": int(samples_seen),
                "synapses": int(graph.nnz), "born": born, "died": died}
        save_snapshot(self.directory / name, graph, self.layer_sizes, info)
        entry = {"file": name, "info": info, "metrics": graph_metrics(graph, self.layer_sizes, seed=self.seed)}
        self.index = [e for e in self.index if e["info"]["step"] < step] + [entry]
        self._write_index()
        self._last_graph = graph
        return entry

    def _write_index(self):
        from eventhorizon.runner import _write_json

        _write_json(self.index_file, self.index)
