"""Figures of a streaming run (``eventhorizon run moving_digits``).

A streaming run directory holds ``scenario.toml`` (its ``[stream]`` table
gives ``switch_every``, frames per image, and ``frame_rate_hz``),
``metrics.json`` and ``frames.npz``: one entry per frame, valid up to
``done_event`` for the event-driven arrays and up to ``done_dense`` for the
dense baselines (see :mod:`eventhorizon.stream_runner`).
:func:`load_stream_run` reads and checks them; the ``plot_*`` functions draw
one figure each into a given matplotlib axes (or a new one) and draw only
what has data; :func:`write_stream_figures` writes them all as PNGs to
``run_dir/figures``.

matplotlib is imported inside the functions, as in :mod:`eventhorizon.plots`:
figures are drawn on a :class:`matplotlib.figure.Figure` with the Agg canvas,
never through pyplot.
"""

import math
import tomllib
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from eventhorizon.plots import (
    FIGURE_DPI,
    FIGURE_SIZE,
    WIDE_FIGURE_SIZE,
    _engineering,
    _label_log_axis,
    _new_axes,
    _plain,
    _read_json_object,
    _read_npz,
    _time_bins,
)

__all__ = [
    "StreamRunData",
    "is_stream_run",
    "load_stream_run",
    "plot_macs_per_frame",
    "plot_accuracy_over_time",
    "plot_time_per_frame",
    "plot_realtime_lag",
    "write_stream_figures",
]

# per-frame arrays of frames.npz, valid in [:done_event] and [:done_dense]
EVENT_ARRAYS = ("ops", "input_ops", "broadcasts", "updates", "changed", "label", "event_pred", "event_seconds",
                "lag", "chunk")
DENSE_ARRAYS = ("dense_ops", "dense_sweeps", "hoisted_ops", "looped_ops", "dense_pred", "looped_pred",
                "dense_seconds", "hoisted_seconds")
REQUIRED_EVENT = ("ops", "label", "event_pred", "event_seconds")
REQUIRED_DENSE = ("dense_ops", "hoisted_ops", "dense_pred", "dense_seconds", "hoisted_seconds")

EVENT_STYLE = dict(color="C0", linewidth=1.0, zorder=4)
DENSE_STYLE = dict(color="C1", linewidth=1.0, zorder=3)
HOISTED_STYLE = dict(color="C2", linewidth=1.0, zorder=3)
LOOPED_STYLE = dict(color="C3", linewidth=1.0, linestyle="--", zorder=2)
CUT_STYLE = dict(color="0.45", linewidth=0.6, alpha=0.35, zorder=1)
LINE_FRAMES = 300  # up to this many frames the MACs are drawn as step lines, beyond as one dot per frame


@dataclass(frozen=True)
class StreamRunData:
    """A loaded streaming run: per-frame arrays cut to the finished frames.

    Attributes
    ----------
    arrays : dict of str to ndarray
        Event-driven arrays (``ops``, ``label``, ``event_pred``, ``event_seconds``,
        ``lag``, ...) cut to ``[:done_event]``, dense ones (``dense_ops``,
        ``hoisted_ops``, ``looped_ops``, ``dense_pred``, ...) to ``[:done_dense]``.
    done_event, done_dense : int
        Frames settled event-driven, and by the dense baselines (``done_dense <= done_event``).
    switch_every : int
        Frames per image (a cut to the next image every ``switch_every`` frames).
    frame_rate_hz : float
        Frames per second of stream time.
    metrics : dict
        ``metrics.json`` as read (``scenario``, ``frames``, ``saving_vs_dense``, ...).
    source : str
        Where the data came from, for error messages.
    """

    arrays: dict
    done_event: int
    done_dense: int
    switch_every: int
    frame_rate_hz: float
    metrics: dict
    source: str = "<data>"

    @classmethod
    def from_arrays(cls, arrays, switch_every, frame_rate_hz, metrics=None, source="<data>"):
        """Check per-frame arrays and cut them to the finished frames.

        ``done_event`` and ``done_dense`` are taken from ``arrays`` when present,
        else they are the length of ``ops`` and of ``dense_ops`` (0 without it).

        Raises
        ------
        ValueError
            A required array is missing, a count is out of range, or no frame has
            finished yet (``done_event == 0``); the message starts with ``source``.

        Examples
        --------
        >>> run = StreamRunData.from_arrays({"ops": np.array([5, 0, 7]), "label": np.zeros(3),
        ...     "event_pred": np.zeros(3), "event_seconds": np.ones(3), "done_event": np.int64(2)},
        ...     switch_every=2, frame_rate_hz=30.0)
        >>> run.done_event, run.done_dense, run.arrays["ops"].tolist()
        (2, 0, [5, 0])
        """
        where = source
        arrays = {name: np.asarray(values) for name, values in arrays.items()}
        for name in REQUIRED_EVENT:
            if name not in arrays:
                raise ValueError(f"{where}: missing array {name!r}")
        total = arrays["ops"].shape[0] if arrays["ops"].ndim == 1 else -1
        if total < 0:
            raise ValueError(f"{where}: array 'ops' has shape {arrays['ops'].shape}, expected one entry per frame")
        done_event = _count(arrays, "done_event", total, total, where)
        if done_event == 0:
            frames = (metrics or {}).get("frames") or total
            raise ValueError(f"{where}: no frame finished yet (done_event = 0 of {frames} frames), nothing to plot")
        default_dense = arrays["dense_ops"].shape[0] if "dense_ops" in arrays else 0
        done_dense = _count(arrays, "done_dense", min(default_dense, done_event), done_event, where)
        if done_dense:
            for name in REQUIRED_DENSE:
                if name not in arrays:
                    raise ValueError(f"{where}: missing array {name!r} (done_dense = {done_dense})")
        if isinstance(switch_every, bool) or not isinstance(switch_every, (int, np.integer)) or switch_every < 1:
            raise ValueError(f"{where}: switch_every must be an integer >= 1, got {switch_every!r}")
        if not (isinstance(frame_rate_hz, (int, float)) and math.isfinite(frame_rate_hz) and frame_rate_hz > 0):
            raise ValueError(f"{where}: frame_rate_hz must be a positive number, got {frame_rate_hz!r}")
        cut = {}
        for name, values in arrays.items():
            done = done_event if name in EVENT_ARRAYS else done_dense if name in DENSE_ARRAYS else None
            if done is None:
                continue  # done counts and the stream's state are not drawn
            if values.ndim != 1 or values.shape[0] < done:
                raise ValueError(f"{where}: array {name!r} has shape {values.shape}, expected one entry per "
                                 f"frame (at least {done})")
            cut[name] = values[:done]
        return cls(arrays=cut, done_event=done_event, done_dense=done_dense, switch_every=int(switch_every),
                   frame_rate_hz=float(frame_rate_hz), metrics=dict(metrics or {}), source=source)

    @property
    def has_looped(self):
        """True when LoopedMLP-30 ran on the dense frames (nonzero ``looped_ops``)."""
        return self.done_dense > 0 and "looped_ops" in self.arrays and bool(np.any(self.arrays["looped_ops"]))

    @property
    def has_lag(self):
        """True when some frame's lag behind real time is finite (the run was paced with --realtime)."""
        return "lag" in self.arrays and bool(np.isfinite(self.arrays["lag"]).any())

    def seconds(self, n):
        """Stream time of frames ``0 .. n-1`` in seconds."""
        return np.arange(n) / self.frame_rate_hz


def _count(arrays, name, default, high, where):
    if name not in arrays:
        return int(default)
    value = arrays[name]
    if value.ndim != 0 or not np.issubdtype(value.dtype, np.integer) or not 0 <= int(value) <= high:
        raise ValueError(f"{where}: {name!r} must be an integer scalar in [0, {high}], got {value!r}")
    return int(value)


def is_stream_run(run_dir):
    """True when ``run_dir`` holds a streaming run (its ``frames.npz``, written at every checkpoint).

    Examples
    --------
    >>> import tempfile
    >>> is_stream_run(tempfile.gettempdir() + "/no-such-run")
    False
    """
    return (Path(run_dir) / "frames.npz").exists()


def load_stream_run(run_dir):
    """Read and check ``scenario.toml``, ``metrics.json`` and ``frames.npz`` of a streaming run.

    Parameters
    ----------
    run_dir : str or os.PathLike

    Returns
    -------
    StreamRunData

    Raises
    ------
    FileNotFoundError
        A file does not exist.
    ValueError
        A file is unreadable or inconsistent, or no frame has finished yet;
        the message names the file, e.g. ``runs/x/frames.npz: no frame
        finished yet (done_event = 0 of 6000 frames), nothing to plot``.

    Examples
    --------
    >>> import json, tempfile
    >>> run_dir = Path(tempfile.mkdtemp())
    >>> _ = (run_dir / "scenario.toml").write_text("[stream]\\nswitch_every = 2\\nframe_rate_hz = 25.0\\n")
    >>> _ = (run_dir / "metrics.json").write_text(json.dumps({"scenario": "demo"}))
    >>> np.savez(run_dir / "frames.npz", ops=np.array([9, 0, 4]), label=np.zeros(3, np.int16),
    ...          event_pred=np.zeros(3, np.int16), event_seconds=np.ones(3),
    ...          done_event=np.int64(2), done_dense=np.int64(0))
    >>> run = load_stream_run(run_dir)
    >>> run.done_event, run.done_dense, run.switch_every, run.frame_rate_hz, run.arrays["ops"].tolist()
    (2, 0, 2, 25.0, [9, 0])
    >>> import shutil; shutil.rmtree(run_dir)
    """
    run_dir = Path(run_dir)
    metrics = _read_json_object(run_dir / "metrics.json")
    switch_every, frame_rate_hz = _read_stream_table(run_dir / "scenario.toml", metrics)
    path = run_dir / "frames.npz"
    return StreamRunData.from_arrays(_read_npz(path), switch_every, frame_rate_hz, metrics=metrics, source=str(path))


def _read_stream_table(path, metrics):
    """``(switch_every, frame_rate_hz)`` from the ``[stream]`` table (the frame rate falls back to metrics)."""
    if not path.is_file():
        raise FileNotFoundError(f"{path}: not found")
    try:
        stream = tomllib.loads(path.read_text(encoding="utf-8")).get("stream")
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise ValueError(f"{path}: not valid TOML ({exc})") from None
    if not isinstance(stream, dict) or "switch_every" not in stream:
        raise ValueError(f"{path}: no [stream] table with switch_every; is this a streaming run?")
    rate = stream.get("frame_rate_hz", metrics.get("frame_rate_hz"))
    if isinstance(rate, int) and not isinstance(rate, bool):
        rate = float(rate)
    if not isinstance(rate, float):
        raise ValueError(f"{path}: [stream] frame_rate_hz must be a number, got {rate!r}")
    return stream["switch_every"], rate


# --- titles and common decorations -------------------------------------------------------------------------------


def _title(run, what, dense_note=True):
    """``"demo: what"`` over a line saying how many frames are drawn, at which rate, with which cuts."""
    name = run.metrics.get("scenario")
    planned = run.metrics.get("frames")
    status = run.metrics.get("status")
    frames = f"{run.done_event:,} of {planned:,} frames" if planned and planned > run.done_event else \
        f"{run.done_event:,} frames"
    if status and status != "complete":
        frames += f" ({status})"
    details = (f"{frames} at {run.frame_rate_hz:g} fps; a new image every {run.switch_every} frames "
               f"({run.switch_every / run.frame_rate_hz:.3g} s)")
    if dense_note and run.done_dense == 0:
        details += "; no dense baselines yet"
    elif dense_note and run.done_dense < run.done_event:
        details += f"; dense baselines on the first {run.done_dense:,}"
    return f"{name + ': ' if name else ''}{what}\n{details}"


def _draw_cuts(ax, run, n):
    """Faint vertical lines at the cuts (frames ``k × switch_every``, ``0 < k``) of the first ``n`` frames."""
    cuts = np.arange(run.switch_every, n, run.switch_every) / run.frame_rate_hz
    if cuts.size == 0:
        return None
    style = CUT_STYLE if cuts.size <= 40 else dict(CUT_STYLE, alpha=0.2)  # fainter when they become a grid
    return ax.vlines(cuts, 0, 1, transform=ax.get_xaxis_transform(), gid="cuts",
                     label=f"cut to the next image (every {run.switch_every} frames)", **style)


def _time_axis(ax, run):
    """x axis in stream seconds, with the frame index on a secondary axis on top."""
    rate = run.frame_rate_hz
    ax.set_xlim(0, max(run.done_event - 1, 1) / rate)
    ax.set_xlabel("stream time [s]")
    top = ax.secondary_xaxis("top", functions=(lambda t: t * rate, lambda f: f / rate))
    top.set_xlabel("frame", fontsize="small")
    top.tick_params(labelsize="small")


def _legend_right(ax, **kwargs):
    ax.legend(fontsize="small", loc="upper left", bbox_to_anchor=(1.01, 1.0), borderaxespad=0.0, **kwargs)


def _si(value):
    """``424812`` -> ``'425 k'``, ``6.7968e9`` -> ``'6.8 G'`` (3 significant digits)."""
    value = float(f"{value:.3g}")
    for factor, prefix in ((1e12, " T"), (1e9, " G"), (1e6, " M"), (1e3, " k")):
        if abs(value) >= factor:
            return f"{value / factor:g}{prefix}"
    return f"{value:g}"


def _number(value):
    """``1020.4`` -> ``'1,020'``, ``33.42`` -> ``'33.4'`` (3 significant digits, no exponent)."""
    return f"{value:,.0f}" if abs(value) >= 100 else f"{value:.3g}"


def _fewer(saving):
    return f"{100 * saving:.1f}% fewer" if saving >= 0 else f"{-100 * saving:.1f}% more"


# --- the figures ---------------------------------------------------------------------------------------------------


def plot_macs_per_frame(run, ax=None):
    """Multiply-adds per frame over stream time, event-driven vs the dense baselines.

    One series each: event-driven re-settling, warm-started dense settling
    to the same ε (plain sweeps, and with the input drive computed once per
    frame) and LoopedMLP-30 (when it ran); the dense series only over the
    frames they were run on. Up to ``LINE_FRAMES`` frames each series is a
    step line, beyond one dot per frame (a line jumping between 0 and
    thousands every few frames would fill the axes). The y axis is
    symmetric-log (linear below 1),
    so frames without events (0 multiply-adds) sit on the bottom line. Faint
    vertical lines mark the cuts between images, where the event count jumps.
    The title states the savings of ``metrics.json`` when it has them; the
    legend the totals.

    Parameters
    ----------
    run : StreamRunData
    ax : matplotlib.axes.Axes, optional
        Axes to draw into; a new Figure is made when None.

    Returns
    -------
    matplotlib.axes.Axes
        Lines have ``gid`` ``"ops"``, ``"dense_ops"``, ``"hoisted_ops"``, ``"looped_ops"``.

    Examples
    --------
    >>> run = StreamRunData.from_arrays({"ops": np.array([900, 0, 40, 0]), "label": np.zeros(4),
    ...     "event_pred": np.zeros(4), "event_seconds": np.ones(4)}, switch_every=2, frame_rate_hz=30.0)
    >>> ax = plot_macs_per_frame(run)
    >>> ax.get_yscale(), [line.get_gid() for line in ax.get_lines()]
    ('symlog', ['ops'])
    """
    ax = _new_axes(ax, WIDE_FIGURE_SIZE)
    a, de, dd = run.arrays, run.done_event, run.done_dense
    dots = de > LINE_FRAMES
    zeros = int((a["ops"] == 0).sum())
    series = [("ops", f"event-driven: {_si(a['ops'].sum())} in total\n({zeros:,} of {de:,} frames without "
                      f"events, drawn at 0)", EVENT_STYLE, de)]
    if dd:
        series += [("dense_ops", "warm dense to ε, plain sweeps", DENSE_STYLE, dd),
                   ("hoisted_ops", "warm dense to ε, input drive once per frame", HOISTED_STYLE, dd)]
        if run.has_looped:
            series.append(("looped_ops", "LoopedMLP-30 (30 dense sweeps from rest)", LOOPED_STYLE, dd))
    for name, label, style, n in series:
        if name != "ops":
            label = f"{label}: {_si(a[name].sum())} in total"
        if dots:
            style = dict(color=style["color"], zorder=style["zorder"], linestyle="none", marker=".", markersize=2.5,
                         markeredgewidth=0, alpha=0.7)
        else:
            style = dict(style, drawstyle="steps-mid")
        ax.plot(run.seconds(n), a[name], gid=name, label=label, **style)
    _draw_cuts(ax, run, de)
    ax.set_yscale("symlog", linthresh=1, linscale=0.5)
    ax.set_ylim(bottom=0)
    from matplotlib.ticker import FuncFormatter

    ax.yaxis.set_major_formatter(FuncFormatter(lambda value, _pos: _engineering(value)))
    _time_axis(ax, run)
    ax.set_ylabel("multiply-adds per frame\n(symmetric log: linear below 1)")
    ax.grid(True, axis="y", alpha=0.25)
    _legend_right(ax, **(dict(markerscale=5, title="one dot per frame", title_fontsize="small") if dots else {}))
    what = "multiply-adds per frame, event-driven vs warm dense" if dd else "multiply-adds per frame, event-driven"
    title = _title(run, what)
    savings = _savings_line(run)
    ax.set_title(title.replace("\n", f"\n{savings}\n", 1) if savings else title, fontsize="medium")
    return ax


def _savings_line(run):
    m = run.metrics
    parts = [f"{_fewer(m[key])} than {what}" for key, what in
             (("saving_vs_dense", "warm dense"), ("saving_vs_dense_hoisted", "hoisted dense"),
              ("saving_vs_looped30", "LoopedMLP-30")) if isinstance(m.get(key), (int, float))]
    if not parts:
        return ""
    frames = m.get("dense_frames_done", run.done_dense)
    return f"event-driven multiply-adds over the first {frames:,} frames:\n" + ", ".join(parts)


def _moving_average(hits, window):
    """Trailing mean of ``hits`` over ``window`` frames (fewer at the start)."""
    sums = np.concatenate([[0.0], np.cumsum(hits, dtype=np.float64)])
    end = np.arange(1, hits.size + 1)
    start = np.maximum(end - window, 0)
    return (sums[end] - sums[start]) / (end - start)


def plot_accuracy_over_time(run, ax=None):
    """Accuracy over stream time, as a trailing moving average over one image's frames.

    The window is ``switch_every`` frames, so right before a cut the curve is
    the accuracy on that image. One curve per classifier that was run:
    event-driven, warm dense (the dense curves only over the frames they were
    run on) and LoopedMLP-30; the legend gives each one's overall accuracy.

    Parameters
    ----------
    run : StreamRunData
    ax : matplotlib.axes.Axes, optional
        Axes to draw into; a new Figure is made when None.

    Returns
    -------
    matplotlib.axes.Axes
        Lines have ``gid`` ``"event"``, ``"dense"``, ``"looped"``; the y data is in percent.

    Examples
    --------
    >>> run = StreamRunData.from_arrays({"ops": np.ones(4), "label": np.array([1, 1, 2, 2]),
    ...     "event_pred": np.array([1, 0, 2, 2]), "event_seconds": np.ones(4)}, switch_every=2,
    ...     frame_rate_hz=30.0)
    >>> ax = plot_accuracy_over_time(run)
    >>> ax.get_lines()[0].get_ydata().tolist(), ax.get_lines()[0].get_label()
    ([100.0, 50.0, 50.0, 100.0], 'event-driven: 75.0% of 4 frames')
    """
    ax = _new_axes(ax, WIDE_FIGURE_SIZE)
    a, de, dd = run.arrays, run.done_event, run.done_dense
    series = [("event", "event-driven", a["event_pred"], de, EVENT_STYLE)]
    if dd:
        series.append(("dense", "warm dense to ε", a["dense_pred"], dd, DENSE_STYLE))
        if run.has_looped:
            series.append(("looped", "LoopedMLP-30", a["looped_pred"], dd, LOOPED_STYLE))
    for gid, label, pred, n, style in series:
        hits = pred == a["label"][:n]
        ax.plot(run.seconds(n), 100 * _moving_average(hits, run.switch_every), gid=gid,
                label=f"{label}: {100 * hits.mean():.1f}% of {n:,} frames", **style)
    _draw_cuts(ax, run, de)
    ax.axhline(10, color="0.3", linestyle=":", linewidth=1.0, label="chance (10 classes)")
    ax.set_ylim(-2, 102)
    _time_axis(ax, run)
    ax.set_ylabel(f"accuracy [%], moving average\nover {run.switch_every} frames (one image)")
    ax.grid(True, axis="y", alpha=0.25)
    _legend_right(ax, title="overall accuracy", title_fontsize="small")
    what = "accuracy over time, event-driven vs dense" if dd else "accuracy over time, event-driven"
    ax.set_title(_title(run, what), fontsize="medium")
    return ax


def plot_time_per_frame(run, ax=None):
    """Wall time per frame, event-driven vs warm dense (plain and hoisted): sorted distributions.

    Each series' times per frame, sorted, are drawn against the share of
    frames (a quantile plot: the value at 50% is the median) in µs on a log
    axis; the legend states medians and means. When frames were settled in
    chunks, an event-driven frame's time is its chunk's wall time divided by
    the frames in the chunk (the legend says so). Frames with a time of 0
    cannot be drawn on the log axis and are counted in the legend.

    Parameters
    ----------
    run : StreamRunData
    ax : matplotlib.axes.Axes, optional
        Axes to draw into; a new Figure is made when None.

    Returns
    -------
    matplotlib.axes.Axes
        Lines have ``gid`` ``"event_seconds"``, ``"dense_seconds"``, ``"hoisted_seconds"``.

    Examples
    --------
    >>> run = StreamRunData.from_arrays({"ops": np.ones(3), "label": np.zeros(3), "event_pred": np.zeros(3),
    ...     "event_seconds": np.array([3e-5, 1e-5, 2e-5])}, switch_every=2, frame_rate_hz=30.0)
    >>> ax = plot_time_per_frame(run)
    >>> [text.get_text() for text in ax.get_legend().get_texts()]
    ['event-driven: median 20 µs, mean 20 µs']
    """
    ax = _new_axes(ax, FIGURE_SIZE)
    a, dd = run.arrays, run.done_dense
    series = [("event_seconds", "event-driven", EVENT_STYLE)]
    if dd:
        series += [("dense_seconds", "warm dense, plain", DENSE_STYLE),
                   ("hoisted_seconds", "warm dense, input hoisted, compiled", HOISTED_STYLE)]
    for name, label, style in series:
        us = np.sort(a[name].astype(np.float64)) * 1e6
        positive = us[us > 0]
        text = f"{label}: median {_number(np.median(us))} µs, mean {_number(us.mean())} µs"
        if positive.size < us.size:
            text += f"\n({us.size - positive.size:,} frames at 0 µs not drawn)"
        if positive.size == 0:
            continue
        share = 100 * (np.arange(us.size - positive.size, us.size) + 0.5) / us.size
        ax.plot(share, positive, gid=name, label=text, drawstyle="steps-mid", **{**style, "linewidth": 1.6})
    ax.axvline(50, color="0.3", linestyle=":", linewidth=1.0)
    ax.set_xlim(0, 100)
    ax.set_yscale("log")
    _label_log_axis(ax.yaxis, _plain)
    ax.set_xlabel("share of frames, sorted by time [%] (dotted: median)")
    ax.set_ylabel("wall time per frame [µs]")
    ax.grid(True, which="both", alpha=0.25)
    chunked = ["event-driven"] if "chunk" in a and bool((a["chunk"] > 1).any()) else []
    chunked += ["compiled dense"] if dd else []  # the dense pass settles a chunk per call
    ax.legend(fontsize="small", loc="upper left", title_fontsize="small",
              title=" and ".join(chunked) + ": chunk time ÷ frames in the chunk" if chunked else None)
    what = "wall time per frame, event-driven vs warm dense" if dd else "wall time per frame, event-driven"
    ax.set_title(_title(run, what), fontsize="medium")
    return ax


def plot_realtime_lag(run, ax=None):
    """Histogram of each frame's lag behind real time (a run paced with ``--realtime``), in ms.

    Frames without a finite lag are left out. Dashed lines mark the median
    (p50) and the 99th percentile, both stated in the legend with the maximum.

    Parameters
    ----------
    run : StreamRunData
    ax : matplotlib.axes.Axes, optional
        Axes to draw into; a new Figure is made when None.

    Returns
    -------
    matplotlib.axes.Axes
        The percentile lines have ``gid`` ``"p50"`` and ``"p99"``.

    Raises
    ------
    ValueError
        No frame has a finite lag (the run was not paced).

    Examples
    --------
    >>> run = StreamRunData.from_arrays({"ops": np.ones(4), "label": np.zeros(4), "event_pred": np.zeros(4),
    ...     "event_seconds": np.ones(4), "lag": np.array([1e-3, 2e-3, 3e-3, np.nan])}, switch_every=2,
    ...     frame_rate_hz=30.0)
    >>> ax = plot_realtime_lag(run)
    >>> [text.get_text() for text in ax.get_legend().get_texts()][1:]
    ['p50 = 2 ms', 'p99 = 2.98 ms']
    """
    if not run.has_lag:
        raise ValueError(f"{run.source}: no frame has a finite lag (the run was not paced with --realtime)")
    ms = run.arrays["lag"][np.isfinite(run.arrays["lag"])].astype(np.float64) * 1e3
    ax = _new_axes(ax, FIGURE_SIZE)
    bins, log_x = _time_bins(ms)
    ax.hist(ms, bins=bins, color="C0", alpha=0.7, label=f"{ms.size:,} frames, max {_number(ms.max())} ms")
    for q, color in ((50, "C1"), (99, "C3")):
        value = float(np.percentile(ms, q))
        ax.axvline(value, color=color, linestyle="--", linewidth=1.5, gid=f"p{q}", label=f"p{q} = {_number(value)} ms")
    if log_x:
        ax.set_xscale("log")
        _label_log_axis(ax.xaxis, _plain)
    ax.set_xlabel("lag behind real time when the frame was done [ms]")
    ax.set_ylabel("frames")
    ax.grid(True, axis="y", alpha=0.3)
    ax.legend(fontsize="small", loc="best")
    ax.set_title(_title(run, "lag behind real time per frame (paced with --realtime)", dense_note=False),
                 fontsize="medium")
    return ax


FIGURES = {
    "macs_per_frame.png": plot_macs_per_frame,
    "accuracy_over_time.png": plot_accuracy_over_time,
    "time_per_frame.png": plot_time_per_frame,
}


def write_stream_figures(run_dir):
    """Write the figures of a streaming run directory to ``run_dir/figures`` as PNGs.

    Parameters
    ----------
    run_dir : str or os.PathLike
        A directory written by ``eventhorizon run`` of a streaming scenario (finished or not).

    Returns
    -------
    list of pathlib.Path
        ``macs_per_frame.png``, ``accuracy_over_time.png``, ``time_per_frame.png``
        and, when some frame's lag is finite (a run paced with ``--realtime``),
        ``realtime_lag.png``, in that order.

    Raises
    ------
    FileNotFoundError, ValueError
        See :func:`load_stream_run`; ValueError also when no frame has finished yet.

    Examples
    --------
    >>> import json, tempfile
    >>> run_dir = Path(tempfile.mkdtemp())
    >>> _ = (run_dir / "scenario.toml").write_text("[stream]\\nswitch_every = 4\\nframe_rate_hz = 30.0\\n")
    >>> _ = (run_dir / "metrics.json").write_text(json.dumps({"scenario": "demo", "frames": 8}))
    >>> ops = np.array([900, 0, 40, 0, 950, 30, 0, 20])
    >>> np.savez(run_dir / "frames.npz", ops=ops, label=np.full(8, 3, np.int16),
    ...          event_pred=np.array([3, 3, 3, 3, 1, 3, 3, 3], np.int16), event_seconds=np.full(8, 2e-5),
    ...          done_event=np.int64(8), done_dense=np.int64(0))
    >>> is_stream_run(run_dir)
    True
    >>> [path.name for path in write_stream_figures(run_dir)]
    ['macs_per_frame.png', 'accuracy_over_time.png', 'time_per_frame.png']
    >>> import shutil; shutil.rmtree(run_dir)
    """
    run = load_stream_run(run_dir)
    figures = dict(FIGURES)
    if run.has_lag:
        figures["realtime_lag.png"] = plot_realtime_lag
    out_dir = Path(run_dir) / "figures"
    out_dir.mkdir(exist_ok=True)
    paths = []
    for name, plot in figures.items():
        fig = plot(run).figure
        fig.savefig(out_dir / name, dpi=FIGURE_DPI)
        paths.append(out_dir / name)
    return paths
