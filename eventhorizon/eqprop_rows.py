"""One compiled EqProp step per sample: free phase, nudged phase(s), gradient — no Python in between.

:func:`eqprop_rows` runs, for each row of a chunk of samples, exactly what
:meth:`~eventhorizon.eqprop.EqPropModel.free_phase`,
:meth:`~eventhorizon.eqprop.EqPropModel.nudged_phase` and
:func:`~eventhorizon.learning.accumulate_gradient` do one Python call at a
time (the same kernels in the same order, so the same states, counts and
float32 gradient sums, tested), inside one ``nogil`` Numba call
(:func:`_eqprop_rows`). A sample's nudged phases cost a few hundred
multiply-adds; through Python each one cost a ``settle`` call's checks and
allocations, more than the work itself. Chunks on separate threads run on
separate cores.
"""

from typing import NamedTuple

import numpy as np

from eventhorizon import kernels as K
from eventhorizon.learning import _accumulate
from eventhorizon.models import TANH, _rho
from eventhorizon.settle import _NO_IDS, _NO_VALUES, net_arrays
from scheduler.jit import kernel
from scheduler.queues import new_queue

__all__ = ["Nudge", "RowsResult", "eqprop_rows"]

# Phases in RowsResult.stats / .settled.
FREE, NUDGED_A, NUDGED_B = range(3)


class Nudge(NamedTuple):
    """The two nudged equilibria of the learning rule: ``a`` at ``beta_a``, ``b`` at ``beta_b``.

    ``symmetric`` False means ``b`` is the free equilibrium (``beta_b`` 0).
    ``straight_through``: see :func:`_nudge_current`.
    """

    beta_a: float
    beta_b: float
    symmetric: bool
    straight_through: bool = False


class _Rows(NamedTuple):
    """A chunk of samples and where their results go."""

    inputs: np.ndarray  # float32[rows, n_inputs]
    labels: np.ndarray  # int64[rows]
    input_ids: np.ndarray  # int32[n_inputs]
    output_ids: np.ndarray  # int32[n_outputs]
    free_out: np.ndarray  # float32[rows, n_outputs], free-phase outputs
    stats: np.ndarray  # int64[rows, 3, N_STATS], per phase (FREE, NUDGED_A, NUDGED_B)
    settled: np.ndarray  # bool[rows, 3]
    learning_ops: np.ndarray  # int64[rows]
    states_a: np.ndarray  # float32[rows, n] (or [0, n]: not kept), the equilibrium nudged by beta_a
    states_b: np.ndarray  # float32[rows, n] (or [0, n]), nudged by beta_b (or the free one)


class _Scratch(NamedTuple):
    """Per-thread working arrays."""

    st: K.StateArrays
    free_u: np.ndarray  # float32[n]
    free_x: np.ndarray  # float32[n]
    a: np.ndarray  # float32[n]
    current: np.ndarray  # float32[n_outputs]
    counts: np.ndarray  # int32[n], broadcasts per neuron (not reported)


class RowsResult(NamedTuple):
    """What :func:`eqprop_rows` measured, one row per sample."""

    free_out: np.ndarray
    stats: np.ndarray
    settled: np.ndarray
    learning_ops: np.ndarray
    states_a: np.ndarray
    states_b: np.ndarray


@kernel
def _nudge_current(beta, target, x, u, activation, straight_through):
    """The current one output gets in a nudged phase: ``β·(target − x)``, in float64 rounded once to float32.

    With ``straight_through``, an output whose free-phase ρ is saturated
    (``u`` outside ρ's linear range, so ``x = ρ(u)`` sits at a bound) and
    whose target differs from ``x`` also gets ``−(u − ρ(u))``: it starts the
    nudged phase at the edge of the linear range, where the nudge can move
    it. Without this, a confidently wrong output (``u`` beyond the bound by
    more than ``|β|``) does not move in either nudged phase, so its sample
    gives no gradient at all. It is the straight-through estimate of a clip
    (ρ' taken as 1 past the bound), used only for the output layer's cost;
    an output that is right (``x == target``) or unsaturated gets the plain
    current. Only for piecewise-linear ρ (a clip); with tanh the flag is ignored
    (:class:`~eventhorizon.eqprop.EqPropConfig` refuses the combination).

    Both the compiled training loop and
    :meth:`~eventhorizon.eqprop.EqPropModel.nudged_phase` call this, so they
    give the same current to the bit.

    Examples
    --------
    >>> from eventhorizon.models import HARD_SIGMOID
    >>> float(_nudge_current(0.3, 0.0, 1.0, 1.9, HARD_SIGMOID, False))   # stays clipped at 1
    -0.30000001192092896
    >>> round(float(_nudge_current(0.3, 0.0, 1.0, 1.9, HARD_SIGMOID, True)), 4)  # back to u = 1, then −0.3
    -1.2
    """
    c = beta * np.float64(target - x)
    if straight_through and activation != TANH and x != target:
        # the excess in float32 (exact near the bound): computed in float64, fast-math reassociation could turn
        # β·err − (u − ρ(u)) into (β·err − u) + ρ(u) and lose a small β·err to cancellation
        excess = np.float32(u) - _rho(activation, np.float32(u))
        c -= np.float64(excess)
    return np.float32(c)


@kernel(inline=True)
def _nudged(net, sc, q, rows, r, beta, straight_through, rule, max_updates, phase):
    """Settle from the free equilibrium with :func:`_nudge_current` on the outputs (as ``nudged_phase``)."""
    K._copy(sc.st.u, sc.free_u)
    K._copy(sc.st.x, sc.free_x)
    out = rows.output_ids
    for k in range(out.shape[0]):
        y = np.float32(1.0) if k == rows.labels[r] else np.float32(0.0)
        sc.current[k] = _nudge_current(beta, y, sc.free_x[out[k]], sc.free_u[out[k]], net.activation,
                                       straight_through)
    bnd = K.Boundary(_NO_IDS, _NO_VALUES, out, sc.current)
    rows.settled[r, phase] = K._settle(net, sc.st, q, bnd, rule, max_updates, rows.stats[r, phase], sc.counts)


@kernel(refcount=False)
def _eqprop_rows(net, q, rows, sc, nudge, rule, max_updates, accumulate, grad_w, grad_b):
    """Free phase, nudged phase(s) and (if ``accumulate``) gradient accumulation for each row in turn."""
    st = sc.st
    scale = np.float32(1.0 / (nudge.beta_a - nudge.beta_b))
    keep = rows.states_a.shape[0] > 0
    for r in range(rows.inputs.shape[0]):
        K._copy(st.u, net.bias)  # cold start: u is the bias, every output 0
        st.x[:] = 0.0
        bnd = K.Boundary(rows.input_ids, rows.inputs[r], _NO_IDS, _NO_VALUES)
        rows.settled[r, FREE] = K._settle(net, st, q, bnd, rule, max_updates, rows.stats[r, FREE], sc.counts)
        K._copy(sc.free_u, st.u)
        K._copy(sc.free_x, st.x)
        for k in range(rows.output_ids.shape[0]):
            rows.free_out[r, k] = st.x[rows.output_ids[k]]
        _nudged(net, sc, q, rows, r, nudge.beta_a, nudge.straight_through, rule, max_updates, NUDGED_A)
        if nudge.symmetric:
            K._copy(sc.a, st.x)
            _nudged(net, sc, q, rows, r, nudge.beta_b, nudge.straight_through, rule, max_updates, NUDGED_B)
            b = st.x
        else:
            K._copy(sc.a, st.x)
            b = sc.free_x
        if keep:
            K._copy(rows.states_a[r], sc.a)
            K._copy(rows.states_b[r], b)
        if accumulate:
            rows.learning_ops[r] = _accumulate(net.syn, sc.a, b, net.free, scale, grad_w, grad_b)


def _new_scratch(n, n_out):
    work = np.zeros((7, n), np.float32)
    return _Scratch(K.StateArrays(*work[:4]), work[4], work[5], work[6], np.zeros(n_out, np.float32),
                    np.zeros(n, np.int32))


def eqprop_rows(network, inputs, labels, output_ids, nudge, *, rule, max_updates, grad_w=None, grad_b=None,
                keep_states=False, scheduler="tournament"):
    """Run the EqProp phases of every sample and add its gradient estimate to ``grad_w``/``grad_b``.

    The caller (:meth:`~eventhorizon.eqprop.EqPropModel.train_batch`) has
    checked the samples; this checks the arrays the kernel writes.

    Parameters
    ----------
    network : RateNetwork
    inputs : ndarray of float32, shape (rows, network.n_inputs)
    labels : ndarray of int64, shape (rows,)
        Class of each row: index into ``output_ids``.
    output_ids : ndarray of int32
    nudge : Nudge
    rule : eventhorizon.kernels.Rule
    max_updates : int
        Event budget of each phase.
    grad_w : ndarray of float32, shape (network.graph.nnz,), optional
    grad_b : ndarray of float32, shape (network.n,), optional
        Accumulators, updated in place (row order, as the per-sample path).
        Give both or neither (no gradient is accumulated then).
    keep_states : bool
        Also return the two equilibria of the learning rule per sample
        (``states_a``, ``states_b``; what
        :meth:`~eventhorizon.eqprop.EqPropModel.candidate_scores` scores).
    scheduler : {"tournament", "heap"}

    Returns
    -------
    RowsResult
        ``free_out`` (free-phase outputs), ``stats`` (rows × phase × the
        kernel's counters), ``settled`` (rows × phase), ``learning_ops``,
        and ``states_a``/``states_b`` (rows × neurons; 0 rows without
        ``keep_states``).

    Examples
    --------
    >>> from eventhorizon.eqprop import EqPropConfig, EqPropModel
    >>> from eventhorizon.checks import settle_rule
    >>> model = EqPropModel(EqPropConfig(sizes=(3, 4, 2)))
    >>> gw, gb = np.zeros(model.graph.nnz, np.float32), np.zeros(model.graph.n, np.float32)
    >>> res = eqprop_rows(model.network, np.ones((2, 3), np.float32), np.array([0, 1]), model.output_ids,
    ...                   Nudge(0.5, -0.5, True), rule=settle_rule(1e-3, 1.0),
    ...                   max_updates=10_000, grad_w=gw, grad_b=gb)
    >>> bool(res.settled.all()), res.free_out.shape
    (True, (2, 2))
    """
    rows_n, n_out = inputs.shape[0], output_ids.shape[0]
    if inputs.dtype != np.float32 or inputs.shape[1:] != (network.n_inputs,):
        raise ValueError(f"inputs must be float32 of shape (rows, {network.n_inputs}), "
                         f"got {inputs.dtype}{inputs.shape}")
    if labels.shape != (rows_n,) or labels.size and not 0 <= labels.min() <= labels.max() < n_out:
        raise ValueError(f"labels must be {rows_n} indices into the {n_out} outputs")
    accumulate = grad_w is not None
    if (grad_b is not None) != accumulate:
        raise ValueError("grad_w and grad_b must be given together (or neither, to accumulate nothing)")
    if not accumulate:
        grad_w, grad_b = np.zeros(0, np.float32), np.zeros(0, np.float32)
    for name, arr, size in (("grad_w", grad_w, network.graph.nnz), ("grad_b", grad_b, network.n)):
        if accumulate and (arr.dtype != np.float32 or arr.shape != (size,)):
            raise ValueError(f"{name} must be float32 of shape ({size},), got {arr.dtype}{arr.shape}")
    if nudge.beta_a == nudge.beta_b:
        raise ValueError(f"the two nudges must differ, got beta_a = beta_b = {nudge.beta_a}")
    rows = _Rows(np.ascontiguousarray(inputs), labels.astype(np.int64), network.input_ids,
                 output_ids.astype(np.int32), np.zeros((rows_n, n_out), np.float32),
                 np.zeros((rows_n, 3, K.N_STATS), np.int64), np.ones((rows_n, 3), np.bool_),
                 np.zeros(rows_n, np.int64), *np.zeros((2, rows_n if keep_states else 0, network.n), np.float32))
    nudge = Nudge(float(nudge.beta_a), float(nudge.beta_b), bool(nudge.symmetric), bool(nudge.straight_through))
    _eqprop_rows(net_arrays(network), new_queue(scheduler, network.n), rows, _new_scratch(network.n, n_out),
                 nudge, rule, int(max_updates), accumulate, grad_w, grad_b)
    return RowsResult(rows.free_out, rows.stats, rows.settled, rows.learning_ops, rows.states_a, rows.states_b)
