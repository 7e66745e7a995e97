"""Figures of a training run (a run directory of a ``[learning]`` scenario).

They are drawn from ``metrics.json`` (whose ``history`` holds one entry per
finished epoch, see :mod:`eventhorizon.training`) without re-running.
matplotlib is imported lazily, as in :mod:`eventhorizon.plots`.
"""

import json
from pathlib import Path

from eventhorizon.plots import FIGURE_DPI, FIGURE_SIZE, _new_axes

__all__ = ["plot_learning_curves", "plot_phase_macs", "write_training_figures"]


def _title(metrics, what):
    done, planned = metrics.get("epochs_done", 0), metrics.get("epochs_planned")
    progress = f"{done} epochs" if metrics.get("status") == "complete" else f"{done} of {planned} epochs"
    return f"{metrics.get('scenario_name', '')}: {what}\nε = {metrics.get('epsilon', 0):g}, {progress}"


def plot_learning_curves(metrics, ax=None):
    """Train and test accuracy per epoch, event-driven and dense EqProp.

    Parameters
    ----------
    metrics : dict
        A training run's ``metrics.json``.
    ax : matplotlib.axes.Axes, optional

    Returns
    -------
    matplotlib.axes.Axes

    Examples
    --------
    >>> h = [{"epoch": 1, "event": {"train_accuracy": .5, "test_accuracy": .6}}]
    >>> plot_learning_curves({"history": h, "epochs_done": 1, "status": "complete"}).get_ylabel()
    'accuracy [%]'
    """
    history = metrics["history"]
    if not history:
        raise ValueError("no epoch finished yet, no learning curve to draw")
    ax = _new_axes(ax, FIGURE_SIZE)
    epochs = [h["epoch"] for h in history]
    for side, color in (("event", "C0"), ("dense", "C1")):
        if side not in history[0]:
            continue
        label = "event-driven EqProp" if side == "event" else "dense EqProp (numpy)"
        ax.plot(epochs, [100 * h[side]["test_accuracy"] for h in history], "-o", color=color, ms=3,
                label=f"{label}, test (last {100 * history[-1][side]['test_accuracy']:.2f}%)")
        ax.plot(epochs, [100 * h[side]["train_accuracy"] for h in history], "--", color=color,
                label=f"{label}, train (during the epoch)")
    ax.set_xlabel("epoch")
    ax.set_ylabel("accuracy [%]")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    ax.set_title(_title(metrics, "Fashion-MNIST accuracy per epoch"))
    return ax


def plot_phase_macs(metrics, ax=None):
    """Multiply-adds per training sample in each phase: event-driven vs dense (last epoch), log scale.

    Examples
    --------
    >>> h = [{"epoch": 1, "event": {"free_ops_per_sample": 2e5, "nudged_ops_per_sample": 1e4},
    ...       "dense": {"free_ops_unhoisted_per_sample": 3e6, "nudged_ops_unhoisted_per_sample": 2e6,
    ...                 "free_ops_per_sample": 6e5, "nudged_ops_per_sample": 5e4}}]
    >>> len(plot_phase_macs({"history": h, "epochs_done": 1, "status": "complete"}).patches)
    6
    """
    history = metrics["history"]
    if not history:
        raise ValueError("no epoch finished yet, no MACs to draw")
    last = history[-1]
    ax = _new_axes(ax, FIGURE_SIZE)
    series = [("event-driven", "C0", "free_ops_per_sample", "nudged_ops_per_sample", "event")]
    if "dense" in last:
        series += [("dense, every synapse every sweep", "C1", "free_ops_unhoisted_per_sample",
                    "nudged_ops_unhoisted_per_sample", "dense"),
                   ("dense, input drive once per phase", "C2", "free_ops_per_sample", "nudged_ops_per_sample", "dense")]
    width = 0.8 / len(series)
    for k, (label, color, free_key, nudged_key, side) in enumerate(series):
        values = [last[side][free_key], last[side][nudged_key]]
        bars = ax.bar([p + (k - (len(series) - 1) / 2) * width for p in (0, 1)], values, width, color=color,
                      label=label)
        ax.bar_label(bars, labels=[f"{v:,.0f}" for v in values], fontsize=7, padding=2)
    ax.set_xticks([0, 1], ["free phase", "nudged phase(s)"])
    ax.set_yscale("log")
    ax.set_ylabel("multiply-adds per training sample")
    ax.legend(fontsize=8)
    ax.grid(axis="y", alpha=0.3)
    ax.set_title(_title(metrics, f"multiply-adds per phase, epoch {last['epoch']}"))
    return ax


def write_training_figures(run_dir):
    """Write ``figures/learning_curves.png`` and ``figures/phase_macs.png``; returns their paths."""
    run_dir = Path(run_dir)
    path = run_dir / "metrics.json"
    try:
        metrics = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ValueError(f"{path}: cannot read: {exc}") from None
    if not metrics.get("history"):
        raise ValueError(f"{path}: no epoch finished yet, no figures to draw")
    out = run_dir / "figures"
    out.mkdir(exist_ok=True)
    paths = []
    for name, plot in (("learning_curves.png", plot_learning_curves), ("phase_macs.png", plot_phase_macs)):
        fig = plot(metrics).figure
        fig.savefig(out / name, dpi=FIGURE_DPI)
        paths.append(out / name)
    return paths
