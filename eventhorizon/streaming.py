"""Streaming settle: a rate network that stays at equilibrium while its inputs change.

A stream is a sequence of *stimuli*, each a set of input changes (a video
frame's changed pixels, or a client's sparse event). For every stimulus only
the inputs whose value actually changed broadcast — boundary events — and
the network re-settles by events **warm-started from the previous
equilibrium**, so an unchanged frame costs nothing and a small change costs
in proportion to its consequences.

:class:`StreamSettler` keeps the state between calls. One call settles a whole
chunk of stimuli in one compiled kernel (:func:`_settle_stream`), recording
per stimulus the counts of :class:`~eventhorizon.settle.SettleStats` and the
output neurons' values; it gives, stimulus for stimulus, exactly the states
and counts of calling :func:`~eventhorizon.settle.settle` in a loop with
``state=previous.state`` (tested), without that call's per-stimulus Python
work. A stimulus with no changed input after a settled one does no work at
all (the state is already a fixed point to ε).

:meth:`StreamSettler.settle_frames` takes whole frames and finds the changed
inputs inside the kernel (:func:`_settle_frames`); :func:`frame_changes` turns
frames into the sparse changes :meth:`StreamSettler.settle_changes` reads.
"""

from dataclasses import dataclass
from functools import cached_property
from typing import NamedTuple

import numpy as np

from eventhorizon import kernels as K
from eventhorizon.checks import settle_rule
from eventhorizon.network import RateNetwork
from eventhorizon.settle import _NO_IDS, _NO_VALUES, RateState, _check_budget, _check_state, _STATS_ORDER, net_arrays
from scheduler.jit import kernel
from scheduler.queues import new_queue

__all__ = ["Changes", "StreamResult", "StreamSettler", "frame_changes"]

class Changes(NamedTuple):
    """Sparse input changes of a chunk of stimuli, CSR-style.

    Stimulus ``k`` sets neuron ``ids[p]`` to ``values[p]`` for ``p`` in
    ``ptr[k]:ptr[k+1]`` (neuron ids, not input positions).
    """

    ptr: np.ndarray  # int64[k+1]
    ids: np.ndarray  # int32[m]
    values: np.ndarray  # float32[m]


class _StreamOut(NamedTuple):
    stats: np.ndarray  # int64[k, N_STATS]
    settled: np.ndarray  # bool[k]
    outputs: np.ndarray  # float32[k, n_out]
    output_ids: np.ndarray  # int32[n_out]


@kernel(inline=True)
def _record(out, k, st, settled):
    out.settled[k] = settled
    for m in range(out.output_ids.shape[0]):
        out.outputs[k, m] = st.x[out.output_ids[m]]


@kernel(refcount=False)
def _settle_stream(net, st, q, changes, rule, max_updates, out, counts, settled_before):
    """Settle after each stimulus of ``changes`` in turn; returns whether the last one settled."""
    settled = settled_before
    for k in range(changes.ptr.shape[0] - 1):
        p0, p1 = changes.ptr[k], changes.ptr[k + 1]
        if p1 > p0 or not settled:
            bnd = K.Boundary(changes.ids[p0:p1], changes.values[p0:p1], _NO_IDS, _NO_VALUES)
            settled = K._settle(net, st, q, bnd, rule, max_updates, out.stats[k], counts)
        _record(out, k, st, settled)
    return settled


class _Frames(NamedTuple):
    """Whole frames for :func:`_settle_frames`, and where their changed inputs go."""

    frames: np.ndarray  # float32[k, n_inputs]
    input_ids: np.ndarray  # int32[n_inputs]
    changed: np.ndarray  # int64[k], out: inputs each frame changed
    ids: np.ndarray  # int32[n_inputs], scratch: one frame's changed input ids
    values: np.ndarray  # float32[n_inputs], scratch: their new values


@kernel(refcount=False)
def _settle_frames(net, st, q, fr, rule, max_updates, out, counts, settled_before):
    """Settle after each row of ``fr.frames`` (one value per input) in turn; returns whether the last one settled.

    Each frame's inputs that differ from the clamped values become its boundary events, as
    :func:`frame_changes` would list them.
    """
    settled = settled_before
    for k in range(fr.frames.shape[0]):
        frame = fr.frames[k]
        m = 0
        for p in range(fr.input_ids.shape[0]):
            if frame[p] != st.x[fr.input_ids[p]]:
                fr.ids[m] = fr.input_ids[p]
                fr.values[m] = frame[p]
                m += 1
        fr.changed[k] = m
        if m > 0 or not settled:
            bnd = K.Boundary(fr.ids[:m], fr.values[:m], _NO_IDS, _NO_VALUES)
            settled = K._settle(net, st, q, bnd, rule, max_updates, out.stats[k], counts)
        _record(out, k, st, settled)
    return settled


@dataclass(frozen=True)
class StreamResult:
    """Per-stimulus outcome of :meth:`StreamSettler.settle_changes`.

    Attributes
    ----------
    stats : ndarray of int64, shape (k, 6)
        Columns as :data:`StreamResult.COLUMNS` (the counts of
        :class:`~eventhorizon.settle.SettleStats`), per stimulus.
    settled : ndarray of bool, shape (k,)
    outputs : ndarray of float32, shape (k, n_out)
        The output neurons' values after each stimulus.
    changed_inputs : ndarray of int64, shape (k,)
        Input changes each stimulus carried (before dropping unchanged values).
    """

    COLUMNS = ("synaptic_ops", "broadcasts", "input_synaptic_ops", "input_broadcasts", "neuron_updates", "queue_ops")

    stats: np.ndarray
    settled: np.ndarray
    outputs: np.ndarray
    changed_inputs: np.ndarray

    def column(self, name):
        """One count per stimulus, e.g. ``column("synaptic_ops")``."""
        return self.stats[:, self.COLUMNS.index(name)]

    @cached_property
    def predictions(self):
        """Index of the largest output per stimulus (the class, for a classifier); computed once."""
        return np.argmax(self.outputs, axis=1) if self.outputs.shape[1] else np.zeros(len(self.outputs), np.int64)


def frame_changes(frames, previous, input_ids):
    """The sparse changes that turn ``previous`` into each of ``frames`` in turn.

    Parameters
    ----------
    frames : ndarray of float32, shape (k, n_inputs)
    previous : ndarray of float32, shape (n_inputs,)
        Input values before the first frame.
    input_ids : ndarray of int32, shape (n_inputs,)
        Neuron id of each input position.

    Returns
    -------
    Changes

    Examples
    --------
    >>> frames = np.array([[0, 1, 1], [0, 1, 0]], np.float32)
    >>> ch = frame_changes(frames, np.zeros(3, np.float32), np.array([5, 6, 7], np.int32))
    >>> ch.ptr.tolist(), ch.ids.tolist(), ch.values.tolist()
    ([0, 2, 3], [6, 7, 7], [1.0, 1.0, 0.0])
    """
    before = np.concatenate([previous[None, :], frames[:-1]])
    changed = frames != before
    rows, cols = np.nonzero(changed)
    ptr = np.zeros(frames.shape[0] + 1, np.int64)
    np.cumsum(changed.sum(axis=1), out=ptr[1:])
    return Changes(ptr, input_ids[cols].astype(np.int32, copy=False), frames[rows, cols].astype(np.float32))


class StreamSettler:
    """A network kept at equilibrium across a stream of input changes.

    Parameters
    ----------
    network : RateNetwork
    eps : float
        Broadcast threshold ε (as :func:`~eventhorizon.settle.settle`).
    output_ids : array_like of int, optional
        Neurons whose values are recorded after every stimulus (default: none).
    state : RateState, optional
        Start here (copied); cold by default.
    scheduler : {"tournament", "heap"}
    max_updates : int, optional
        Event budget per stimulus, in neuron updates (default ``1000 · n``).
        A stimulus that exhausts it is marked not settled and the next one
        continues from the partial state.
    relaxation : float
        Over-relaxation ω, as in :func:`~eventhorizon.settle.settle` (1: plain updates).

    Examples
    --------
    >>> from topology.generators import input_recurrent
    >>> net = RateNetwork(input_recurrent(3, 4, 0.5, seed=0), "tanh", inputs=range(3))
    >>> stream = StreamSettler(net, eps=1e-4, output_ids=[3, 4])
    >>> frames = np.array([[1, 0, .5], [1, 0, .5], [1, 0, .25]], np.float32)
    >>> res = stream.settle_frames(frames)
    >>> res.changed_inputs.tolist(), res.column("input_broadcasts").tolist()
    ([2, 0, 1], [2, 0, 1])
    >>> int(res.column("synaptic_ops")[1])  # an unchanged frame costs nothing
    0
    """

    def __init__(self, network, eps, *, output_ids=(), state=None, scheduler="tournament", max_updates=None,
                 relaxation=1.0):
        if not isinstance(network, RateNetwork):
            raise TypeError(f"network must be a RateNetwork, got {type(network).__name__}")
        self.network = network
        self._rule = settle_rule(eps, relaxation)
        self.eps = self._rule.eps
        self.output_ids = self._check_ids(output_ids, "output_ids")
        self.max_updates = _check_budget(network, max_updates)
        st = _check_state(network, state)
        scratch = np.empty((2, network.n), dtype=np.float32)
        self._arrays = K.StateArrays(st.u, st.x, scratch[0], scratch[1])
        self._queue = new_queue(scheduler, network.n)
        self._counts = np.zeros(network.n, dtype=np.int32)
        self._settled = False  # nothing is known about the initial state until a first settle
        self._input_pos = np.full(network.n, -1, np.int64)
        self._input_pos[network.input_ids] = np.arange(network.n_inputs)

    def _check_ids(self, ids, name):
        ids = np.asarray(ids, dtype=np.int64).reshape(-1)
        if ids.size and (ids.min() < 0 or ids.max() >= self.network.n):
            raise ValueError(f"{name} must lie in [0, {self.network.n}), got values in [{ids.min()}, {ids.max()}]")
        return ids.astype(np.int32)

    @property
    def state(self):
        """A copy of the current state (a :class:`~eventhorizon.settle.RateState`)."""
        return RateState(self._arrays.u.copy(), self._arrays.x.copy())

    @property
    def inputs(self):
        """Current values of the clamped inputs (a copy)."""
        return self._arrays.x[self.network.input_ids].copy()

    @property
    def broadcast_counts(self):
        """Broadcasts per neuron since the settler was made (a copy)."""
        return self._counts.copy()

    def snapshot(self):
        """Everything needed to continue the stream exactly: copies of ``u``, ``x``, the broadcast counts, and
        whether the last stimulus settled (the kernel's scratch and queue are rebuilt by every settle)."""
        return {"u": self._arrays.u.copy(), "x": self._arrays.x.copy(), "counts": self._counts.copy(),
                "settled": self._settled}

    def restore(self, snapshot):
        """Continue from a :meth:`snapshot` (e.g. one saved in a checkpoint)."""
        st = _check_state(self.network, RateState(snapshot["u"], snapshot["x"]))
        counts = np.asarray(snapshot["counts"], dtype=np.int32)
        if counts.shape != (self.network.n,):
            raise ValueError(f"snapshot counts must have shape ({self.network.n},), got {counts.shape}")
        self._arrays.u[:], self._arrays.x[:], self._counts[:] = st.u, st.x, counts
        self._settled = bool(snapshot["settled"])

    def settle_frames(self, frames):
        """Settle after each full input vector (row of ``frames``) in turn.

        Only the inputs that differ from the current ones broadcast.

        Parameters
        ----------
        frames : array_like of float, shape (k, n_inputs)

        Returns
        -------
        StreamResult
        """
        net = self.network
        frames = np.asarray(frames, dtype=np.float32)
        if frames.ndim != 2 or frames.shape[1] != net.n_inputs:
            raise ValueError(f"frames must have shape (k, {net.n_inputs}), got {frames.shape}")
        if not np.all(np.isfinite(frames)):
            raise ValueError("frames must be finite (found NaN or inf)")
        fr = _Frames(np.ascontiguousarray(frames), net.input_ids, np.zeros(frames.shape[0], np.int64),
                     np.empty(net.n_inputs, np.int32), np.empty(net.n_inputs, np.float32))
        out = self._new_out(frames.shape[0])
        self._settled = bool(_settle_frames(net_arrays(net), self._arrays, self._queue, fr, self._rule,
                                            self.max_updates, out, self._counts, self._settled))
        return self._result(out, fr.changed)

    def settle_changes(self, changes):
        """Settle after each stimulus of sparse input changes in turn.

        Parameters
        ----------
        changes : Changes
            ``ids`` are input neuron ids; a stimulus may list an id twice (the
            last value wins, each change broadcasting its difference).

        Returns
        -------
        StreamResult
        """
        ptr = np.asarray(changes.ptr, dtype=np.int64)
        ids = np.asarray(changes.ids, dtype=np.int64)
        values = np.asarray(changes.values, dtype=np.float32)
        if ptr.ndim != 1 or ptr.size < 1 or ptr[0] != 0 or np.any(np.diff(ptr) < 0) or ptr[-1] != ids.size:
            raise ValueError(f"changes.ptr must rise from 0 to len(ids)={ids.size}, got {ptr[:5].tolist()}…")
        if ids.shape != values.shape or ids.ndim != 1:
            raise ValueError(f"changes.ids and changes.values must be 1-D of one length, got {ids.shape}, "
                             f"{values.shape}")
        if ids.size and (ids.min() < 0 or ids.max() >= self.network.n or np.any(self._input_pos[ids] < 0)):
            raise ValueError("changes.ids must be ids of the network's input neurons")
        if not np.all(np.isfinite(values)):
            raise ValueError("changes.values must be finite (found NaN or inf)")
        return self._run(Changes(ptr, ids.astype(np.int32), values))

    def _run(self, changes):
        out = self._new_out(changes.ptr.shape[0] - 1)
        self._settled = bool(_settle_stream(net_arrays(self.network), self._arrays, self._queue, changes, self._rule,
                                            self.max_updates, out, self._counts, self._settled))
        return self._result(out, np.diff(changes.ptr))

    def _new_out(self, k):
        return _StreamOut(np.zeros((k, K.N_STATS), np.int64), np.zeros(k, np.bool_),
                          np.zeros((k, self.output_ids.size), np.float32), self.output_ids)

    @staticmethod
    def _result(out, changed):
        return StreamResult(out.stats[:, _STATS_ORDER], out.settled, out.outputs, changed)
