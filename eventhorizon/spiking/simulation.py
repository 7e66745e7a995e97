"""A spiking simulation: a network, its state, its monitors, and ``run(duration)``.

The engine is picked from the neuron model: CUBA neurons (which drift to
threshold with no input) run on the exact clock of
:mod:`eventhorizon.spiking.clock`; delta-synapse neurons run event by event
in continuous time (:mod:`eventhorizon.spiking.event`). Both advance in
chunks so that a caller can report progress, checkpoint between chunks and
stop on a signal. :meth:`Simulation.state_arrays` and
:meth:`Simulation.restore` make the whole simulation (state, random
streams, monitors, counts) a dict of arrays, so a resumed run continues
bit for bit where it stopped.
"""

import numpy as np

from eventhorizon.spiking import clock, event
from scheduler.timequeue import EventHeap, new_event_heap
from eventhorizon.spiking.lif import propagator
from eventhorizon.spiking.monitors import PopulationRateMonitor, SpikeMonitor, StateMonitor, sample_steps

__all__ = ["Simulation", "COUNT_KEYS"]

COUNT_KEYS = ("steps", "neuron_updates", "synaptic_events", "external_events", "dropped_refractory")


class Simulation:
    """Simulate ``network`` from membrane potentials ``v0``.

    Parameters
    ----------
    network : eventhorizon.spiking.network.SpikingNetwork
    v0 : array_like
        Initial ``v`` of every neuron, volts.
    record : sequence of int
        Neurons whose ``v``, ``ge``, ``gi`` the :class:`StateMonitor` samples.
    record_every : int
        Sampling interval in clock steps.
    seed : int
        Seed of the Poisson input stream (event engine).

    Examples
    --------
    >>> from eventhorizon.scenario import load_scenario, resolve_scenario
    >>> from eventhorizon.spiking.network import build_spiking_network, initial_potentials
    >>> sc = load_scenario(resolve_scenario("cuba"), ["network.sizes=[400, 100]", "network.probability=0.16",
    ...                                                  "monitors.state_neurons=[0]"])
    >>> net = build_spiking_network(sc)
    >>> sim = Simulation(net, initial_potentials(sc, net.n), record=[0])
    >>> sim.run(0.05)
    >>> round(sim.t, 4), sim.state.v.shape, sim.counts["neuron_updates"]
    (0.05, (1, 500), 250000)
    """

    def __init__(self, network, v0, record=(), record_every=1, seed=0):
        self.network = network
        n, dt = network.n, network.dt
        self.spikes = SpikeMonitor(n, dt)
        self.rate = PopulationRateMonitor(n, dt)
        self.state = StateMonitor(record, dt, record_every)
        self.counts = dict.fromkeys(COUNT_KEYS, 0)
        self.engine = "clock" if network.params.synapse == "cuba" else "event"
        if self.engine == "clock":
            if network.drive is not None:
                raise ValueError("Poisson input ([input]) is built for delta synapses (the event engine); "
                                 "cuba neurons take no external input yet")
            self._prop = propagator(network.params, dt)
            self._projection = clock.Projection(network.receptor.astype(np.int8), network.delay_steps())
            self._state = clock.new_clock_state(v0, int(self._projection.delay_steps.max(initial=0)))
        else:
            self._state = event.new_event_state(network, v0, seed)

    @property
    def t(self):
        """Simulated time reached, seconds."""
        return self.step * self.network.dt

    @property
    def step(self):
        """Clock steps simulated."""
        return int(self._state.step[0])

    def run(self, duration, chunk=0.1, progress=None):
        """Advance by ``duration`` seconds (rounded to whole clock steps), in chunks of ``chunk`` seconds.

        ``progress(t)`` is called after each chunk.
        """
        if not duration >= 0:
            raise ValueError(f"duration must be >= 0 seconds, got {duration!r}")
        dt = self.network.dt
        end = self.step + int(round(duration / dt))
        chunk_steps = max(int(round(chunk / dt)), 1)
        while self.step < end:
            steps = min(chunk_steps, end - self.step)
            if self.engine == "clock":
                self._advance_clock(steps)
            else:
                self._advance_event(steps)
            if progress is not None:
                progress(self.t)

    def _advance_clock(self, steps):
        net, n = self.network, self.network.n
        every = self.state.every
        while steps > 0:
            first = self.step
            first_sample, rows = sample_steps(first, first + steps, every)
            capacity = max(8 * n, steps * n // 20)
            record = clock.StepRecord(np.empty(capacity, np.int32), np.empty(capacity, np.int64),
                                      np.zeros(1, np.int64), np.empty(steps, np.int32), self.state.record, every,
                                      np.empty((rows, 3, self.state.record.shape[0])))
            done, events = clock.advance(net.graph.arrays(), self._projection, self._prop, self._state, record, steps)
            filled = int(record.spike_count[0])
            self.spikes.append(record.spike_neuron[:filled], record.spike_step[:filled] * net.dt)
            self.rate.append(record.population_count[:done])
            self.state.append(record.trace[:sample_steps(first, first + done, every)[1]], first_step=first_sample)
            self._count(steps=done, neuron_updates=done * n, synaptic_events=events)
            steps -= done

    def _advance_event(self, steps):
        self._state, out = event.advance(self.network, self._state, self.state, self.step + steps)
        self.spikes.append(out.neurons, out.times)
        self.rate.append(out.population_count)
        self._count(**out.counts)

    def _count(self, **increments):
        for key, value in increments.items():
            self.counts[key] += int(value)

    def state_arrays(self):
        """Everything needed to continue this simulation, as a flat dict of arrays (see :meth:`restore`)."""
        arrays = {f"state.{k}": v for k, v in self._state._asdict().items() if k != "heap"}
        if self.engine == "event":
            size = int(self._state.heap.counters[0])
            arrays.update({f"heap.{k}": (v if k == "counters" else v[:size])
                           for k, v in self._state.heap._asdict().items()})
        arrays.update(spike_i=self.spikes.i, spike_t=self.spikes.t, rate_counts=self.rate.counts,
                      trace=self.state.samples, trace_first_step=np.int64(self.state.first_step or 0),
                      counts=np.array([self.counts[k] for k in COUNT_KEYS], dtype=np.int64))
        return arrays

    def restore(self, arrays):
        """Continue from :meth:`state_arrays` of a simulation of the same network and monitors.

        Raises
        ------
        ValueError
            An array is missing or has the wrong shape or dtype for this network.
        """
        state = self._state._asdict()
        for key, current in state.items():
            if key == "heap":
                continue
            saved = arrays.get(f"state.{key}")
            if saved is None or saved.shape != current.shape or saved.dtype != current.dtype:
                raise ValueError(f"state.{key}: expected {current.dtype}{list(current.shape)}, got "
                                 f"{'nothing' if saved is None else f'{saved.dtype}{list(saved.shape)}'}")
            current[...] = saved
        if self.engine == "event":
            self._state = self._state._replace(heap=_heap_from(arrays))
        self.spikes.append(arrays["spike_i"], arrays["spike_t"])
        self.rate.append(arrays["rate_counts"])
        if arrays["trace"].shape[0]:
            self.state.append(arrays["trace"], int(arrays["trace_first_step"]))
        self.counts = dict(zip(COUNT_KEYS, (int(c) for c in arrays["counts"])))

    def dense_baseline(self):
        """Work of a clock-driven dense-step simulation over the same span and spikes.

        Every neuron every step, every synapse of every spike, and (with
        Poisson input) one random draw per neuron per step.
        """
        steps, n = self.step, self.network.n
        return {"neuron_updates": steps * n, "synaptic_events": int(self.counts["synaptic_events"]),
                "external_draws": steps * n if self.network.drive is not None else 0}


def _heap_from(arrays):
    counters = arrays["heap.counters"].astype(np.int64)
    size = int(counters[0])
    heap = new_event_heap(max(1024, 2 * size))
    for key, column in zip(EventHeap._fields, heap):
        if key != "counters":
            column[:size] = arrays[f"heap.{key}"]
    heap.counters[:] = counters
    return heap
