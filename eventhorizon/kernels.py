"""Numba kernels of event-driven rate settling (private; see :mod:`eventhorizon.settle`).

A neuron ``i`` keeps ``u[i]`` (accumulated input), ``x[i]`` (the value it
last broadcast), ``u_eval[i]`` (``u`` when ρ was last evaluated) and
``gap[i] = |ρ(u_eval[i]) − x[i]|``. Its queue key

    key[i] = L·|u[i] − u_eval[i]| + gap[i]  ≥  |ρ(u[i]) − x[i]|

bounds its pending change without evaluating ρ (L is ρ's Lipschitz
constant). The scheduler pops the largest key; the popped neuron evaluates
ρ once and, if its change exceeds ε, broadcasts ``d`` so that every
out-neighbour ``t`` does ``u[t] += w·d`` — one counted multiply-add each —
and gets a fresh key. Settling ends when no key exceeds ε, hence no pending
change does.
"""

from typing import NamedTuple

import numpy as np

from eventhorizon.models import _rho
from scheduler.jit import kernel
from scheduler.queues import _q_changed, _q_changed_range, _q_peek_max

# Indices into the int64 stats array.
SYNAPTIC_OPS, BROADCASTS, INPUT_SYNAPTIC_OPS, INPUT_BROADCASTS, NEURON_UPDATES, QUEUE_OPS = range(6)
N_STATS = 6


class NetArrays(NamedTuple):
    """What kernels read of a :class:`~eventhorizon.network.RateNetwork`."""

    syn: tuple  # topology.store.SynapseArrays
    bias: np.ndarray  # float32[n]
    free: np.ndarray  # float32[n], 1 for free neurons, 0 for clamped ones
    activation: int
    lipschitz: np.float32


class StateArrays(NamedTuple):
    """Per-neuron dynamic state (all float32[n])."""

    u: np.ndarray
    x: np.ndarray
    u_eval: np.ndarray
    gap: np.ndarray


class Boundary(NamedTuple):
    """Boundary events applied before settling.

    ``clamp_ids``/``clamp_values``: set clamped neurons to values (each
    change is broadcast). ``current_ids``/``current_values``: add currents
    to ``u`` of the given neurons (e.g. an EqProp nudge).
    """

    clamp_ids: np.ndarray  # int32
    clamp_values: np.ndarray  # float32
    current_ids: np.ndarray  # int32
    current_values: np.ndarray  # float32


@kernel(inline=True)
def _axpy_keys(u, u_eval, gap, free, key, w, d, lip):
    """``u += w·d`` and refresh the keys, over equal-length slices.

    Written over slices indexed from 0 so that Numba emits no negative-index
    wrap-around code and LLVM vectorises the loop (10× faster than indexing
    ``u[t0 + k]`` with a run-time ``t0``).
    """
    for k in range(u.shape[0]):
        uk = u[k] + w[k] * d
        u[k] = uk
        key[k] = free[k] * (lip * abs(uk - u_eval[k]) + gap[k])


@kernel(inline=True)
def _deliver_segments(net, st, q, j, d):
    """AXPY ``u[t] += w·d`` over the contiguous segments of row ``j``."""
    syn = net.syn
    row_end = syn.indptr[j + 1]
    seg_end = syn.seg_ptr[j + 1]
    for s in range(syn.seg_ptr[j], seg_end):
        p0 = syn.seg_pos[s]
        p1 = syn.seg_pos[s + 1] if s + 1 < seg_end else row_end
        t0 = np.int64(syn.seg_first[s])
        t1 = t0 + (p1 - p0)
        _axpy_keys(st.u[t0:t1], st.u_eval[t0:t1], st.gap[t0:t1], net.free[t0:t1], q.keys[t0:t1],
                   syn.weights[p0:p1], d, net.lipschitz)
        _q_changed_range(q, t0, t1)


@kernel(inline=True)
def _deliver_scatter(net, st, q, j, d):
    """Scatter ``u[t] += w·d`` over the out-edges of row ``j``."""
    syn = net.syn
    keys = q.keys
    lip = net.lipschitz
    for p in range(syn.indptr[j], syn.indptr[j + 1]):
        t = syn.indices[p]
        st.u[t] += syn.weights[p] * d
        keys[t] = net.free[t] * (lip * abs(st.u[t] - st.u_eval[t]) + st.gap[t])
        _q_changed(q, t)


@kernel(inline=True)
def _deliver(net, st, q, j, d):
    """Deliver a change ``d`` of neuron ``j`` to its out-neighbours; return the MAC count."""
    if net.syn.seg_ptr[j + 1] > net.syn.seg_ptr[j]:
        _deliver_segments(net, st, q, j, d)
    else:
        _deliver_scatter(net, st, q, j, d)
    return net.syn.indptr[j + 1] - net.syn.indptr[j]


@kernel(refcount=False)
def _init_keys(net, st, q):
    """Evaluate every neuron's exact pending change and (re)build the queue."""
    keys = q.keys
    for i in range(keys.shape[0]):
        st.u_eval[i] = st.u[i]
        st.gap[i] = abs(_rho(net.activation, st.u[i]) - st.x[i])
        keys[i] = net.free[i] * st.gap[i]
    _q_changed_range(q, 0, keys.shape[0])


@kernel(refcount=False)
def _apply_boundary(net, st, q, bnd, stats, counts):
    """Broadcast clamp changes and inject currents (boundary events)."""
    for m in range(bnd.clamp_ids.shape[0]):
        i = bnd.clamp_ids[m]
        d = bnd.clamp_values[m] - st.x[i]
        if d != 0:
            st.x[i] = bnd.clamp_values[m]
            n_ops = _deliver(net, st, q, i, d)
            stats[INPUT_SYNAPTIC_OPS] += n_ops
            stats[SYNAPTIC_OPS] += n_ops
            stats[QUEUE_OPS] += n_ops
            stats[INPUT_BROADCASTS] += 1
            counts[i] += 1
    for m in range(bnd.current_ids.shape[0]):
        i = bnd.current_ids[m]
        st.u[i] += bnd.current_values[m]
        q.keys[i] = net.free[i] * (net.lipschitz * abs(st.u[i] - st.u_eval[i]) + st.gap[i])
        _q_changed(q, i)
        stats[QUEUE_OPS] += 1


@kernel(inline=True)
def _update_neuron(net, st, q, j, eps, stats, counts):
    """Evaluate popped neuron ``j``; broadcast if its change exceeds ``eps``."""
    stats[NEURON_UPDATES] += 1
    stats[QUEUE_OPS] += 1
    x_new = _rho(net.activation, st.u[j])
    d = x_new - st.x[j]
    st.u_eval[j] = st.u[j]
    if abs(d) > eps:
        st.x[j] = x_new
        st.gap[j] = 0.0
        q.keys[j] = 0.0
        _q_changed(q, j)
        n_ops = _deliver(net, st, q, j, d)
        stats[SYNAPTIC_OPS] += n_ops
        stats[QUEUE_OPS] += n_ops
        stats[BROADCASTS] += 1
        counts[j] += 1
    else:
        st.gap[j] = abs(d)
        q.keys[j] = net.free[j] * abs(d)
        _q_changed(q, j)


@kernel(refcount=False)
def _settle(net, st, q, bnd, eps, max_updates, stats, counts):
    """Apply boundary events, then pop and update neurons until no key exceeds ``eps``.

    Returns True when settled, False when ``max_updates`` neuron updates were
    spent first.
    """
    _init_keys(net, st, q)
    _apply_boundary(net, st, q, bnd, stats, counts)
    updates = 0
    while True:
        j, key = _q_peek_max(q)
        if j < 0 or key <= eps:
            return True
        if updates >= max_updates:
            return False
        updates += 1
        _update_neuron(net, st, q, j, eps, stats, counts)
