"""``eventhorizon run`` on a [learning] scenario, ``evaluate``, resume — on small IDX files written here."""

import json
import signal
import subprocess
import sys
import time
import tomllib
from pathlib import Path

import networkx as nx
import numpy as np
import pytest

from eventhorizon.datasets import write_idx
from eventhorizon.modelfile import load_model
from eventhorizon.scenario import ScenarioError, load_scenario, parse_scenario
from topology.snapshots import changed_pairs, load_snapshot

ROOT = Path(__file__).resolve().parent.parent

SCENARIO = """\
# A tiny EqProp run on synthetic IDX files.
description = "tiny EqProp"

[network]
generator = "layered"
sizes = [784, 24, 10]
feedback = true
activation = "hard_sigmoid"

[input]
source = "fashion_mnist"
data_dir = "{data}"

[dynamics]
epsilon = 1e-3

[learning]
beta = 0.5
learning_rates = [0.1, 0.05]
batch_size = 10
train_samples = {train}
test_samples = 60
compare_dense = {dense}
schedule = "{schedule}"

[run]
epochs = {epochs}
"""


def fake_fashion(directory, n_train=300, n_test=60, seed=0):
    """IDX files where class k lights up a 6×6 block at a class-specific place (learnable)."""
    rng = np.random.default_rng(seed)
    for prefix, n in (("train", n_train), ("t10k", n_test)):
        labels = rng.integers(0, 10, n).astype(np.uint8)
        images = (rng.random((n, 28, 28)) * 60).astype(np.uint8)
        for i, k in enumerate(labels):
            r, c = 2 + 8 * (k // 3), 2 + 8 * (k % 3)
            images[i, r:r + 6, c:c + 6] = 255
        write_idx(directory / f"{prefix}-images-idx3-ubyte", images)
        write_idx(directory / f"{prefix}-labels-idx1-ubyte", labels)
    return directory


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory):
    return fake_fashion(tmp_path_factory.mktemp("idx"))


def scenario(directory, data, epochs=4, train=300, dense="true", schedule="constant"):
    path = Path(directory) / "tiny.toml"
    path.write_text(SCENARIO.format(data=data, epochs=epochs, train=train, dense=dense, schedule=schedule),
                    encoding="utf-8")
    return path


def cli(*args, timeout=300):
    return subprocess.run([sys.executable, "-m", "eventhorizon", *map(str, args)], cwd=ROOT,
                          capture_output=True, text=True, timeout=timeout)


def read_json(path):
    return json.loads(Path(path).read_text(encoding="utf-8"))


def interrupt_after_first_epoch(path, out):
    """Run ``path`` into ``out`` in a child process; SIGINT it once an epoch is saved. ``(returncode, stderr)``."""
    child = subprocess.Popen([sys.executable, "-m", "eventhorizon", "run", str(path), "--out", str(out), "--quiet"],
                             cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 120
    while not (out / "history.json").exists():
        assert child.poll() is None, child.communicate()
        assert time.monotonic() < deadline
        time.sleep(0.005)
    child.send_signal(signal.SIGINT)
    _, stderr = child.communicate(timeout=60)
    return child.returncode, stderr


@pytest.fixture(scope="module")
def trained(tmp_path_factory, data_dir):
    base = tmp_path_factory.mktemp("train")
    out = base / "out"
    proc = cli("run", scenario(base, data_dir), "--out", out)
    assert proc.returncode == 0, proc.stderr
    return out, proc


def test_training_run_directory(trained):
    out, proc = trained
    for name in ("model.npz", "dense_model.npz", "history.json", "metrics.json", "status.json", "run.log",
                 "figures/learning_curves.png", "figures/phase_macs.png"):
        assert (out / name).is_file(), name
    status = read_json(out / "status.json")
    assert status["status"] == "complete" and status["epochs_done"] == status["epochs_planned"] == 4
    lines = [l for l in proc.stderr.splitlines() if l.startswith("epoch ")]
    assert len(lines) == 4 and "test" in lines[0] and "MACs/sample free" in lines[0] and "nudged" in lines[0]
    assert "event-driven EqProp reaches" in proc.stdout


def test_training_learns_and_matches_the_dense_baseline(trained):
    out, _ = trained
    history = read_json(out / "history.json")
    first, last = history[0], history[-1]
    assert last["event"]["loss"] < first["event"]["loss"]
    assert last["event"]["test_accuracy"] > 0.8  # the classes are easy to tell apart
    assert abs(last["event"]["test_accuracy"] - last["dense"]["test_accuracy"]) <= 0.1
    # the nudged phase starts at the free equilibrium: far cheaper than the dense nudged sweeps
    assert last["event"]["nudged_ops_per_sample"] < last["dense"]["nudged_ops_per_sample"]
    assert 0 < last["nudged_saving_vs_dense"] <= 1


def test_evaluate_reports_the_saved_accuracy(trained, data_dir):
    out, _ = trained
    model, info = load_model(out / "model.npz", expect_sizes=(784, 24, 10))
    assert info["epoch"] == 4
    proc = cli("evaluate", out / "model.npz", "--data", data_dir)
    assert proc.returncode == 0, proc.stderr
    expected = read_json(out / "history.json")[-1]["event"]["test_accuracy"]
    assert f"{expected:.2%}" in proc.stdout and "60" in proc.stdout


def test_evaluate_errors(tmp_path, data_dir):
    bad = tmp_path / "bad.npz"
    bad.write_bytes(b"not a zip")
    proc = cli("evaluate", bad, "--data", data_dir)
    assert proc.returncode == 2 and str(bad) in proc.stderr and "Traceback" not in proc.stderr
    proc = cli("evaluate", tmp_path / "missing.npz")
    assert proc.returncode == 2 and "no such model file" in proc.stderr


def test_plot_redraws_training_figures(trained):
    out, _ = trained
    for png in (out / "figures").glob("*.png"):
        png.unlink()
    proc = cli("plot", out)
    assert proc.returncode == 0, proc.stderr
    assert sorted(p.name for p in (out / "figures").glob("*.png")) == ["learning_curves.png", "phase_macs.png"]


@pytest.mark.parametrize("schedule", ["constant", "cosine"])
def test_interrupted_training_resumes_to_identical_weights(tmp_path, data_dir, schedule):
    whole = tmp_path / "whole"
    path = scenario(tmp_path, data_dir, epochs=12, train=300, dense="false", schedule=schedule)
    assert cli("run", path, "--out", whole, "--quiet").returncode == 0
    part = tmp_path / "part"
    code, stderr = interrupt_after_first_epoch(path, part)
    assert code == 130, stderr
    status = read_json(part / "status.json")
    assert status["status"] == "interrupted" and 1 <= status["epochs_done"] < 12, status
    assert cli("run", "--resume", part, "--quiet").returncode == 0
    a, _ = load_model(whole / "model.npz")
    b, _ = load_model(part / "model.npz")
    np.testing.assert_array_equal(a.graph.weights, b.graph.weights)
    np.testing.assert_array_equal(a.network.bias, b.network.bias)
    assert [h["event"]["test_accuracy"] for h in read_json(whole / "history.json")] == \
        [h["event"]["test_accuracy"] for h in read_json(part / "history.json")]


BASE = {"network": {"generator": "layered", "sizes": [784, 8, 10], "feedback": True},
        "input": {"source": "fashion_mnist"}, "dynamics": {"epsilon": 1e-3},
        "learning": {"learning_rates": [0.1, 0.05]}, "run": {"epochs": 1}}


@pytest.mark.parametrize("change, fragment", [
    ({"run": {"epochs": 1, "samples": 5}}, "learning.train_samples"),
    ({"run": {}}, "run.epochs: required"),
    ({"network": {"generator": "layered", "sizes": [784, 8, 10]}}, "feedback = true"),
    ({"learning": {"learning_rates": [0.1]}}, "one rate per weight layer"),
    ({"input": {"source": "generated"}}, "labelled data"),
    ({"input": {"source": "fashion_mnist", "split": "test"}}, "input.split: does not apply"),
    ({"learning": {"learning_rates": [0.1, 0.05], "nudging": "both"}}, "learning.nudging"),
    ({"learning": {"learning_rates": [0.1, 0.05], "train_samples": 100, "validation_samples": 100}},
     "learning.validation_samples: must be below learning.train_samples"),
    ({"learning": {"learning_rates": [0.1, 0.05], "validation_samples": -1}}, "learning.validation_samples"),
    ({"learning": {"learning_rates": [0.1, 0.05], "straight_through": True}},  # network.activation is tanh
     "learning.straight_through: straight_through needs a clipped activation"),
])
def test_learning_scenario_errors(change, fragment):
    with pytest.raises(ScenarioError, match=fragment.replace(".", r"\.").replace("=", "=")):
        parse_scenario({**BASE, **change})


def test_straight_through_reaches_the_model_config():
    from eventhorizon.training import config_from_scenario

    network = {**BASE["network"], "activation": "hard_sigmoid"}
    for flag in (False, True):
        sc = parse_scenario({**BASE, "network": network,
                             "learning": {"learning_rates": [0.1, 0.05], "straight_through": flag}})
        assert config_from_scenario(sc).straight_through is flag


def test_epochs_without_learning_is_refused():
    doc = {"network": {"generator": "input_recurrent", "inputs": 4, "hidden": 8, "spectral_norm": 0.5},
           "input": {"source": "generated"}, "dynamics": {"epsilon": 1e-3}, "run": {"samples": 2, "epochs": 3}}
    with pytest.raises(ScenarioError, match="run.epochs: only applies"):
        parse_scenario(doc)


def test_flops_refuses_a_learning_scenario(tmp_path, data_dir):
    proc = cli("flops", scenario(tmp_path, data_dir))
    assert proc.returncode == 2 and "[learning]" in proc.stderr


def test_cosine_schedule_scales_both_models(tmp_path, data_dir):
    out = tmp_path / "out"
    proc = cli("run", scenario(tmp_path, data_dir, epochs=2, schedule="cosine"), "--out", out, "--quiet")
    assert proc.returncode == 0, proc.stderr
    _, info = load_model(out / "model.npz")
    assert info["learning_rate_factor"] == pytest.approx(0.5)  # epoch 1 of 2: ½(1 + cos(π/2))


def test_validation_set_is_held_out_of_training(tmp_path, data_dir):
    """The last validation_samples training images are evaluated each epoch, never trained on."""
    from eventhorizon.training import load_training_data

    path = scenario(tmp_path, data_dir, epochs=2, train=300)
    text = path.read_text(encoding="utf-8").replace("test_samples = 60", "test_samples = 60\nvalidation_samples = 50")
    path.write_text(text, encoding="utf-8")
    data = load_training_data(load_scenario(path))
    assert (data.X.shape[0], data.X_val.shape[0]) == (250, 50)
    (tmp_path / "full").mkdir()
    full = load_training_data(load_scenario(scenario(tmp_path / "full", data_dir, train=300)))
    np.testing.assert_array_equal(np.concatenate([data.X, data.X_val]), full.X)
    assert full.X_val.shape == (0, 784)
    out = tmp_path / "out"
    proc = cli("run", path, "--out", out)
    assert proc.returncode == 0, proc.stderr
    history = read_json(out / "history.json")
    for entry in history:
        assert 0 <= entry["event"]["validation_accuracy"] <= 1 and "validation_accuracy" in entry["dense"]
        assert entry["event"]["loss"] > 0
    assert "validation" in [l for l in proc.stderr.splitlines() if l.startswith("epoch 1")][0]


def test_scale_learning_rates():
    from eventhorizon.eqprop import EqPropConfig, EqPropModel

    model = EqPropModel(EqPropConfig(sizes=(4, 3, 2), learning_rates=(0.2, 0.1)))
    base = model._opt.lr_w.copy()
    model.scale_learning_rates(0.25)
    np.testing.assert_allclose(model._opt.lr_w, base * 0.25)
    model.scale_learning_rates(1.0)
    np.testing.assert_array_equal(model._opt.lr_w, base)
    with pytest.raises(ValueError, match="factor"):
        model.scale_learning_rates(-1)


PLASTIC = SCENARIO.replace('feedback = true\n', 'feedback = true\ndensity = 0.3\n') + """
[plasticity]
every_batches = 5
rewire_fraction = 0.2
grow = "{grow}"
score_samples = 10
snapshot_every = 3
"""


@pytest.mark.parametrize("grow, extra", [("gradient", ""), ("gradient", 'score_from = "training"\n'),
                                         ("random", "")])
def test_plasticity_holds_density_and_resumes_identically(tmp_path, data_dir, grow, extra):
    text = PLASTIC.format(data=data_dir, epochs=6, train=200, dense="false", schedule="constant", grow=grow) + extra
    path = tmp_path / "plastic.toml"
    path.write_text(text, encoding="utf-8")
    whole = tmp_path / "whole"
    proc = cli("run", path, "--out", whole)
    assert proc.returncode == 0, proc.stderr
    assert "plasticity: 4 steps" in proc.stderr
    history = read_json(whole / "history.json")
    densities = {round(h["plasticity"]["density"], 6) for h in history}
    assert len(densities) == 1 and abs(densities.pop() - 0.3) < 0.02
    assert all(h["plasticity"]["pruned"] == h["plasticity"]["grown"] > 0 for h in history)
    model, _ = load_model(whole / "model.npz")
    A = model.graph.to_scipy().tocsr()[784:, 784:]
    assert (A != A.T).nnz == 0
    part = tmp_path / "part"
    interrupt_after_first_epoch(path, part)
    assert read_json(part / "status.json")["status"] in ("interrupted", "complete")
    if read_json(part / "status.json")["status"] == "interrupted":
        assert cli("run", "--resume", part, "--quiet").returncode == 0
    again, _ = load_model(part / "model.npz")
    np.testing.assert_array_equal(again.graph.indices, model.graph.indices)
    np.testing.assert_array_equal(again.graph.weights, model.graph.weights)
    check_snapshots(whole, model)
    assert [e["info"] for e in read_json(part / "topology" / "index.json")] == \
        [e["info"] for e in read_json(whole / "topology" / "index.json")]


def test_rigl_schedule_decays_the_rewiring_and_stops(tmp_path, data_dir):
    """rewire_schedule = "cosine" shrinks each step's rewiring; no step after stop_after of the training."""
    text = PLASTIC.format(data=data_dir, epochs=4, train=200, dense="false", schedule="constant", grow="random")
    path = tmp_path / "rigl.toml"
    path.write_text(text + 'rewire_schedule = "cosine"\nstop_after = 0.5\n', encoding="utf-8")
    out = tmp_path / "out"
    proc = cli("run", path, "--out", out, "--quiet", "--set", "output.figures=false")
    assert proc.returncode == 0, proc.stderr
    history = read_json(out / "history.json")
    pruned = [h["plasticity"]["pruned"] for h in history]
    steps = [h["plasticity"]["steps"] for h in history]
    # 20 batches per epoch, a step every 5: the k-th step at training progress k/16; none from 0.5 (k = 8) on
    assert steps == [4, 3, 0, 0]
    assert pruned[0] > pruned[1] > 0 and pruned[2:] == [0, 0]
    assert all(abs(h["plasticity"]["density"] - 0.3) < 0.02 for h in history[:2])


def test_rewire_fraction_schedules():
    from types import SimpleNamespace

    from eventhorizon.plasticity import rewire_fraction_at

    constant = SimpleNamespace(rewire_fraction=0.2, rewire_schedule="constant", stop_after=1.0)
    assert [rewire_fraction_at(constant, p) for p in (0.0, 0.5, 1.0)] == [0.2, 0.2, 0.2]  # the last batch's step too
    stopped = SimpleNamespace(rewire_fraction=0.2, rewire_schedule="constant", stop_after=0.5)
    assert [rewire_fraction_at(stopped, p) for p in (0.5, 0.51)] == [0.2, 0.0]
    rigl = SimpleNamespace(rewire_fraction=0.2, rewire_schedule="cosine", stop_after=0.8)
    values = [rewire_fraction_at(rigl, p) for p in np.linspace(0, 0.79, 20)]
    assert values[0] == pytest.approx(0.2) and all(a > b > 0 for a, b in zip(values, values[1:]))
    assert rewire_fraction_at(rigl, 0.4) == pytest.approx(0.1)


def check_snapshots(run_dir, model):
    """Snapshots at steps 0, 3, ..., 24 (4 steps × 6 epochs), consistent with their files and the final model."""
    index = read_json(run_dir / "topology" / "index.json")
    assert [e["info"]["step"] for e in index] == list(range(0, 25, 3))
    assert [e["info"]["epoch"] for e in index][:3] == [0.0, 0.75, 1.5]  # 3 steps of 5 batches of 10 = 0.75 × 200
    previous = None
    for entry in index:
        graph, sizes, info = load_snapshot(run_dir / "topology" / entry["file"])
        assert info == entry["info"] and sizes.tolist() == [784, 24, 10]
        assert entry["metrics"]["synapses"] == info["synapses"] == graph.nnz
        assert (info["born"], info["died"]) == (changed_pairs(previous, graph) if previous else (0, 0))
        previous = graph
    assert index[-1]["info"]["born"] > 0  # regrowth really changed the topology between snapshots
    np.testing.assert_array_equal(previous.indices, model.graph.indices)
    np.testing.assert_array_equal(previous.indptr, model.graph.indptr)


def test_export_writes_graph_files_of_the_snapshots(tmp_path, data_dir):
    text = PLASTIC.format(data=data_dir, epochs=1, train=100, dense="false", schedule="constant", grow="random")
    path = tmp_path / "plastic.toml"
    path.write_text(text, encoding="utf-8")
    out = tmp_path / "out"
    assert cli("run", path, "--out", out, "--quiet", "--set", "output.figures=false").returncode == 0
    proc = cli("export", out, "--format", "gexf", "--all")
    assert proc.returncode == 0, proc.stderr
    written = [Path(line) for line in proc.stdout.split()]
    assert [p.name for p in written] == ["snapshot_00000.gexf", "snapshot_00002.gexf"]
    g = nx.read_gexf(written[-1])
    graph, _, _ = load_snapshot(out / "topology" / "snapshot_00002.npz")
    assert g.number_of_edges() == graph.nnz
    proc = cli("export", out, "--step", "1")
    assert proc.returncode == 2 and "--step 1: no snapshot at that plasticity step" in proc.stderr
    assert "has steps [0, 2]" in proc.stderr
    proc = cli("export", tmp_path)
    assert proc.returncode == 2 and "no topology snapshots" in proc.stderr


def test_plasticity_needs_learning():
    doc = {"network": {"generator": "input_recurrent", "inputs": 4, "hidden": 8, "spectral_norm": 0.5},
           "input": {"source": "generated"}, "dynamics": {"epsilon": 1e-3}, "run": {"samples": 2},
           "plasticity": {"every_batches": 3}}
    with pytest.raises(ScenarioError, match="plasticity: needs a \\[learning\\] section"):
        parse_scenario(doc)


def test_initial_graph_scales_each_block_by_its_own_density():
    """density_distribution = "erdos_renyi": the readout is dense; each block is Glorot × init_scale / √(its density)."""
    from eventhorizon.training import config_from_scenario, initial_graph
    from topology.generators import block_densities, layered

    text = SCENARIO.format(data=".", epochs=1, train=10, dense="false", schedule="constant")
    text = text.replace("feedback = true\n", 'feedback = true\ndensity = 0.35\ndensity_distribution = "erdos_renyi"\n')
    sc = parse_scenario(tomllib.loads(text), "er.toml")
    config = config_from_scenario(sc)
    densities = block_densities([784, 24, 10], 0.35, "erdos_renyi")
    assert densities[1] == 1.0 and densities[0] < 0.35
    graph, plain = initial_graph(sc, config), layered((784, 24, 10), config.seed, feedback=True, density=densities)
    np.testing.assert_array_equal(graph.indices, plain.indices)
    block = np.where((graph.pre_ids() >= 784) & (graph.indices >= 784), 1, 0)
    expect = plain.weights * (config.init_scale / np.sqrt(np.array(densities)))[block].astype(np.float32)
    np.testing.assert_allclose(graph.weights, expect, rtol=1e-6)
