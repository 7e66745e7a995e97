"""One structural-plasticity step on an EqProp model: prune by magnitude, regrow, density held.

The rules themselves live in :mod:`topology.rules` (they only choose edits);
this module applies them to a live :class:`~eventhorizon.eqprop.EqPropModel`
through :meth:`~eventhorizon.eqprop.EqPropModel.rewire`, counting forward
synapses only (a free-free synapse and its mirror are one pair).
"""

import time

import numpy as np

from topology.rules import block_capacity, budget_for_density, grow_random, grow_top_scores, prune_smallest

__all__ = ["forward_blocks", "forward_count", "plasticity_step"]


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


def plasticity_step(model, section, X, labels, seed):
    """Prune ``rewire_fraction`` of the synapses by magnitude and grow as many, keeping the density.

    Parameters
    ----------
    model : EqPropModel
    section : eventhorizon.scenario.PlasticitySection
    X, labels : ndarray
        Samples for the gradient growth score (the first ``score_samples`` are used).
    seed : sequence of int
        Seeds random regrowth (e.g. ``[seed, epoch, step]``, so a resumed run repeats it).

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
    >>> rules = SimpleNamespace(rewire_fraction=0.5, grow="random", score_samples=2)
    >>> out = plasticity_step(model, rules, np.ones((2, 4), np.float32), np.array([0, 1]), [0])
    >>> out["pruned"] == out["grown"] > 0
    True
    """
    start = time.perf_counter()
    blocks = forward_blocks(model.config.sizes)
    capacity = block_capacity(blocks, model.graph.n)
    nnz = forward_count(model.graph)
    prune, grow = budget_for_density(nnz, capacity, nnz / capacity, rewire_fraction=section.rewire_fraction)
    model.rewire(deletes=prune_smallest(model.graph, prune, one_direction=True))
    if section.grow == "gradient":
        k = section.score_samples
        score = model.candidate_scores(X[:k], labels[:k])
        inserts = grow_top_scores(model.graph, grow, blocks, score)
    else:
        inserts = grow_random(model.graph, grow, blocks, np.random.default_rng(list(seed)))
    model.rewire(inserts=inserts)
    return {"pruned": prune, "grown": grow, "density": forward_count(model.graph) / capacity,
            "seconds": time.perf_counter() - start}
