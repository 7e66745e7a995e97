"""``eventhorizon run / validate / list / plot``, driven as a user would (a real process)."""

import json
import signal
import subprocess
import sys
import time
import tomllib
from pathlib import Path

import numpy as np
import pytest

from eventhorizon import __version__
from eventhorizon.cli import main
from eventhorizon.dense import DenseReference
from eventhorizon.flops import lower_bound_ops
from eventhorizon.scenario import build_inputs, build_network, bundled_scenarios, load_scenario, parse_scenario
from eventhorizon.settle import settle

ROOT = Path(__file__).resolve().parent.parent

SMALL = """\
# A small scenario for the run tests.
description = "16 inputs onto 32 hidden"

[network]
generator = "input_recurrent"
inputs = 16
hidden = 32
spectral_norm = 0.5

[input]
source = "generated"
density = 0.5

[dynamics]
epsilon = 1e-3

[run]
samples = {samples}
checkpoint_seconds = {checkpoint}

[output]
figures = {figures}
save_states = {states}
"""

COUNTS = ("event_ops", "event_input_ops", "broadcasts", "neuron_updates", "lower_bound_ops", "settled",
          "dense_ops", "dense_sweeps", "dense_hoisted_ops", "looped30_ops", "max_deviation",
          "broadcast_totals", "broadcast_histogram", "free_mask")


def cli(*args, timeout=180):
    return subprocess.run([sys.executable, "-m", "eventhorizon", *map(str, args)], cwd=ROOT,
                          capture_output=True, text=True, timeout=timeout)


def scenario_file(directory, samples=12, checkpoint=5.0, figures="false", states="false", name="small.toml"):
    path = Path(directory) / name
    path.write_text(SMALL.format(samples=samples, checkpoint=checkpoint, figures=figures, states=states),
                    encoding="utf-8")
    return path


def arrays(run_dir):
    with np.load(Path(run_dir) / "samples.npz") as data:
        return {k: data[k].copy() for k in data.files}


def read_json(path):
    return json.loads(Path(path).read_text(encoding="utf-8"))


def assert_ok(proc):
    assert proc.returncode == 0, (proc.returncode, proc.stdout, proc.stderr)
    assert "Traceback" not in proc.stderr


# --------------------------------------------------------------------------
# a complete run
# --------------------------------------------------------------------------


@pytest.fixture(scope="module")
def finished(tmp_path_factory):
    base = tmp_path_factory.mktemp("run")
    path = scenario_file(base, samples=12, figures="true", states="true")
    out = base / "out"
    proc = cli("run", path, "--out", out)
    assert_ok(proc)
    return path, out, proc


def test_run_directory_is_complete(finished):
    _, out, proc = finished
    for name in ("scenario.toml", "status.json", "samples.npz", "metrics.json", "run.log", "states.npy"):
        assert (out / name).is_file(), name
    assert read_json(out / "status.json")["status"] == "complete"
    assert sorted(p.name for p in (out / "figures").glob("*.png")) == [
        "broadcast_distribution.png", "macs_per_sample.png", "time_per_sample.png"]
    log = (out / "run.log").read_text(encoding="utf-8")
    assert "created run" in log and "complete" in log
    assert str(out) in proc.stdout and "Settled 12 of 12 samples" in proc.stdout
    # not a terminal: no progress bar, only the one-line banner
    assert proc.stderr.splitlines() == [f"eventhorizon {__version__}: running small into {out}"]


def test_metrics_agree_with_per_sample_arrays(finished):
    _, out, _ = finished
    m, a = read_json(out / "metrics.json"), arrays(out)
    assert m["samples_done"] == m["samples_planned"] == int(a["done"]) == 12
    assert m["eventhorizon_version"] == __version__
    for key in ("event_ops", "broadcasts", "lower_bound_ops", "dense_ops", "looped30_ops"):
        assert m["totals"][key] == int(a[key].sum()), key
    assert m["saving_vs_dense"] == pytest.approx(1 - a["event_ops"].sum() / a["dense_ops"].sum())
    assert m["ratio_to_lower_bound"] == pytest.approx(a["event_ops"].sum() / a["lower_bound_ops"].sum())
    free = a["free_mask"]
    assert a["broadcast_histogram"].sum() == 12 * free.sum()
    assert (np.arange(a["broadcast_histogram"].size) * a["broadcast_histogram"]).sum() == a["broadcasts"].sum()
    assert a["broadcast_totals"][free].sum() == a["broadcasts"].sum()


def test_run_counts_match_an_in_process_settle(finished):
    """The run wires network, inputs and ε into settle and the dense reference unchanged."""
    path, out, _ = finished
    sc = load_scenario(path)
    net = build_network(sc.network)
    inputs = build_inputs(sc.input, net.n_inputs, sc.run.samples)
    a = arrays(out)
    states = np.load(out / "states.npy")
    dense = DenseReference(net)
    for k, x_in in enumerate(inputs):
        res = settle(net, x_in, eps=sc.dynamics.epsilon)
        assert a["event_ops"][k] == res.stats.synaptic_ops
        assert a["broadcasts"][k] == res.stats.broadcasts
        assert a["lower_bound_ops"][k] == lower_bound_ops(net, x_in, res.x)
        assert a["dense_ops"][k] == dense.settle(x_in, sc.dynamics.epsilon).synaptic_ops
        np.testing.assert_array_equal(states[k], res.x)


def test_resolved_scenario_round_trips(finished):
    path, out, _ = finished
    text = (out / "scenario.toml").read_text(encoding="utf-8")
    assert f"eventhorizon {__version__}" in text.splitlines()[0]
    resolved = parse_scenario(tomllib.loads(text))
    assert resolved == load_scenario(path)
    assert resolved.network.seed == 0 and resolved.input.seed == 1  # defaults filled from run.seed


def test_plot_regenerates_figures(finished):
    _, out, _ = finished
    for png in (out / "figures").glob("*.png"):
        png.unlink()
    proc = cli("plot", out)
    assert_ok(proc)
    assert len(list((out / "figures").glob("*.png"))) == 3
    assert all(line.endswith(".png") for line in proc.stdout.split())


def test_plot_on_a_non_run_directory_exits_2(tmp_path):
    proc = cli("plot", tmp_path)
    assert proc.returncode in (1, 2) and "Traceback" not in proc.stderr
    assert str(tmp_path) in proc.stderr


# --------------------------------------------------------------------------
# overrides, seeds, names
# --------------------------------------------------------------------------


def test_set_and_seed_overrides(tmp_path):
    path = scenario_file(tmp_path)
    out = tmp_path / "o"
    assert_ok(cli("run", path, "--out", out, "--quiet", "--seed", "7", "--set", "run.samples=3",
                  "--set", "dynamics.epsilon=1e-2"))
    resolved = parse_scenario(tomllib.loads((out / "scenario.toml").read_text(encoding="utf-8")))
    assert resolved.run.samples == 3 and resolved.run.seed == 7
    assert resolved.network.seed == 7 and resolved.input.seed == 8
    assert resolved.dynamics.epsilon == pytest.approx(1e-2)
    assert read_json(out / "metrics.json")["samples_done"] == 3
    header = (out / "scenario.toml").read_text(encoding="utf-8")
    assert "--set run.samples=3" in header and "--set run.seed=7" in header


def test_seed_changes_the_network(tmp_path):
    path = scenario_file(tmp_path, samples=3)
    assert_ok(cli("run", path, "--out", tmp_path / "a", "--quiet", "--seed", "1"))
    assert_ok(cli("run", path, "--out", tmp_path / "b", "--quiet", "--seed", "2"))
    assert not np.array_equal(arrays(tmp_path / "a")["event_ops"], arrays(tmp_path / "b")["event_ops"])


@pytest.mark.parametrize("override, fragment", [
    ("run.samples=0", "run.samples"),
    ("run.sampels=3", "did you mean 'samples'"),
    ("novalue", "expected key.path=value"),
    ("dynamics.mode=spiking", "neuron: Field required"),
    ("run.duration=1.0", "run.duration: unknown key"),
    ("output.snapshots=[1.0]", "output.snapshots: unknown key"),
    ("plasticity.every_batches=3", "needs a [learning] section"),
    ("learning.rate=0.1", "learning.rate: unknown key"),
])
def test_bad_override_exits_2_without_creating_a_run(tmp_path, override, fragment):
    path = scenario_file(tmp_path)
    proc = cli("run", path, "--out", tmp_path / "o", "--set", override)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert fragment in proc.stderr
    assert not (tmp_path / "o").exists()


def test_run_refuses_a_non_empty_out_dir(tmp_path):
    path = scenario_file(tmp_path)
    (tmp_path / "o").mkdir()
    (tmp_path / "o" / "precious.txt").write_text("data")
    proc = cli("run", path, "--out", tmp_path / "o")
    assert proc.returncode == 2 and "not empty" in proc.stderr
    assert (tmp_path / "o" / "precious.txt").read_text() == "data"


def test_run_a_bundled_scenario_by_name(tmp_path):
    proc = cli("run", "quickstart", "--out", tmp_path / "q", "--quiet", "--set", "run.samples=4",
               "--set", "output.figures=false")
    assert_ok(proc)
    assert "Settled 4 of 4 samples" in proc.stdout


def test_unknown_bundled_name_suggests(tmp_path):
    proc = cli("run", "quikstart")
    assert proc.returncode == 2 and "did you mean 'quickstart'" in proc.stderr


def test_list_shows_every_bundled_scenario():
    proc = cli("list")
    assert_ok(proc)
    for name, path in bundled_scenarios().items():
        line = next(l for l in proc.stdout.splitlines() if l.startswith(name + " "))
        assert load_scenario(path).description in line


def test_validate(tmp_path):
    good = scenario_file(tmp_path)
    bad = scenario_file(tmp_path, samples=-1, name="bad.toml")
    assert_ok(cli("validate", good, "quickstart"))
    proc = cli("validate", good, bad)
    assert proc.returncode == 2
    assert f"valid: {good}" in proc.stdout and str(bad) in proc.stderr and "run.samples" in proc.stderr


def test_every_bundled_scenario_is_valid_and_says_what_it_shows():
    for name, path in bundled_scenarios().items():
        first = path.read_text(encoding="utf-8").splitlines()[0]
        assert first.startswith("# "), f"{path} must start with a comment saying what it shows"
        assert load_scenario(path).description, name


def test_resume_usage_errors(tmp_path, capsys):
    assert main(["run"]) == 2
    assert main(["run", "x.toml", "--resume", str(tmp_path)]) == 2
    assert main(["run", "--resume", str(tmp_path)]) == 2  # not a run directory
    assert "not a run directory" in capsys.readouterr().err


# --------------------------------------------------------------------------
# interruption and resume
# --------------------------------------------------------------------------


def start_and_stop(path, out, sig):
    """Start a run, wait for its first checkpoint, then send ``sig``."""
    proc = subprocess.Popen([sys.executable, "-m", "eventhorizon", "run", str(path), "--out", str(out), "--quiet"],
                            cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 120
    while not (out / "samples.npz").exists():
        assert proc.poll() is None, proc.communicate()
        assert time.monotonic() < deadline, "no checkpoint within 120 s"
        time.sleep(0.005)
    proc.send_signal(sig)
    stdout, stderr = proc.communicate(timeout=60)
    return proc.returncode, stdout, stderr


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory):
    base = tmp_path_factory.mktemp("whole")
    path = scenario_file(base, samples=6000, checkpoint=0.05)
    assert_ok(cli("run", path, "--out", base / "out", "--quiet"))
    return path, arrays(base / "out")


def assert_same_counts(a, b):
    for key in COUNTS:
        np.testing.assert_array_equal(a[key], b[key], err_msg=key)


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGKILL], ids=["sigint", "sigkill"])
def test_interrupted_run_resumes_to_identical_counts(tmp_path, uninterrupted, sig):
    path, whole = uninterrupted
    out = tmp_path / "out"
    code, _, stderr = start_and_stop(path, out, sig)
    status = read_json(out / "status.json")
    partial = arrays(out)
    assert 0 < int(partial["done"]) < 6000, "the run finished before the signal; make it longer"
    if sig == signal.SIGINT:
        assert code == 130, stderr
        assert status["status"] == "interrupted" and "Traceback" not in stderr
        assert f"--resume {out}" in stderr
        assert status["samples_done"] == int(partial["done"])
    else:
        assert code == -signal.SIGKILL
        assert status["status"] == "running"  # stale, but the checkpoint is consistent
    proc = cli("run", "--resume", out, "--quiet")
    assert_ok(proc)
    assert read_json(out / "status.json")["status"] == "complete"
    assert_same_counts(arrays(out), whole)
    assert "resuming from checkpoint" in (out / "run.log").read_text(encoding="utf-8")
    again = cli("run", "--resume", out)
    assert again.returncode == 2 and "already complete" in again.stderr


def test_resume_refuses_a_checkpoint_of_another_scenario(tmp_path):
    path = scenario_file(tmp_path, samples=4)
    out = tmp_path / "o"
    assert_ok(cli("run", path, "--out", out, "--quiet"))
    status = read_json(out / "status.json")
    status["status"] = "interrupted"
    (out / "status.json").write_text(json.dumps(status))
    text = (out / "scenario.toml").read_text(encoding="utf-8").replace("samples = 4", "samples = 5")
    (out / "scenario.toml").write_text(text, encoding="utf-8")
    proc = cli("run", "--resume", out)
    assert proc.returncode == 2 and "samples.npz" in proc.stderr
