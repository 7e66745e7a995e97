"""Dense warm settling compiled: the dense baseline without interpreter overhead.

:class:`~eventhorizon.dense.DenseReference` is the obviously-correct numpy
version; one frame at a time, its sweeps over a small free-neuron block cost
more in Python and scipy call overhead than in arithmetic, which would
flatter an event-driven kernel compared with it. :class:`CompiledDense` does
the same input-hoisted computation — per frame the clamped inputs' drive once
(a dense matrix-vector product over every input synapse), then synchronous
sweeps ``x_free ← ρ(W_ff x_free + drive)`` until ``max |Δx| < ε``, warm-started
from the previous frame's state — for a whole chunk of frames in one Numba
call (:func:`_dense_frames`), as :class:`~eventhorizon.streaming.StreamSettler`
does for the event-driven kernel. It executes and counts the same
multiply-adds as the hoisted reference (tested against it).
"""

from typing import NamedTuple

import numpy as np

from eventhorizon.checks import check_eps
from eventhorizon.dense import DenseReference, DenseResult
from eventhorizon.models import _rho
from scheduler.jit import kernel

__all__ = ["CompiledDense", "DenseFrames"]


class _DenseNet(NamedTuple):
    """The free neurons' synapses: inputs → free as a dense matrix, free → free as CSR (positions in free_ids)."""

    w_in: np.ndarray  # float32[n_free, n_inputs]
    indptr: np.ndarray  # int64[n_free + 1]
    indices: np.ndarray  # int32[nnz]
    data: np.ndarray  # float32[nnz]
    run_start: np.ndarray  # int64[n_free]: first column of a row whose columns are one contiguous run, else -1
    bias: np.ndarray  # float32[n_free]
    code: int


class _Run(NamedTuple):
    """A chunk of frames, the state carried through it, and what is recorded per frame."""

    frames: np.ndarray  # float32[k, n_inputs]
    x: np.ndarray  # float32[n_free], in/out: the free neurons' outputs
    new: np.ndarray  # float32[n_free], scratch
    drive: np.ndarray  # float32[n_free], scratch
    out_pos: np.ndarray  # int64[m], positions in free_ids of the recorded neurons
    outputs: np.ndarray  # float32[k, m], out
    sweeps: np.ndarray  # int64[k], out
    converged: np.ndarray  # bool[k], out


@kernel(inline=True)
def _input_drive(net, frame, drive):
    """``drive = W_in · frame + bias`` (every input synapse, one multiply-add each)."""
    for r in range(drive.shape[0]):
        row = net.w_in[r]
        s = np.float32(0.0)
        for c in range(frame.shape[0]):
            s += row[c] * frame[c]
        drive[r] = s + net.bias[r]


@kernel(inline=True)
def _dot(a, b):
    """``a · b`` over equal-length slices (indexed from 0 so that LLVM vectorises it)."""
    s = np.float32(0.0)
    for k in range(a.shape[0]):
        s += a[k] * b[k]
    return s


@kernel(inline=True)
def _row_dot(net, x, r):
    """``W_ff[r] · x``: a contiguous dot product where the row's columns are one run (a dense layer block:
    no gather, which vectorises badly), else a gather over its columns."""
    p0, p1 = net.indptr[r], net.indptr[r + 1]
    c0 = net.run_start[r]
    if c0 >= 0:
        return _dot(net.data[p0:p1], x[c0:c0 + (p1 - p0)])
    s = np.float32(0.0)
    for p in range(p0, p1):
        s += net.data[p] * x[net.indices[p]]
    return s


@kernel(inline=True)
def _sweep(net, run):
    """One synchronous sweep ``x ← ρ(W_ff x + drive)``; returns ``max |Δx|``."""
    change = np.float32(0.0)
    x, new = run.x, run.new
    for r in range(x.shape[0]):
        v = _rho(net.code, _row_dot(net, x, r) + run.drive[r])
        new[r] = v
        change = max(change, abs(v - x[r]))
    for r in range(x.shape[0]):
        x[r] = new[r]
    return change


@kernel(refcount=False)
def _dense_frames(net, run, eps, max_sweeps):
    """For each frame: the input drive, then sweeps until ``max |Δx| < eps`` or ``max_sweeps``."""
    for k in range(run.frames.shape[0]):
        _input_drive(net, run.frames[k], run.drive)
        sweeps = 0
        converged = False
        while sweeps < max_sweeps and not converged:
            converged = _sweep(net, run) < eps
            sweeps += 1
        run.sweeps[k] = sweeps
        run.converged[k] = converged
        for m in range(run.out_pos.shape[0]):
            run.outputs[k, m] = run.x[run.out_pos[m]]


def _run_starts(block):
    """Per CSR row (sorted columns): its first column if its columns are consecutive, else -1 (empty rows: 0)."""
    lengths = np.diff(block.indptr)
    first = np.zeros(lengths.size, np.int64)
    last = np.zeros(lengths.size, np.int64)
    full = lengths > 0
    first[full] = block.indices[block.indptr[:-1][full]]
    last[full] = block.indices[block.indptr[1:][full] - 1]
    return np.where(~full | (last - first + 1 == lengths), first, -1).astype(np.int64)


class DenseFrames(NamedTuple):
    """Per-frame outcome of :meth:`CompiledDense.settle_frames`.

    Attributes
    ----------
    x : ndarray of float32, shape (n,)
        Every neuron's output after the last frame (the next warm start).
    sweeps, synaptic_ops : ndarray of int64, shape (k,)
    converged : ndarray of bool, shape (k,)
    outputs : ndarray of float32, shape (k, len(output_ids))
    """

    x: np.ndarray
    sweeps: np.ndarray
    synaptic_ops: np.ndarray
    converged: np.ndarray
    outputs: np.ndarray


class CompiledDense:
    """Input-hoisted dense warm settling of a :class:`~eventhorizon.network.RateNetwork`, compiled.

    Parameters
    ----------
    network : RateNetwork

    Attributes
    ----------
    input_ops, ops_per_sweep : int
        Multiply-adds of one frame's input drive and of one sweep, as
        :class:`~eventhorizon.dense.DenseReference` with ``hoist_inputs=True``
        counts them.

    Examples
    --------
    >>> from eventhorizon.network import RateNetwork
    >>> from topology.generators import input_recurrent
    >>> net = RateNetwork(input_recurrent(3, 4, 0.5, seed=0), "tanh", inputs=range(3))
    >>> fast, ref = CompiledDense(net), DenseReference(net, hoist_inputs=True)
    >>> a, b = fast.settle([1.0, 0.0, 0.5], eps=1e-6), ref.settle([1.0, 0.0, 0.5], eps=1e-6)
    >>> a.sweeps == b.sweeps, a.synaptic_ops == b.synaptic_ops, bool(np.allclose(a.x, b.x, atol=1e-6))
    (True, True, True)
    """

    def __init__(self, network):
        ref = DenseReference(network, hoist_inputs=True)  # checks the network; counts the multiply-adds
        self.network, self._initial = network, ref._initial
        self.input_ops, self.ops_per_sweep = ref.input_ops, ref.ops_per_sweep
        weights_in = network.graph.to_scipy().T.tocsr()[network.free_ids]
        block = weights_in[:, network.free_ids].tocsr()
        block.sort_indices()
        self._net = _DenseNet(np.ascontiguousarray(weights_in[:, network.input_ids].toarray(), np.float32),
                              block.indptr.astype(np.int64), block.indices.astype(np.int32),
                              block.data.astype(np.float32), _run_starts(block),
                              network.bias[network.free_ids].astype(np.float32), int(network.model.code))
        self._pos = np.full(network.n, -1, np.int64)
        self._pos[network.free_ids] = np.arange(network.free_ids.shape[0])

    def settle_frames(self, frames, eps, max_sweeps=10_000, state_x=None, output_ids=()):
        """Settle after each row of ``frames`` in turn, each warm-started from the one before.

        Parameters
        ----------
        frames : array_like of float, shape (k, n_inputs)
        eps : float
        max_sweeps : int
            Per frame.
        state_x : array_like, optional
            Warm start of the first frame (all neurons' outputs); zeros by default.
        output_ids : array_like of int
            Free neurons whose values are recorded after every frame.

        Returns
        -------
        DenseFrames
        """
        eps, net = check_eps(eps), self.network
        frames = np.asarray(frames, dtype=np.float32)
        if frames.ndim != 2 or frames.shape[1] != net.n_inputs:
            raise ValueError(f"frames must have shape (k, {net.n_inputs}), got {frames.shape}")
        if not np.all(np.isfinite(frames)):
            raise ValueError("frames must be finite (found NaN or inf)")
        out_pos = self._pos[np.asarray(output_ids, np.int64).reshape(-1)]
        if (out_pos < 0).any():
            raise ValueError("output_ids must be ids of free neurons")
        x = self._initial(frames[0] if len(frames) else np.zeros(net.n_inputs, np.float32), state_x)
        k, n_free = frames.shape[0], net.free_ids.shape[0]
        run = _Run(np.ascontiguousarray(frames), np.ascontiguousarray(x[net.free_ids]), np.empty(n_free, np.float32),
                   np.empty(n_free, np.float32), out_pos, np.zeros((k, out_pos.size), np.float32),
                   np.zeros(k, np.int64), np.zeros(k, np.bool_))
        _dense_frames(self._net, run, np.float32(eps), int(max_sweeps))
        x[net.free_ids] = run.x
        if k:
            x[net.input_ids] = frames[-1]
        return DenseFrames(x, run.sweeps, self.input_ops + run.sweeps * self.ops_per_sweep, run.converged,
                           run.outputs)

    def settle(self, inputs, eps, max_sweeps=10_000, state_x=None):
        """One frame: as :meth:`DenseReference.settle` with ``hoist_inputs=True`` (a :class:`DenseResult`)."""
        res = self.settle_frames(np.asarray(inputs, np.float32).reshape(1, -1), eps, max_sweeps, state_x)
        return DenseResult(res.x, int(res.sweeps[0]), int(res.synaptic_ops[0]), bool(res.converged[0]))
