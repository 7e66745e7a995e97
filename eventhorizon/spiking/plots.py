"""Figures of a spiking run: raster, population rate, ISI-CV distribution, voltage traces.

Drawn from ``monitors.npz`` and ``metrics.json`` at the end of a run and by
``eventhorizon plot RUN_DIR``. matplotlib is imported inside the functions,
so the simulator never needs it.
"""

import json
from pathlib import Path

import numpy as np

from eventhorizon.spiking.monitors import load_monitors
from eventhorizon.spiking.stats import isi_cvs

__all__ = ["is_spiking_run", "write_spiking_figures"]

RASTER_NEURONS = 500  # neurons drawn in the raster (evenly spaced over the network)


def is_spiking_run(run_dir):
    """True when ``run_dir`` holds a spiking run (its ``monitors.npz``, written at every checkpoint)."""
    run_dir = Path(run_dir)
    return (run_dir / "monitors.npz").exists()


def _raster(ax, spikes, boundaries, names):
    step = max(spikes.n // RASTER_NEURONS, 1)
    keep = spikes.i % step == 0
    ax.plot(spikes.t[keep], spikes.i[keep], ",k", rasterized=True)
    for b in boundaries[1:-1]:
        ax.axhline(b, color="tab:red", lw=0.8)
    for k, name in enumerate(names):
        ax.text(1.005, (boundaries[k] + boundaries[k + 1]) / 2 / spikes.n, name, transform=ax.transAxes,
                rotation=90, va="center", fontsize=8)
    ax.set(ylabel="neuron index", xlim=(0, None), ylim=(0, spikes.n),
           title=f"Spike raster (every {step}th neuron of {spikes.n})" if step > 1 else "Spike raster")


def _rate(ax, rate):
    ax.plot(rate.t, rate.smooth_rate(5e-3), lw=0.8)
    ax.set(xlabel="time (s)", ylabel="population rate (Hz)", title="Population rate (5 ms flat window)",
           xlim=(0, None))


def write_spiking_figures(run_dir):
    """Draw ``figures/raster.png``, ``isi_cv.png`` and (with sampled neurons) ``voltage_traces.png``.

    Returns
    -------
    list of pathlib.Path
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    run_dir = Path(run_dir)
    metrics = json.loads((run_dir / "metrics.json").read_text(encoding="utf-8"))
    spikes, rate, state = load_monitors(run_dir / "monitors.npz")
    out = run_dir / "figures"
    out.mkdir(exist_ok=True)
    names = list(metrics["populations"])
    boundaries = np.concatenate([[0], np.cumsum([metrics["populations"][k]["neurons"] for k in names])])
    paths = []

    fig, (ax_raster, ax_rate) = plt.subplots(2, 1, figsize=(9, 6), sharex=True, height_ratios=(3, 1))
    _raster(ax_raster, spikes, boundaries, names)
    _rate(ax_rate, rate)
    fig.suptitle(f"{metrics['name']}: {metrics['neurons']} neurons, {metrics['rate_hz']:.2f} Hz mean rate "
                 f"(from {metrics['statistics_window_s'][0]:g} s)", fontsize=10)
    paths.append(_save(fig, out / "raster.png"))

    t0, t1 = metrics["statistics_window_s"]
    fig, (ax_cv, ax_count) = plt.subplots(1, 2, figsize=(10, 4))
    for k, name in enumerate(names):
        sub = spikes.restricted(np.arange(boundaries[k], boundaries[k + 1]))
        cvs = isi_cvs(sub, t0, t1)
        ax_cv.hist(cvs, bins=40, range=(0, max(2.0, float(cvs.max(initial=0)))), histtype="step",
                   label=f"{name} (mean {cvs.mean():.2f}, {cvs.size} neurons)" if cvs.size else name)
        in_window = (sub.t >= t0) & (sub.t < t1)
        counts = np.bincount(sub.i[in_window], minlength=spikes.n)[boundaries[k]:boundaries[k + 1]]
        edges = (np.arange(counts.max(initial=0) + 2) - 0.5) / (t1 - t0)  # one bin per spike count
        ax_count.hist(counts / (t1 - t0), bins=edges, histtype="step",
                      label=f"{name} (mean {counts.mean() / (t1 - t0):.2f} Hz)")
    ax_cv.set(xlabel="CV of inter-spike intervals", ylabel="neurons",
              title=f"ISI CV distribution ({t0:g}–{t1:g} s, ≥ 3 spikes)")
    ax_count.set(xlabel="firing rate (Hz)", ylabel="neurons", title=f"Firing-rate distribution ({t0:g}–{t1:g} s)")
    ax_cv.legend(fontsize=8)
    ax_count.legend(fontsize=8)
    paths.append(_save(fig, out / "isi_cv.png"))

    if state is not None and state.record.size and state.samples.shape[0]:
        fig, ax = plt.subplots(figsize=(9, 3.5))
        for k, neuron in enumerate(state.record):
            ax.plot(state.t, state.v[k] * 1e3, lw=0.7, label=f"neuron {neuron}")
        ax.set(xlabel="time (s)", ylabel="v (mV)", title="Membrane potential of the sampled neurons")
        ax.legend(fontsize=8, loc="upper right")
        paths.append(_save(fig, out / "voltage_traces.png"))
    return paths


def _save(fig, path):
    import matplotlib.pyplot as plt

    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
