"""Clock-driven LIF with current-based exponential synapses (CUBA), integrated exactly.

Why a clock here and not events: in CUBA ``v_rest > v_threshold``, so every
neuron drifts to threshold with no input at all and may fire at any step;
with spike times on Brian2's grid every neuron must be tested at every step
anyway. The cheapest exact scheme is then one tight pass over the neurons
per step with the exact propagator of :mod:`eventhorizon.spiking.lif` (no
integration error, the same update as Brian2's ``method='exact'``), and
spike delivery that touches only the out-synapses of the neurons that fired.
Models that cannot reach threshold without input use the event-driven
engine instead (:mod:`eventhorizon.spiking.event`).

One step ``s`` runs in Brian2's order: the state update (``v`` of
non-refractory neurons, decay of ``ge``/``gi``), the threshold, delivery of
the spikes due now (delay 0 from this step, and earlier spikes whose
per-source delay ends now, held in a :class:`scheduler.delayring.DelayRing`), then the
reset. A neuron is refractory at step ``s`` while ``s − last_spike <
refractory_steps``.

Counts: every step updates every neuron (``neuron_updates = n × steps``);
``synaptic_events`` is the number of synapses of the neurons that fired,
counted in the kernel.
"""

from typing import NamedTuple

import numpy as np

from eventhorizon.spiking.lif import Propagator
from scheduler.delayring import DelayRing, _ring_add, _ring_take, new_delay_ring
from scheduler.jit import kernel

__all__ = ["ClockState", "Projection", "StepRecord", "new_clock_state", "advance"]

NEVER = -(2**62)  # last_spike of a neuron that has not fired


class Projection(NamedTuple):
    """Where the spikes of each source neuron go: receptor (0 → ge, 1 → gi) and delay in steps."""

    receptor: np.ndarray  # int8[n]
    delay_steps: np.ndarray  # int32[n]


class ClockState(NamedTuple):
    """Dynamic state.

    ``ring``/``ring_current`` are the arrays of a :class:`scheduler.delayring.DelayRing` over ``2n`` targets:
    entry ``r·n + j`` of a slot is input to receptor ``r`` (0 → ge, 1 → gi) of neuron ``j`` due at a later step.
    """

    v: np.ndarray  # float64[n]
    ge: np.ndarray  # float64[n]
    gi: np.ndarray  # float64[n]
    last_spike: np.ndarray  # int64[n]
    ring: np.ndarray  # float64[slots, 2n]
    ring_current: np.ndarray  # int64[1]
    step: np.ndarray  # int64[1], the next step to run


class StepRecord(NamedTuple):
    """What one call records: spikes (neuron, step), spikes per step, and sampled state."""

    spike_neuron: np.ndarray  # int32[capacity]
    spike_step: np.ndarray  # int64[capacity]
    spike_count: np.ndarray  # int64[1], filled entries of spike_neuron/spike_step
    population_count: np.ndarray  # int32[steps], spikes in each step
    trace_ids: np.ndarray  # int64[k], neurons whose v, ge, gi are sampled
    trace_every: int  # sample at the start of every step divisible by this
    trace: np.ndarray  # float64[rows, 3, k]


def new_clock_state(v0, max_delay_steps):
    """A state at step 0 with membrane potentials ``v0`` (volts) and no synaptic input.

    Examples
    --------
    >>> s = new_clock_state(np.array([-0.06, -0.055]), max_delay_steps=3)
    >>> s.ring.shape, int(s.step[0])
    ((4, 4), 0)
    """
    v0 = np.array(v0, dtype=np.float64)
    if v0.ndim != 1 or not np.all(np.isfinite(v0)):
        raise ValueError(f"v0 must be a finite 1-D array of membrane potentials, got shape {v0.shape}")
    n = v0.shape[0]
    ring = new_delay_ring(2 * n, int(max_delay_steps))
    return ClockState(v=v0, ge=np.zeros(n), gi=np.zeros(n), last_spike=np.full(n, NEVER, dtype=np.int64),
                      ring=ring.buf, ring_current=ring.current, step=np.zeros(1, dtype=np.int64))


def _check(syn, projection, state, record):
    n = state.v.shape[0]
    if syn.indptr.shape != (n + 1,):
        raise ValueError(f"the synapse graph has {syn.indptr.shape[0] - 1} neurons but the state has {n}")
    if projection.receptor.shape != (n,) or projection.receptor.dtype != np.int8:
        raise ValueError(f"projection.receptor must be int8[{n}], got {projection.receptor.dtype}"
                         f"{list(projection.receptor.shape)}")
    if projection.delay_steps.shape != (n,) or projection.delay_steps.dtype != np.int32:
        raise ValueError(f"projection.delay_steps must be int32[{n}], got {projection.delay_steps.dtype}"
                         f"{list(projection.delay_steps.shape)}")
    if n and (projection.delay_steps.min() < 0 or projection.delay_steps.max() >= state.ring.shape[0]):
        raise ValueError(f"projection.delay_steps must lie in [0, {state.ring.shape[0] - 1}] (the state's ring "
                         f"buffer), got [{projection.delay_steps.min()}, {projection.delay_steps.max()}]")
    if record.spike_neuron.shape != record.spike_step.shape:
        raise ValueError("record.spike_neuron and record.spike_step must have one length")
    if record.trace.ndim != 3 or record.trace.shape[1:] != (3, record.trace_ids.shape[0]):
        raise ValueError(f"record.trace must have shape (rows, 3, {record.trace_ids.shape[0]}), "
                         f"got {record.trace.shape}")
    if record.trace_every < 1:
        raise ValueError(f"record.trace_every must be >= 1, got {record.trace_every}")


def advance(syn, projection, prop, state, record, n_steps):
    """Run up to ``n_steps`` steps; stop early, between steps, when the spike buffer might overflow.

    Parameters
    ----------
    syn : topology.store.SynapseArrays
        Out-synapses; the weights are in volts (added to ``ge`` or ``gi``).
    projection : Projection
    prop : eventhorizon.spiking.lif.Propagator
    state : ClockState
        Advanced in place.
    record : StepRecord
        Filled from index 0 (``spike_count`` is reset); ``population_count``
        needs ``n_steps`` entries and ``trace`` a row for every sampled step.
    n_steps : int

    Returns
    -------
    tuple of int
        ``(steps_run, synaptic_events)``.

    Examples
    --------
    >>> from topology.store import SynapseGraph
    >>> from eventhorizon.spiking.lif import LIFParameters, propagator
    >>> p = LIFParameters("cuba", 20e-3, -49e-3, -50e-3, -60e-3, 5e-3, tau_e=5e-3, tau_i=10e-3)
    >>> g = SynapseGraph.from_edges(2, [0], [1], [1e-3])
    >>> proj = Projection(np.zeros(2, np.int8), np.zeros(2, np.int32))
    >>> state = new_clock_state([-0.050001, -0.06], 0)
    >>> rec = StepRecord(np.zeros(8, np.int32), np.zeros(8, np.int64), np.zeros(1, np.int64),
    ...                  np.zeros(10, np.int32), np.array([1]), 1, np.zeros((10, 3, 1)))
    >>> advance(g.arrays(), proj, propagator(p, 1e-4), state, rec, 10)
    (10, 1)
    >>> rec.spike_neuron[:1].tolist(), rec.spike_step[:1].tolist(), state.ge.round(6).tolist()
    ([0], [0], [0.0, 0.000835])
    """
    _check(syn, projection, state, record)
    if record.population_count.shape[0] < n_steps:
        raise ValueError(f"record.population_count has {record.population_count.shape[0]} entries; "
                         f"{n_steps} steps need as many")
    steps, events = _advance(syn, projection, Propagator(*(float(x) for x in prop[:-1]), int(prop[-1])),
                             state, record, int(n_steps))
    return int(steps), int(events)


@kernel(refcount=False)  # allocates nothing; a per-synapse call passing the ring would otherwise pay refcounts
def _deliver(syn, projection, state, ring, spikes, n_spikes):
    """Add the weights of the fired neurons' synapses to ge/gi now (delay 0) or into the ring (delay d ≥ 1).

    Call it after this step's take: offset ``d − 1`` is then delivered ``d`` steps from now.
    """
    n = state.v.shape[0]
    events = 0
    for q in range(n_spikes):
        i = spikes[q]
        r = projection.receptor[i]
        d = projection.delay_steps[i]
        lo, hi = syn.indptr[i], syn.indptr[i + 1]
        if d == 0:
            target = state.ge if r == 0 else state.gi
            for k in range(lo, hi):
                target[syn.indices[k]] += syn.weights[k]
        else:
            for k in range(lo, hi):
                _ring_add(ring, d - 1, r * n + syn.indices[k], syn.weights[k])
        events += hi - lo
    return events


@kernel
def _take_ring(state, ring, arrived):
    """Add the input due at this step, taken from the ring, to ge/gi."""
    _ring_take(ring, arrived)
    n = state.v.shape[0]
    for j in range(n):
        state.ge[j] += arrived[j]
        state.gi[j] += arrived[n + j]


@kernel
def _integrate(prop, state, now):
    """Exact step of every neuron; returns nothing, marks fired neurons by last_spike = now."""
    v, ge, gi, last = state.v, state.ge, state.gi, state.last_spike
    for j in range(v.shape[0]):
        free = now - last[j] >= prop.refractory_steps
        moved = prop.v_rest + (v[j] - prop.v_rest) * prop.decay_m + ge[j] * prop.gain_e + gi[j] * prop.gain_i
        vj = moved if free else v[j]
        v[j] = vj
        ge[j] *= prop.decay_e
        gi[j] *= prop.decay_i
        if free and vj > prop.v_threshold:
            last[j] = now


@kernel
def _advance(syn, projection, prop, state, record, n_steps):
    n = state.v.shape[0]
    ring = DelayRing(state.ring, state.ring_current)
    delayed = state.ring.shape[0] > 1
    arrived = np.empty(2 * n)
    spikes = np.empty(n, dtype=np.int32)
    capacity = record.spike_neuron.shape[0]
    filled = 0
    events = 0
    ids = record.trace_ids
    start = state.step[0]
    first_row = (start + record.trace_every - 1) // record.trace_every
    done = 0
    while done < n_steps and filled + n <= capacity:
        now = start + done
        if now % record.trace_every == 0:
            row = now // record.trace_every - first_row
            for c in range(ids.shape[0]):
                record.trace[row, 0, c] = state.v[ids[c]]
                record.trace[row, 1, c] = state.ge[ids[c]]
                record.trace[row, 2, c] = state.gi[ids[c]]
        _integrate(prop, state, now)
        n_spikes = 0
        for j in range(n):
            if state.last_spike[j] == now:
                spikes[n_spikes] = j
                n_spikes += 1
        if delayed:
            _take_ring(state, ring, arrived)
        events += _deliver(syn, projection, state, ring, spikes, n_spikes)
        for q in range(n_spikes):
            state.v[spikes[q]] = prop.v_reset
            record.spike_neuron[filled + q] = spikes[q]
            record.spike_step[filled + q] = now
        filled += n_spikes
        record.population_count[done] = n_spikes
        done += 1
    state.step[0] = start + done
    record.spike_count[0] = filled
    return done, events
