"""The command line, driven as a real process (``python -m eventhorizon``)."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

from eventhorizon import __version__
from eventhorizon.cli import main
from eventhorizon.datasets import fashion_mnist_available
from eventhorizon.flops import compare
from eventhorizon.scenario import build_inputs, build_network, load_scenario

ROOT = Path(__file__).resolve().parent.parent
QUICKSTART = ROOT / "scenarios" / "quickstart.toml"
FASHION = ROOT / "scenarios" / "fashion_settle.toml"
INSTALL_CMD = "apt-get install -y dataset-fashion-mnist"

REQUIRED_KEYS = {
    "samples", "event_synaptic_ops", "dense_synaptic_ops", "looped30_synaptic_ops", "lower_bound_ops",
    "saving_vs_dense", "saving_vs_looped30", "ratio_to_lower_bound", "event_seconds_per_sample",
    "dense_seconds_per_sample", "wall_ratio_event_over_dense", "max_state_deviation",
}

SMALL = """\
description = "16 inputs onto 32 hidden, 10 samples"

[network]
generator = "input_recurrent"
inputs = 16
hidden = 32
spectral_norm = 0.5
seed = 1

[input]
source = "generated"
density = 0.5
seed = 2

[dynamics]
epsilon = 1e-3
scheduler = "{scheduler}"

[run]
samples = 10

[flops]
repeats = 2
"""


def run(*args, timeout=120):
    return subprocess.run([sys.executable, "-m", "eventhorizon", *map(str, args)], cwd=ROOT,
                          capture_output=True, text=True, timeout=timeout)


def small_file(directory, scheduler="tournament", **replace):
    text = SMALL.format(scheduler=scheduler)
    for old, new in replace.items():
        text = text.replace(old, new)
    path = Path(directory) / "small.toml"
    path.write_text(text, encoding="utf-8")
    return path


def parse_report(proc):
    assert proc.returncode == 0, proc.stderr
    assert "Traceback" not in proc.stderr
    report = json.loads(proc.stdout)  # exactly one JSON document on stdout
    assert isinstance(report, dict)
    missing = REQUIRED_KEYS - report.keys()
    assert not missing, missing
    return report


def check_consistent(r, samples, eps):
    assert r["samples"] == samples
    assert r["repeats"] == 1
    assert r["epsilon"] == pytest.approx(eps)
    for key in ("event_synaptic_ops", "dense_synaptic_ops", "looped30_synaptic_ops", "lower_bound_ops"):
        assert isinstance(r[key], int) and r[key] >= 0, key
    ev, de, lo, lb = (r["event_synaptic_ops"], r["dense_synaptic_ops"], r["looped30_synaptic_ops"],
                      r["lower_bound_ops"])
    assert r["saving_vs_dense"] == pytest.approx(1 - ev / de)
    assert r["saving_vs_looped30"] == pytest.approx(1 - ev / lo)
    assert r["ratio_to_lower_bound"] == pytest.approx(ev / lb)
    # cold start: every nonzero input and every free neuron ending nonzero broadcast at least once
    assert lb <= ev <= lo
    assert r["event_seconds_per_sample"] > 0 and r["dense_seconds_per_sample"] > 0
    assert r["wall_ratio_event_over_dense"] == pytest.approx(r["event_seconds_per_sample"]
                                                             / r["dense_seconds_per_sample"])
    assert 0 <= r["max_state_deviation"] <= 10 * eps


# --------------------------------------------------------------------------
# success paths
# --------------------------------------------------------------------------


def test_quickstart_json():
    """The bundled quickstart, once (about 5 s)."""
    r = parse_report(run("flops", QUICKSTART, "--json", "--repeats", "1"))
    check_consistent(r, samples=100, eps=1e-3)
    assert r["saving_vs_dense"] > 0  # the point of the quickstart


@pytest.fixture(scope="module")
def small_json(tmp_path_factory):
    path = small_file(tmp_path_factory.mktemp("small"))
    return path, parse_report(run("flops", path, "--json", "--repeats", "1"))


def test_small_json_consistent(small_json):
    _, r = small_json
    check_consistent(r, samples=10, eps=1e-3)


def test_small_json_counts_match_in_process_compare(small_json):
    """The CLI wires the scenario (network, inputs, ε, scheduler) into compare unchanged."""
    path, r = small_json
    sc = load_scenario(path)
    net = build_network(sc.network)
    rep = compare(net, build_inputs(sc.input, net.n_inputs, sc.run.samples), sc.dynamics.epsilon, repeats=1,
                  scheduler=sc.dynamics.scheduler).as_dict()
    for key in ("samples", "event_synaptic_ops", "event_broadcasts", "dense_synaptic_ops",
                "dense_hoisted_synaptic_ops", "looped30_synaptic_ops", "lower_bound_ops", "max_state_deviation"):
        assert r[key] == rep[key], key
    assert set(r) == set(rep)


def test_table_form(tmp_path):
    path = small_file(tmp_path, scheduler="heap")
    proc = run("flops", path, "--repeats", "1")
    assert proc.returncode == 0, proc.stderr
    assert "In words:" in proc.stdout
    assert f"eventhorizon {__version__}" in proc.stdout and str(path) in proc.stdout
    assert "multiply-adds, event-driven" in proc.stdout
    assert proc.stderr == ""  # no progress bar when stderr is not a terminal


def test_version():
    proc = run("--version")
    assert proc.returncode == 0
    assert proc.stdout.strip() == f"eventhorizon {__version__}"


# --------------------------------------------------------------------------
# failures: exit 2, one readable line, no traceback
# --------------------------------------------------------------------------


def assert_one_line_error(proc, *fragments):
    assert proc.returncode == 2, (proc.returncode, proc.stdout, proc.stderr)
    assert proc.stdout == ""
    assert "Traceback" not in proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    assert lines[0].startswith("eventhorizon: error: ")
    for fragment in fragments:
        assert fragment in lines[0], (fragment, lines[0])


def test_invalid_scenario_exits_2(tmp_path):
    path = small_file(tmp_path, **{"spectral_norm = 0.5": "spectral_norm = 1.5"})
    assert_one_line_error(run("flops", path, "--json"), str(path), "network.spectral_norm")


def test_unknown_key_exits_2(tmp_path):
    path = small_file(tmp_path, **{"samples = 10\n": "samples = 10\nsede = 3\n"})
    assert_one_line_error(run("flops", path), "run.sede", "did you mean 'seed'?")


def test_missing_file_exits_2(tmp_path):
    missing = tmp_path / "missing.toml"
    assert_one_line_error(run("flops", missing, "--json"), str(missing), "no such scenario file")


def test_build_error_exits_2(tmp_path):
    """A non-contractive network is refused when the scenario is built, still as a scenario error."""
    text = SMALL.format(scheduler="tournament").replace(
        'generator = "input_recurrent"\ninputs = 16\nhidden = 32\nspectral_norm = 0.5',
        'generator = "random_sparse"\nneurons = 48\ninputs = 16\ndensity = 0.5\nweight_scale = 5.0')
    path = tmp_path / "wild.toml"
    path.write_text(text, encoding="utf-8")
    assert_one_line_error(run("flops", path, "--json"), "not contractive")


def test_usage_errors_exit_2():
    proc = run()
    assert proc.returncode == 2 and "usage:" in proc.stderr
    proc = run("flops", QUICKSTART, "--repeats", "many")
    assert proc.returncode == 2 and "--repeats" in proc.stderr


def test_debug_shows_traceback(tmp_path):
    proc = run("--debug", "flops", tmp_path / "missing.toml")
    assert proc.returncode != 0 and "Traceback" in proc.stderr and "ScenarioError" in proc.stderr


# --------------------------------------------------------------------------
# known defects (in process: cheaper than a subprocess each)
# --------------------------------------------------------------------------


def test_repeats_zero_is_refused(tmp_path, capsys):
    path = small_file(tmp_path, **{"samples = 10": "samples = 2"})
    assert main(["flops", str(path), "--json", "--repeats", "0"]) == 2


def test_negative_seed_is_a_scenario_error(tmp_path, capsys):
    path = small_file(tmp_path, **{"seed = 2": "seed = -2", "samples = 10": "samples = 2"})
    code = main(["flops", str(path), "--json"])
    err = capsys.readouterr().err
    assert code == 2 and "input.seed" in err


# --------------------------------------------------------------------------
# Fashion-MNIST
# --------------------------------------------------------------------------


@pytest.mark.skipif(not fashion_mnist_available(),
                    reason=f"Fashion-MNIST not installed (`{INSTALL_CMD}` or set EVENTHORIZON_FASHION_MNIST)")
def test_fashion_settle_reduced(tmp_path):
    text = FASHION.read_text(encoding="utf-8")
    assert "samples = 1000" in text
    path = tmp_path / "fashion20.toml"
    path.write_text(text.replace("samples = 1000", "samples = 20"), encoding="utf-8")
    eps = load_scenario(path).dynamics.epsilon
    r = parse_report(run("flops", path, "--json", "--repeats", "1", timeout=300))
    check_consistent(r, samples=20, eps=eps)
    assert r["max_state_deviation"] <= 10 * eps
