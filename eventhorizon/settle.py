"""Event-driven settling of a rate network to its fixed point.

:func:`settle` is the public entry point. It checks its arguments, builds
the kernel's arrays and runs one Numba call that applies the boundary events
(clamped inputs, injected currents) and then processes neurons one at a
time, the most unstable first, until no neuron's pending change exceeds ε.
"""

from dataclasses import dataclass, fields

import numpy as np

from eventhorizon import kernels as K
from eventhorizon.checks import settle_rule
from eventhorizon.network import RateNetwork
from scheduler.queues import new_queue

__all__ = ["RateState", "SettleStats", "SettleResult", "NotSettledError", "settle"]

# No boundary events of a kind: shared empty arrays (nothing is ever written to them).
_NO_IDS = np.zeros(0, np.int32)
_NO_VALUES = np.zeros(0, np.float32)
_STATS_ORDER = np.array([K.SYNAPTIC_OPS, K.BROADCASTS, K.INPUT_SYNAPTIC_OPS, K.INPUT_BROADCASTS,
                         K.NEURON_UPDATES, K.QUEUE_OPS])

@dataclass(frozen=True)
class RateState:
    """State of every neuron: accumulated input ``u`` and broadcast value ``x``.

    Pass a result's ``state`` back to :func:`settle` to warm-start from it.
    """

    u: np.ndarray
    x: np.ndarray

    @classmethod
    def cold(cls, network):
        """All outputs zero; ``u`` is the bias."""
        return cls(u=network.bias.copy(), x=np.zeros(network.n, dtype=np.float32))


@dataclass(frozen=True)
class SettleStats:
    """Work done by one settle, counted inside the kernels.

    Attributes
    ----------
    synaptic_ops : int
        Multiply-adds executed (``u[t] += w·d``), including input broadcasts.
    broadcasts : int
        Broadcasts by free neurons.
    input_synaptic_ops, input_broadcasts : int
        The part of the above due to boundary events (clamped inputs).
    neuron_updates : int
        Neurons popped and evaluated (ρ computed once each).
    queue_ops : int
        Priority-queue operations: pops plus key updates.
    """

    synaptic_ops: int
    broadcasts: int
    input_synaptic_ops: int
    input_broadcasts: int
    neuron_updates: int
    queue_ops: int

    @classmethod
    def from_array(cls, arr):
        return cls(*arr[_STATS_ORDER].tolist())

    def as_dict(self):
        return {f.name: getattr(self, f.name) for f in fields(self)}


@dataclass(frozen=True)
class SettleResult:
    """Outcome of :func:`settle`.

    Attributes
    ----------
    state : RateState
    stats : SettleStats
    settled : bool
        False when the event budget ran out first.
    broadcast_counts : ndarray of int32
        Broadcasts per neuron (inputs included).
    message : str
    """

    state: RateState
    stats: SettleStats
    settled: bool
    broadcast_counts: np.ndarray
    message: str

    @property
    def x(self):
        """Output of every neuron (float32 array, a view of ``state.x``)."""
        return self.state.x


class NotSettledError(RuntimeError):
    """The event budget ran out before the network settled; ``.result`` has the partial run."""

    def __init__(self, result):
        super().__init__(result.message)
        self.result = result


def _check_state(network, state):
    if state is None:
        return RateState.cold(network)
    if not isinstance(state, RateState):
        raise TypeError(f"state must be a RateState (e.g. a previous result's .state), got {type(state).__name__}")
    arrays = {}
    for name in ("u", "x"):
        arr = np.array(getattr(state, name), dtype=np.float32, copy=True)
        if arr.shape != (network.n,):
            raise ValueError(f"state.{name} must have shape ({network.n},), got {arr.shape}")
        if not np.all(np.isfinite(arr)):
            raise ValueError(f"state.{name} must be finite (found NaN or inf)")
        arrays[name] = arr
    return RateState(**arrays)


def _check_currents(network, currents):
    if currents is None:
        return _NO_IDS, _NO_VALUES
    ids, values = currents
    ids = np.asarray(ids, dtype=np.int64)
    values = np.asarray(values, dtype=np.float32)
    if ids.ndim != 1 or ids.shape != values.shape:
        raise ValueError(f"currents must be (ids, values) of one 1-D length, got shapes {ids.shape}, {values.shape}")
    if ids.size and (ids.min() < 0 or ids.max() >= network.n):
        raise ValueError(f"current ids must lie in [0, {network.n}), got values in [{ids.min()}, {ids.max()}]")
    if not np.all(np.isfinite(values)):
        raise ValueError("current values must be finite (found NaN or inf)")
    return ids.astype(np.int32), values


def _check_on_budget(on_budget):
    if on_budget not in ("raise", "return"):
        raise ValueError(f"on_budget must be 'raise' or 'return', got {on_budget!r}")


def _check_budget(network, max_updates):
    if max_updates is None:
        return 1000 * network.n
    if isinstance(max_updates, bool) or not isinstance(max_updates, (int, np.integer)) or max_updates < 0:
        raise ValueError(f"max_updates must be an int >= 0, got {max_updates!r}")
    return int(max_updates)


def net_arrays(network):
    """The kernel's view of a network (cached on the network)."""
    cached = getattr(network, "_kernel_arrays", None)
    if cached is None:
        cached = K.NetArrays(network.graph.arrays(), network.bias, network.free_mask,
                             network.model.code, np.float32(network.model.lipschitz),
                             network.model.piecewise_linear)
        network._kernel_arrays = cached
    return cached


def settle(network, inputs=None, *, eps, state=None, currents=None, max_updates=None,
           scheduler="tournament", on_budget="raise", relaxation=1.0):
    """Settle ``network`` to its fixed point by events.

    Parameters
    ----------
    network : RateNetwork
    inputs : array_like of float, optional
        Values of the clamped input neurons (shape ``(network.n_inputs,)``).
        Each input whose value differs from the state's broadcasts the
        difference (a boundary event). ``None`` keeps the state's values.
    eps : float
        Threshold: a neuron broadcasts only when its output would change by
        more than ``eps``; settling ends when no neuron's would.
    state : RateState, optional
        Warm start (e.g. a previous result's ``state``); cold (all zero) by default.
        It is copied, never modified.
    currents : (ids, values), optional
        Currents added to ``u`` of the given neurons before settling
        (boundary events, e.g. an EqProp nudge). They persist in the
        returned state's ``u``.
    max_updates : int, optional
        Event budget: neuron updates allowed (default ``1000 · n``).
    scheduler : {"tournament", "heap"}
        Priority queue ordering the neurons (see ``benchmarks/bench_queue.py``).
    on_budget : {"raise", "return"}
        When the budget runs out: raise :class:`NotSettledError` (which
        carries the partial result) or return it with ``settled=False``.
    relaxation : float
        Over-relaxation ω in (0, 2): a neuron whose change ``d`` exceeds
        ``eps`` broadcasts ``ω·d`` (see :mod:`eventhorizon.kernels`). The
        stopping test is the same, so the result is an ε-fixed point for any
        ω; slightly above 1 (e.g. 1.05) takes fewer broadcasts on
        recurrent networks. 1 is the plain rule.

    Returns
    -------
    SettleResult

    Examples
    --------
    >>> from topology.generators import input_recurrent
    >>> net = RateNetwork(input_recurrent(3, 4, 0.5, seed=0), "tanh", inputs=range(3))
    >>> res = settle(net, [1.0, 0.0, 0.5], eps=1e-4)
    >>> res.settled, res.stats.input_broadcasts
    (True, 2)
    >>> res.stats.input_synaptic_ops  # two inputs, four targets each
    8
    """
    if not isinstance(network, RateNetwork):
        raise TypeError(f"network must be a RateNetwork, got {type(network).__name__}")
    rule = settle_rule(eps, relaxation)
    st = _check_state(network, state)
    _check_on_budget(on_budget)
    if inputs is None:
        clamp_ids, clamp_values = _NO_IDS, _NO_VALUES
    else:
        clamp_ids, clamp_values = network.input_ids, network.check_input_vector(inputs)
    cur_ids, cur_values = _check_currents(network, currents)
    budget = _check_budget(network, max_updates)
    queue = new_queue(scheduler, network.n)
    stats = np.zeros(K.N_STATS, dtype=np.int64)
    counts = np.zeros(network.n, dtype=np.int32)
    scratch = np.empty((2, network.n), dtype=np.float32)  # u_eval, gap: one allocation
    arrays = K.StateArrays(st.u, st.x, scratch[0], scratch[1])
    boundary = K.Boundary(clamp_ids, clamp_values, cur_ids, cur_values)
    settled = K._settle(net_arrays(network), arrays, queue, boundary, rule, budget, stats, counts)
    stats_obj = SettleStats.from_array(stats)
    if settled:
        message = f"settled after {stats_obj.neuron_updates} neuron updates, {stats_obj.synaptic_ops} synaptic ops"
    else:
        message = (f"did not settle within max_updates={budget} neuron updates "
                   f"({stats_obj.broadcasts} broadcasts, {stats_obj.synaptic_ops} synaptic ops so far); "
                   "the network may not be contractive, or eps may be too small for float32")
    result = SettleResult(st, stats_obj, bool(settled), counts, message)
    if not settled and on_budget == "raise":
        raise NotSettledError(result)
    return result
