"""Figures of a streaming run directory: files written, data drawn, partial runs, and clear errors."""

import doctest
import json
import subprocess
import sys
import textwrap

import numpy as np
import pytest
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.image import imread

from eventhorizon import plots, stream_plots
from eventhorizon.plots import FIGURE_DPI, FIGURE_SIZE, WIDE_FIGURE_SIZE, write_run_figures
from eventhorizon.stream_plots import (
    is_stream_run,
    load_stream_run,
    plot_accuracy_over_time,
    plot_macs_per_frame,
    plot_realtime_lag,
    plot_time_per_frame,
    write_stream_figures,
)

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
FRAMES, SWITCH_EVERY, RATE = 60, 10, 30.0
BASE_FIGURES = ["macs_per_frame.png", "accuracy_over_time.png", "time_per_frame.png"]
SIZES = {"macs_per_frame.png": WIDE_FIGURE_SIZE, "accuracy_over_time.png": WIDE_FIGURE_SIZE,
         "time_per_frame.png": FIGURE_SIZE, "realtime_lag.png": FIGURE_SIZE}
PLOTS = [plot_macs_per_frame, plot_accuracy_over_time, plot_time_per_frame]


def frame_arrays(done_event=FRAMES, done_dense=None, looped=True, lag=False, frames=FRAMES):
    """Plausible per-frame records; entries past ``done_event`` / ``done_dense`` are junk that must not be drawn.

    Every 10th frame is a cut (many events), every 3rd frame nothing changes (no events).
    """
    done_dense = done_event if done_dense is None else done_dense
    k = np.arange(frames)
    cut, still = k % SWITCH_EVERY == 0, k % 3 == 2
    ev_junk, de_junk = k >= done_event, k >= done_dense
    ops = np.where(cut, 60_000, np.where(still, 0, 1_500 + 10 * k))
    label = (k // SWITCH_EVERY % 10).astype(np.int16)
    event_pred = np.where(k % SWITCH_EVERY < 2, (label + 1) % 10, label)  # wrong for 2 frames after each cut
    dense_pred = np.where(k % SWITCH_EVERY < 1, (label + 1) % 10, label)
    looped_pred = np.where(k % 5 == 0, (label + 3) % 10, label)
    arrays = {
        "ops": np.where(ev_junk, -1, ops).astype(np.int64),
        "input_ops": np.where(ev_junk, -1, ops // 3).astype(np.int64),
        "broadcasts": np.where(ev_junk, -1, ops // 500).astype(np.int64),
        "updates": np.where(ev_junk, -1, ops // 400).astype(np.int64),
        "changed": np.where(ev_junk, -1, np.where(cut, 400, np.where(still, 0, 30))).astype(np.int64),
        "dense_ops": np.where(de_junk, -1, np.where(cut, 4_000_000, 800_000)).astype(np.int64),
        "dense_sweeps": np.where(de_junk, -1, np.where(cut, 10, 2)).astype(np.int64),
        "hoisted_ops": np.where(de_junk, -1, np.where(cut, 500_000, 100_000)).astype(np.int64),
        "looped_ops": np.where(de_junk | (not looped), 0, 12_000_000).astype(np.int64),
        "label": np.where(ev_junk, 0, label).astype(np.int16),
        "event_pred": np.where(ev_junk, -1, event_pred).astype(np.int16),
        "dense_pred": np.where(de_junk, -1, dense_pred).astype(np.int16),
        "looped_pred": np.where(de_junk | (not looped), -1, looped_pred).astype(np.int16),
        "event_seconds": np.where(ev_junk, 0.0, np.where(cut, 4e-4, 3e-5 + 1e-7 * k)),
        "dense_seconds": np.where(de_junk, 0.0, np.where(cut, 3e-3, 8e-4)),
        "hoisted_seconds": np.where(de_junk, 0.0, np.where(cut, 1e-3, 2e-4)),
        "lag": np.where(ev_junk | (not lag), np.nan, 1e-3 + 1e-4 * (k % 7)),
        "chunk": np.where(ev_junk, 0, 1 + k % 2).astype(np.int32),
        "done_event": np.int64(done_event),
        "done_dense": np.int64(done_dense),
        # state arrays the figures ignore
        "event_u": np.zeros(5), "event_x": np.zeros(5), "event_counts": np.zeros(5, np.int64),
        "dense_x": np.zeros(5), "hoisted_x": np.zeros(5), "event_settled": np.int64(1),
    }
    return arrays


def make_run(tmp_path, metrics=None, **kwargs):
    arrays = frame_arrays(**kwargs)
    run_dir = tmp_path / "moving_digits"
    run_dir.mkdir(parents=True)
    (run_dir / "scenario.toml").write_text(
        f"[stream]\nframes = {arrays['ops'].size}\nswitch_every = {SWITCH_EVERY}\nframe_rate_hz = {RATE}\n", encoding="utf-8")
    done_event, done_dense = int(arrays["done_event"]), int(arrays["done_dense"])
    frames = arrays["ops"].size
    base = {"scenario": "moving_digits", "status": "complete" if done_event == frames else "interrupted",
            "frames": frames, "frames_done": done_event, "dense_frames_done": done_dense, "frame_rate_hz": RATE,
            "event_accuracy": 0.8, "dense_accuracy": 0.9 if done_dense else None}
    if done_dense:
        base |= {"saving_vs_dense": 0.985, "saving_vs_dense_hoisted": 0.9, "saving_vs_looped30": 0.999,
                 "looped30_accuracy": 0.8}
    (run_dir / "metrics.json").write_text(json.dumps(base if metrics is None else metrics), encoding="utf-8")
    np.savez(run_dir / "frames.npz", **arrays)
    return run_dir


def new_axes():
    fig = Figure()
    FigureCanvasAgg(fig)
    return fig.add_subplot()


def lines(ax):
    return {line.get_gid(): line for line in ax.get_lines() if line.get_gid()}


def legend_texts(ax):
    return [text.get_text() for text in ax.get_legend().get_texts()]


def check_png(path, figsize):
    data = path.read_bytes()
    assert data[:8] == PNG_SIGNATURE
    assert len(data) > 10_000, f"{path.name} is suspiciously small ({len(data)} bytes)"
    image = imread(path)
    width, height = figsize
    assert image.shape[:2] == (round(height * FIGURE_DPI), round(width * FIGURE_DPI))
    assert image[..., :3].std() > 0.05, f"{path.name} looks blank"


# --- files -------------------------------------------------------------------------------------------------------


def test_writes_three_pngs_without_lag(tmp_path):
    run_dir = make_run(tmp_path)
    paths = write_stream_figures(run_dir)
    assert [p.relative_to(run_dir).as_posix() for p in paths] == [f"figures/{name}" for name in BASE_FIGURES]
    for path in paths:
        check_png(path, SIZES[path.name])
    assert not (run_dir / "figures" / "realtime_lag.png").exists()


def test_lag_figure_only_with_finite_lags(tmp_path):
    run_dir = make_run(tmp_path, lag=True)
    paths = write_stream_figures(run_dir)
    assert [p.name for p in paths] == BASE_FIGURES + ["realtime_lag.png"]
    check_png(paths[-1], SIZES["realtime_lag.png"])


def test_write_run_figures_dispatches_to_stream_figures(tmp_path):
    run_dir = make_run(tmp_path, lag=True)
    assert is_stream_run(run_dir)
    assert [p.name for p in write_run_figures(run_dir)] == BASE_FIGURES + ["realtime_lag.png"]


def test_not_a_stream_run(tmp_path):
    assert not is_stream_run(tmp_path)
    (tmp_path / "samples.npz").write_bytes(b"")
    assert not is_stream_run(tmp_path)


@pytest.mark.parametrize("done_event, done_dense", [(45, 30), (45, 0), (1, 0), (1, 1)])
def test_partial_runs_write_figures(tmp_path, done_event, done_dense):
    run_dir = make_run(tmp_path, done_event=done_event, done_dense=done_dense)
    paths = write_stream_figures(run_dir)
    assert [p.name for p in paths] == BASE_FIGURES
    for path in paths:
        assert path.read_bytes()[:8] == PNG_SIGNATURE


def test_no_finished_frame_raises(tmp_path):
    run_dir = make_run(tmp_path, done_event=0, done_dense=0)
    with pytest.raises(ValueError, match=r"frames\.npz: no frame finished yet \(done_event = 0 of 60 frames\)"):
        write_stream_figures(run_dir)
    assert not (run_dir / "figures").exists()
    with pytest.raises(ValueError, match="no frame finished yet"):
        write_run_figures(run_dir)


# --- drawn data --------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("plot", PLOTS + [plot_realtime_lag], ids=lambda f: f.__name__)
def test_plot_draws_into_given_axes_or_a_figure_off_pyplot(tmp_path, plot):
    run = load_stream_run(make_run(tmp_path, lag=True))
    ax = new_axes()
    assert plot(run, ax=ax) is ax
    assert ax.get_title() and ax.get_xlabel() and ax.get_ylabel()
    own = plot(run)
    assert isinstance(own.figure, Figure) and isinstance(own.figure.canvas, FigureCanvasAgg)


def test_macs_lines_are_the_finished_frames_in_stream_seconds(tmp_path):
    run = load_stream_run(make_run(tmp_path, done_event=45, done_dense=30))
    ax = plot_macs_per_frame(run)
    drawn = lines(ax)
    assert set(drawn) == {"ops", "dense_ops", "hoisted_ops", "looped_ops"}
    expected = frame_arrays(done_event=45, done_dense=30)
    np.testing.assert_array_equal(drawn["ops"].get_ydata(), expected["ops"][:45])
    np.testing.assert_allclose(drawn["ops"].get_xdata(), np.arange(45) / RATE)
    for name in ("dense_ops", "hoisted_ops", "looped_ops"):
        np.testing.assert_array_equal(drawn[name].get_ydata(), expected[name][:30])
    assert min(line.get_ydata().min() for line in drawn.values()) >= 0, "junk past done was drawn"
    assert ax.get_yscale() == "symlog"
    assert ax.get_ylim()[0] == 0, "frames without events (0) must be visible"
    assert ax.get_xlabel() == "stream time [s]"


def test_long_runs_draw_one_dot_per_frame(tmp_path):
    frames = stream_plots.LINE_FRAMES + 60
    run = load_stream_run(make_run(tmp_path, frames=frames, done_event=frames - 10, done_dense=frames - 40))
    ax = plot_macs_per_frame(run)
    drawn = lines(ax)
    assert set(drawn) == {"ops", "dense_ops", "hoisted_ops", "looped_ops"}
    for name, n in (("ops", frames - 10), ("dense_ops", frames - 40)):
        assert drawn[name].get_linestyle() == "None" and drawn[name].get_marker() == "."
        assert drawn[name].get_ydata().shape == (n,)
    assert ax.get_legend().get_title().get_text() == "one dot per frame"
    short = plot_macs_per_frame(load_stream_run(make_run(tmp_path / "short", frames=FRAMES)))
    assert lines(short)["ops"].get_drawstyle() == "steps-mid"


def test_macs_cuts_are_marked(tmp_path):
    ax = plot_macs_per_frame(load_stream_run(make_run(tmp_path)))
    (cuts,) = [c for c in ax.collections if c.get_gid() == "cuts"]
    starts = sorted(float(segment[0, 0]) for segment in cuts.get_segments())
    np.testing.assert_allclose(starts, np.arange(10, 60, 10) / RATE)
    assert any("every 10 frames" in text for text in legend_texts(ax))


def test_macs_title_states_savings_from_metrics(tmp_path):
    title = plot_macs_per_frame(load_stream_run(make_run(tmp_path))).get_title()
    assert "98.5% fewer than warm dense" in title
    assert "90.0% fewer than hoisted dense" in title
    assert "99.9% fewer than LoopedMLP-30" in title
    assert "moving_digits" in title and "60 frames at 30 fps" in title


def test_macs_title_without_savings_and_negative_saving(tmp_path):
    run_dir = make_run(tmp_path, metrics={"scenario": "x", "frames": FRAMES, "saving_vs_dense": -0.25,
                                          "saving_vs_dense_hoisted": None})
    title = plot_macs_per_frame(load_stream_run(run_dir)).get_title()
    assert "25.0% more than warm dense" in title and "hoisted" not in title


def test_without_dense_only_event_is_drawn(tmp_path):
    run = load_stream_run(make_run(tmp_path, done_event=45, done_dense=0))
    assert set(lines(plot_macs_per_frame(run))) == {"ops"}
    assert set(lines(plot_accuracy_over_time(run))) == {"event"}
    assert set(lines(plot_time_per_frame(run))) == {"event_seconds"}
    assert "no dense baselines yet" in plot_macs_per_frame(run).get_title()
    assert "45 of 60 frames (interrupted)" in plot_macs_per_frame(run).get_title()


def test_without_looped_there_is_no_looped_curve(tmp_path):
    run = load_stream_run(make_run(tmp_path, looped=False))
    assert set(lines(plot_macs_per_frame(run))) == {"ops", "dense_ops", "hoisted_ops"}
    assert set(lines(plot_accuracy_over_time(run))) == {"event", "dense"}


def test_accuracy_is_a_moving_average_over_one_image(tmp_path):
    run = load_stream_run(make_run(tmp_path, done_event=60, done_dense=40))
    ax = plot_accuracy_over_time(run)
    drawn = lines(ax)
    event = drawn["event"].get_ydata()
    assert event.shape == (60,) and drawn["dense"].get_ydata().shape == (40,)
    # the trailing window ending right before a cut covers exactly one image: 8 of 10 frames right
    np.testing.assert_allclose(event[SWITCH_EVERY - 1::SWITCH_EVERY], 80.0)
    np.testing.assert_allclose(drawn["dense"].get_ydata()[SWITCH_EVERY - 1::SWITCH_EVERY], 90.0)
    texts = legend_texts(ax)
    assert "event-driven: 80.0% of 60 frames" in texts
    assert "warm dense to ε: 90.0% of 40 frames" in texts
    assert "LoopedMLP-30: 80.0% of 40 frames" in texts
    assert "over 10 frames" in ax.get_ylabel()


def test_time_per_frame_in_microseconds_with_medians(tmp_path):
    run = load_stream_run(make_run(tmp_path))
    ax = plot_time_per_frame(run)
    drawn = lines(ax)
    expected = np.sort(frame_arrays()["event_seconds"]) * 1e6
    np.testing.assert_allclose(drawn["event_seconds"].get_ydata(), expected)
    assert ax.get_yscale() == "log" and "[µs]" in ax.get_ylabel()
    texts = legend_texts(ax)
    assert texts[0].startswith(f"event-driven: median {np.median(expected):.3g} µs, mean {expected.mean():.3g} µs")
    assert "warm dense, plain: median 800 µs" in texts[1]
    assert "warm dense, input hoisted, compiled: median 200 µs" in texts[2]
    assert "chunk" in ax.get_legend().get_title().get_text()


def test_lag_histogram_marks_percentiles(tmp_path):
    run = load_stream_run(make_run(tmp_path, lag=True, done_event=50))
    ax = plot_realtime_lag(run)
    lag_ms = frame_arrays(lag=True, done_event=50)["lag"][:50] * 1e3
    assert sum(patch.get_height() for patch in ax.patches) == 50
    p50 = [line for line in ax.get_lines() if line.get_gid() == "p50"][0]
    assert p50.get_xdata()[0] == pytest.approx(np.percentile(lag_ms, 50))
    texts = legend_texts(ax)
    assert f"p99 = {np.percentile(lag_ms, 99):.3g} ms" in texts
    assert "[ms]" in ax.get_xlabel()


def test_lag_plot_without_finite_lag_raises(tmp_path):
    with pytest.raises(ValueError, match="no frame has a finite lag"):
        plot_realtime_lag(load_stream_run(make_run(tmp_path)))


# --- errors ------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["scenario.toml", "metrics.json"])
def test_missing_file_is_named(tmp_path, name):
    run_dir = make_run(tmp_path)
    (run_dir / name).unlink()
    with pytest.raises(FileNotFoundError, match=name):
        write_stream_figures(run_dir)


def test_missing_array_is_named(tmp_path):
    run_dir = make_run(tmp_path)
    arrays = frame_arrays()
    del arrays["hoisted_ops"]
    np.savez(run_dir / "frames.npz", **arrays)
    with pytest.raises(ValueError, match=r"frames\.npz: missing array 'hoisted_ops'"):
        write_stream_figures(run_dir)


def test_scenario_without_stream_table(tmp_path):
    run_dir = make_run(tmp_path)
    (run_dir / "scenario.toml").write_text("[run]\nseed = 1\n", encoding="utf-8")
    with pytest.raises(ValueError, match=r"scenario\.toml: no \[stream\] table"):
        write_stream_figures(run_dir)


def test_done_dense_beyond_done_event_is_rejected(tmp_path):
    run_dir = make_run(tmp_path, done_event=20, done_dense=30)
    with pytest.raises(ValueError, match="'done_dense' must be an integer scalar in \\[0, 20\\]"):
        load_stream_run(run_dir)


# --- house rules -------------------------------------------------------------------------------------------------


def test_writing_figures_leaves_pyplot_alone(tmp_path):
    run_dir = make_run(tmp_path, lag=True)
    result = subprocess.run([sys.executable, "-c", textwrap.dedent(f"""
        import sys
        from eventhorizon.plots import write_run_figures
        write_run_figures({str(run_dir)!r})
        assert "matplotlib.pyplot" not in sys.modules
    """)], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr


def test_docstring_examples_run():
    result = doctest.testmod(stream_plots, optionflags=doctest.ELLIPSIS)
    assert result.attempted > 0
    assert result.failed == 0


def test_plots_module_still_has_its_examples():
    assert doctest.testmod(plots).failed == 0
