"""Monitors of a spiking run, in the spirit of Brian2's.

* :class:`SpikeMonitor` — every spike: ``i`` (neuron), ``t`` (seconds),
  ``count`` per neuron, ``spike_trains()``;
* :class:`StateMonitor` — ``v``, ``ge``, ``gi`` of chosen neurons, sampled
  every ``every`` steps at the start of the step (Brian2's ``when='start'``),
  indexed as ``mon.v[k]`` for the k-th recorded neuron;
* :class:`PopulationRateMonitor` — spikes per step as a rate in Hz, and
  ``smooth_rate(width)``.

All three grow by appending the chunks a kernel call returns, and save to and
load from one ``.npz`` file (:func:`save_monitors`, :func:`load_monitors`).
"""

import numpy as np

__all__ = ["SpikeMonitor", "StateMonitor", "PopulationRateMonitor", "save_monitors", "load_monitors",
           "sample_steps"]


def sample_steps(start, stop, every):
    """The first clock step in ``[start, stop)`` divisible by ``every``, and how many such steps there are.

    A :class:`StateMonitor` samples exactly those steps.

    Examples
    --------
    >>> sample_steps(3, 11, 4), sample_steps(0, 1, 4), sample_steps(5, 7, 4)
    ((4, 2), (0, 1), (8, 0))
    """
    first = (start + every - 1) // every * every
    return first, max((stop - 1 - first) // every + 1, 0)


class SpikeMonitor:
    """Spikes of ``n`` neurons on a clock of step ``dt`` seconds (or at exact times).

    Examples
    --------
    >>> mon = SpikeMonitor(3, dt=1e-4)
    >>> mon.append(np.array([2, 0, 2]), np.array([0.001, 0.002, 0.005]))
    >>> mon.i.tolist(), mon.count.tolist(), mon.num_spikes
    ([2, 0, 2], [1, 0, 2], 3)
    >>> mon.spike_trains()[2].tolist()
    [0.001, 0.005]
    """

    def __init__(self, n, dt):
        self.n, self.dt = int(n), float(dt)
        self._i, self._t = [np.zeros(0, np.int32)], [np.zeros(0, np.float64)]

    def append(self, neurons, times):
        """Add spikes of ``neurons`` at ``times`` (seconds), in time order after those already held."""
        self._i.append(np.asarray(neurons, dtype=np.int32))
        self._t.append(np.asarray(times, dtype=np.float64))

    def _merge(self):
        if len(self._i) > 2:
            self._i, self._t = [np.concatenate(self._i)], [np.concatenate(self._t)]

    @property
    def i(self):
        """Neuron of every spike (int32)."""
        self._merge()
        return self._i[-1] if len(self._i) == 1 else np.concatenate(self._i)

    @property
    def t(self):
        """Time of every spike in seconds (float64)."""
        self._merge()
        return self._t[-1] if len(self._t) == 1 else np.concatenate(self._t)

    @property
    def num_spikes(self):
        """Number of spikes recorded."""
        return int(sum(len(c) for c in self._i))

    @property
    def count(self):
        """Spikes per neuron (int64[n])."""
        return np.bincount(self.i, minlength=self.n)

    def restricted(self, neurons):
        """A monitor holding only the spikes of ``neurons`` (ids keep their meaning).

        Examples
        --------
        >>> mon = SpikeMonitor(3, dt=1e-4)
        >>> mon.append([2, 0, 2], [0.001, 0.002, 0.005])
        >>> mon.restricted([2]).t.tolist()
        [0.001, 0.005]
        """
        keep = np.isin(self.i, np.asarray(neurons))
        sub = SpikeMonitor(self.n, self.dt)
        sub.append(self.i[keep], self.t[keep])
        return sub

    def spike_trains(self):
        """``{neuron: sorted spike times}`` for every neuron (empty arrays for silent ones)."""
        i, t = self.i, self.t
        order = np.argsort(i, kind="stable")
        bounds = np.searchsorted(i[order], np.arange(self.n + 1))
        times = t[order]
        return {k: times[bounds[k]:bounds[k + 1]] for k in range(self.n)}


class StateMonitor:
    """``v``, ``ge`` and ``gi`` (volts) of neurons ``record`` every ``every`` steps of ``dt`` seconds.

    Examples
    --------
    >>> mon = StateMonitor([5, 7], dt=1e-4, every=10)
    >>> mon.append(np.zeros((4, 3, 2)), first_step=0)
    >>> mon.v.shape, mon.t.tolist()
    ((2, 4), [0.0, 0.001, 0.002, 0.003])
    """

    VARIABLES = ("v", "ge", "gi")

    def __init__(self, record, dt, every=1):
        self.record = np.asarray(record, dtype=np.int64)
        self.dt, self.every = float(dt), int(every)
        self._rows = [np.zeros((0, 3, self.record.shape[0]))]
        self.first_step = None

    def append(self, rows, first_step):
        """Add samples ``rows[r, variable, k]`` taken at steps ``first_step + r·every``."""
        if self.first_step is None:
            self.first_step = int(first_step)
        self._rows.append(np.asarray(rows, dtype=np.float64))

    @property
    def samples(self):
        """All samples as one array ``[row, variable (v, ge, gi), k]``."""
        if len(self._rows) > 2:
            self._rows = [np.concatenate(self._rows)]
        return self._rows[-1] if len(self._rows) == 1 else np.concatenate(self._rows)

    @property
    def t(self):
        """Sample times in seconds."""
        first = self.first_step or 0
        return (first + self.every * np.arange(self.samples.shape[0])) * self.dt

    def __getattr__(self, name):
        if name in StateMonitor.VARIABLES:
            return self.samples[:, StateMonitor.VARIABLES.index(name), :].T
        raise AttributeError(f"StateMonitor has no attribute {name!r} (recorded variables: "
                             f"{', '.join(StateMonitor.VARIABLES)})")


class PopulationRateMonitor:
    """Population rate (Hz) of ``n`` neurons, one value per step of ``dt`` seconds.

    Examples
    --------
    >>> mon = PopulationRateMonitor(100, dt=1e-3)
    >>> mon.append(np.array([0, 2, 1, 1]))
    >>> mon.rate.tolist()
    [0.0, 20.0, 10.0, 10.0]
    >>> mon.smooth_rate(2e-3).round(1).tolist()
    [0.0, 10.0, 15.0, 10.0]
    """

    def __init__(self, n, dt):
        self.n, self.dt = int(n), float(dt)
        self._counts = [np.zeros(0, np.int32)]

    def append(self, counts):
        """Add the spike counts of consecutive steps."""
        self._counts.append(np.asarray(counts, dtype=np.int32))

    @property
    def counts(self):
        """Spikes in each step (int32)."""
        if len(self._counts) > 2:
            self._counts = [np.concatenate(self._counts)]
        return self._counts[-1] if len(self._counts) == 1 else np.concatenate(self._counts)

    @property
    def t(self):
        """Start time of each step in seconds."""
        return np.arange(self.counts.shape[0]) * self.dt

    @property
    def rate(self):
        """Spikes per neuron per second in each step (Hz)."""
        return self.counts / (self.n * self.dt)

    def smooth_rate(self, width):
        """The rate averaged over a flat window ``width`` seconds wide (Brian2's ``window='flat'``)."""
        steps = max(int(round(width / self.dt)), 1)
        kernel = np.ones(steps) / steps
        return np.convolve(self.rate, kernel, mode="same")


def save_monitors(path_or_file, spikes, rate, state=None):
    """Write the monitors to one ``.npz``: ``spike_i``, ``spike_t``, ``rate_counts`` and the state samples.

    Examples
    --------
    >>> import io
    >>> s, r = SpikeMonitor(2, 1e-4), PopulationRateMonitor(2, 1e-4)
    >>> s.append([1], [0.0002]); r.append([0, 0, 1])
    >>> buf = io.BytesIO(); save_monitors(buf, s, r); _ = buf.seek(0)
    >>> s2, r2, st2 = load_monitors(buf)
    >>> s2.t.tolist(), r2.counts.tolist(), st2
    ([0.0002], [0, 0, 1], None)
    """
    arrays = dict(n=np.int64(spikes.n), dt=np.float64(spikes.dt), spike_i=spikes.i, spike_t=spikes.t,
                  rate_counts=rate.counts)
    if state is not None:
        arrays.update(state_record=state.record, state_every=np.int64(state.every),
                      state_first_step=np.int64(state.first_step or 0), state_rows=state.samples)
    np.savez(path_or_file, **arrays)


def load_monitors(path_or_file):
    """Read monitors written by :func:`save_monitors`: ``(spikes, rate, state or None)``."""
    with np.load(path_or_file) as data:
        n, dt = int(data["n"]), float(data["dt"])
        spikes, rate = SpikeMonitor(n, dt), PopulationRateMonitor(n, dt)
        spikes.append(data["spike_i"], data["spike_t"])
        rate.append(data["rate_counts"])
        state = None
        if "state_record" in data:
            state = StateMonitor(data["state_record"], dt, int(data["state_every"]))
            state.append(data["state_rows"], int(data["state_first_step"]))
    return spikes, rate, state
