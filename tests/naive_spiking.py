"""Slow, obviously-correct references for the spiking kernels (plain numpy and heapq)."""

import heapq
import math

import numpy as np


def clock_reference(adjacency, receptor, delay_steps, prop, v0, n_steps):
    """CUBA on a clock, step by step in Brian2's order; returns (spikes [(step, neuron)], v, ge, gi, trace_v).

    ``adjacency[pre, post]`` is a dense weight matrix (0 = no synapse).
    """
    n = v0.shape[0]
    v, ge, gi = v0.astype(np.float64).copy(), np.zeros(n), np.zeros(n)
    last = np.full(n, -10**9)
    pending = {}  # step -> (ge input, gi input)
    spikes, trace = [], []
    for s in range(n_steps):
        trace.append(v.copy())
        free = (s - last) >= prop.refractory_steps
        moved = prop.v_rest + (v - prop.v_rest) * prop.decay_m + ge * prop.gain_e + gi * prop.gain_i
        v = np.where(free, moved, v)
        ge = ge * prop.decay_e
        gi = gi * prop.decay_i
        fired = np.flatnonzero(free & (v > prop.v_threshold))
        for i in fired:
            due = s + int(delay_steps[i])
            if due == s:
                (ge if receptor[i] == 0 else gi)[:] += adjacency[i]
            else:
                pe, pi = pending.setdefault(due, (np.zeros(n), np.zeros(n)))
                (pe if receptor[i] == 0 else pi)[:] += adjacency[i]
        if s in pending:
            pe, pi = pending.pop(s)
            ge += pe
            gi += pi
        v[fired] = prop.v_reset
        last[fired] = s
        spikes.extend((s, int(i)) for i in fired)
    return spikes, v, ge, gi, np.array(trace)


_MASK = 2**64 - 1


def splitmix_uniforms(seed):
    """The SplitMix64 stream of :mod:`eventhorizon.spiking.rng`, in pure Python."""
    x = seed % 2**64
    while True:
        x = (x + 0x9E3779B97F4A7C15) & _MASK
        z = x
        z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & _MASK
        z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & _MASK
        yield ((z ^ (z >> 31)) >> 11) / 2**53


def event_reference(out_edges, delay, model, v0, seed, until):
    """Delta-synapse LIF event by event with heapq; returns (spikes [(t, neuron)], v, counts dict).

    ``out_edges[i]`` lists ``(target, weight)`` in the kernel's (CSR) order; ``model`` is a
    :class:`eventhorizon.spiking.event.DeltaModel`.
    """
    n = v0.shape[0]
    v, t_last, ref_until = v0.astype(float).copy(), np.zeros(n), np.full(n, -math.inf)
    stream = splitmix_uniforms(seed)
    rate = model.external_rate
    t_ext = -math.log(1.0 - next(stream)) / rate if rate > 0 else math.inf
    queue, seq, spikes = [], 0, []
    counts = {"neuron_updates": 0, "synaptic_events": 0, "external_events": 0, "dropped_refractory": 0}

    def receive(j, t, w):
        nonlocal seq
        if t < ref_until[j]:
            counts["dropped_refractory"] += 1
            return
        since = max(t_last[j], ref_until[j])
        value = model.v_rest + (v[j] - model.v_rest) * math.exp(-(t - since) / model.tau_m) + w
        t_last[j] = t
        counts["neuron_updates"] += 1
        if value > model.v_threshold:
            v[j] = model.v_reset
            ref_until[j] = t + model.refractory
            heapq.heappush(queue, (t + delay[j], 0, seq, j))
            seq += 1
            spikes.append((t, j))
        else:
            v[j] = value

    while True:
        t_spike = queue[0][0] if queue else math.inf
        if min(t_spike, t_ext) >= until:
            break
        if t_ext < t_spike:
            j = min(int(next(stream) * n), n - 1)
            t_now = t_ext
            t_ext = t_ext - math.log(1.0 - next(stream)) / rate
            counts["external_events"] += 1
            receive(j, t_now, model.external_weight)
            continue
        t, _, _, source = heapq.heappop(queue)
        counts["synaptic_events"] += len(out_edges[source])
        for target, weight in out_edges[source]:
            receive(target, t, weight)
    return spikes, v, counts
