"""Spike-train statistics: firing rates and the coefficient of variation of inter-spike intervals.

The rules match ``benchmarks/brian2_cuba.py``, so our figures and Brian2's
are computed the same way: spikes in ``[t_start, t_stop)``; a neuron's CV
is ``std(ISI) / mean(ISI)`` (population standard deviation) over its
intervals inside the window, for neurons with at least ``min_spikes``
spikes there; the mean CV is the plain mean over those neurons.
"""

import numpy as np

__all__ = ["mean_rate", "isi_cvs"]


def _window(monitor, t_start, t_stop):
    if not t_stop > t_start:
        raise ValueError(f"t_stop ({t_stop}) must be after t_start ({t_start})")
    keep = (monitor.t >= t_start) & (monitor.t < t_stop)
    return monitor.i[keep], monitor.t[keep]


def mean_rate(monitor, t_start, t_stop, neurons=None):
    """Mean firing rate (Hz) of ``neurons`` (default all) over ``[t_start, t_stop)`` seconds.

    Examples
    --------
    >>> from eventhorizon.spiking.monitors import SpikeMonitor
    >>> m = SpikeMonitor(2, 1e-4); m.append([0, 0, 1, 0], [0.1, 0.2, 0.3, 0.9])
    >>> mean_rate(m, 0.0, 0.5)
    3.0
    >>> mean_rate(m, 0.0, 0.5, neurons=[1])
    2.0
    """
    i, _ = _window(monitor, t_start, t_stop)
    if neurons is None:
        count, size = i.shape[0], monitor.n
    else:
        neurons = np.asarray(neurons)
        count, size = int(np.isin(i, neurons).sum()), neurons.shape[0]
    return count / (size * (t_stop - t_start))


def isi_cvs(monitor, t_start, t_stop, min_spikes=3):
    """CV of the inter-spike intervals of every neuron with at least ``min_spikes`` spikes in the window.

    Returns
    -------
    ndarray of float64
        One CV per qualifying neuron, in neuron order.

    Examples
    --------
    >>> from eventhorizon.spiking.monitors import SpikeMonitor
    >>> m = SpikeMonitor(2, 1e-4); m.append([0, 0, 0, 1], [0.1, 0.2, 0.3, 0.4])
    >>> isi_cvs(m, 0.0, 1.0).tolist()
    [0.0]
    """
    i, t = _window(monitor, t_start, t_stop)
    order = np.lexsort((t, i))
    i, t = i[order], t[order]
    isi = np.diff(t)
    same = i[1:] == i[:-1]
    owner = i[1:][same]
    isi = isi[same]
    counts = np.bincount(owner, minlength=monitor.n)
    total = np.bincount(owner, weights=isi, minlength=monitor.n)
    squares = np.bincount(owner, weights=isi * isi, minlength=monitor.n)
    keep = counts >= max(min_spikes - 1, 1)
    mean = total[keep] / counts[keep]
    var = np.maximum(squares[keep] / counts[keep] - mean * mean, 0.0)
    return np.sqrt(var) / mean
