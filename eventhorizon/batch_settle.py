"""Event-driven settling of many input samples, spread over threads.

:func:`settle_batch` settles every row of an input matrix from the same
start state, each exactly as :func:`~eventhorizon.settle.settle` would
(same event order, states and counts, tested). The rows are split into one
contiguous chunk per thread; each thread runs one compiled call over its
chunk (:func:`_settle_rows`) with its own queue and state arrays. The
kernels release the GIL, so the threads run on separate cores; there is no
per-sample Python work. This is GUIDE §2's "many samples in parallel": the
way to use a multi-core machine for independent samples, as numpy's BLAS
uses it for one dense product.
"""

import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import NamedTuple

import numpy as np

from eventhorizon import kernels as K
from eventhorizon.checks import settle_rule
from eventhorizon.network import RateNetwork
from eventhorizon.settle import (_NO_IDS, _NO_VALUES, _STATS_ORDER, NotSettledError, RateState, SettleResult,
                                 SettleStats, _check_budget, _check_on_budget, _check_state, net_arrays)
from scheduler.jit import kernel
from scheduler.queues import new_queue

__all__ = ["BatchSettleResult", "default_threads", "settle_batch", "thread_pool"]

class _Rows(NamedTuple):
    """A chunk of samples and where their results go."""

    inputs: np.ndarray  # float32[rows, n_inputs]
    input_ids: np.ndarray  # int32[n_inputs]
    u0: np.ndarray  # float32[n], start state
    x0: np.ndarray  # float32[n]
    x_out: np.ndarray  # float32[rows, n]
    u_out: np.ndarray  # float32[rows, n]
    stats: np.ndarray  # int64[rows, N_STATS]
    settled: np.ndarray  # bool[rows]


@kernel(refcount=False)
def _settle_rows(net, st, q, rows, rule, max_updates, counts):
    """Settle each row of ``rows.inputs`` from ``(u0, x0)`` in turn, writing its results."""
    for r in range(rows.inputs.shape[0]):
        K._copy(st.u, rows.u0)
        K._copy(st.x, rows.x0)
        bnd = K.Boundary(rows.input_ids, rows.inputs[r], _NO_IDS, _NO_VALUES)
        rows.settled[r] = K._settle(net, st, q, bnd, rule, max_updates, rows.stats[r], counts)
        K._copy(rows.x_out[r], st.x)
        K._copy(rows.u_out[r], st.u)


@dataclass(frozen=True)
class BatchSettleResult:
    """Outcome of :func:`settle_batch`, one row per sample.

    Attributes
    ----------
    x, u : ndarray of float32, shape (samples, n)
        Every neuron's output and accumulated input at the end.
    stats : ndarray of int64, shape (samples, 6)
        Per-sample counts, columns in the order of :class:`~eventhorizon.settle.SettleStats`.
    settled : ndarray of bool, shape (samples,)
    threads : int
        Threads used.
    """

    x: np.ndarray
    u: np.ndarray
    stats: np.ndarray
    settled: np.ndarray
    threads: int

    def sample_stats(self, k):
        """Counts of sample ``k`` as a :class:`~eventhorizon.settle.SettleStats`."""
        return SettleStats(*self.stats[k].tolist())

    def total(self, name):
        """Sum of one count over the samples, e.g. ``total("synaptic_ops")``."""
        names = list(SettleStats.__dataclass_fields__)
        if name not in names:
            raise ValueError(f"name must be one of {names}, got {name!r}")
        return int(self.stats[:, names.index(name)].sum())


def default_threads():
    """Threads :func:`settle_batch` uses by default: the CPUs this process may run on."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def _check_inputs(network, inputs):
    arr = np.asarray(inputs, dtype=np.float32)
    if arr.ndim != 2 or arr.shape[1] != network.n_inputs:
        raise ValueError(f"inputs must have shape (samples, {network.n_inputs}) (one row per sample), "
                         f"got {arr.shape}")
    if not np.all(np.isfinite(arr)):
        row, col = np.argwhere(~np.isfinite(arr))[0]
        raise ValueError(f"inputs must be finite; row {row}, entry {col} is {arr[row, col]}")
    return np.ascontiguousarray(arr)


def _check_threads(threads, samples):
    if threads is None:
        threads = default_threads()
    if isinstance(threads, bool) or not isinstance(threads, (int, np.integer)) or threads < 1:
        raise ValueError(f"threads must be an int >= 1, got {threads!r}")
    return max(1, min(int(threads), samples))


_POOLS = {}


def thread_pool(threads):
    """A process-wide thread pool of ``threads`` workers, started once and reused by every call.

    Examples
    --------
    >>> thread_pool(2) is thread_pool(2)
    True
    """
    if threads not in _POOLS:
        _POOLS[threads] = ThreadPoolExecutor(max_workers=threads, thread_name_prefix="eventhorizon")
    return _POOLS[threads]


def settle_batch(network, inputs, *, eps, state=None, threads=None, max_updates=None,
                 scheduler="tournament", on_budget="raise", relaxation=1.0):
    """Settle ``network`` once per row of ``inputs``, rows spread over threads.

    Every row starts from ``state`` (cold by default) and is settled exactly
    as ``settle(network, row, eps=eps, state=state)`` would be: the same
    counts and bit-identical states (with either queue: both break ties of
    the top key by the lowest id, whatever the queue's history).

    Parameters
    ----------
    network : RateNetwork
    inputs : array_like of float, shape (samples, network.n_inputs)
    eps : float
        Broadcast threshold, as in :func:`~eventhorizon.settle.settle`.
    state : RateState, optional
        Start state of every row (copied, never modified).
    threads : int, optional
        Threads to use (default: the CPUs available, see :func:`default_threads`).
    max_updates : int, optional
        Event budget per row, in neuron updates (default ``1000 · n``).
    scheduler : {"tournament", "heap"}
    on_budget : {"raise", "return"}
        When a row runs out of budget: raise :class:`~eventhorizon.settle.NotSettledError`
        naming the rows, or return with ``settled`` False for them.
    relaxation : float
        Over-relaxation ω, as in :func:`~eventhorizon.settle.settle`.

    Returns
    -------
    BatchSettleResult

    Examples
    --------
    >>> from topology.generators import input_recurrent
    >>> net = RateNetwork(input_recurrent(3, 4, 0.5, seed=0), "tanh", inputs=range(3))
    >>> res = settle_batch(net, [[1.0, 0.0, 0.5], [0.0, 0.0, 0.0]], eps=1e-4, threads=2)
    >>> res.settled.tolist(), res.stats[:, 3].tolist()  # input broadcasts per row
    ([True, True], [2, 0])
    >>> from eventhorizon.settle import settle
    >>> bool(np.array_equal(res.x[0], settle(net, [1.0, 0.0, 0.5], eps=1e-4).x))
    True
    """
    if not isinstance(network, RateNetwork):
        raise TypeError(f"network must be a RateNetwork, got {type(network).__name__}")
    rule = settle_rule(eps, relaxation)
    inputs = _check_inputs(network, inputs)
    start = _check_state(network, state)
    budget = _check_budget(network, max_updates)
    _check_on_budget(on_budget)
    new_queue(scheduler, 0)  # validates the name before any thread starts
    samples, n = inputs.shape[0], network.n
    threads = _check_threads(threads, max(1, samples))
    x_out = np.empty((samples, n), np.float32)
    u_out = np.empty((samples, n), np.float32)
    stats = np.zeros((samples, K.N_STATS), np.int64)
    settled = np.zeros(samples, np.bool_)
    net = net_arrays(network)

    def run_chunk(lo, hi):
        work = np.empty((4, n), np.float32)  # u, x, u_eval, gap
        rows = _Rows(inputs[lo:hi], network.input_ids, start.u, start.x, x_out[lo:hi], u_out[lo:hi],
                     stats[lo:hi], settled[lo:hi])
        _settle_rows(net, K.StateArrays(*work), new_queue(scheduler, n), rows, rule, budget,
                     np.zeros(n, np.int32))

    bounds = np.linspace(0, samples, threads + 1).astype(int)
    if threads == 1:
        run_chunk(0, samples)
    else:
        for future in [thread_pool(threads).submit(run_chunk, lo, hi) for lo, hi in zip(bounds[:-1], bounds[1:])]:
            future.result()
    result = BatchSettleResult(x_out, u_out, stats[:, _STATS_ORDER], settled, threads)
    if on_budget == "raise" and not settled.all():
        bad = np.flatnonzero(~settled)
        raise NotSettledError(_unsettled(result, bad, budget))
    return result


def _unsettled(result, bad, budget):
    """A stand-in result for :class:`NotSettledError`: the first unsettled row, with a batch message."""
    k = int(bad[0])
    message = (f"{bad.size} of {result.settled.size} samples did not settle within max_updates={budget} "
               f"neuron updates each (rows {bad[:10].tolist()}{' …' if bad.size > 10 else ''}); "
               "the network may not be contractive, or eps may be too small for float32")
    state = RateState(result.u[k].copy(), result.x[k].copy())
    return SettleResult(state, result.sample_stats(k), False, np.zeros(0, np.int32), message)
