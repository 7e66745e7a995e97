"""Figures of a run directory written by ``eventhorizon run``.

A run directory holds ``metrics.json`` (scenario name, ε, progress, status)
and ``samples.npz`` (per-sample counts and times, valid in ``[:done]``).
:func:`load_run` reads and checks both; the ``plot_*`` functions draw one
figure each into a given matplotlib axes (or a new one);
:func:`write_run_figures` writes all of them as PNGs to ``run_dir/figures``.

matplotlib is imported inside the functions, so ``import eventhorizon.plots``
works without it. Files are drawn on a :class:`matplotlib.figure.Figure`
with the Agg canvas, never through pyplot, so no window opens and no global
pyplot state changes.
"""

import json
import math
import zipfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np

__all__ = [
    "RunData",
    "load_run",
    "plot_macs_per_sample",
    "plot_broadcast_distribution",
    "plot_time_per_sample",
    "write_run_figures",
]

METRIC_KEYS = ("scenario_name", "epsilon", "samples_done", "samples_planned", "status", "compare_dense")
EVENT_ARRAYS = ("event_ops", "lower_bound_ops", "event_seconds", "broadcast_histogram")
DENSE_ARRAYS = ("dense_ops", "dense_hoisted_ops", "looped30_ops", "dense_seconds")
PER_SAMPLE_ARRAYS = (
    "event_ops", "event_input_ops", "broadcasts", "neuron_updates", "lower_bound_ops", "settled", "event_seconds",
    "dense_ops", "dense_sweeps", "dense_hoisted_ops", "looped30_ops", "dense_seconds", "max_deviation",
)
FIGURE_DPI = 120
FIGURE_SIZE = (8.0, 4.5)
WIDE_FIGURE_SIZE = (10.5, 4.5)  # room for a legend right of the axes

# name in samples.npz -> (legend label, matplotlib style)
MACS_SERIES = {
    "dense_ops": ("dense to ε", dict(color="C1")),
    "dense_hoisted_ops": ("dense to ε, input drive once", dict(color="C2")),
    "looped30_ops": ("LoopedMLP-30 (30 dense sweeps)", dict(color="C3", linestyle="--")),
    "lower_bound_ops": ("lower bound (1 broadcast per\nneuron with output ≠ 0)", dict(color="0.2", linestyle=":")),
}
EVENT_STYLE = dict(color="C0", linewidth=1.6, zorder=3)


@dataclass(frozen=True)
class RunData:
    """A loaded run: metadata and per-sample arrays cut to the finished samples.

    Attributes
    ----------
    metrics : dict
        ``metrics.json`` as read (``scenario_name``, ``epsilon``, ``samples_done``,
        ``samples_planned``, ``status``, ``compare_dense``, ...).
    arrays : dict of str to ndarray
        ``samples.npz``; per-sample arrays are cut to ``[:done]``, ``done`` is an int.
    source : str
        Where the data came from (the run directory), for error messages.
    """

    metrics: dict
    arrays: dict
    source: str = "<data>"

    @property
    def done(self):
        """Number of finished samples."""
        return int(self.arrays["done"])

    def has_dense(self, name="dense_ops"):
        """True when the run compared against dense settling and dense array ``name`` is present."""
        return bool(self.metrics.get("compare_dense", True)) and name in self.arrays


def load_run(run_dir):
    """Read and check ``metrics.json`` and ``samples.npz`` of a run directory.

    Parameters
    ----------
    run_dir : str or os.PathLike

    Returns
    -------
    RunData
        Per-sample arrays cut to the ``done`` finished samples (``done`` may be 0).

    Raises
    ------
    FileNotFoundError
        The directory, ``metrics.json`` or ``samples.npz`` does not exist.
    ValueError
        A file is unreadable, or a key or array is missing or inconsistent; the
        message names the file and what is wrong, e.g.
        ``runs/x/samples.npz: missing array 'event_ops'``.

    Examples
    --------
    >>> import json, tempfile
    >>> run_dir = Path(tempfile.mkdtemp())
    >>> _ = (run_dir / "metrics.json").write_text(json.dumps({"scenario_name": "demo",
    ...     "epsilon": 1e-3, "samples_done": 2, "samples_planned": 3, "status": "running",
    ...     "compare_dense": False}))
    >>> np.savez(run_dir / "samples.npz", done=np.int64(2), event_ops=np.array([5, 7, 0]),
    ...          lower_bound_ops=np.array([3, 4, 0]), event_seconds=np.array([1e-3, 2e-3, 0.0]),
    ...          broadcast_histogram=np.array([4, 1]))
    >>> run = load_run(run_dir)
    >>> run.done, run.arrays["event_ops"].tolist(), run.has_dense()
    (2, [5, 7], False)
    >>> import shutil; shutil.rmtree(run_dir)
    """
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise FileNotFoundError(f"{run_dir}: run directory not found")
    metrics = _read_metrics(run_dir / "metrics.json")
    arrays = _read_samples(run_dir / "samples.npz", metrics)
    return RunData(metrics=metrics, arrays=arrays, source=str(run_dir))


def _read_json_object(path):
    """A run's JSON file (e.g. ``metrics.json``) as a dict; FileNotFoundError/ValueError naming the file."""
    if not path.is_file():
        raise FileNotFoundError(f"{path}: not found (written at the first checkpoint; has the run started?)")
    try:
        obj = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ValueError(f"{path}: not valid JSON ({exc})") from None
    if not isinstance(obj, dict):
        raise ValueError(f"{path}: expected a JSON object, got {type(obj).__name__}")
    return obj


def _read_npz(path):
    """A run's ``.npz`` checkpoint as a dict of arrays (read without pickle); errors name the file."""
    if not path.is_file():
        raise FileNotFoundError(f"{path}: not found (written at the first checkpoint)")
    try:
        with np.load(path, allow_pickle=False) as npz:
            return {name: npz[name] for name in npz.files}
    except (OSError, ValueError, EOFError, zipfile.BadZipFile) as exc:
        raise ValueError(f"{path}: not a readable .npz file ({exc})") from None


def _read_metrics(path):
    metrics = _read_json_object(path)
    for key in METRIC_KEYS:
        if key not in metrics:
            raise ValueError(f"{path}: missing key {key!r}")
    return metrics


def _read_samples(path, metrics):
    arrays = _read_npz(path)
    required = ("done",) + EVENT_ARRAYS + (DENSE_ARRAYS if metrics["compare_dense"] else ())
    for name in required:
        if name not in arrays:
            raise ValueError(f"{path}: missing array {name!r}")
    return _cut_to_done(arrays, path)


def _cut_to_done(arrays, where):
    """Return ``arrays`` with ``done`` as an int and every per-sample array cut to ``[:done]``."""
    done = _check_done(arrays["done"], where)
    cut = {"done": done}
    for name, values in arrays.items():
        if name == "done":
            continue
        values = np.asarray(values)
        if name in PER_SAMPLE_ARRAYS:
            if values.ndim != 1 or values.shape[0] < done:
                raise ValueError(f"{where}: array {name!r} has shape {values.shape}, "
                                 f"expected one entry per sample (done = {done})")
            values = values[:done]
        cut[name] = values
    return cut


def _check_done(done, where):
    done = np.asarray(done)
    if done.ndim != 0 or not np.issubdtype(done.dtype, np.integer) or int(done) < 0:
        raise ValueError(f"{where}: 'done' must be a non-negative integer scalar, got {done!r}")
    return int(done)


def _as_run(data):
    """Accept a :class:`RunData` or a mapping of arrays plus optional metadata keys."""
    if isinstance(data, RunData):
        run = data
    elif isinstance(data, Mapping):
        metrics = dict(data.get("metrics", {}))
        metrics.update({key: data[key] for key in METRIC_KEYS if key in data})
        arrays = {name: np.asarray(v) for name, v in data.items() if name not in METRIC_KEYS and name != "metrics"}
        arrays.setdefault("done", np.int64(_shortest_per_sample(arrays)))
        run = RunData(metrics=metrics, arrays=_cut_to_done(arrays, "data"), source="data")
    else:
        raise TypeError(f"data must be a RunData or a mapping of arrays, got {type(data).__name__}")
    if run.done == 0:
        raise ValueError(f"{run.source}: no samples finished yet (done = 0), nothing to plot")
    return run


def _shortest_per_sample(arrays):
    """Length of the shortest per-sample array (the ``done`` of a mapping without one); 1 when there is none."""
    lengths = [len(values) for name, values in arrays.items() if name in PER_SAMPLE_ARRAYS]
    return min(lengths) if lengths else 1


def _require(run, *names):
    for name in names:
        if name not in run.arrays:
            raise ValueError(f"{run.source}: missing array {name!r}")


def _new_axes(ax, figsize=FIGURE_SIZE):
    """Return ``ax``, or the axes of a new Agg-backed Figure (no pyplot) when ``ax`` is None."""
    if ax is not None:
        return ax
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=figsize, layout="constrained")
    FigureCanvasAgg(fig)
    return fig.add_subplot()


def _progress(run):
    """``"100 samples"`` for a complete run, else ``"37 of 100 samples (interrupted)"``."""
    planned = run.metrics.get("samples_planned")
    status = run.metrics.get("status", "complete")
    if status == "complete" or planned is None:
        return f"{run.done} sample{'s' if run.done != 1 else ''}"
    return f"{run.done} of {planned} samples ({status})"


def _title(run, what):
    name = run.metrics.get("scenario_name")
    eps = run.metrics.get("epsilon")
    details = ", ".join(part for part in (f"ε = {eps:g}" if eps is not None else None, _progress(run)) if part)
    return f"{name + ': ' if name else ''}{what}\n{details}"


def _percent(part, whole):
    return f"{100.0 * part / whole:.1f}%" if whole > 0 else "n/a"


def plot_macs_per_sample(data, ax=None):
    """Multiply-adds per sample: event-driven vs dense references and the lower bound.

    Draws one line per series against the sample index on a log y axis:
    event-driven settling, dense sweeps to ε, dense with the input drive
    computed once, LoopedMLP-30 (the dense series only when the run compared
    against dense) and the lower bound. The legend states the event-driven
    total as a share of the dense-to-ε total (without dense: as a multiple
    of the lower bound's total).

    Parameters
    ----------
    data : RunData or mapping
        A :func:`load_run` result, or a mapping of arrays (``event_ops``,
        ``lower_bound_ops``, optionally ``dense_ops``, ``dense_hoisted_ops``,
        ``looped30_ops``, ``done``) with optional metadata keys (``epsilon``,
        ``scenario_name``, ``samples_planned``, ``status``, ``compare_dense``).
    ax : matplotlib.axes.Axes, optional
        Axes to draw into; a new Figure is made when None.

    Returns
    -------
    matplotlib.axes.Axes
        The event-driven line has ``gid="event_ops"``, the others the array name.

    Examples
    --------
    >>> data = {"epsilon": 1e-3, "event_ops": np.array([120, 90, 100]),
    ...         "dense_ops": np.array([800, 800, 700]), "lower_bound_ops": np.array([60, 50, 55])}
    >>> ax = plot_macs_per_sample(data)
    >>> ax.get_yscale(), [line.get_label() for line in ax.get_lines()][:2]
    ('log', ['event-driven: 13.5% of dense to ε', 'dense to ε'])
    """
    run = _as_run(data)
    _require(run, "event_ops", "lower_bound_ops")
    ax = _new_axes(ax, WIDE_FIGURE_SIZE)
    index = np.arange(run.done)
    event = run.arrays["event_ops"]
    marker = dict(marker=".", markersize=5) if run.done <= 60 else {}
    ax.plot(index, event, label=_event_macs_label(run), gid="event_ops", **EVENT_STYLE, **marker)
    for name, (label, style) in MACS_SERIES.items():
        if name == "lower_bound_ops" or run.has_dense(name):
            ax.plot(index, run.arrays[name], label=label, gid=name, linewidth=1.2, **style, **marker)
    ax.set_yscale("log")
    _label_log_axis(ax.yaxis, _engineering)
    _integer_ticks(ax.xaxis)
    ax.set_xlabel("sample index")
    ax.set_ylabel("multiply-adds per sample")
    what = "multiply-adds per sample, event-driven vs dense" if run.has_dense("dense_ops") else \
        "multiply-adds per sample, event-driven vs lower bound"
    ax.set_title(_title(run, what))
    ax.grid(True, which="both", alpha=0.25)
    ax.legend(fontsize="small", loc="upper left", bbox_to_anchor=(1.01, 1.0), borderaxespad=0.0)
    return ax


def _engineering(value):
    """``2e5`` -> ``'200 k'``, ``1e6`` -> ``'1 M'``."""
    from matplotlib.ticker import EngFormatter

    return EngFormatter()(value)


def _plain(value):
    return f"{value:g}"


def _label_log_axis(axis, fmt, max_decades=2.5):
    """Label a log axis with ``fmt`` at decades and, when it spans few decades, at 2× and 5× too."""
    from matplotlib.ticker import FuncFormatter

    def minor(value, _pos):
        low, high = sorted(axis.get_view_interval())
        if value <= 0 or low <= 0 or math.log10(high / low) > max_decades:
            return ""
        mantissa = value / 10 ** math.floor(math.log10(value) + 1e-9)
        return fmt(value) if any(abs(mantissa - m) < 1e-6 for m in (2, 5)) else ""

    axis.set_major_formatter(FuncFormatter(lambda value, _pos: fmt(value)))
    axis.set_minor_formatter(FuncFormatter(minor))


def _event_macs_label(run):
    total = run.arrays["event_ops"].sum()
    if run.has_dense("dense_ops"):
        return f"event-driven: {_percent(total, run.arrays['dense_ops'].sum())} of dense to ε"
    bound = run.arrays["lower_bound_ops"].sum()
    ratio = f"{total / bound:.2f}× the lower bound" if bound > 0 else "lower bound is 0"
    return f"event-driven: {ratio}"


def plot_broadcast_distribution(data, ax=None):
    """How often one free neuron broadcast while settling one sample.

    Bar ``k`` is the number of (free neuron, sample) pairs in which the neuron
    broadcast exactly ``k`` times; a vertical line marks the mean, stated in
    the legend together with the share of silent pairs (0 broadcasts).

    Parameters
    ----------
    data : RunData or mapping
        Needs ``broadcast_histogram`` (int array, entry ``k`` = number of
        pairs with ``k`` broadcasts); see :func:`plot_macs_per_sample`.
    ax : matplotlib.axes.Axes, optional
        Axes to draw into; a new Figure is made when None.

    Returns
    -------
    matplotlib.axes.Axes
        Bars have heights equal to the histogram; the mean line has ``gid="mean"``.

    Examples
    --------
    >>> ax = plot_broadcast_distribution({"broadcast_histogram": np.array([2, 5, 3]), "done": 1})
    >>> [int(patch.get_height()) for patch in ax.patches]
    [2, 5, 3]
    >>> ax.get_legend().get_texts()[0].get_text()
    'mean = 1.10 broadcasts'
    """
    run = _as_run(data)
    _require(run, "broadcast_histogram")
    histogram = np.asarray(run.arrays["broadcast_histogram"], dtype=np.int64)
    if histogram.ndim != 1 or histogram.sum() <= 0:
        raise ValueError(f"{run.source}: 'broadcast_histogram' must be a 1-d array counting at least one "
                         f"(free neuron, sample) pair, got {histogram!r}")
    pairs = int(histogram.sum())
    ax = _new_axes(ax)
    counts = np.arange(histogram.shape[0])
    mean = float((counts * histogram).sum() / pairs)
    bars = ax.bar(counts, histogram, width=0.8, color="C0")
    mean_line = ax.axvline(mean, color="C3", linestyle="--", linewidth=1.5, gid="mean")
    _integer_ticks(ax.xaxis)
    ax.set_xlabel("broadcasts by one free neuron while settling one sample")
    ax.set_ylabel("(free neuron, sample) pairs")
    ax.set_title(_title(run, "broadcasts per free neuron per sample"))
    ax.grid(True, axis="y", alpha=0.3)
    labels = [f"mean = {mean:.2f} broadcasts",
              f"{pairs:,} pairs, {_percent(histogram[0], pairs)} silent (0 broadcasts)"]
    ax.legend([mean_line, bars], labels, fontsize="small", loc="best")
    return ax


def _integer_ticks(axis):
    from matplotlib.ticker import MaxNLocator

    axis.set_major_locator(MaxNLocator(integer=True, steps=[1, 2, 2.5, 5, 10], min_n_ticks=1))


def plot_time_per_sample(data, ax=None):
    """Histogram of the wall time to settle one sample, event-driven vs dense.

    Times are in milliseconds; bins are log-spaced when the times span more
    than a factor of 10 (e.g. when the first sample includes compilation). Dashed vertical lines mark the medians, which the
    legend states. Without dense comparison only the event-driven times are
    drawn.

    Parameters
    ----------
    data : RunData or mapping
        Needs ``event_seconds`` (and ``dense_seconds`` for the comparison);
        see :func:`plot_macs_per_sample`.
    ax : matplotlib.axes.Axes, optional
        Axes to draw into; a new Figure is made when None.

    Returns
    -------
    matplotlib.axes.Axes
        The median lines have ``gid="event_median"`` and ``gid="dense_median"``.

    Examples
    --------
    >>> data = {"event_seconds": np.array([1e-3, 2e-3, 3e-3]), "dense_seconds": np.array([4e-3, 5e-3, 6e-3])}
    >>> ax = plot_time_per_sample(data)
    >>> [text.get_text() for text in ax.get_legend().get_texts()]
    ['event-driven: median 2 ms', 'dense to ε: median 5 ms']
    """
    run = _as_run(data)
    _require(run, "event_seconds")
    series = {"event": ("event-driven", run.arrays["event_seconds"] * 1e3, "C0")}
    if run.has_dense("dense_seconds"):
        series["dense"] = ("dense to ε", run.arrays["dense_seconds"] * 1e3, "C1")
    ax = _new_axes(ax)
    bins, log_x = _time_bins(np.concatenate([ms for _, ms, _ in series.values()]))
    for key, (label, ms, color) in series.items():
        median = float(np.median(ms))
        ax.hist(ms, bins=bins, color=color, alpha=0.45, label=f"{label}: median {median:.3g} ms")
        ax.axvline(median, color=color, linestyle="--", linewidth=1.5, gid=f"{key}_median")
    if log_x:
        ax.set_xscale("log")
        _label_log_axis(ax.xaxis, _plain)
    _integer_ticks(ax.yaxis)
    ax.set_xlabel("wall time to settle one sample [ms]")
    ax.set_ylabel("samples")
    what = "wall time per sample, event-driven vs dense" if "dense" in series else "wall time per sample, event-driven"
    ax.set_title(_title(run, what))
    ax.grid(True, axis="y", alpha=0.3)
    ax.legend(fontsize="small", loc="best", title=_median_ratio(series), title_fontsize="small")
    return ax


def _median_ratio(series):
    """Legend title: what the dashed lines are, and event ÷ dense of the medians when both are drawn."""
    if "dense" not in series:
        return "dashed line: median"
    event, dense = (float(np.median(series[key][1])) for key in ("event", "dense"))
    return f"dashed lines: medians; event ÷ dense = {event / dense:.2f}×" if dense > 0 else "dashed lines: medians"


def _time_bins(ms, n_bins=40, bins_per_decade=24):
    """Shared bin edges for all series.

    Log-spaced, ``bins_per_decade`` per decade, when the positive times span
    more than 10× (so one slow outlier, e.g. a warm-up, does not squash the
    bulk into a single bin); else linear.
    """
    low, high = float(ms.min()), float(ms.max())
    if low > 0 and high / low > 10:
        n_log_bins = min(5 * bins_per_decade, math.ceil(bins_per_decade * math.log10(high / low)))
        return np.geomspace(low, high, n_log_bins + 1), True
    if high == low:
        pad = 0.5 * abs(low) or 0.5
        return np.array([low - pad, high + pad]), False
    return np.linspace(low, high, min(n_bins, max(5, math.ceil(math.sqrt(ms.size)))) + 1), False


FIGURES = {
    "macs_per_sample.png": plot_macs_per_sample,
    "broadcast_distribution.png": plot_broadcast_distribution,
    "time_per_sample.png": plot_time_per_sample,
}


def write_run_figures(run_dir):
    """Write the figures of a run directory to ``run_dir/figures`` as PNGs.

    Parameters
    ----------
    run_dir : str or os.PathLike
        A directory written by ``eventhorizon run`` (finished or not).

    Returns
    -------
    list of pathlib.Path
        ``figures/macs_per_sample.png``, ``figures/broadcast_distribution.png``
        and ``figures/time_per_sample.png``, in that order.

    Raises
    ------
    FileNotFoundError, ValueError
        See :func:`load_run`; ValueError also when no sample has finished yet.

    Examples
    --------
    >>> import json, tempfile
    >>> run_dir = Path(tempfile.mkdtemp())
    >>> _ = (run_dir / "metrics.json").write_text(json.dumps({"scenario_name": "demo",
    ...     "epsilon": 1e-3, "samples_done": 2, "samples_planned": 2, "status": "complete",
    ...     "compare_dense": False}))
    >>> np.savez(run_dir / "samples.npz", done=np.int64(2), event_ops=np.array([5, 7]),
    ...          lower_bound_ops=np.array([3, 4]), event_seconds=np.array([1e-3, 2e-3]),
    ...          broadcast_histogram=np.array([4, 1]))
    >>> [path.name for path in write_run_figures(run_dir)]
    ['macs_per_sample.png', 'broadcast_distribution.png', 'time_per_sample.png']
    >>> import shutil; shutil.rmtree(run_dir)
    """
    from eventhorizon.stream_plots import is_stream_run, write_stream_figures

    if is_stream_run(run_dir):
        return write_stream_figures(run_dir)
    from eventhorizon.spiking.plots import is_spiking_run, write_spiking_figures

    if is_spiking_run(run_dir):
        return write_spiking_figures(run_dir)
    if _is_training_run(run_dir):
        from eventhorizon.training_plots import write_training_figures

        from topology.snapshots import index_path

        paths = write_training_figures(run_dir)
        if index_path(run_dir).exists():
            from eventhorizon.topology_plots import plot_topology_evolution

            paths += plot_topology_evolution(run_dir)
        return paths
    run = load_run(run_dir)
    if run.done == 0:
        raise ValueError(f"{run.source}: no samples finished yet (done = 0 of "
                         f"{run.metrics['samples_planned']}), no figures to draw")
    out_dir = Path(run_dir) / "figures"
    out_dir.mkdir(exist_ok=True)
    return [_save(plot(run).figure, out_dir / name) for name, plot in FIGURES.items()]


def _is_training_run(run_dir):
    try:
        return json.loads((Path(run_dir) / "metrics.json").read_text(encoding="utf-8")).get("kind") == "training"
    except (OSError, ValueError, AttributeError):
        return False  # load_run reports what is wrong


def _save(fig, path):
    fig.savefig(path, dpi=FIGURE_DPI)
    return path
