"""Slow, obviously-correct references for the settling tests (plain numpy, no Numba).

:func:`naive_settle` re-implements the event algorithm documented in
:mod:`eventhorizon.kernels` with a dense adjacency and an ``O(n)`` argmax
scan instead of a priority queue. It does its arithmetic in float32 in the
same order as the kernel, so on small networks both make the *same*
decisions (same broadcast sequence, hence identical counts):

* ``u[t] += w·d`` is rounded once, as the fused multiply-add the kernel is
  compiled to (``fastmath`` allows ``contract`` and the CPU has FMA), see
  :func:`fma32`;
* ``tanh`` is libm's ``tanhf``, which is what Numba calls for a float32
  ``np.tanh``; numpy's own float32 tanh differs from it by 1-2 ulp in about
  20 % of arguments.

Exact agreement can still fail when a decision is within rounding of a
tie (two nearly equal top keys, ``|d|`` within an ulp of ``eps``).
:func:`naive_settle` therefore reports ``min_margin``, the smallest such
distance it met, so tests can skip the bit-for-bit comparison on
ill-conditioned runs, and ``had_tie`` for exact ties of the top key (the
binary heap breaks those differently from the lowest-id rule).

:func:`naive_fixed_point` is an independent float64 fixed-point iteration.
"""

import ctypes
import ctypes.util
from typing import NamedTuple

import numpy as np

__all__ = [
    "NAIVE_ACTIVATIONS",
    "NaiveResult",
    "fma32",
    "naive_fixed_point",
    "naive_mac_count",
    "naive_settle",
    "rho64",
]

# -------------------------------------------------------------- activations


def _load_tanhf():
    """libm's float32 ``tanhf`` (what Numba's float32 ``np.tanh`` calls), or None."""
    name = ctypes.util.find_library("m")
    if name is None:
        return None
    try:
        fn = ctypes.CDLL(name).tanhf
    except (OSError, AttributeError):
        return None
    fn.restype = ctypes.c_float
    fn.argtypes = [ctypes.c_float]
    return fn


_TANHF = _load_tanhf()


def tanh32(u):
    """float32 tanh of one float32 value, bit-identical to the kernel's when libm is found."""
    if _TANHF is None:
        return np.tanh(np.float32(u))
    return np.float32(_TANHF(float(u)))


def hard_sigmoid32(u):
    """clip(u, 0, 1) in float32."""
    return np.float32(min(max(np.float32(u), np.float32(0.0)), np.float32(1.0)))


def clipped_relu32(u):
    """clip(u, 0, 6) in float32."""
    return np.float32(min(max(np.float32(u), np.float32(0.0)), np.float32(6.0)))


NAIVE_ACTIVATIONS = {"tanh": tanh32, "hard_sigmoid": hard_sigmoid32, "clipped_relu": clipped_relu32}


def rho64(name, u):
    """ρ in float64 (vectorised), for the fixed-point reference."""
    u = np.asarray(u, dtype=np.float64)
    if name == "tanh":
        return np.tanh(u)
    return np.clip(u, 0.0, 1.0 if name == "hard_sigmoid" else 6.0)


# --------------------------------------------------------------- arithmetic


def fma32(w, d, u):
    """``float32(w·d + u)`` rounded once, like a fused multiply-add, for float32 inputs.

    ``w·d`` is exact in float64 (two 24-bit significands); the float64 sum is
    made round-to-odd with a two-sum error term, after which rounding to
    float32 is correct (53 ≥ 2·24 + 2), with no double-rounding error.
    """
    p = np.asarray(w, np.float32).astype(np.float64) * np.float64(np.float32(d))
    u64 = np.asarray(u, np.float32).astype(np.float64)
    s = p + u64
    bp = s - u64
    err = (p - bp) + (u64 - (s - bp))
    s = np.atleast_1d(s).copy()
    err = np.broadcast_to(err, s.shape)
    nudge = (err != 0) & ((s.view(np.int64) & 1) == 0)
    s[nudge] = np.nextafter(s[nudge], np.where(err[nudge] > 0, np.inf, -np.inf))
    return s.astype(np.float32).reshape(np.shape(p + u64))


# ---------------------------------------------------------------- settle


class NaiveResult(NamedTuple):
    """What :func:`naive_settle` returns."""

    u: np.ndarray  # float32[n]
    x: np.ndarray  # float32[n]
    settled: bool
    stats: dict  # same names as SettleStats
    counts: np.ndarray  # int32[n] broadcasts per neuron (inputs included)
    events: list  # (id, d) per broadcast, inputs first, in order
    min_margin: float  # distance of the closest decision from flipping
    had_tie: bool  # the top key was ever shared by two neurons
    keys: np.ndarray  # float32[n] final queue keys


def naive_settle(adjacency_dense, bias, input_ids, inputs, activation_fn, lipschitz, eps,
                 max_updates, *, edge_mask=None, state=None, currents=None, fma=True, relaxation=1.0,
                 exact_keys=None):
    """Event-driven settling, written out with dense arrays and an argmax scan.

    Parameters
    ----------
    adjacency_dense : (n, n) array
        ``A[pre, post]``; rounded to float32 like the store.
    bias : (n,) array
    input_ids, inputs : clamped neuron ids and their values (``inputs=None``:
        no clamp events).
    activation_fn : str or callable
        A name in :data:`NAIVE_ACTIVATIONS` or a float32 scalar function.
    lipschitz, eps : float
    max_updates : int
        Budget of neuron updates (pops).
    edge_mask : (n, n) bool array, optional
        Which synapses exist; default ``A != 0``. Needed when a graph keeps
        explicit zero weights (they are delivered and counted).
    state : (u, x), optional
        Warm start; cold (``u = bias``, ``x = 0``) by default.
    currents : (ids, values), optional
        Added to ``u`` after the clamp events.
    fma : bool
        Round ``u + w·d`` once (as the compiled kernel does) or twice.
    relaxation : float
        Over-relaxation ω: broadcast ``ω·d`` and set ``x[j] += ω·d``,
        keeping ``gap[j] = |x_new − x[j]|`` (ω = 1: the plain rule below).
    exact_keys : bool, optional
        Keys are the pending change ``|ρ(u) − x|`` itself, as the kernel does
        for piecewise-linear ρ; default: True for ``"hard_sigmoid"`` and
        ``"clipped_relu"``, False otherwise.

    Algorithm (the kernel's): every neuron ``i`` has
    ``key[i] = free[i]·(L·|u[i] − u_eval[i]| + gap[i])`` (with exact keys:
    ``free[i]·|ρ(u[i]) − x[i]|``). Start with
    ``u_eval = u`` and ``gap = |ρ(u) − x|`` for all neurons; broadcast each
    input whose value differs from ``x`` (in input order); add currents.
    Then repeatedly take the largest key (lowest id on ties); stop when it is
    ``<= eps``; else evaluate ``x_new = ρ(u[j])``, ``d = x_new − x[j]``,
    ``u_eval[j] = u[j]``; if ``|d| > eps`` set ``x[j] = x_new``, ``gap[j] =
    0`` and deliver ``u[t] += A[j, t]·d`` to every out-neighbour ``t``,
    otherwise set ``gap[j] = |d|``.
    """
    f32 = np.float32
    A = np.array(adjacency_dense, dtype=f32)
    n = A.shape[0]
    mask = (A != 0) if edge_mask is None else np.asarray(edge_mask, dtype=bool)
    rho = NAIVE_ACTIVATIONS[activation_fn] if isinstance(activation_fn, str) else activation_fn
    if exact_keys is None:
        exact_keys = activation_fn in ("hard_sigmoid", "clipped_relu")
    lip, eps = f32(lipschitz), f32(eps)
    input_ids = np.asarray([] if input_ids is None else input_ids, dtype=np.int64)
    free = np.ones(n, f32)
    free[input_ids] = 0
    if state is None:
        u, x = np.array(bias, dtype=f32), np.zeros(n, f32)
    else:
        u, x = np.array(state[0], dtype=f32), np.array(state[1], dtype=f32)
    stats = dict(synaptic_ops=0, broadcasts=0, input_synaptic_ops=0, input_broadcasts=0,
                 neuron_updates=0, queue_ops=0)
    counts = np.zeros(n, np.int32)
    events = []

    def deliver(j, d):
        targets = np.flatnonzero(mask[j])
        if fma:
            u[targets] = fma32(A[j, targets], d, u[targets])
        else:
            u[targets] = u[targets] + A[j, targets] * d
        counts[j] += 1
        events.append((int(j), float(d)))
        stats["synaptic_ops"] += targets.size
        stats["queue_ops"] += targets.size
        return targets.size

    # _init_keys
    u_eval = u.copy()
    gap = np.array([abs(f32(rho(u[i]) - x[i])) for i in range(n)], dtype=f32)
    # _apply_boundary: clamps, then currents
    if inputs is not None:
        for i, value in zip(input_ids, np.asarray(inputs, dtype=f32)):
            d = f32(value - x[i])
            if d != 0:
                x[i] = value
                stats["input_synaptic_ops"] += deliver(i, d)
                stats["input_broadcasts"] += 1
    if currents is not None:
        for i, value in zip(*currents):
            u[i] = f32(u[i] + f32(value))
            stats["queue_ops"] += 1

    margin, had_tie, settled = np.inf, False, False
    while True:
        if exact_keys:
            keys = free * np.abs(np.array([rho(v) for v in u], dtype=f32) - x)
        else:
            keys = free * (lip * np.abs(u - u_eval) + gap)
        j = int(np.argmax(keys))  # first maximum: lowest id
        top = keys[j]
        if n > 1:
            second = np.max(np.delete(keys, j))
            had_tie |= bool(second == top and top > eps)
            if top > eps:
                margin = min(margin, float(top) - float(second))
        margin = min(margin, abs(float(top) - float(eps)))
        if top <= eps:
            settled = True
            break
        if stats["neuron_updates"] >= max_updates:
            break
        stats["neuron_updates"] += 1
        stats["queue_ops"] += 1
        x_new = f32(rho(u[j]))
        d = f32(x_new - x[j])
        u_eval[j] = u[j]
        margin = min(margin, abs(float(abs(d)) - float(eps)))
        if abs(d) > eps:
            if relaxation == 1:
                x[j] = x_new
                gap[j] = 0
            else:
                d = f32(f32(relaxation) * d)
                x[j] = f32(x[j] + d)
                gap[j] = abs(f32(x_new - x[j]))
            deliver(j, d)
            stats["broadcasts"] += 1
        else:
            gap[j] = abs(d)
    return NaiveResult(u, x, settled, stats, counts, events, margin, had_tie, keys)


def naive_mac_count(edge_mask, counts):
    """Synaptic ops implied by per-neuron broadcast counts: ``Σ_i counts[i]·fan_out[i]``."""
    fan_out = np.asarray(edge_mask, dtype=bool).sum(axis=1)
    return int(np.dot(np.asarray(counts, dtype=np.int64), fan_out))


# ------------------------------------------------------------ fixed point


def naive_fixed_point(A_dense, bias, input_ids, inputs, act, tol=1e-7, max_iter=100_000):
    """Fixed point of ``x = ρ(Aᵀx + b)`` on free neurons, inputs clamped (float64).

    Plain synchronous (Jacobi) iteration; converges geometrically when
    ``L·‖W_free‖₂ < 1``. Stops when the largest change is below ``tol``;
    raises ``RuntimeError`` after ``max_iter`` sweeps.
    """
    A = np.asarray(A_dense, dtype=np.float64)
    n = A.shape[0]
    b = np.asarray(bias, dtype=np.float64)
    input_ids = np.asarray([] if input_ids is None else input_ids, dtype=np.int64)
    free = np.ones(n, bool)
    free[input_ids] = False
    x = np.zeros(n)
    if input_ids.size:
        x[input_ids] = np.asarray(inputs, dtype=np.float64)
    for _ in range(max_iter):
        new = x.copy()
        new[free] = rho64(act, A.T @ x + b)[free]
        if np.max(np.abs(new - x), initial=0.0) < tol:
            return new
        x = new
    raise RuntimeError(f"naive_fixed_point did not converge in {max_iter} sweeps")
