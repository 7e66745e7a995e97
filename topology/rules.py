"""Structural plasticity rules: which synapses to prune and which to grow.

Each rule is a small function that *chooses* edits and returns
:class:`~topology.dynamic.Deletions` or :class:`~topology.dynamic.Insertions`
for :meth:`~topology.dynamic.DynamicSynapseStore.apply_edits`; none of them
changes a graph. Candidate synapses for growth come from *blocks*: a block
``(pre_lo, pre_hi, post_lo, post_hi)`` allows every synapse from an id in
``[pre_lo, pre_hi)`` to an id in ``[post_lo, post_hi)`` (e.g. layer l to layer
l + 1). For a store with symmetric pairs, pass only one direction of each
pair (the forward blocks) and prune with ``one_direction=True``: the store
mirrors both kinds of edit.

Rules:

* :func:`prune_smallest` — the ``k`` smallest ``|W|`` (SET, RigL);
* :func:`prune_lowest_score` — the ``k`` lowest of any per-synapse score
  (e.g. a running mean of ``|gradient|`` or of pre·post activity over a window);
* :func:`grow_random` — ``k`` missing synapses uniformly at random (SET's regrowth);
* :func:`grow_top_scores` — the ``k`` missing synapses with the largest score
  magnitude (RigL-style growth; for EqProp the score is the local candidate
  product ``(s_i^β s_j^β − s_i⁰ s_j⁰)/β`` accumulated for missing pairs);
* :func:`budget_for_density` — how many to prune and grow to reach (or hold)
  a target density.
"""

import numpy as np

from topology.dynamic import Deletions, Insertions

__all__ = ["prune_smallest", "prune_lowest_score", "grow_random", "grow_top_scores", "budget_for_density",
           "block_capacity", "in_blocks"]


def _check_k(k, available, name="k"):
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k < 0:
        raise ValueError(f"{name} must be an integer >= 0, got {k!r}")
    if k > available:
        raise ValueError(f"{name} = {k} but only {available} candidates are available")
    return int(k)


def _eligible(graph, eligible, one_direction):
    pre, post = graph.pre_ids(), graph.indices.astype(np.int64)
    mask = np.ones(graph.nnz, bool) if eligible is None else np.asarray(eligible, bool)
    if mask.shape != (graph.nnz,):
        raise ValueError(f"eligible must be a boolean mask of shape ({graph.nnz},), got {mask.shape}")
    if one_direction:
        mask = mask & (pre < post)
    return pre, post, mask


def prune_lowest_score(graph, score, k, eligible=None, one_direction=False):
    """The ``k`` eligible synapses with the lowest ``score`` (ties broken by position).

    Parameters
    ----------
    graph : SynapseGraph
    score : array_like of float, shape (nnz,)
        One value per synapse, in CSR order.
    k : int
    eligible : array_like of bool, shape (nnz,), optional
        Only these synapses may be pruned (e.g. not the input layer's).
    one_direction : bool
        Consider only ``pre < post`` (for a store with symmetric pairs, which
        deletes the mirror itself).

    Returns
    -------
    Deletions

    Examples
    --------
    >>> from topology.store import SynapseGraph
    >>> g = SynapseGraph.from_dense(np.array([[0, .5, -.1], [0, 0, .3], [0, 0, 0]], np.float32))
    >>> prune_lowest_score(g, np.abs(g.weights), 1)
    Deletions(pre=array([0]), post=array([2]))
    """
    score = np.asarray(score, dtype=np.float64)
    if score.shape != (graph.nnz,):
        raise ValueError(f"score must have shape ({graph.nnz},), got {score.shape}")
    if np.isnan(score).any():
        raise ValueError("score must not contain NaN")
    pre, post, mask = _eligible(graph, eligible, one_direction)
    candidates = np.flatnonzero(mask)
    k = _check_k(k, candidates.size)
    values = score[candidates]
    if 0 < k < candidates.size:  # only the k lowest and those tied with the k-th need sorting (in position order)
        near = values <= np.partition(values, k - 1)[k - 1]
        candidates, values = candidates[near], values[near]
    chosen = candidates[np.argsort(values, kind="stable")[:k]]
    chosen.sort()
    return Deletions(pre[chosen], post[chosen])


def prune_smallest(graph, k, eligible=None, one_direction=False):
    """The ``k`` eligible synapses with the smallest ``|W|`` (magnitude pruning, as in SET and RigL).

    Examples
    --------
    >>> from topology.store import SynapseGraph
    >>> g = SynapseGraph.from_dense(np.array([[0, .5, -.1], [0, 0, .3], [0, 0, 0]], np.float32))
    >>> prune_smallest(g, 2)
    Deletions(pre=array([0, 1]), post=array([2, 2]))
    """
    return prune_lowest_score(graph, np.abs(graph.weights), k, eligible, one_direction)


def _check_blocks(blocks, n):
    out = []
    for b in blocks:
        lo_a, hi_a, lo_b, hi_b = (int(v) for v in b)
        if not (0 <= lo_a <= hi_a <= n and 0 <= lo_b <= hi_b <= n):
            raise ValueError(f"block {tuple(b)} must satisfy 0 <= lo <= hi <= n = {n} for pre and post ranges")
        out.append((lo_a, hi_a, lo_b, hi_b))
    return out


def _in_block(block, pre, post):
    """Mask of the pairs ``(pre[k], post[k])`` that lie in ``block``."""
    lo_a, hi_a, lo_b, hi_b = block
    return (pre >= lo_a) & (pre < hi_a) & (post >= lo_b) & (post < hi_b)


def in_blocks(graph, blocks):
    """Mask (one entry per synapse, CSR order) of the synapses that lie in any of ``blocks``.

    Examples
    --------
    >>> from topology.store import SynapseGraph
    >>> g = SynapseGraph.from_dense(np.array([[0, 1, 1], [0, 0, 1], [0, 0, 0]], np.float32))
    >>> in_blocks(g, [(0, 1, 1, 2)]).tolist()   # synapses 0→1, 0→2, 1→2
    [True, False, False]
    """
    pre, post = graph.pre_ids(), graph.indices.astype(np.int64)
    mask = np.zeros(graph.nnz, bool)
    for block in _check_blocks(blocks, graph.n):
        mask |= _in_block(block, pre, post)
    return mask


def _missing_in_block(block, pre, post, allow_self_loops):
    """Missing pairs of one block, row-major: ``(pre, post)`` int64 arrays.

    ``pre``/``post`` are the graph's synapses; a boolean mask of the block
    marks those inside it (and the diagonal, unless self-loops are allowed).
    """
    lo_a, hi_a, lo_b, hi_b = block
    present = np.zeros((hi_a - lo_a, hi_b - lo_b), bool)
    inside = _in_block(block, pre, post)
    present[pre[inside] - lo_a, post[inside] - lo_b] = True
    if not allow_self_loops:
        diag = np.arange(max(lo_a, lo_b), min(hi_a, hi_b), dtype=np.int64)
        present[diag - lo_a, diag - lo_b] = True
    r, c = np.nonzero(~present)
    return r.astype(np.int64) + lo_a, c.astype(np.int64) + lo_b


def _overlap(blocks):
    """Whether any two blocks share a pair (then candidates must be de-duplicated)."""
    for i, (a0, a1, b0, b1) in enumerate(blocks):
        for c0, c1, d0, d1 in blocks[i + 1:]:
            if max(a0, c0) < min(a1, c1) and max(b0, d0) < min(b1, d1):
                return True
    return False


def block_capacity(blocks, n, allow_self_loops=False):
    """How many synapses the blocks allow in all (the denominator of a density).

    Examples
    --------
    >>> block_capacity([(0, 4, 4, 7)], 7)
    12
    """
    total = 0
    for lo_a, hi_a, lo_b, hi_b in _check_blocks(blocks, n):
        total += (hi_a - lo_a) * (hi_b - lo_b)
        if not allow_self_loops:
            total -= max(0, min(hi_a, hi_b) - max(lo_a, lo_b))
    return total


def _candidates(graph, blocks, allow_self_loops, block_values=None):
    """Missing pairs of the blocks as sorted, distinct flat keys ``pre·n + post``.

    With ``block_values(block, pre, post)``, also one value per key (from the
    first block that holds it).
    """
    blocks = _check_blocks(blocks, graph.n)
    pre, post = graph.pre_ids(), graph.indices.astype(np.int64)
    keys, values = [np.zeros(0, np.int64)], [np.zeros(0)]
    for b in blocks:
        p, q = _missing_in_block(b, pre, post, allow_self_loops)
        keys.append(p * graph.n + q)
        if block_values is not None:
            values.append(block_values(b, p, q))
    keys = np.concatenate(keys)
    values = np.concatenate(values) if block_values is not None else None
    order = np.argsort(keys, kind="stable")
    keys = keys[order]
    keep = np.ones(keys.size, bool)
    if _overlap(blocks):
        keep[1:] = keys[1:] != keys[:-1]
    keys = keys[keep]
    return keys if values is None else (keys, values[order][keep])


def _insertions(keys, n, weight):
    keys = np.sort(keys)
    w = np.broadcast_to(np.asarray(weight, np.float32), keys.shape).copy()
    return Insertions(keys // n, keys % n, w)


def grow_random(graph, k, blocks, rng, weight=0.0, allow_self_loops=False):
    """``k`` missing synapses of the blocks, uniformly at random (SET's regrowth).

    Parameters
    ----------
    graph : SynapseGraph
    k : int
    blocks : sequence of (pre_lo, pre_hi, post_lo, post_hi)
    rng : numpy.random.Generator
    weight : float
        Initial weight of the new synapses (RigL grows at 0).

    Returns
    -------
    Insertions

    Examples
    --------
    >>> from topology.store import SynapseGraph
    >>> g = SynapseGraph.from_dense(np.array([[0, 1, 0], [0, 0, 0], [0, 0, 0]], np.float32))
    >>> ins = grow_random(g, 1, [(0, 1, 1, 3)], np.random.default_rng(0))
    >>> ins.pre.tolist(), ins.post.tolist()   # (0, 1) exists, so (0, 2) is the only choice
    ([0], [2])
    """
    keys = _candidates(graph, blocks, allow_self_loops)
    k = _check_k(k, keys.size)
    return _insertions(rng.choice(keys, size=k, replace=False), graph.n, weight)


def _score_matrix(score, n):
    """``matrix(block)``, the dense score matrix of a block, for a block scorer or an ``(n, n)`` array; None
    for a callable."""
    if hasattr(score, "block"):
        def matrix(b):
            m = np.asarray(score.block(*b))
            if m.shape != (b[1] - b[0], b[3] - b[2]):
                raise ValueError(f"score.block{b} must return shape {(b[1] - b[0], b[3] - b[2])}, got {m.shape}")
            return m
        return matrix
    if callable(score):
        return None
    arr = np.asarray(score)
    if arr.shape != (n, n):
        raise ValueError(f"score must be a callable or an array of shape ({n}, {n}), got {arr.shape}")
    return lambda b: arr[b[0]:b[1], b[2]:b[3]]


def _score_values(score, n):
    """``block_values(block, pre, post)`` for a score given as a callable, an array or a block scorer."""
    matrix = _score_matrix(score, n)
    if matrix is not None:
        return lambda b, pre, post: matrix(b)[pre - b[0], post - b[2]]

    def values(b, pre, post):
        v = np.asarray(score(pre, post), dtype=np.float64)
        if v.shape != pre.shape:
            raise ValueError(f"score must give one non-NaN value per candidate ({pre.size}), got {v.shape}")
        return v
    return values


def grow_top_scores(graph, k, blocks, score, weight=0.0, allow_self_loops=False):
    """The ``k`` missing synapses of the blocks with the largest ``|score|`` (gradient growth).

    Parameters
    ----------
    graph : SynapseGraph
    k : int
    blocks : sequence of (pre_lo, pre_hi, post_lo, post_hi)
    score : callable, ndarray or block scorer
        ``score(pre, post)`` returning one value per candidate pair; a dense
        ``(n, n)`` array indexed ``[pre, post]``; or an object whose
        ``block(pre_lo, pre_hi, post_lo, post_hi)`` returns the dense score
        matrix of a block (fastest: e.g. a matrix product, as
        :meth:`eventhorizon.eqprop.EqPropModel.candidate_scores` gives).
        Ties are broken by the smaller ``(pre, post)``.
    weight : float

    Returns
    -------
    Insertions

    Examples
    --------
    >>> from topology.store import SynapseGraph
    >>> g = SynapseGraph.from_dense(np.zeros((3, 3), np.float32))
    >>> s = np.array([[0, .2, -.9], [0, 0, .5], [0, 0, 0]])
    >>> grow_top_scores(g, 2, [(0, 3, 0, 3)], s).post.tolist()
    [2, 2]
    """
    blocks = _check_blocks(blocks, graph.n)
    matrix = _score_matrix(score, graph.n)
    if matrix is not None and not _overlap(blocks):
        keys, values, k = _top_in_matrices(graph, k, blocks, allow_self_loops, matrix)
    else:
        keys, values, k = _top_in_candidates(graph, k, blocks, allow_self_loops, _score_values(score, graph.n))
    order = np.lexsort((keys, -values))[:k]
    return _insertions(keys[order], graph.n, weight)


def _nan_error(candidates):
    return ValueError(f"score must give one non-NaN value per candidate ({candidates}); got NaN")


def _top_in_candidates(graph, k, blocks, allow_self_loops, block_values):
    """``(keys, |score|, k)`` of the candidates tied with or above the ``k``-th largest ``|score|``."""
    keys, values = _candidates(graph, blocks, allow_self_loops, block_values)
    k = _check_k(k, keys.size)
    values = np.abs(np.asarray(values, dtype=np.float64))
    if np.isnan(values).any():
        raise _nan_error(keys.size)
    if 0 < k < keys.size:  # keep the k largest and everything tied with the k-th
        kth = -np.partition(-values, k - 1)[k - 1]
        near = np.flatnonzero(values >= kth)
        keys, values = keys[near], values[near]
    return keys, values, k


def _top_in_matrices(graph, k, blocks, allow_self_loops, matrix):
    """What :func:`_top_in_candidates` gives, from each block's dense score matrix (blocks must not overlap).

    Existing synapses (and the diagonal) are marked −1 in ``|score|``, so no
    list of the missing pairs is built: only those near the top get keys.
    """
    pre, post = graph.pre_ids(), graph.indices.astype(np.int64)
    flats = [np.zeros(0)]
    for b in blocks:
        lo_a, hi_a, lo_b, hi_b = b
        m = np.abs(np.asarray(matrix(b), np.float64))
        inside = _in_block(b, pre, post)
        m[pre[inside] - lo_a, post[inside] - lo_b] = -1.0
        if not allow_self_loops:
            diag = np.arange(max(lo_a, lo_b), min(hi_a, hi_b), dtype=np.int64)
            m[diag - lo_a, diag - lo_b] = -1.0
        flats.append(m.ravel())
    flat = np.concatenate(flats)
    nan = np.isnan(flat)
    available = int(np.count_nonzero(flat >= 0)) + int(nan.sum())
    if nan.any():
        raise _nan_error(available)
    k = _check_k(k, available)
    kth = -np.partition(-flat, k - 1)[k - 1] if k else np.inf
    near = np.flatnonzero(flat >= max(kth, 0.0))
    starts = np.cumsum([0] + [(b[1] - b[0]) * (b[3] - b[2]) for b in blocks])
    which = np.searchsorted(starts, near, side="right") - 1
    table = np.array(blocks, np.int64).reshape(-1, 4)
    width = table[which, 3] - table[which, 2]
    local = near - starts[which]
    keys = (local // width + table[which, 0]) * graph.n + local % width + table[which, 2]
    return keys, flat[near], k


def budget_for_density(nnz, capacity, target_density, rewire_fraction=0.0):
    """``(prune, grow)`` counts that bring ``nnz`` to ``target_density·capacity`` and rewire a fraction.

    At the target, ``rewire_fraction·nnz`` synapses are pruned and as many
    grown (constant density, as in SET/RigL); away from it, only the
    difference is grown or pruned on top.

    Examples
    --------
    >>> budget_for_density(100, 1000, 0.1, rewire_fraction=0.2)
    (20, 20)
    >>> budget_for_density(100, 1000, 0.05)
    (50, 0)
    """
    if not 0.0 <= target_density <= 1.0:
        raise ValueError(f"target_density must lie in [0, 1], got {target_density}")
    if not 0.0 <= rewire_fraction <= 1.0:
        raise ValueError(f"rewire_fraction must lie in [0, 1], got {rewire_fraction}")
    if nnz < 0 or capacity < 0 or nnz > capacity:
        raise ValueError(f"need 0 <= nnz <= capacity, got nnz={nnz}, capacity={capacity}")
    target = int(round(target_density * capacity))
    rewire = int(round(rewire_fraction * min(nnz, target)))
    return rewire + max(0, nnz - target), rewire + max(0, target - nnz)
