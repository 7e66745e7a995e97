"""Event-driven LIF with delta synapses, in continuous time (Brunel 2000 networks).

Why events here: with ``v_rest < v_threshold`` a delta-synapse neuron can
only cross threshold at the instant an input arrives, and between inputs its
membrane decays exactly as ``v_rest + (v − v_rest)·e^{−Δt/τm}``. So a neuron
is updated only when an event reaches it (exact decay since its last
update, then the jump), spike times are exact (not rounded to a clock), and
the cost is proportional to the events, not to neurons × steps.

Events, processed in ``(time, priority, sequence)`` order:

* **spike arrivals** — a spike of neuron ``i`` at ``t`` is one event at
  ``t + delay[i]`` in the time-ordered queue (:mod:`scheduler.timequeue`);
  popping it touches only ``i``'s out-synapses;
* **Poisson input** — ``n · synapses`` independent sources of rate ``ν`` are
  one Poisson process of rate ``n·synapses·ν`` whose events each pick a
  neuron uniformly (superposition and thinning of Poisson processes); its
  next time is drawn from a checkpointable stream (:mod:`.rng`);
* **monitor samples** — at clock times, before anything else at that time
  (Brian2's ``when='start'``).

An input reaching a refractory neuron is dropped (``v`` is held at
``v_reset``), as in Brunel (2000) and NEST's ``iaf_psc_delta``.

Counts: ``neuron_updates`` is one per input that reached a neuron
(recurrent or external), ``synaptic_events`` one per synapse of every
spike, ``external_events`` the Poisson inputs.
"""

from typing import NamedTuple

import numpy as np

from eventhorizon.spiking.monitors import sample_steps
from eventhorizon.spiking.rng import _uniform, new_stream
from scheduler.jit import kernel
from scheduler.timequeue import _eq_capacity, _eq_peek_time, _eq_pop, _eq_push, _eq_reserve, _eq_size, new_event_heap

__all__ = ["EventState", "EventOutput", "new_event_state", "advance"]

# Indices into EventState.counts.
NEURON_UPDATES, SYNAPTIC_EVENTS, EXTERNAL_EVENTS, DROPPED = range(4)


class DeltaModel(NamedTuple):
    """Constants the kernel reads (SI units)."""

    v_rest: float
    v_threshold: float
    v_reset: float
    tau_m: float
    refractory: float
    external_rate: float  # total Poisson rate onto the network, Hz (0: none)
    external_weight: float


class EventState(NamedTuple):
    """Dynamic state of the event engine (all arrays owned by the caller and checkpointed)."""

    v: np.ndarray  # float64[n], membrane potential at t_last
    t_last: np.ndarray  # float64[n], time v refers to
    refractory_until: np.ndarray  # float64[n]
    next_external: np.ndarray  # float64[1], time of the next Poisson input
    stream: np.ndarray  # uint64[1], random stream of the Poisson input
    step: np.ndarray  # int64[1], clock steps completed (time = step·dt)
    first_sample: np.ndarray  # int64[1], clock step of the first monitor sample of this call
    next_sample: np.ndarray  # int64[1], clock step of the next monitor sample
    counts: np.ndarray  # int64[4]
    heap: tuple  # scheduler.timequeue.EventHeap of pending spike arrivals


class EventOutput(NamedTuple):
    """Spikes and counts of one :func:`advance` call."""

    neurons: np.ndarray
    times: np.ndarray
    population_count: np.ndarray
    counts: dict


def _model(network):
    p, drive = network.params, network.drive
    rate = 0.0 if drive is None else network.n * drive.rate_per_neuron
    weight = 0.0 if drive is None else drive.weight
    return DeltaModel(float(p.v_rest), float(p.v_threshold), float(p.v_reset), float(p.tau_m), float(p.refractory),
                      float(rate), float(weight))


def new_event_state(network, v0, seed):
    """The state at time 0: potentials ``v0``, no pending spikes, the Poisson stream seeded by ``seed``."""
    v0 = np.array(v0, dtype=np.float64)
    if v0.shape != (network.n,) or not np.all(np.isfinite(v0)):
        raise ValueError(f"v0 must be {network.n} finite membrane potentials, got shape {v0.shape}")
    if network.params.synapse != "delta":
        raise ValueError(f"the event engine simulates delta synapses, got synapse={network.params.synapse!r}")
    if network.params.drifts_to_threshold:
        raise ValueError("the event engine needs v_rest <= v_threshold (neurons that reach threshold without "
                         "input need the clock engine)")
    state = EventState(v=v0, t_last=np.zeros(network.n), refractory_until=np.full(network.n, -np.inf),
                       next_external=np.zeros(1), stream=new_stream(seed), step=np.zeros(1, np.int64),
                       first_sample=np.zeros(1, np.int64), next_sample=np.zeros(1, np.int64),
                       counts=np.zeros(4, np.int64), heap=new_event_heap(1024))
    model = _model(network)
    state.next_external[0] = _first_arrival(state.stream, model.external_rate)
    return state


@kernel
def _first_arrival(stream, rate):
    return -np.log(1.0 - _uniform(stream)) / rate if rate > 0 else np.inf


@kernel(inline=True)
def _decayed(model, state, j, t):
    """``v`` of a non-refractory neuron ``j`` at ``t``: exact decay from its last update or the end of its refractory
    period (when ``v`` left ``v_reset``), whichever is later."""
    since = max(state.t_last[j], state.refractory_until[j])
    return model.v_rest + (state.v[j] - model.v_rest) * np.exp(-(t - since) / model.tau_m)


@kernel(inline=True)
def _receive(model, state, j, t, w):
    """Input ``w`` reaches neuron ``j`` at ``t``; returns True if ``j`` fires."""
    if t < state.refractory_until[j]:
        state.counts[DROPPED] += 1
        return False
    v = _decayed(model, state, j, t) + w
    state.t_last[j] = t
    state.counts[NEURON_UPDATES] += 1
    if v > model.v_threshold:
        state.v[j] = model.v_reset
        state.refractory_until[j] = t + model.refractory
        return True
    state.v[j] = v
    return False


@kernel(inline=True)
def _sample(model, state, ids, t, row, trace):
    for c in range(ids.shape[0]):
        j = ids[c]
        trace[row, 0, c] = model.v_reset if t < state.refractory_until[j] else _decayed(model, state, j, t)
        trace[row, 1, c] = 0.0
        trace[row, 2, c] = 0.0


@kernel(refcount=False)
def _run_events(syn, delay, model, state, heap, until, dt, ids, every, trace, out_neuron, out_time):
    """Process events before ``until``; returns ``(spikes written, finished)``.

    It stops early, between events, when the spike buffers or the queue
    might overflow on the next event; the caller makes room and calls again
    (the state, including the next monitor sample, is in ``state``). It
    allocates nothing, so it runs without reference counting: a kernel that
    passes named tuples of arrays to calls would otherwise pay an atomic
    increment and decrement per array per call (see ``scheduler.jit``).
    """
    n = state.v.shape[0]
    filled = 0
    max_fanout = 1
    for i in range(n):
        max_fanout = max(max_fanout, syn.indptr[i + 1] - syn.indptr[i])
    first_row = state.first_sample[0] // every
    t_spike = _eq_peek_time(heap)
    while True:
        if filled + max_fanout + 1 > out_neuron.shape[0] or _eq_size(heap) + max_fanout + 1 > _eq_capacity(heap):
            return filled, False
        t_ext = state.next_external[0]
        t_next = min(t_spike, t_ext)
        t_sample = state.next_sample[0] * dt
        if t_sample < until and t_sample <= t_next:
            _sample(model, state, ids, t_sample, state.next_sample[0] // every - first_row, trace)
            state.next_sample[0] += every
            continue
        if t_next >= until:
            return filled, True
        if t_ext < t_spike:
            j = min(np.int64(_uniform(state.stream) * n), n - 1)
            state.next_external[0] = t_ext - np.log(1.0 - _uniform(state.stream)) / model.external_rate
            state.counts[EXTERNAL_EVENTS] += 1
            if _receive(model, state, j, t_ext, model.external_weight):
                _eq_push(heap, t_ext + delay[j], 0, 0, j, 0.0)
                t_spike = _eq_peek_time(heap)
                out_neuron[filled] = j
                out_time[filled] = t_ext
                filled += 1
            continue
        t, _, _, _, source, _ = _eq_pop(heap)
        lo, hi = syn.indptr[source], syn.indptr[source + 1]
        state.counts[SYNAPTIC_EVENTS] += hi - lo
        for k in range(lo, hi):
            j = syn.indices[k]
            if _receive(model, state, j, t, syn.weights[k]):
                _eq_push(heap, t + delay[j], 0, 0, j, 0.0)
                out_neuron[filled] = j
                out_time[filled] = t
                filled += 1
        t_spike = _eq_peek_time(heap)


def advance(network, state, monitor, until_step):
    """Process every event before clock step ``until_step`` (time ``until_step · dt``), sampling ``monitor``.

    Returns the new :class:`EventState` (the queue may have grown) and an
    :class:`EventOutput` with this call's spikes, spikes per clock step and
    count increments.
    """
    dt = network.dt
    start, stop = int(state.step[0]), int(until_step)
    if stop < start:
        raise ValueError(f"until_step ({stop}) is in the past: the simulation is at step {start}")
    model = _model(network)
    every = monitor.every
    first_sample, rows = sample_steps(start, stop, every)
    trace = np.zeros((rows, 3, monitor.record.shape[0]))
    before = state.counts.copy()
    state.next_sample[0] = state.first_sample[0] = first_sample
    capacity = max(4 * network.n, 4096)
    neurons, times = [], []
    while True:
        out_neuron, out_time = np.empty(capacity, np.int64), np.empty(capacity, np.float64)
        filled, finished = _run_events(network.graph.arrays(), network.delay, model, state, state.heap, stop * dt, dt,
                                       monitor.record, every, trace, out_neuron, out_time)
        neurons.append(out_neuron[:filled])
        times.append(out_time[:filled])
        if finished:
            break
        state = state._replace(heap=_eq_reserve(state.heap, 2 * _eq_capacity(state.heap) + network.n))
        capacity *= 2
    neurons, times = np.concatenate(neurons), np.concatenate(times)
    state.step[0] = stop
    monitor.append(trace, first_step=first_sample)
    bins = np.clip((times / dt).astype(np.int64) - start, 0, max(stop - start - 1, 0))
    counts = state.counts - before
    increments = {"steps": stop - start, "neuron_updates": counts[NEURON_UPDATES],
                  "synaptic_events": counts[SYNAPTIC_EVENTS], "external_events": counts[EXTERNAL_EVENTS],
                  "dropped_refractory": counts[DROPPED]}
    return state, EventOutput(neurons, times,
                              np.bincount(bins, minlength=stop - start).astype(np.int32), increments)
