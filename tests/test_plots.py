"""Figures of a run directory: files written, data drawn, titles, and clear errors."""

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

from eventhorizon import plots
from eventhorizon.plots import (
    FIGURE_DPI,
    FIGURE_SIZE,
    WIDE_FIGURE_SIZE,
    RunData,
    load_run,
    plot_broadcast_distribution,
    plot_macs_per_sample,
    plot_time_per_sample,
    write_run_figures,
)

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
PLOTS = [plot_macs_per_sample, plot_broadcast_distribution, plot_time_per_sample]
DENSE_NAMES = ("dense_ops", "dense_sweeps", "dense_hoisted_ops", "looped30_ops", "dense_seconds", "max_deviation")
HISTOGRAM = np.array([3, 10, 25, 12, 4, 0, 1], dtype=np.int64)


def sample_arrays(planned=6, done=4, compare_dense=True):
    """Known per-sample numbers; entries past ``done`` are junk that must never be drawn."""
    k = np.arange(planned)
    junk = k >= done
    arrays = {
        "done": np.int64(done),
        "event_ops": np.where(junk, -1, 1000 + 100 * k).astype(np.int64),
        "event_input_ops": np.where(junk, -1, 200 + k).astype(np.int64),
        "broadcasts": np.where(junk, -1, 50 + k).astype(np.int64),
        "neuron_updates": np.where(junk, -1, 60 + k).astype(np.int64),
        "lower_bound_ops": np.where(junk, -1, 400 + 10 * k).astype(np.int64),
        "settled": ~junk,
        "event_seconds": np.where(junk, -1.0, 1e-3 * (1 + k)),
        "broadcast_totals": np.array([7, 7, 30, 40, 9], dtype=np.int64),
        "free_mask": np.array([False, False, True, True, True]),
        "broadcast_histogram": HISTOGRAM,
    }
    if compare_dense:
        arrays |= {
            "dense_ops": np.where(junk, -1, 8000).astype(np.int64),
            "dense_sweeps": np.where(junk, -1, 10).astype(np.int64),
            "dense_hoisted_ops": np.where(junk, -1, 6000).astype(np.int64),
            "looped30_ops": np.where(junk, -1, 24000).astype(np.int64),
            "dense_seconds": np.where(junk, -1.0, 5e-3 + 1e-4 * k),
            "max_deviation": np.where(junk, -1.0, 1e-4).astype(np.float32),
        }
    return arrays


def make_run(tmp_path, planned=6, done=4, status="interrupted", compare_dense=True, drop=(), arrays=None):
    """Write ``metrics.json`` and ``samples.npz`` of a small run into ``tmp_path/run`` and return the directory."""
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    metrics = dict(scenario_name="unit", epsilon=1e-3, samples_done=done, samples_planned=planned,
                   status=status, compare_dense=compare_dense)
    (run_dir / "metrics.json").write_text(json.dumps(metrics))
    arrays = sample_arrays(planned, done, compare_dense) if arrays is None else arrays
    np.savez(run_dir / "samples.npz", **{name: v for name, v in arrays.items() if name not in drop})
    return run_dir


def new_axes():
    fig = Figure()
    FigureCanvasAgg(fig)
    return fig.add_subplot()


def lines_by_gid(ax):
    return {line.get_gid(): line for line in ax.get_lines()}


def legend_texts(ax):
    return [text.get_text() for text in ax.get_legend().get_texts()]


# --- files -------------------------------------------------------------------------------------------------------


def test_write_run_figures_writes_three_pngs(tmp_path):
    run_dir = make_run(tmp_path, status="complete", planned=4, done=4)
    paths = write_run_figures(run_dir)
    assert [p.relative_to(run_dir).as_posix() for p in paths] == [
        "figures/macs_per_sample.png", "figures/broadcast_distribution.png", "figures/time_per_sample.png"]
    sizes = [WIDE_FIGURE_SIZE, FIGURE_SIZE, FIGURE_SIZE]
    for path, (width, height) in zip(paths, sizes):
        assert path.read_bytes()[:8] == PNG_SIGNATURE
        image = imread(path)
        assert image.shape[:2] == (round(height * FIGURE_DPI), round(width * FIGURE_DPI))
        assert image[..., :3].std() > 0.05, f"{path.name} looks blank"


def test_write_run_figures_overwrites_existing_figures(tmp_path):
    run_dir = make_run(tmp_path)
    first = [p.stat().st_size for p in write_run_figures(run_dir)]
    assert [p.stat().st_size for p in write_run_figures(run_dir)] == first


# --- ax= and drawn data --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("plot", PLOTS, ids=lambda f: f.__name__)
def test_plot_draws_into_given_axes(tmp_path, plot):
    ax = new_axes()
    assert plot(load_run(make_run(tmp_path)), ax=ax) is ax
    assert ax.get_title() and ax.get_xlabel() and ax.get_ylabel()
    assert len(ax.figure.axes) == 1


@pytest.mark.parametrize("plot", PLOTS, ids=lambda f: f.__name__)
def test_plot_without_axes_makes_a_figure_off_pyplot(tmp_path, plot):
    ax = plot(load_run(make_run(tmp_path)))
    assert isinstance(ax.figure, Figure)
    assert isinstance(ax.figure.canvas, FigureCanvasAgg)


def test_macs_lines_equal_the_finished_samples(tmp_path):
    arrays = sample_arrays()
    ax = plot_macs_per_sample(load_run(make_run(tmp_path)))
    lines = lines_by_gid(ax)
    assert set(lines) == {"event_ops", "dense_ops", "dense_hoisted_ops", "looped30_ops", "lower_bound_ops"}
    for gid, line in lines.items():
        np.testing.assert_array_equal(line.get_xdata(), np.arange(4))
        np.testing.assert_array_equal(line.get_ydata(), arrays[gid][:4])
    assert ax.get_yscale() == "log"
    assert ax.get_ylabel() == "multiply-adds per sample"
    share = 100 * arrays["event_ops"][:4].sum() / arrays["dense_ops"][:4].sum()
    assert f"event-driven: {share:.1f}% of dense to ε" in legend_texts(ax)
    assert "ε = 0.001" in ax.get_title()


def test_broadcast_bars_equal_the_histogram(tmp_path):
    ax = plot_broadcast_distribution(load_run(make_run(tmp_path)))
    assert [int(p.get_height()) for p in ax.patches] == HISTOGRAM.tolist()
    assert [p.get_x() + p.get_width() / 2 for p in ax.patches] == pytest.approx(range(len(HISTOGRAM)))
    mean = (np.arange(len(HISTOGRAM)) * HISTOGRAM).sum() / HISTOGRAM.sum()
    assert lines_by_gid(ax)["mean"].get_xdata()[0] == pytest.approx(mean)
    assert legend_texts(ax)[0] == f"mean = {mean:.2f} broadcasts"


def test_time_histograms_and_medians_in_ms(tmp_path):
    arrays = sample_arrays()
    ax = plot_time_per_sample(load_run(make_run(tmp_path)))
    lines = lines_by_gid(ax)
    for key in ("event", "dense"):
        median_ms = 1e3 * np.median(arrays[f"{key}_seconds"][:4])
        assert lines[f"{key}_median"].get_xdata()[0] == pytest.approx(median_ms)
    counted = sum(p.get_height() for p in ax.patches)
    assert counted == 2 * 4  # every finished sample of both series lands in a bin, the junk ones do not
    assert "[ms]" in ax.get_xlabel()
    assert legend_texts(ax)[0] == f"event-driven: median {1e3 * np.median(arrays['event_seconds'][:4]):.3g} ms"


def test_plots_accept_a_plain_mapping_and_cut_it_to_done(tmp_path):
    with np.load(make_run(tmp_path) / "samples.npz") as npz:
        ax = plot_macs_per_sample(npz)
    np.testing.assert_array_equal(lines_by_gid(ax)["event_ops"].get_ydata(), sample_arrays()["event_ops"][:4])
    ax = plot_time_per_sample({"event_seconds": [0.002, 0.004], "epsilon": 0.01})
    assert lines_by_gid(ax)["event_median"].get_xdata()[0] == pytest.approx(3.0)
    assert "ε = 0.01, 2 samples" in ax.get_title()


# --- compare_dense = False -----------------------------------------------------------------------------------------


def test_without_dense_only_event_series_are_drawn(tmp_path):
    run_dir = make_run(tmp_path, compare_dense=False)
    run = load_run(run_dir)
    assert set(lines_by_gid(plot_macs_per_sample(run))) == {"event_ops", "lower_bound_ops"}
    ax = plot_time_per_sample(run)
    assert set(lines_by_gid(ax)) == {"event_median"}
    assert len(legend_texts(ax)) == 1
    assert "vs dense" not in ax.get_title()
    assert len(write_run_figures(run_dir)) == 3


def test_dense_arrays_are_ignored_when_the_run_did_not_compare(tmp_path):
    run_dir = make_run(tmp_path, compare_dense=False, arrays=sample_arrays(compare_dense=True))
    assert set(lines_by_gid(plot_macs_per_sample(load_run(run_dir)))) == {"event_ops", "lower_bound_ops"}


# --- titles --------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("plot", PLOTS, ids=lambda f: f.__name__)
def test_partial_run_titles_say_k_of_n(tmp_path, plot):
    title = plot(load_run(make_run(tmp_path, planned=6, done=4, status="interrupted"))).get_title()
    assert "4 of 6 samples (interrupted)" in title
    assert title.startswith("unit: ")


def test_complete_run_titles_give_the_sample_count(tmp_path):
    title = plot_macs_per_sample(load_run(make_run(tmp_path, planned=4, done=4, status="complete"))).get_title()
    assert "4 samples" in title and " of " not in title


# --- errors --------------------------------------------------------------------------------------------------------


def test_missing_run_directory(tmp_path):
    with pytest.raises(FileNotFoundError, match="run directory not found"):
        load_run(tmp_path / "nope")


@pytest.mark.parametrize("name", ["metrics.json", "samples.npz"])
def test_missing_file_is_named(tmp_path, name):
    run_dir = make_run(tmp_path)
    (run_dir / name).unlink()
    with pytest.raises(FileNotFoundError, match=f"{name}: not found"):
        write_run_figures(run_dir)


@pytest.mark.parametrize("name", ["event_ops", "done", "broadcast_histogram", "dense_seconds"])
def test_missing_array_is_named(tmp_path, name):
    run_dir = make_run(tmp_path, drop=(name,))
    with pytest.raises(ValueError) as info:
        load_run(run_dir)
    assert str(info.value) == f"{run_dir / 'samples.npz'}: missing array {name!r}"


def test_missing_metrics_key_is_named(tmp_path):
    run_dir = make_run(tmp_path)
    metrics = json.loads((run_dir / "metrics.json").read_text())
    del metrics["epsilon"]
    (run_dir / "metrics.json").write_text(json.dumps(metrics))
    with pytest.raises(ValueError, match=r"metrics\.json: missing key 'epsilon'"):
        load_run(run_dir)


@pytest.mark.parametrize("name, content, message", [
    ("metrics.json", "{not json", r"metrics\.json: not valid JSON"),
    ("metrics.json", "[1, 2]", r"metrics\.json: expected a JSON object, got list"),
    ("samples.npz", "truncated", r"samples\.npz: not a readable \.npz file"),
])
def test_corrupted_file_is_named(tmp_path, name, content, message):
    run_dir = make_run(tmp_path)
    (run_dir / name).write_text(content)
    with pytest.raises(ValueError, match=message):
        load_run(run_dir)


def test_per_sample_array_shorter_than_done(tmp_path):
    arrays = sample_arrays(planned=6, done=4)
    arrays["event_seconds"] = arrays["event_seconds"][:3]
    with pytest.raises(ValueError, match=r"samples\.npz: array 'event_seconds' has shape \(3,\).*done = 4"):
        load_run(make_run(tmp_path, arrays=arrays))


def test_no_finished_samples(tmp_path):
    run_dir = make_run(tmp_path, planned=6, done=0, status="running")
    assert load_run(run_dir).done == 0
    with pytest.raises(ValueError, match=r"no samples finished yet \(done = 0 of 6\)"):
        write_run_figures(run_dir)
    with pytest.raises(ValueError, match="no samples finished yet"):
        plot_macs_per_sample(load_run(run_dir))
    assert not (run_dir / "figures").exists()


def test_bad_data_type():
    with pytest.raises(TypeError, match="RunData or a mapping"):
        plot_macs_per_sample([1, 2, 3])


def test_run_data_is_frozen(tmp_path):
    run = load_run(make_run(tmp_path))
    assert isinstance(run, RunData)
    with pytest.raises(AttributeError):
        run.metrics = {}


# --- imports and examples ------------------------------------------------------------------------------------------


def run_python(code):
    result = subprocess.run([sys.executable, "-c", textwrap.dedent(code)], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    return result.stdout


def test_import_does_not_need_matplotlib():
    run_python("""
        import sys

        class BlockMatplotlib:
            def find_spec(self, name, path=None, target=None):
                if name == "matplotlib" or name.startswith("matplotlib."):
                    raise ImportError("matplotlib blocked for this test")

        sys.meta_path.insert(0, BlockMatplotlib())
        import eventhorizon.plots
        assert not any(name.split(".")[0] == "matplotlib" for name in sys.modules), sorted(sys.modules)
    """)


def test_writing_figures_leaves_pyplot_alone(tmp_path):
    run_dir = make_run(tmp_path)
    run_python(f"""
        import sys
        from eventhorizon.plots import write_run_figures
        write_run_figures({str(run_dir)!r})
        assert "matplotlib.pyplot" not in sys.modules
    """)


def test_docstring_examples_run():
    result = doctest.testmod(plots, optionflags=doctest.ELLIPSIS)
    assert result.attempted > 0
    assert result.failed == 0
