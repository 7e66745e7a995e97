"""Local EqProp learning on existing synapses: gradient accumulation and SGD steps.

For two equilibria ``a`` (nudged with strength ``β_a``) and ``b`` (``β_b``),
the EqProp estimate of ``−∂loss/∂W_ij`` on a synapse ``i → j`` is

    g_ij = (a_i a_j − b_i b_j) / (β_a − β_b),

and for a bias ``(a_i − b_i) / (β_a − β_b)``. Since
``a_i a_j − b_i b_j = (a_i − b_i) a_j + b_i (a_j − b_j)``, a pre-synaptic
neuron that is silent in both phases (``a_i = b_i = 0``: a zero pixel, a
neuron clipped at 0) contributes nothing, and its whole row is skipped; the
multiply-adds actually executed are counted.

The product is symmetric in ``i, j``, so the two synapses of a symmetric
pair get bit-identical gradients and stay equal under :func:`sgd_step`.
"""

import math

import numpy as np

from eventhorizon.kernels import _segment_span
from scheduler.jit import kernel

__all__ = ["accumulate_gradient", "schedule_factor", "sgd_step"]


@kernel(inline=True)
def _outer_slice(grad, a, b, ai, bi, scale):
    """``grad += (ai·a − bi·b)·scale`` over equal-length slices indexed from 0 (vectorises)."""
    for k in range(grad.shape[0]):
        grad[k] += (ai * a[k] - bi * b[k]) * scale


@kernel(refcount=False)
def _accumulate(syn, a, b, free, scale, grad_w, grad_b):
    ops = 0
    for i in range(a.shape[0]):
        ai, bi = a[i], b[i]
        if free[i] != 0:
            grad_b[i] += (ai - bi) * scale
        if ai == 0 and bi == 0:
            continue
        start, stop = syn.indptr[i], syn.indptr[i + 1]
        seg_end = syn.seg_ptr[i + 1]
        if seg_end > syn.seg_ptr[i]:  # contiguous target runs: SIMD over slices
            for s in range(syn.seg_ptr[i], seg_end):
                p0, p1, t0, t1 = _segment_span(syn, s, seg_end, stop)
                _outer_slice(grad_w[p0:p1], a[t0:t1], b[t0:t1], ai, bi, scale)
        else:
            for k in range(start, stop):
                j = syn.indices[k]
                # (a_i a_j − b_i b_j)·scale, in an order symmetric in i and j: a
                # symmetric pair must get bit-identical gradients
                grad_w[k] += (ai * a[j] - bi * b[j]) * scale
        ops += stop - start
    return ops


@kernel(refcount=False)
def _sgd(weights, velocity, grad_w, lr_w, bias, velocity_b, grad_b, lr_b, momentum, inv_batch):
    for k in range(weights.shape[0]):
        v = momentum * velocity[k] + grad_w[k] * inv_batch
        velocity[k] = v
        weights[k] += lr_w[k] * v
        grad_w[k] = 0.0
    for i in range(bias.shape[0]):
        v = momentum * velocity_b[i] + grad_b[i] * inv_batch
        velocity_b[i] = v
        bias[i] += lr_b[i] * v
        grad_b[i] = 0.0


def _f32(name, arr, n):
    if not isinstance(arr, np.ndarray) or arr.dtype != np.float32 or arr.shape != (n,):
        got = f"{arr.dtype}{arr.shape}" if isinstance(arr, np.ndarray) else type(arr).__name__
        raise ValueError(f"{name} must be a float32 array of shape ({n},), got {got}")
    return arr


def _length(name, arr):
    """Length of the 1-D array ``arr``, or a ValueError naming it (the shape the others must match)."""
    if not isinstance(arr, np.ndarray) or arr.ndim != 1:
        got = f"{arr.dtype}{arr.shape}" if isinstance(arr, np.ndarray) else type(arr).__name__
        raise ValueError(f"{name} must be a 1-D float32 array, got {got}")
    return arr.shape[0]


def accumulate_gradient(graph, a, b, beta_a, beta_b, free, grad_w, grad_b):
    """Add the EqProp gradient estimate of one sample to ``grad_w`` / ``grad_b``.

    Parameters
    ----------
    graph : topology.store.SynapseGraph
    a, b : ndarray of float32, shape (n,)
        Outputs at the two equilibria (``a`` nudged with ``beta_a``).
    beta_a, beta_b : float
        Nudging strengths (``beta_a != beta_b``; 0 for the free phase).
    free : ndarray of float32, shape (n,)
        1 for free neurons (they have biases), 0 for clamped ones.
    grad_w : ndarray of float32, shape (nnz,)
        Per-synapse accumulator, in the graph's CSR order; updated in place.
    grad_b : ndarray of float32, shape (n,)
        Per-neuron bias accumulator; updated in place.

    Returns
    -------
    int
        Multiply-adds executed on synapses (silent rows skipped).

    Examples
    --------
    >>> from topology.store import SynapseGraph
    >>> g = SynapseGraph.from_dense(np.array([[0, 1], [1, 0]], np.float32))
    >>> gw, gb = np.zeros(2, np.float32), np.zeros(2, np.float32)
    >>> a, b = np.array([1, .5], np.float32), np.array([1, .25], np.float32)
    >>> accumulate_gradient(g, a, b, 0.5, 0.0, np.ones(2, np.float32), gw, gb)
    2
    >>> gw.tolist(), gb.tolist()   # (a_i a_j - b_i b_j) / 0.5
    ([0.5, 0.5], [0.0, 0.5])
    """
    n = graph.n
    for name, arr in (("a", a), ("b", b), ("free", free), ("grad_b", grad_b)):
        _f32(name, arr, n)
    _f32("grad_w", grad_w, graph.nnz)
    if beta_a == beta_b:
        raise ValueError(f"beta_a and beta_b must differ, got {beta_a} and {beta_b}")
    scale = np.float32(1.0 / (beta_a - beta_b))
    return int(_accumulate(graph.arrays(), a, b, free, scale, grad_w, grad_b))


def sgd_step(weights, velocity, grad_w, lr_w, bias, velocity_b, grad_b, lr_b, momentum, batch):
    """One SGD-with-momentum step from accumulated gradients, which are then zeroed.

    ``v ← momentum·v + grad/batch``; ``θ ← θ + lr·v`` (the gradients are
    estimates of ``−∂loss/∂θ``, so this descends the loss). All arrays are
    float32 and updated in place; ``lr_w``/``lr_b`` hold one learning rate
    per synapse / neuron (0 freezes it).

    Examples
    --------
    >>> w, v, g, lr = (np.array([1.0], np.float32), np.zeros(1, np.float32),
    ...                np.array([2.0], np.float32), np.array([0.1], np.float32))
    >>> z = np.zeros(0, np.float32)
    >>> sgd_step(w, v, g, lr, z, z, z, z, momentum=0.0, batch=2)
    >>> w.tolist(), g.tolist()
    ([1.100000023841858], [0.0])
    """
    m = _length("weights", weights)
    for name, arr in (("weights", weights), ("velocity", velocity), ("grad_w", grad_w), ("lr_w", lr_w)):
        _f32(name, arr, m)
    nb = _length("bias", bias)
    for name, arr in (("bias", bias), ("velocity_b", velocity_b), ("grad_b", grad_b), ("lr_b", lr_b)):
        _f32(name, arr, nb)
    if not 0.0 <= momentum < 1.0:
        raise ValueError(f"momentum must lie in [0, 1), got {momentum}")
    if isinstance(batch, bool) or not isinstance(batch, (int, np.integer)) or batch < 1:
        raise ValueError(f"batch must be an int >= 1, got {batch!r}")
    _sgd(weights, velocity, grad_w, lr_w, bias, velocity_b, grad_b, lr_b, np.float32(momentum),
         np.float32(1.0 / int(batch)))


def schedule_factor(schedule, step, steps):
    """Factor of a schedule at ``step`` of ``steps`` (floats allowed): ``"constant"`` 1, ``"cosine"`` ½(1 + cos(π·step/steps)).

    Scales learning rates per epoch (``learning.schedule``) and the rewired
    fraction of structural plasticity (``plasticity.rewire_schedule``).

    Examples
    --------
    >>> [round(schedule_factor("cosine", e, 4), 3) for e in range(4)]
    [1.0, 0.854, 0.5, 0.146]
    >>> schedule_factor("constant", 3, 4)
    1.0
    """
    if schedule == "constant":
        return 1.0
    if schedule == "cosine":
        return 0.5 * (1.0 + math.cos(math.pi * step / steps))
    raise ValueError(f"schedule must be 'constant' or 'cosine', got {schedule!r}")
