"""Event-driven vs dense: multiply-adds executed and wall time on the same inputs.

For every sample, in one process and interleaved so that machine noise hits
both alike, :func:`compare` runs

* the event-driven :func:`~eventhorizon.settle.settle` (ops counted in the kernel),
* the dense reference to the same ε, sweeping all synapses each sweep (``dense``),
* the same with the input drive computed once (``dense_hoisted``),
* LoopedMLP-30 (30 full sweeps),

and computes the lower bound: every neuron whose final output is nonzero
must broadcast at least once (its fan-out), plus one broadcast per nonzero
input. Operation counts are totals over the samples; times are medians of
per-sample wall times over all samples and repeats.

Numpy's BLAS spreads one dense product over every core, while one event
settle runs on one core. Two equal-resource comparisons are therefore
reported beside the batch-1 ratio, each measured in the same run:

* *all cores*: :func:`~eventhorizon.batch_settle.settle_batch` settles the
  whole set with one thread per core (samples in parallel, the same counts
  and states) against the dense loop over the same set at batch 1; both are
  total wall time over samples, median over the repeats;
* *one core*: the batch-1 event time against dense at batch 1 with BLAS
  limited to one thread (``threadpoolctl``).
"""

import time
from dataclasses import asdict, dataclass

import numpy as np
from threadpoolctl import threadpool_limits

from eventhorizon.batch_settle import settle_batch
from eventhorizon.dense import DenseReference
from eventhorizon.settle import settle

__all__ = ["FlopsReport", "lower_bound_ops", "compare"]


@dataclass(frozen=True)
class FlopsReport:
    """Totals and medians of an event-vs-dense comparison (see :func:`compare`)."""

    samples: int
    epsilon: float
    relaxation: float
    event_synaptic_ops: int
    event_input_synaptic_ops: int
    event_broadcasts: int
    event_neuron_updates: int
    dense_synaptic_ops: int
    dense_sweeps_mean: float
    dense_hoisted_synaptic_ops: int
    looped30_synaptic_ops: int
    lower_bound_ops: int
    saving_vs_dense: float
    saving_vs_dense_hoisted: float
    saving_vs_looped30: float
    ratio_to_lower_bound: float
    broadcasts_per_free_neuron: float
    event_seconds_per_sample: float
    dense_seconds_per_sample: float
    dense_hoisted_seconds_per_sample: float
    wall_ratio_event_over_dense: float
    wall_ratio_event_over_dense_hoisted: float
    event_threads: int
    event_all_cores_seconds_per_sample: float
    dense_loop_seconds_per_sample: float
    wall_ratio_event_all_cores_over_dense: float
    dense_1thread_seconds_per_sample: float
    wall_ratio_event_over_dense_1thread: float
    dense_batch128_seconds_per_sample: float
    max_state_deviation: float
    repeats: int

    def as_dict(self):
        return asdict(self)


def lower_bound_ops(network, inputs, x_final):
    """Fewest multiply-adds any event scheme needs from a cold start.

    Sum of fan-outs of free neurons with nonzero final output, plus fan-outs
    of inputs with nonzero value.

    Examples
    --------
    >>> from topology.generators import input_recurrent
    >>> from eventhorizon.network import RateNetwork
    >>> net = RateNetwork(input_recurrent(2, 3, 0.5, seed=0), "tanh", inputs=[0, 1])
    >>> lower_bound_ops(net, [1.0, 0.0], np.array([1, 0, 0.1, 0, 0.2], np.float32))
    7
    """
    fan_out = network.graph.fan_out()
    inputs = np.asarray(inputs)
    x_free = np.asarray(x_final)[network.free_ids]
    return int(fan_out[network.input_ids][inputs != 0].sum() + fan_out[network.free_ids][x_free != 0].sum())


def _timed(fn, *args, **kwargs):
    start = time.perf_counter()
    out = fn(*args, **kwargs)
    return out, time.perf_counter() - start


def _batch128_seconds(dense, inputs, eps):
    batch = inputs[: min(128, inputs.shape[0])]
    dense.settle_batch(batch, eps)  # warm-up
    _, seconds = _timed(dense.settle_batch, batch, eps)
    return seconds / batch.shape[0]


def compare(network, inputs, eps, repeats=3, scheduler="tournament", progress=None, threads=None,
            relaxation=1.0):
    """Compare event-driven and dense settling on the rows of ``inputs``.

    Parameters
    ----------
    network : RateNetwork
    inputs : ndarray, shape (samples, network.n_inputs)
    eps : float
    repeats : int
        Timing repeats (counts come from the first repeat; they are deterministic).
    scheduler : str
        Event scheduler's queue.
    progress : callable, optional
        Called with the number of samples done after each sample of each repeat.
    threads : int, optional
        Threads of the all-cores event run (default: every CPU available).
    relaxation : float
        Over-relaxation ω of the event runs (see :func:`~eventhorizon.settle.settle`).

    Returns
    -------
    FlopsReport

    Examples
    --------
    >>> from topology.generators import input_recurrent
    >>> from eventhorizon.network import RateNetwork
    >>> net = RateNetwork(input_recurrent(8, 16, 0.5, seed=0), "tanh", inputs=range(8))
    >>> rep = compare(net, np.eye(8, dtype=np.float32)[:3], eps=1e-3, repeats=1)
    >>> rep.samples, rep.event_synaptic_ops < rep.looped30_synaptic_ops
    (3, True)
    """
    inputs = np.asarray(inputs, dtype=np.float32)
    if inputs.ndim != 2 or inputs.shape[1] != network.n_inputs or inputs.shape[0] == 0:
        raise ValueError(f"inputs must have shape (samples >= 1, {network.n_inputs}), got {inputs.shape}")
    if isinstance(repeats, bool) or not isinstance(repeats, (int, np.integer)) or repeats < 1:
        raise ValueError(f"repeats must be an int >= 1, got {repeats!r}")
    dense = DenseReference(network)
    hoisted = DenseReference(network, hoist_inputs=True)
    event = dict(eps=eps, scheduler=scheduler, relaxation=relaxation)
    settle(network, inputs[0], **event)  # compile / warm caches outside timing
    settle_batch(network, inputs[:1], threads=1, **event)
    totals = dict(event=0, event_input=0, broadcasts=0, updates=0, dense=0, hoisted=0, looped=0, bound=0, sweeps=0)
    times = {key: [] for key in ("event", "dense", "hoisted", "all_cores", "dense_loop", "dense_1thread")}
    max_dev = 0.0
    for rep in range(repeats):
        dense_loop = 0.0
        for x_in in inputs:
            ev, t_ev = _timed(settle, network, x_in, **event)
            de, t_de = _timed(dense.settle, x_in, eps)
            ho, t_ho = _timed(hoisted.settle, x_in, eps)
            times["event"].append(t_ev), times["dense"].append(t_de), times["hoisted"].append(t_ho)
            dense_loop += t_de
            if rep == 0:
                _accumulate(totals, network, x_in, ev, de, ho, dense.looped(x_in, 30))
                max_dev = max(max_dev, float(np.max(np.abs(ev.x - de.x))))
            if progress is not None:
                progress(1)
        batch, t_all = _timed(settle_batch, network, inputs, threads=threads, **event)
        times["all_cores"].append(t_all / inputs.shape[0])
        times["dense_loop"].append(dense_loop / inputs.shape[0])
        times["dense_1thread"] += _dense_one_thread_seconds(dense, inputs, eps)
    return _report(network, inputs, eps, repeats, totals, times, max_dev, _batch128_seconds(hoisted, inputs, eps),
                   batch.threads, relaxation)


def _dense_one_thread_seconds(dense, inputs, eps):
    """Per-sample wall times of ``dense.settle`` with BLAS limited to one thread."""
    with threadpool_limits(limits=1, user_api="blas"):
        return [_timed(dense.settle, x_in, eps)[1] for x_in in inputs]


def _accumulate(totals, network, x_in, ev, de, ho, looped):
    totals["event"] += ev.stats.synaptic_ops
    totals["event_input"] += ev.stats.input_synaptic_ops
    totals["broadcasts"] += ev.stats.broadcasts
    totals["updates"] += ev.stats.neuron_updates
    totals["dense"] += de.synaptic_ops
    totals["sweeps"] += de.sweeps
    totals["hoisted"] += ho.synaptic_ops
    totals["looped"] += looped.synaptic_ops
    totals["bound"] += lower_bound_ops(network, x_in, ev.x)


def _report(network, inputs, eps, repeats, totals, times, max_dev, batch128, threads, relaxation):
    n = inputs.shape[0]
    med = {k: float(np.median(v)) for k, v in times.items()}
    free = max(1, network.free_ids.shape[0])
    return FlopsReport(
        samples=n,
        epsilon=float(eps),
        relaxation=float(relaxation),
        event_synaptic_ops=totals["event"],
        event_input_synaptic_ops=totals["event_input"],
        event_broadcasts=totals["broadcasts"],
        event_neuron_updates=totals["updates"],
        dense_synaptic_ops=totals["dense"],
        dense_sweeps_mean=totals["sweeps"] / n,
        dense_hoisted_synaptic_ops=totals["hoisted"],
        looped30_synaptic_ops=totals["looped"],
        lower_bound_ops=totals["bound"],
        saving_vs_dense=1.0 - totals["event"] / max(1, totals["dense"]),
        saving_vs_dense_hoisted=1.0 - totals["event"] / max(1, totals["hoisted"]),
        saving_vs_looped30=1.0 - totals["event"] / max(1, totals["looped"]),
        ratio_to_lower_bound=totals["event"] / max(1, totals["bound"]),
        broadcasts_per_free_neuron=totals["broadcasts"] / (n * free),
        event_seconds_per_sample=med["event"],
        dense_seconds_per_sample=med["dense"],
        dense_hoisted_seconds_per_sample=med["hoisted"],
        wall_ratio_event_over_dense=med["event"] / med["dense"],
        wall_ratio_event_over_dense_hoisted=med["event"] / med["hoisted"],
        event_threads=threads,
        event_all_cores_seconds_per_sample=med["all_cores"],
        dense_loop_seconds_per_sample=med["dense_loop"],
        wall_ratio_event_all_cores_over_dense=med["all_cores"] / med["dense_loop"],
        dense_1thread_seconds_per_sample=med["dense_1thread"],
        wall_ratio_event_over_dense_1thread=med["event"] / med["dense_1thread"],
        dense_batch128_seconds_per_sample=batch128,
        max_state_deviation=max_dev,
        repeats=repeats,
    )
