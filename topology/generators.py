"""Network generators returning :class:`~topology.store.SynapseGraph`.

Every generator takes an explicit ``seed`` and is deterministic for it.
Weight conventions follow the store: ``A[pre, post]``.
"""

import numpy as np
import scipy.sparse as sp
import scipy.sparse.linalg as spla

from topology.store import SynapseGraph

__all__ = [
    "random_sparse",
    "layered",
    "block_densities",
    "symmetric_recurrent",
    "input_recurrent",
    "spectral_norm",
    "populations",
]


def _check_int(name, value, minimum):
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < minimum:
        raise ValueError(f"{name} must be an int >= {minimum}, got {value!r}")


def _check_fraction(name, value, allow_zero=False):
    is_number = isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, bool)
    ok = is_number and ((0.0 <= value <= 1.0) if allow_zero else (0.0 < value <= 1.0))
    if not ok:
        interval = "[0, 1]" if allow_zero else "(0, 1]"
        raise ValueError(f"{name} must be a number in {interval}, got {value!r}")


def spectral_norm(matrix):
    """Largest singular value of a dense or scipy.sparse matrix.

    Dense for up to 2000 rows and columns, ``scipy.sparse.linalg.svds``
    beyond.

    Examples
    --------
    >>> round(spectral_norm(np.diag([3.0, -4.0])), 6)
    4.0
    """
    if min(matrix.shape) == 0:
        return 0.0
    if max(matrix.shape) <= 2000:
        dense = matrix.toarray() if sp.issparse(matrix) else np.asarray(matrix)
        return float(np.linalg.norm(dense.astype(np.float64), 2))
    mat = sp.csr_array(matrix, dtype=np.float64)
    if mat.nnz == 0:
        return 0.0
    return float(spla.svds(mat, k=1, return_singular_vectors=False, random_state=0)[0])


def random_sparse(n, density, seed, weight_scale=1.0, self_loops=False):
    """Random directed graph: each ordered pair is a synapse with probability ``density``.

    Weights are normal with standard deviation ``weight_scale / sqrt(n * density)``,
    so a neuron's summed input has a spread of about ``weight_scale`` times
    the spread of its inputs.

    Examples
    --------
    >>> g = random_sparse(100, 0.1, seed=0)
    >>> 800 < g.nnz < 1200
    True
    """
    _check_int("n", n, 1)
    _check_fraction("density", density)
    rng = np.random.default_rng(seed)
    mask = sp.random_array((n, n), density=density, rng=rng, format="coo",
                           data_sampler=lambda size: np.ones(size))
    pre, post = mask.coords
    if not self_loops:
        keep = pre != post
        pre, post = pre[keep], post[keep]
    std = weight_scale / np.sqrt(max(n * density, 1.0))
    weight = rng.normal(0.0, std, size=pre.shape[0])
    return SynapseGraph.from_edges(n, pre, post, weight)


def _check_norm_target(value):
    is_number = isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, bool)
    if not is_number or not np.isfinite(value) or value < 0:
        raise ValueError(f"spectral_norm_target must be a finite number >= 0, got {value!r}")


def _glorot_uniform(rng, fan_in, fan_out):
    limit = np.sqrt(6.0 / (fan_in + fan_out))
    return rng.uniform(-limit, limit, size=(fan_in, fan_out))


def block_densities(sizes, density, distribution="uniform"):
    """Density of each layer-to-next-layer block for an overall ``density`` of the layered pairs.

    ``"uniform"`` gives every block ``density``. ``"erdos_renyi"`` (ER, as
    SET and RigL allocate sparse layers: Mocanu et al. 2018, Evci et al. 2020)
    makes block ``l`` proportional to ``(n_l + n_{l+1}) / (n_l·n_{l+1})``, so
    small blocks (a 1000 → 10 readout) are denser than large ones (784 →
    1000); blocks that would exceed 1 are dense and the rest share what is
    left. Either way the blocks hold ``density`` of all pairs in total (up to
    rounding).

    Parameters
    ----------
    sizes : sequence of int
        Layer sizes.
    density : float or sequence of float
        Fraction of all layer-to-next-layer pairs, in (0, 1]; or one fraction
        per block, front to back, returned as given (``distribution`` must
        then be ``"uniform"``).
    distribution : {"uniform", "erdos_renyi"}

    Returns
    -------
    list of float
        One density per block, in (0, 1].

    Examples
    --------
    >>> [round(d, 4) for d in block_densities([784, 1000, 10], 0.1, "erdos_renyi")]
    [0.0885, 1.0]
    >>> block_densities([784, 1000, 10], 0.1)
    [0.1, 0.1]
    >>> block_densities([784, 1000, 10], [0.0177, 0.2])
    [0.0177, 0.2]
    """
    if np.ndim(density) > 0:
        if distribution != "uniform":
            raise ValueError(f"distribution {distribution!r} shares a single density; got one per block")
        return [float(d) for d in _per_block(density, len(sizes) - 1)]
    _check_fraction("density", density)
    sizes = [int(s) for s in sizes]
    pairs = np.array([a * b for a, b in zip(sizes[:-1], sizes[1:])], dtype=np.float64)
    if distribution == "uniform":
        return [float(density)] * pairs.size
    if distribution != "erdos_renyi":
        raise ValueError(f"distribution must be 'uniform' or 'erdos_renyi', got {distribution!r}")
    raw = np.array([(a + b) / (a * b) for a, b in zip(sizes[:-1], sizes[1:])])
    dense, scale = np.zeros(pairs.size, bool), 0.0
    while not dense.all():  # scale the free blocks to the remaining budget; any pushed to 1 or past becomes dense
        budget = density * pairs.sum() - pairs[dense].sum()
        scale = budget / (raw[~dense] * pairs[~dense]).sum()
        over = ~dense & (raw * scale >= 1.0)
        if not over.any():
            break
        dense |= over
    return [1.0 if d else float(r * scale) for d, r in zip(dense, raw)]


def layered(sizes, seed, feedback=False, feedback_to_input=False, density=1.0):
    """Layers connected front to back (Glorot-uniform weights), optionally with symmetric feedback.

    Neurons are numbered layer by layer: ``0..sizes[0]-1`` is the first layer.

    Parameters
    ----------
    sizes : sequence of int
        Layer sizes, at least two (e.g. ``[784, 500, 10]``).
    seed : int
    feedback : bool
        Add the transposed edge ``post -> pre`` with the same weight for every
        forward edge, making ``A`` symmetric (an EqProp energy network).
    feedback_to_input : bool
        With ``feedback``, also add edges back into the first layer. Off by
        default: an input layer is clamped and ignores its inputs.
    density : float or sequence of float
        Fraction of forward pairs kept (uniformly at random), for all blocks
        or one per layer-to-next-layer block (see :func:`block_densities`).

    Examples
    --------
    >>> g = layered([4, 3, 2], seed=0, feedback=True)
    >>> g.nnz  # 4*3 + 3*2 forward, 3*2 back
    24
    """
    sizes = [int(s) for s in sizes]
    if len(sizes) < 2 or min(sizes) < 1:
        raise ValueError(f"sizes must list at least two positive layer sizes, got {sizes}")
    densities = _per_block(density, len(sizes) - 1)
    rng = np.random.default_rng(seed)
    offsets = np.concatenate([[0], np.cumsum(sizes)])
    pres, posts, weights = [], [], []
    for layer, (n_pre, n_post) in enumerate(zip(sizes[:-1], sizes[1:])):
        block = _glorot_uniform(rng, n_pre, n_post)
        d = densities[layer]
        keep = rng.random(block.shape) < d if d < 1.0 else np.ones(block.shape, bool)
        pre, post = np.nonzero(keep)
        pre_ids, post_ids, w = pre + offsets[layer], post + offsets[layer + 1], block[pre, post]
        pres.append(pre_ids), posts.append(post_ids), weights.append(w)
        if feedback and (layer > 0 or feedback_to_input):
            pres.append(post_ids), posts.append(pre_ids), weights.append(w)
    n = int(offsets[-1])
    return SynapseGraph.from_edges(n, np.concatenate(pres), np.concatenate(posts), np.concatenate(weights))


def _per_block(density, blocks):
    """``density`` as one checked fraction per block (a number applies to all of them)."""
    if np.ndim(density) == 0:
        _check_fraction("density", density)
        return [density] * blocks
    density = list(density)
    if len(density) != blocks:
        raise ValueError(f"density must be a number or one per layer-to-layer block ({blocks}), got {len(density)}")
    for i, d in enumerate(density):
        _check_fraction(f"density[{i}]", d)
    return density


def _symmetric_block(n, target_norm, seed, density):
    rng = np.random.default_rng(seed)
    upper = np.triu(rng.standard_normal((n, n)), k=1)
    if density < 1.0:
        upper *= np.triu(rng.random((n, n)) < density, k=1)
    block = upper + upper.T
    norm = spectral_norm(block)
    if norm > 0:
        block *= target_norm / norm
    return block


def symmetric_recurrent(n, spectral_norm_target, seed, density=1.0):
    """Random symmetric recurrent weights (no self-loops) scaled to a spectral norm.

    Examples
    --------
    >>> g = symmetric_recurrent(50, 0.6, seed=1)
    >>> round(spectral_norm(g.to_scipy()), 4)
    0.6
    """
    _check_int("n", n, 1)
    _check_fraction("density", density)
    _check_norm_target(spectral_norm_target)
    block = _symmetric_block(n, spectral_norm_target, seed, density)
    return SynapseGraph.from_adjacency(sp.csr_array(block))


def input_recurrent(n_inputs, n_hidden, spectral_norm_target, seed, recurrent_density=1.0):
    """Inputs projecting onto a symmetric recurrent hidden layer.

    Neurons ``0..n_inputs-1`` are inputs (meant to be clamped); the rest are
    hidden. Input → hidden weights are Glorot-uniform; hidden ↔ hidden
    weights are symmetric with no self-loops and spectral norm
    ``spectral_norm_target``. Inputs receive no synapses.

    Examples
    --------
    >>> g = input_recurrent(784, 500, 0.6, seed=0)
    >>> g.n, g.nnz == 784 * 500 + 500 * 499
    (1284, True)
    """
    _check_int("n_inputs", n_inputs, 1)
    _check_int("n_hidden", n_hidden, 1)
    _check_norm_target(spectral_norm_target)
    _check_fraction("recurrent_density", recurrent_density)
    rng = np.random.default_rng(seed)
    w_in = _glorot_uniform(rng, n_inputs, n_hidden)
    recurrent = _symmetric_block(n_hidden, spectral_norm_target, rng.integers(2**63), recurrent_density)
    adjacency = sp.block_array([[sp.csr_array((n_inputs, n_inputs)), sp.csr_array(w_in)],
                                [sp.csr_array((n_hidden, n_inputs)), sp.csr_array(recurrent)]],
                               format="csr")
    return SynapseGraph.from_adjacency(adjacency)


def populations(sizes, probability, weights, seed, self_loops=True):
    """Neuron populations wired pair by pair at random (Bernoulli), as Brian2's ``connect(p=...)``.

    Neurons are numbered population by population. Every ordered pair
    ``(pre, post)`` with ``pre`` in population ``a`` and ``post`` in ``b`` is a
    synapse with probability ``probability[a][b]``, independently, and then
    has weight ``weights[a]`` (one weight per source population: the CUBA
    and Brunel networks' convention).

    Parameters
    ----------
    sizes : sequence of int
        Neurons per population.
    probability : float or (P, P) array_like
        Connection probability, one for all pairs or per (source, target) population.
    weights : sequence of float
        Synaptic weight of every synapse from each population.
    seed : int
    self_loops : bool
        Allow ``pre == post`` (Brian2's default, and the CUBA benchmark's).

    Returns
    -------
    SynapseGraph

    Notes
    -----
    Each block draws its synapse count from the binomial distribution and
    then that many distinct pairs uniformly (the same distribution as one
    coin per pair, in time proportional to the synapses, not the pairs).

    Examples
    --------
    >>> g = populations([80, 20], 0.1, [1.0, -2.0], seed=0)
    >>> 800 < g.nnz < 1200, sorted(set(g.weights.tolist()))
    (True, [-2.0, 1.0])
    """
    sizes = [int(s) for s in sizes]
    for k, size in enumerate(sizes):
        _check_int(f"sizes[{k}]", size, 1)
    P = len(sizes)
    prob = np.broadcast_to(np.asarray(probability, dtype=np.float64), (P, P))
    if not np.all((prob >= 0) & (prob <= 1)):
        raise ValueError(f"probability must lie in [0, 1], got {np.asarray(probability).tolist()}")
    if len(weights) != P:
        raise ValueError(f"weights needs one weight per population ({P}), got {len(weights)}")
    rng = np.random.default_rng(seed)
    starts = np.concatenate([[0], np.cumsum(sizes)])
    pre, post = [], []
    for a in range(P):
        for b in range(P):
            pairs = sizes[a] * sizes[b]
            count = rng.binomial(pairs, prob[a, b])
            flat = rng.choice(pairs, size=count, replace=False)
            pre.append(starts[a] + flat // sizes[b])
            post.append(starts[b] + flat % sizes[b])
    pre, post = np.concatenate(pre), np.concatenate(post)
    if not self_loops:
        keep = pre != post
        pre, post = pre[keep], post[keep]
    weight = np.asarray(weights, dtype=np.float64)[np.searchsorted(starts, pre, side="right") - 1]
    return SynapseGraph.from_edges(int(starts[-1]), pre, post, weight)
