"""Numba kernels of event-driven rate settling (private; see :mod:`eventhorizon.settle`).

A neuron ``i`` keeps ``u[i]`` (accumulated input), ``x[i]`` (the value it
last broadcast), ``u_eval[i]`` (``u`` when ρ was last evaluated) and
``gap[i]``. Its queue key is its pending change ``|ρ(u[i]) − x[i]|`` or a
bound of it:

* piecewise-linear ρ (hard sigmoid, clipped ReLU: ``NetArrays.exact_keys``)
  costs a min and a max, so the key *is* the pending change,
  ``key[i] = |ρ(u[i]) − x[i]| + gap[i]`` with ``gap`` 0 (it only masks
  clamped neurons, below). A saturated neuron whose input moves further
  into saturation keeps key 0 and is never popped for nothing;
* otherwise (tanh) ``gap[i] = |ρ(u_eval[i]) − x[i]|`` and the key
  ``L·|u[i] − u_eval[i]| + gap[i] ≥ |ρ(u[i]) − x[i]|`` bounds the pending
  change without evaluating ρ (L is ρ's Lipschitz constant) — one tanh per
  delivered synapse would cost more than the pops it saves.

The scheduler pops the largest key; the popped neuron evaluates ρ once and,
if its change ``d = ρ(u) − x`` exceeds ε, broadcasts it so that every
out-neighbour ``t`` does ``u[t] += w·d`` — one counted multiply-add each —
and gets a fresh key. Settling ends when no key exceeds ε, hence no pending
change does.

Over-relaxation (``Rule.relaxation`` ω ≠ 1) broadcasts ``ω·d`` instead and
sets ``x += ω·d``; the neuron then keeps the pending change
``|ρ(u) − x| = |1 − ω|·|d|`` as its gap. The stopping test is unchanged, so
the result is an ε-fixed point all the same; ω slightly above 1 anticipates
the corrections its neighbours would send back and cuts broadcasts (SOR,
applied to asynchronous events). ω = 1 is the plain rule, bit for bit.

Clamped neurons are never scheduled: their ``gap`` is ``-inf``, so their key
is ``-inf`` whatever ``u`` does (no per-synapse mask in the hot loop).
Boundary events (clamps, currents) happen before any neuron is popped, so
they only move ``u``; the keys are computed once afterwards, from the same
formula, which gives the same keys as refreshing them after every event.
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
    exact_keys: bool  # keys are |ρ(u) − x| itself (piecewise-linear ρ), not a Lipschitz bound


class StateArrays(NamedTuple):
    """Per-neuron dynamic state (all float32[n])."""

    u: np.ndarray
    x: np.ndarray
    u_eval: np.ndarray
    gap: np.ndarray


class Rule(NamedTuple):
    """When a popped neuron broadcasts, and what."""

    eps: np.float32  # broadcast when |ρ(u) − x| > eps
    relaxation: np.float32  # broadcast relaxation·(ρ(u) − x); 1 is the plain rule


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
def _copy(dst, src):
    """``dst[:] = src`` as a loop: Numba cannot lower array-to-array slice assignment without NRT."""
    for i in range(dst.shape[0]):
        dst[i] = src[i]


@kernel(inline=True)
def _axpy(u, w, d):
    """``u += w·d`` over equal-length slices (indexed from 0 so that LLVM vectorises it)."""
    for k in range(u.shape[0]):
        u[k] += w[k] * d


@kernel(inline=True)
def _axpy_keys(u, u_eval, gap, key, w, d, lip):
    """``u += w·d`` and refresh the keys, over equal-length slices.

    Written over slices indexed from 0 so that Numba emits no negative-index
    wrap-around code and LLVM vectorises the loop (10× faster than indexing
    ``u[t0 + k]`` with a run-time ``t0``).
    """
    for k in range(u.shape[0]):
        uk = u[k] + w[k] * d
        u[k] = uk
        key[k] = lip * abs(uk - u_eval[k]) + gap[k]


@kernel(inline=True)
def _axpy_exact_keys(u, x, gap, key, w, d, code):
    """``u += w·d`` and set the keys to the exact pending change ``|ρ(u) − x|`` (piecewise-linear ρ).

    Over slices indexed from 0, like :func:`_axpy_keys`; ρ is a min and a max, so this vectorises too.
    """
    for k in range(u.shape[0]):
        uk = u[k] + w[k] * d
        u[k] = uk
        key[k] = abs(_rho(code, uk) - x[k]) + gap[k]


@kernel(inline=True)
def _key(net, st, i):
    """Queue key of neuron ``i`` (``-inf`` for clamped neurons, whose gap is ``-inf``)."""
    if net.exact_keys:
        return abs(_rho(net.activation, st.u[i]) - st.x[i]) + st.gap[i]
    return net.lipschitz * abs(st.u[i] - st.u_eval[i]) + st.gap[i]


@kernel(inline=True)
def _segment_span(syn, s, seg_end, row_end):
    """Segment ``s`` of a row: synapse positions ``[p0, p1)`` targeting the ids ``[t0, t1)``.

    A segment runs to the next segment's position, or to the row's end.
    """
    p0 = syn.seg_pos[s]
    p1 = syn.seg_pos[s + 1] if s + 1 < seg_end else row_end
    t0 = np.int64(syn.seg_first[s])
    return p0, p1, t0, t0 + (p1 - p0)


@kernel(inline=True)
def _deliver_u(net, st, j, d):
    """``u[t] += w·d`` over the out-edges of ``j`` (keys untouched); return the MAC count."""
    syn = net.syn
    row_end = syn.indptr[j + 1]
    seg_end = syn.seg_ptr[j + 1]
    if seg_end > syn.seg_ptr[j]:
        for s in range(syn.seg_ptr[j], seg_end):
            p0, p1, t0, t1 = _segment_span(syn, s, seg_end, row_end)
            _axpy(st.u[t0:t1], syn.weights[p0:p1], d)
    else:
        for p in range(syn.indptr[j], row_end):
            st.u[syn.indices[p]] += syn.weights[p] * d
    return row_end - syn.indptr[j]


@kernel(inline=True)
def _deliver(net, st, q, j, d):
    """``u[t] += w·d`` over the out-edges of ``j``, refreshing their keys; return the MAC count.

    Rows with a segment table get SIMD AXPYs over contiguous target runs,
    the others a scatter.
    """
    syn = net.syn
    keys = q.keys
    row_end = syn.indptr[j + 1]
    seg_end = syn.seg_ptr[j + 1]
    if seg_end > syn.seg_ptr[j]:
        for s in range(syn.seg_ptr[j], seg_end):
            p0, p1, t0, t1 = _segment_span(syn, s, seg_end, row_end)
            if net.exact_keys:
                _axpy_exact_keys(st.u[t0:t1], st.x[t0:t1], st.gap[t0:t1], keys[t0:t1], syn.weights[p0:p1], d,
                                 net.activation)
            else:
                _axpy_keys(st.u[t0:t1], st.u_eval[t0:t1], st.gap[t0:t1], keys[t0:t1],
                           syn.weights[p0:p1], d, net.lipschitz)
            _q_changed_range(q, t0, t1)
    else:
        for p in range(syn.indptr[j], row_end):
            t = syn.indices[p]
            st.u[t] += syn.weights[p] * d
            keys[t] = _key(net, st, t)
            _q_changed(q, t)
    return row_end - syn.indptr[j]


@kernel(refcount=False)
def _init_eval(net, st):
    """Set ``u_eval = u`` and ``gap``: the exact pending change (0 with exact keys), ``-inf`` if clamped."""
    neg_inf = np.float32(-np.inf)
    for i in range(st.u.shape[0]):
        st.u_eval[i] = st.u[i]
        if net.free[i] == 0:
            st.gap[i] = neg_inf
        elif net.exact_keys:
            st.gap[i] = 0.0
        else:
            st.gap[i] = abs(_rho(net.activation, st.u[i]) - st.x[i])


@kernel(refcount=False)
def _apply_boundary(net, st, bnd, stats, counts):
    """Broadcast clamp changes and inject currents (boundary events; keys are built after)."""
    for m in range(bnd.clamp_ids.shape[0]):
        i = bnd.clamp_ids[m]
        d = bnd.clamp_values[m] - st.x[i]
        if d != 0:
            st.x[i] = bnd.clamp_values[m]
            n_ops = _deliver_u(net, st, i, d)
            stats[INPUT_SYNAPTIC_OPS] += n_ops
            stats[SYNAPTIC_OPS] += n_ops
            stats[QUEUE_OPS] += n_ops  # each target's key changes (applied in _init_keys)
            stats[INPUT_BROADCASTS] += 1
            counts[i] += 1
    for m in range(bnd.current_ids.shape[0]):
        st.u[bnd.current_ids[m]] += bnd.current_values[m]
        stats[QUEUE_OPS] += 1


@kernel(refcount=False)
def _init_keys(net, st, q):
    """Compute every key and (re)build the queue."""
    keys = q.keys
    for i in range(keys.shape[0]):
        keys[i] = _key(net, st, i)
    _q_changed_range(q, 0, keys.shape[0])


@kernel(inline=True)
def _update_neuron(net, st, q, j, rule, stats, counts):
    """Evaluate popped (free) neuron ``j``; broadcast if its change exceeds ``rule.eps``."""
    stats[NEURON_UPDATES] += 1
    stats[QUEUE_OPS] += 1
    x_new = _rho(net.activation, st.u[j])
    d = x_new - st.x[j]
    st.u_eval[j] = st.u[j]
    if abs(d) > rule.eps:
        if rule.relaxation == 1:
            st.x[j] = x_new
            residual = np.float32(0.0)
        else:
            d = rule.relaxation * d
            st.x[j] += d
            residual = abs(x_new - st.x[j])
        if not net.exact_keys:
            st.gap[j] = residual
        q.keys[j] = residual
        _q_changed(q, j)
        n_ops = _deliver(net, st, q, j, d)
        stats[SYNAPTIC_OPS] += n_ops
        stats[QUEUE_OPS] += n_ops
        stats[BROADCASTS] += 1
        counts[j] += 1
    else:
        if not net.exact_keys:
            st.gap[j] = abs(d)
        q.keys[j] = abs(d)
        _q_changed(q, j)


@kernel(refcount=False)
def _settle(net, st, q, bnd, rule, max_updates, stats, counts):
    """Apply boundary events, then pop and update neurons until no key exceeds ``rule.eps``.

    Returns True when settled, False when ``max_updates`` neuron updates were
    spent first.
    """
    _init_eval(net, st)
    _apply_boundary(net, st, bnd, stats, counts)
    _init_keys(net, st, q)
    updates = 0
    while True:
        j, key = _q_peek_max(q)
        if j < 0 or key <= rule.eps:
            return True
        if updates >= max_updates:
            return False
        updates += 1
        _update_neuron(net, st, q, j, rule, stats, counts)
