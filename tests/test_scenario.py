"""Scenario files: bundled scenarios, error messages, seeds, weight files, overrides, dump and builders.

The loader's fuzz tests (only ScenarioError, never anything else) are in ``test_scenario_fuzz.py``.
"""

import datetime
import math
import tomllib
from pathlib import Path

import numpy as np
import pytest
import scipy.sparse as sp

from eventhorizon.datasets import fashion_mnist_available, generated_inputs
from eventhorizon.network import RateNetwork
from eventhorizon.spiking.scenario import SpikingScenario
from eventhorizon.stream_scenario import StreamScenario
from eventhorizon.scenario import (
    FashionMnistInput,
    FileNetwork,
    GeneratedInput,
    InputRecurrentNetwork,
    Scenario,
    ScenarioError,
    apply_overrides,
    build_inputs,
    build_network,
    bundled_scenarios,
    dump_scenario,
    load_scenario,
    parse_scenario,
    read_document,
    resolve_scenario,
)
from topology import generators

ROOT = Path(__file__).resolve().parent.parent
QUICKSTART = ROOT / "scenarios" / "quickstart.toml"
FASHION = ROOT / "scenarios" / "fashion_settle.toml"
INSTALL_CMD = "apt-get install -y dataset-fashion-mnist"

SMALL = """\
description = "tiny"

[network]
generator = "input_recurrent"
inputs = 16
hidden = 32
spectral_norm = 0.5

[input]
source = "generated"

[run]
samples = 10

[dynamics]
epsilon = 1e-3
"""


def small_doc():
    return tomllib.loads(SMALL)


def write(tmp_path, text, name="scenario.toml"):
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def error_of(document, source="<string>", base_dir=None):
    with pytest.raises(ScenarioError) as info:
        parse_scenario(document, source=source, base_dir=base_dir)
    return str(info.value)


def load_error(path, overrides=()):
    with pytest.raises(ScenarioError) as info:
        load_scenario(path, overrides)
    return str(info.value)


# --------------------------------------------------------------------------
# bundled scenarios
# --------------------------------------------------------------------------


def test_quickstart_validates():
    sc = load_scenario(QUICKSTART)
    assert isinstance(sc, Scenario)
    assert isinstance(sc.network, InputRecurrentNetwork)
    assert (sc.network.inputs, sc.network.hidden, sc.network.spectral_norm) == (64, 256, 0.6)
    assert isinstance(sc.input, GeneratedInput) and sc.run.samples == 100
    assert sc.dynamics.epsilon == 1e-3 and sc.dynamics.scheduler == "tournament"
    assert sc.flops.repeats == 3
    # the seeds the file used to pin (network 0, input 1) now follow from run.seed = 0
    assert (sc.run.seed, sc.network.seed, sc.input.seed) == (0, 0, 1)


def test_fashion_settle_validates():
    sc = load_scenario(str(FASHION))  # str path works too
    assert isinstance(sc.input, FashionMnistInput)
    assert sc.input.split == "test" and sc.run.samples == 1000 and sc.input.data_dir is None
    assert sc.network.inputs == 784 and sc.network.hidden == 500


def test_bundled_scenarios_listed():
    bundled = bundled_scenarios()
    assert {"quickstart", "fashion_settle"} <= set(bundled)
    assert bundled["quickstart"] == QUICKSTART and all(p.is_file() for p in bundled.values())
    for path in bundled.values():
        assert isinstance(load_scenario(path), (Scenario, SpikingScenario, StreamScenario))


def test_defaults_and_frozen():
    sc = parse_scenario(small_doc())
    assert sc.description == "tiny"
    assert sc.network.activation == "tanh" and sc.network.seed == 0 and sc.network.recurrent_density == 1.0
    assert sc.input.density == 0.5 and sc.input.seed == 1
    assert sc.dynamics.mode == "rate" and sc.dynamics.max_updates is None
    assert (sc.run.samples, sc.run.seed, sc.run.compare_dense, sc.run.checkpoint_seconds) == (10, 0, True, 5.0)
    assert sc.run.epochs is None
    assert sc.output.figures is True and sc.output.save_states is False
    assert sc.learning is None and sc.plasticity is None
    assert sc.flops.repeats == 3
    with pytest.raises(Exception):
        sc.dynamics.epsilon = 1.0  # frozen


# --------------------------------------------------------------------------
# error messages name the file and the key path
# --------------------------------------------------------------------------


def test_missing_section(tmp_path):
    path = write(tmp_path, SMALL.split("[dynamics]")[0])
    msg = load_error(path)
    assert msg.startswith(f"{path}: ")
    assert "dynamics" in msg and "required" in msg.lower()
    assert "\n" not in msg  # one problem, one line


def test_missing_run_section(tmp_path):
    path = write(tmp_path, SMALL.replace("[run]\nsamples = 10\n", ""))
    msg = load_error(path)
    assert msg == f"{path}: run: Field required"


def test_unknown_key_did_you_mean(tmp_path):
    path = write(tmp_path, SMALL.replace("epsilon = 1e-3", "epsilom = 1e-3"))
    msg = load_error(path)
    assert str(path) in msg
    assert "dynamics.epsilom: unknown key; did you mean 'epsilon'?" in msg
    assert "dynamics.epsilon" in msg  # the real key is then missing, also reported


def test_unknown_top_level_key():
    doc = small_doc()
    doc["netwrk"] = {}
    assert "netwrk: unknown key; did you mean 'network'?" in error_of(doc)


@pytest.mark.parametrize("tag", ["fashion_mnist", "generated", "layered", "file"])
def test_unknown_key_named_like_a_tag(tag):
    doc = small_doc()
    doc[tag] = []
    assert f"{tag}: unknown key" in error_of(doc)


def test_nested_unknown_key_named_like_a_tag():
    doc = small_doc()
    doc["dynamics"]["layered"] = 1
    assert "dynamics.layered: unknown key" in error_of(doc)


def test_unknown_key_without_close_match_lists_known_keys():
    doc = small_doc()
    doc["flops"] = {"repeats": 2, "zzzz": 1}
    assert "flops.zzzz: unknown key; known keys: repeats" in error_of(doc)


def test_samples_in_old_place_is_an_unknown_key():
    """``samples`` moved from [input] to [run]: the old spelling is refused, not ignored."""
    doc = small_doc()
    doc["input"]["samples"] = 10
    assert "<string>: input.samples: unknown key" in error_of(doc)


@pytest.mark.parametrize("section, doc_part, bad, good", [
    ("network", {"generator": "random_sparse", "neurons": 20, "inputs": 4, "density": 0.5}, "weight_scal",
     "weight_scale"),
    ("network", {"generator": "layered", "sizes": [4, 3]}, "feedbak", "feedback"),
    ("network", {"generator": "file", "path": "w.npy", "inputs": 4}, "inputz", "inputs"),
    ("input", {"source": "generated"}, "densty", "density"),
    ("input", {"source": "fashion_mnist"}, "data_dr", "data_dir"),
])
def test_unknown_key_suggestion_in_non_first_union_member(section, doc_part, bad, good):
    doc = small_doc()
    doc[section] = dict(doc_part, **{bad: 1})
    assert f"did you mean {good!r}?" in error_of(doc)


def test_wrong_type(tmp_path):
    path = write(tmp_path, SMALL.replace("samples = 10", 'samples = "ten"'))
    msg = load_error(path)
    assert msg.startswith(f"{path}: run.samples: ")
    assert "integer" in msg and "'ten'" in msg


@pytest.mark.parametrize("section, key, value", [
    ("run", "samples", True),          # a bool is not 1
    ("run", "samples", "10"),          # a string is not a number, even if it reads as one
    ("run", "samples", 10.0),
    ("run", "seed", True),
    ("dynamics", "epsilon", "1e-3"),
    ("dynamics", "epsilon", True),
    ("run", "compare_dense", 1),
    ("run", "compare_dense", "yes"),
    ("network", "spectral_norm", datetime.date(2024, 1, 1)),
    ("dynamics", "scheduler", ["tournament"]),
])
def test_values_of_the_wrong_toml_type_are_refused(section, key, value):
    doc = small_doc()
    doc[section][key] = value
    msg = error_of(doc)
    assert f"<string>: {section}.{key}: " in msg and "\n" not in msg


def test_out_of_range_spectral_norm(tmp_path):
    path = write(tmp_path, SMALL.replace("spectral_norm = 0.5", "spectral_norm = 1.5"))
    msg = load_error(path)
    assert str(path) in msg and "network.spectral_norm" in msg and "1.5" in msg


@pytest.mark.parametrize("section, key, value, path", [
    ("dynamics", "epsilon", 0.0, "dynamics.epsilon"),
    ("dynamics", "epsilon", -1e-3, "dynamics.epsilon"),
    ("dynamics", "epsilon", float("nan"), "dynamics.epsilon"),
    ("dynamics", "epsilon", float("inf"), "dynamics.epsilon"),
    ("dynamics", "scheduler", "fifo", "dynamics.scheduler"),
    ("dynamics", "max_updates", 0, "dynamics.max_updates"),
    ("network", "hidden", 0, "network.hidden"),
    ("network", "activation", "relu", "network.activation"),
    ("network", "recurrent_density", 1.5, "network.recurrent_density"),
    ("network", "seed", -1, "network.seed"),
    ("input", "density", 0.0, "input.density"),
    ("input", "seed", -1, "input.seed"),
    ("run", "samples", 0, "run.samples"),
    ("run", "seed", -1, "run.seed"),
    ("run", "checkpoint_seconds", 0.0, "run.checkpoint_seconds"),
    ("run", "checkpoint_seconds", float("inf"), "run.checkpoint_seconds"),
])
def test_out_of_range_values(section, key, value, path):
    doc = small_doc()
    doc[section][key] = value
    assert f"<string>: {path}: " in error_of(doc)


def test_layered_sizes_index_in_path():
    doc = small_doc()
    doc["network"] = {"generator": "layered", "sizes": [16, 0, 3]}
    assert "network.sizes.1" in error_of(doc)
    doc["network"] = {"generator": "layered", "sizes": [16]}
    assert "network.sizes" in error_of(doc)


def test_random_sparse_inputs_must_be_fewer_than_neurons():
    doc = small_doc()
    doc["network"] = {"generator": "random_sparse", "neurons": 10, "inputs": 10, "density": 0.5}
    msg = error_of(doc)
    assert "network" in msg and "fewer than neurons" in msg


def test_unknown_generator(tmp_path):
    path = write(tmp_path, SMALL.replace('"input_recurrent"', '"small_world"'))
    msg = load_error(path)
    assert msg.startswith(f"{path}: network: ")
    assert "small_world" in msg and "input_recurrent" in msg and "random_sparse" in msg and "'file'" in msg


def test_missing_generator_and_source():
    doc = small_doc()
    del doc["network"]["generator"]
    assert "network: " in error_of(doc) and "generator" in error_of(doc)
    doc = small_doc()
    del doc["input"]["source"]
    assert "input: " in error_of(doc) and "source" in error_of(doc)


def test_several_errors_one_line_each():
    doc = small_doc()
    doc["network"]["spectral_norm"] = 2.0
    doc["dynamics"]["epsilon"] = -1.0
    lines = error_of(doc, source="x.toml").splitlines()
    assert len(lines) == 2 and all(line.startswith("x.toml: ") for line in lines)


def test_odd_keys_are_quoted_so_an_error_stays_on_one_line():
    doc = small_doc()
    doc["dynamics"]["a.b"] = 1
    doc["dynamics"]["two\nlines"] = 2
    lines = error_of(doc).splitlines()
    assert len(lines) == 2
    assert lines[0].startswith('<string>: dynamics."a.b": unknown key')
    assert any(line.startswith('<string>: dynamics."two\\nlines": unknown key') for line in lines)


def test_long_given_values_are_cut():
    doc = small_doc()
    doc["run"]["samples"] = "x" * 10_000
    msg = error_of(doc)
    assert msg.startswith("<string>: run.samples: ") and len(msg) < 300 and msg.endswith("…)")


def test_integers_beyond_64_bits_are_refused_with_their_key_path():
    doc = small_doc()
    doc["run"]["seed"] = 2**64
    doc["network"]["hidden"] = -(2**63) - 1
    doc["flops"] = {"zzzz": [1, 1 << 20_000]}  # repr() of this int raises ValueError: must not escape
    lines = error_of(doc).splitlines()
    assert lines == [f"<string>: {p}: integer outside the 64-bit range TOML allows (-2**63 … 2**63-1)"
                     for p in ("flops.zzzz.1", "network.hidden", "run.seed")]
    doc = small_doc()
    doc["network"]["hidden"] = 2**63 - 1  # the largest TOML integer is in range (and valid here)
    assert parse_scenario(doc).network.hidden == 2**63 - 1


def test_huge_integers_in_toml_text(tmp_path):
    path = write(tmp_path, SMALL + "\n[flops]\nrepeats = " + "9" * 5000 + "\n")
    msg = load_error(path)  # tomllib itself raises a plain ValueError here (int() digit limit)
    assert msg.startswith(f"{path}: invalid TOML: ") and "\n" not in msg
    path = write(tmp_path, SMALL + "\n[flops]\nrepeats = 0x" + "f" * 5000 + "\n")
    assert load_error(path).startswith(f"{path}: flops.repeats: integer outside the 64-bit range")


@pytest.mark.parametrize("nested", ["a = " + "[" * 5000 + "]" * 5000, "a = " + "{b = " * 3000 + "1" + "}" * 3000])
def test_deeply_nested_toml_is_invalid_not_a_crash(tmp_path, nested):
    path = write(tmp_path, SMALL + nested + "\n")
    msg = load_error(path)
    assert msg.startswith(f"{path}: invalid TOML: ") and "nested too deeply" in msg


def test_invalid_toml(tmp_path):
    path = write(tmp_path, SMALL + "\n[dynamics\n")
    msg = load_error(path)
    assert str(path) in msg and "invalid TOML" in msg and "line" in msg


def test_missing_file(tmp_path):
    path = tmp_path / "nope.toml"
    msg = load_error(path)
    assert str(path) in msg and "no such scenario file" in msg


def test_unreadable_file(tmp_path):
    with pytest.raises(ScenarioError, match="cannot read"):
        load_scenario(tmp_path)  # a directory
    bad = tmp_path / "latin1.toml"
    bad.write_bytes(b'description = "caf\xe9"\n')
    with pytest.raises(ScenarioError, match="cannot read"):
        load_scenario(bad)
    with pytest.raises(ScenarioError, match="cannot read"):
        load_scenario(tmp_path / "nul\x00byte.toml")  # open() raises ValueError for this name


def test_read_document_returns_the_toml_table(tmp_path):
    assert read_document(write(tmp_path, SMALL)) == small_doc()
    with pytest.raises(ScenarioError, match="invalid TOML"):
        read_document(write(tmp_path, "x = "))


def test_not_a_table():
    with pytest.raises(ScenarioError, match="must be a TOML table"):
        parse_scenario([1, 2])


def test_fashion_mnist_needs_784_inputs(tmp_path):
    text = SMALL.replace('source = "generated"', 'source = "fashion_mnist"')
    path = write(tmp_path, text)
    msg = load_error(path)
    assert str(path) in msg and "784" in msg and "16" in msg
    # layered networks: the first layer is the input width
    doc = tomllib.loads(text)
    doc["network"] = {"generator": "layered", "sizes": [100, 10]}
    assert "784" in error_of(doc)
    doc["network"] = {"generator": "layered", "sizes": [784, 10]}
    assert parse_scenario(doc).input.source == "fashion_mnist"


@pytest.mark.parametrize("split, limit", [("test", 10_000), ("train", 60_000)])
def test_fashion_mnist_samples_at_most_the_split_size(split, limit):
    doc = small_doc()
    doc["network"] = {"generator": "layered", "sizes": [784, 10]}
    doc["input"] = {"source": "fashion_mnist", "split": split}
    doc["run"]["samples"] = limit
    assert parse_scenario(doc).run.samples == limit
    doc["run"]["samples"] = limit + 1
    msg = error_of(doc)
    assert f"run.samples: {limit + 1}" in msg and f"{split} split has {limit} images" in msg and "\n" not in msg


# --------------------------------------------------------------------------
# reserved sections and keys: refused, never ignored
# --------------------------------------------------------------------------


def test_spiking_keys_in_a_rate_scenario_are_unknown_keys(tmp_path):
    path = write(tmp_path, SMALL.replace("[run]", "[run]\nduration_s = 1.0"))
    assert load_error(path).startswith(f"{path}: run.duration_s: unknown key")


def test_plasticity_section_needs_learning(tmp_path):
    path = write(tmp_path, SMALL + "\n[plasticity]\nevery_batches = 10\n")
    msg = load_error(path)
    assert "plasticity: needs a [learning] section" in msg


def test_spiking_mode_selects_the_spiking_schema():
    doc = small_doc()
    doc["dynamics"]["mode"] = "spiking"
    msg = error_of(doc)
    assert "<string>: neuron: Field required" in msg and "dynamics.epsilon: unknown key" in msg
    doc["dynamics"]["mode"] = "rate"
    assert parse_scenario(doc).dynamics.mode == "rate"
    doc["dynamics"]["mode"] = "burst"
    assert "dynamics.mode: " in error_of(doc) and "'rate'" in error_of(doc)


def test_output_section():
    doc = small_doc()
    doc["output"] = {"figures": False, "save_states": True}
    sc = parse_scenario(doc)
    assert sc.output.figures is False and sc.output.save_states is True
    doc["output"]["figure"] = True
    assert "output.figure: unknown key; did you mean 'figures'?" in error_of(doc)


# --------------------------------------------------------------------------
# seeds: run.seed is the master seed
# --------------------------------------------------------------------------


def test_seeds_default_from_run_seed():
    doc = small_doc()
    doc["run"]["seed"] = 7
    sc = parse_scenario(doc)
    assert (sc.run.seed, sc.network.seed, sc.input.seed) == (7, 7, 8)
    del doc["run"]["seed"]
    sc = parse_scenario(doc)
    assert (sc.run.seed, sc.network.seed, sc.input.seed) == (0, 0, 1)


@pytest.mark.parametrize("network", [
    {"generator": "layered", "sizes": [16, 8]},
    {"generator": "random_sparse", "neurons": 40, "inputs": 16, "density": 0.2},
])
def test_seeds_default_for_every_generator(network):
    doc = small_doc()
    doc["network"] = network
    doc["run"]["seed"] = 5
    assert parse_scenario(doc).network.seed == 5


def test_pinned_seeds_are_kept():
    doc = small_doc()
    doc["run"]["seed"] = 7
    doc["network"]["seed"] = 3
    sc = parse_scenario(doc)
    assert (sc.network.seed, sc.input.seed) == (3, 8)
    doc["input"]["seed"] = 0
    sc = parse_scenario(doc)
    assert (sc.network.seed, sc.input.seed) == (3, 0)
    del doc["network"]["seed"]
    assert parse_scenario(doc).network.seed == 7


def test_seed_override_changes_what_is_not_pinned(tmp_path):
    path = write(tmp_path, SMALL.replace("spectral_norm = 0.5", "spectral_norm = 0.5\nseed = 11"))
    sc = load_scenario(path, ["run.seed=4"])
    assert (sc.run.seed, sc.network.seed, sc.input.seed) == (4, 11, 5)


@pytest.mark.parametrize("bad", [-1, "x", True, 1.5, [1], {"a": 1}, 2**63 - 1, 2**64, datetime.date(2024, 1, 1)])
def test_invalid_run_seed_is_named(bad):
    doc = small_doc()
    doc["run"]["seed"] = bad
    lines = error_of(doc).splitlines()
    assert len(lines) == 1 and lines[0].startswith("<string>: run.seed: ")  # only run.seed: nothing else blamed


def test_largest_run_seed_leaves_room_for_the_input_seed():
    doc = small_doc()
    doc["run"]["seed"] = 2**63 - 2
    sc = parse_scenario(doc)
    assert sc.input.seed == 2**63 - 1
    assert parse_scenario(tomllib.loads(dump_scenario(sc))) == sc


def test_seed_defaulting_tolerates_malformed_sections():
    for run in (5, [], {"seed": None}):
        doc = small_doc()
        doc["run"] = run
        assert "<string>: run" in error_of(doc)
    doc = small_doc()
    doc["network"] = "input_recurrent"
    doc["input"] = 3
    msg = error_of(doc)
    assert "<string>: network: " in msg and "<string>: input: " in msg


def test_fashion_input_and_file_network_take_no_seed(tmp_path):
    """run.seed is not pushed into sections that have no seed (it would be an unknown key there)."""
    np.save(tmp_path / "w.npy", np.zeros((800, 800), dtype=np.float32))
    doc = small_doc()
    doc["run"]["seed"] = 9
    doc["network"] = {"generator": "file", "path": "w.npy", "inputs": 784}
    doc["input"] = {"source": "fashion_mnist"}
    sc = parse_scenario(doc, base_dir=tmp_path)
    assert not hasattr(sc.network, "seed") and not hasattr(sc.input, "seed")
    doc["network"]["seed"] = 1
    assert "network.seed: unknown key" in error_of(doc, base_dir=tmp_path)


# --------------------------------------------------------------------------
# weight files: generator = "file"
# --------------------------------------------------------------------------

N_FILE, INPUTS_FILE = 12, 4


def _weights(seed=0):
    """A small sparse A[pre, post] whose free block is comfortably contractive."""
    matrix = sp.random(N_FILE, N_FILE, density=0.3, random_state=seed, format="csr", dtype=np.float64)
    return (matrix * 0.1).astype(np.float32)


def _file_scenario(directory, path, inputs=INPUTS_FILE):
    text = SMALL.replace('generator = "input_recurrent"\ninputs = 16\nhidden = 32\nspectral_norm = 0.5',
                         f'generator = "file"\npath = "{path}"\ninputs = {inputs}\nactivation = "hard_sigmoid"')
    directory.mkdir(parents=True, exist_ok=True)
    return write(directory, text)


def _same_weights(network, expected):
    got = network.graph.to_scipy()
    expected = sp.csr_array(expected, dtype=np.float32)
    return got.shape == expected.shape and (got != expected).nnz == 0 and \
        np.array_equal(got.toarray(), expected.toarray())


def test_file_network_npz_relative_to_the_scenario(tmp_path, monkeypatch):
    weights = _weights()
    (tmp_path / "scen" / "weights").mkdir(parents=True)
    sp.save_npz(tmp_path / "scen" / "weights" / "w.npz", weights)
    path = _file_scenario(tmp_path / "scen", "weights/w.npz")
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)  # the path is relative to the scenario file, not the working directory
    sc = load_scenario(path)
    assert isinstance(sc.network, FileNetwork)
    assert sc.network.path == str((tmp_path / "scen" / "weights" / "w.npz").resolve())
    net = build_network(sc.network)
    assert isinstance(net, RateNetwork)
    assert (net.n, net.n_inputs, net.model.name) == (N_FILE, INPUTS_FILE, "hard_sigmoid")
    assert list(net.input_ids) == list(range(INPUTS_FILE))
    assert _same_weights(net, sp.load_npz(tmp_path / "scen" / "weights" / "w.npz"))
    assert _same_weights(net, weights)


def test_file_network_npy_dense(tmp_path):
    dense = _weights(seed=1).toarray()
    np.save(tmp_path / "w.npy", dense)
    net = build_network(load_scenario(_file_scenario(tmp_path, "w.npy")).network)
    assert _same_weights(net, np.load(tmp_path / "w.npy"))
    assert net.graph.nnz == np.count_nonzero(dense)


def test_file_network_absolute_path(tmp_path):
    sp.save_npz(tmp_path / "w.npz", _weights())
    path = _file_scenario(tmp_path / "other", str(tmp_path / "w.npz"))
    assert load_scenario(path).network.path == str((tmp_path / "w.npz").resolve())


def test_file_network_missing_file(tmp_path):
    path = _file_scenario(tmp_path, "nope.npz")
    msg = load_error(path)
    assert msg.startswith(f"{path}: network.path: no such weight file") and str(tmp_path / "nope.npz") in msg


@pytest.mark.parametrize("name", ["~no_such_user_xyz/w.npz", "a" * 5000 + ".npz", "nul\x00.npz", "."])
def test_file_network_impossible_paths(tmp_path, name):
    doc = small_doc()
    doc["network"] = {"generator": "file", "path": name, "inputs": 4}
    msg = error_of(doc, base_dir=tmp_path)
    assert msg.startswith("<string>: network.path: ") and "\n" not in msg and len(msg) < 400


def test_file_network_directory_is_not_a_weight_file(tmp_path):
    (tmp_path / "d.npz").mkdir()
    assert "network.path: no such weight file" in load_error(_file_scenario(tmp_path, "d.npz"))


@pytest.mark.parametrize("name", ["w.csv", "w.npz.txt", "w", "w.NPZ"])
def test_file_network_wrong_suffix(tmp_path, name):
    (tmp_path / name).write_text("1")
    msg = load_error(_file_scenario(tmp_path, name))
    assert msg.startswith(f"{_file_scenario(tmp_path, name)}: network.path: ") and ".npz" in msg and ".npy" in msg


def test_file_network_needs_path_and_inputs():
    doc = small_doc()
    doc["network"] = {"generator": "file"}
    msg = error_of(doc)
    assert "<string>: network.path: Field required" in msg and "<string>: network.inputs: Field required" in msg


@pytest.mark.parametrize("name, content, expected", [
    ("w.npz", b"not a zip", "not a .npz (zip) file"),
    ("w.npz", None, "does not contain a sparse array"),  # np.savez of a plain array
    ("w.npy", b"garbage", "not a .npy file"),
    ("w.npy", np.array([{}], dtype=object), "Object arrays cannot be loaded"),
])
def test_file_network_unreadable_weight_file(tmp_path, name, content, expected):
    if content is None:
        np.savez(tmp_path / name, a=np.eye(3))
    elif isinstance(content, bytes):
        (tmp_path / name).write_bytes(content)
    else:
        np.save(tmp_path / name, content, allow_pickle=True)
    sc = load_scenario(_file_scenario(tmp_path, name))  # the file exists: loading is fine
    with pytest.raises(ScenarioError) as info:
        build_network(sc.network)
    msg = str(info.value)
    assert msg.startswith(f"network.path: cannot read weight file {tmp_path / name}: ") and expected in msg


@pytest.mark.parametrize("array, expected", [
    (np.zeros((3, 4)), "square"),
    (np.zeros(5), "square"),
    (np.array([[0.0, np.nan], [0.0, 0.0]]), "finite"),
    (np.array([["a", "b"], ["c", "d"]]), "network"),
])
def test_file_network_bad_dense_weights(tmp_path, array, expected):
    np.save(tmp_path / "w.npy", array)
    sc = load_scenario(_file_scenario(tmp_path, "w.npy", inputs=1))
    with pytest.raises(ScenarioError) as info:
        build_network(sc.network)
    assert str(info.value).startswith("network") and expected in str(info.value)


def test_file_network_more_inputs_than_neurons(tmp_path):
    np.save(tmp_path / "w.npy", np.zeros((3, 3)))
    sc = load_scenario(_file_scenario(tmp_path, "w.npy", inputs=5))
    with pytest.raises(ScenarioError, match="^network: "):
        build_network(sc.network)


# --------------------------------------------------------------------------
# --set overrides
# --------------------------------------------------------------------------


@pytest.mark.parametrize("item, key, value", [
    ("run.samples=10", ("run", "samples"), 10),
    ("dynamics.epsilon=1e-4", ("dynamics", "epsilon"), 1e-4),
    ("dynamics.epsilon=-inf", ("dynamics", "epsilon"), -math.inf),
    ("run.compare_dense=false", ("run", "compare_dense"), False),
    ("output.figures=true", ("output", "figures"), True),
    ("network.sizes=[784, 100, 10]", ("network", "sizes"), [784, 100, 10]),
    ('description="a b = c"', ("description",), "a b = c"),
    ("description=two words", ("description",), "two words"),   # not TOML: taken as a string
    ("network.activation=tanh", ("network", "activation"), "tanh"),
    ("input.data_dir=/data/fashion", ("input", "data_dir"), "/data/fashion"),
    ("description=", ("description",), ""),
    ("description=[1,", ("description",), "[1,"),
    ("description=1\nx = 2", ("description",), "1\nx = 2"),     # two TOML statements: not one value
    ("run.seed=" + "9" * 5000, ("run", "seed"), "9" * 5000),    # too long for tomllib: a string
    ("run.seed = 3 ", ("run", "seed"), 3),                      # spaces around key and value
    (" run . seed=3", ("run", "seed"), 3),
    ("learning.rate.schedule={kind = \"cosine\"}", ("learning", "rate", "schedule"), {"kind": "cosine"}),
    ("a.b.c=2024-01-02", ("a", "b", "c"), datetime.date(2024, 1, 2)),
    ("run.samples=1 # comment", ("run", "samples"), 1),
])
def test_apply_overrides_values(item, key, value):
    base = small_doc()
    doc = apply_overrides(base, [item])
    target = doc
    for part in key:
        target = target[part]
    assert target == value and type(target) is type(value)
    assert base == small_doc()  # the input document is not changed


def test_apply_overrides_keeps_other_keys_and_applies_in_order():
    doc = apply_overrides(small_doc(), ["run.samples=3", "run.seed=2", "run.samples=4"])
    assert doc["run"] == {"samples": 4, "seed": 2}
    assert doc["network"] == small_doc()["network"]
    assert apply_overrides(small_doc(), []) == small_doc()
    assert apply_overrides(small_doc(), "run.samples=5")["run"]["samples"] == 5  # one string: one override


@pytest.mark.parametrize("item", ["novalue", "=3", " =3", "a..b=1", ".a=1", "a.=1", "a. .b=1", ""])
def test_apply_overrides_malformed(item):
    with pytest.raises(ScenarioError) as info:
        apply_overrides(small_doc(), [item])
    assert str(info.value) == f"--set {item!r}: expected key.path=value, e.g. run.samples=10"


@pytest.mark.parametrize("item, blocker", [
    ("description.x=1", "description"),
    ("run.samples.x=1", "run.samples"),
    ("network.inputs.a.b=1", "network.inputs"),
])
def test_apply_overrides_through_a_non_table(item, blocker):
    with pytest.raises(ScenarioError) as info:
        apply_overrides(small_doc(), [item])
    assert str(info.value) == f"--set {item!r}: {blocker} is not a table"


def test_overrides_are_validated_with_the_file_path(tmp_path):
    path = write(tmp_path, SMALL)
    assert load_scenario(path, ["run.samples=3", "dynamics.scheduler=heap"]).run.samples == 3
    assert load_error(path, ["run.samples=0"]).startswith(f"{path}: run.samples: ")
    assert load_error(path, ["run.sample=3"]).startswith(f"{path}: run.sample: unknown key; did you mean 'samples'?")
    assert load_error(path, ["run.seed=" + "9" * 5000]).startswith(f"{path}: run.seed: ")
    assert load_error(path, ["novalue"]) == "--set 'novalue': expected key.path=value, e.g. run.samples=10"


# --------------------------------------------------------------------------
# dump_scenario: the resolved scenario, as TOML
# --------------------------------------------------------------------------


@pytest.mark.parametrize("name", sorted(bundled_scenarios()))
def test_dump_round_trips_every_bundled_scenario(name):
    original = load_scenario(bundled_scenarios()[name])
    text = dump_scenario(original)
    assert parse_scenario(tomllib.loads(text)) == original
    # every default is written, so the dump no longer depends on the defaults (or on run.seed)
    doc = tomllib.loads(text)
    if doc["dynamics"]["mode"] == "spiking":
        assert {"run", "output", "monitors", "neuron"} <= set(doc) and "seed" in doc["network"]
        assert {"duration_s", "checkpoint_seconds"} <= set(doc["run"]) and "dt_ms" in doc["dynamics"]
        return
    if doc["dynamics"]["mode"] == "stream":
        assert {"model", "run", "serve", "output"} <= set(doc) and "seed" in doc["stream"]
        assert {"chunk_frames", "checkpoint_seconds"} <= set(doc["run"]) and "scheduler" in doc["dynamics"]
        return
    assert {"run", "output", "flops", "dynamics"} <= set(doc) and "seed" in doc["network"]
    assert ("samples" in doc["run"]) != ("learning" in doc) and "checkpoint_seconds" in doc["run"]


def _variants(tmp_path):
    sp.save_npz(tmp_path / "w.npz", _weights())
    yield {"generator": "layered", "sizes": [16, 8, 4], "feedback": True, "density": 0.5, "seed": 3}, {}
    yield {"generator": "random_sparse", "neurons": 40, "inputs": 16, "density": 0.2, "weight_scale": 0.3}, \
        {"output": {"save_states": True, "figures": False}}
    yield {"generator": "file", "path": "w.npz", "inputs": 4, "activation": "clipped_relu"}, \
        {"run": {"samples": 2, "seed": 12, "compare_dense": False, "checkpoint_seconds": 0.5}}


def test_dump_round_trips_non_default_scenarios(tmp_path):
    for network, extra in _variants(tmp_path):
        doc = small_doc()
        doc["network"] = network
        doc["dynamics"].update(max_updates=1000, scheduler="heap")
        doc.update(extra)
        original = parse_scenario(doc, base_dir=tmp_path)
        assert parse_scenario(tomllib.loads(dump_scenario(original))) == original


def test_dump_omits_unset_values_and_writes_the_header():
    sc = parse_scenario(small_doc())
    text = dump_scenario(sc, header="resolved by eventhorizon 0.1.0\nsecond line")
    assert text.startswith("# resolved by eventhorizon 0.1.0\n# second line\n")
    doc = tomllib.loads(text)
    assert "max_updates" not in doc["dynamics"] and "epochs" not in doc["run"] and "learning" not in doc


# --------------------------------------------------------------------------
# resolve_scenario: a path or a bundled name
# --------------------------------------------------------------------------


def test_resolve_by_name():
    assert resolve_scenario("quickstart") == bundled_scenarios()["quickstart"]
    assert resolve_scenario("fashion_settle").name == "fashion_settle.toml"


def test_resolve_by_path(tmp_path, monkeypatch):
    path = write(tmp_path, SMALL)
    assert resolve_scenario(path) == path and resolve_scenario(str(path)) == path
    odd = write(tmp_path, SMALL, name="quickstart")  # an existing file wins over a bundled name
    monkeypatch.chdir(tmp_path)
    assert resolve_scenario("quickstart") == Path("quickstart") and Path("quickstart").resolve() == odd
    # something that looks like a path is a path, existing or not (loading then says which file is missing)
    assert resolve_scenario("missing.toml") == Path("missing.toml")
    assert resolve_scenario("sub/missing") == Path("sub/missing")


def test_resolve_unknown_name_did_you_mean():
    with pytest.raises(ScenarioError) as info:
        resolve_scenario("quickstrat")
    msg = str(info.value)
    assert msg.startswith("quickstrat: no such scenario file or bundled scenario")
    assert "did you mean 'quickstart'?" in msg and "fashion_settle" in msg
    with pytest.raises(ScenarioError) as info:
        resolve_scenario("zzzzzz")
    assert "did you mean" not in str(info.value) and "quickstart" in str(info.value)


def test_resolve_impossible_names():
    with pytest.raises(ScenarioError, match="no such scenario file"):
        resolve_scenario("a" * 5000)  # too long for the file system: still just "not found"


# --------------------------------------------------------------------------
# builders
# --------------------------------------------------------------------------


def _arrays_equal(g1, g2):
    return (g1.n == g2.n and np.array_equal(g1.indptr, g2.indptr) and np.array_equal(g1.indices, g2.indices)
            and np.array_equal(g1.weights, g2.weights))


def test_build_input_recurrent():
    doc = small_doc()
    doc["network"].update(activation="hard_sigmoid", seed=3, recurrent_density=0.5)
    sec = parse_scenario(doc).network
    net = build_network(sec)
    assert isinstance(net, RateNetwork)
    assert (net.n, net.n_inputs, net.model.name) == (48, 16, "hard_sigmoid")
    assert list(net.input_ids) == list(range(16))
    assert _arrays_equal(net.graph, generators.input_recurrent(16, 32, 0.5, 3, recurrent_density=0.5))
    assert net.contraction == pytest.approx(0.5, abs=1e-4)


def test_build_uses_the_defaulted_seed():
    doc = small_doc()
    doc["run"]["seed"] = 6
    net = build_network(parse_scenario(doc).network)
    assert _arrays_equal(net.graph, generators.input_recurrent(16, 32, 0.5, 6))


@pytest.mark.parametrize("feedback", [False, True])
def test_build_layered(feedback):
    doc = small_doc()
    doc["network"] = {"generator": "layered", "sizes": [16, 8], "feedback": feedback, "density": 0.7, "seed": 2,
                      "activation": "clipped_relu"}
    net = build_network(parse_scenario(doc).network)
    assert (net.n, net.n_inputs, net.model.name) == (24, 16, "clipped_relu")
    assert _arrays_equal(net.graph, generators.layered([16, 8], 2, feedback=feedback, density=0.7))


def test_build_layered_with_one_density_per_block():
    doc = small_doc()
    doc["network"] = {"generator": "layered", "sizes": [16, 8, 4], "feedback": False, "density": [0.3, 0.9],
                      "seed": 2, "activation": "hard_sigmoid"}
    section = parse_scenario(doc).network
    assert section.block_densities() == [0.3, 0.9]
    net = build_network(section)
    assert _arrays_equal(net.graph, generators.layered([16, 8, 4], 2, feedback=False, density=[0.3, 0.9]))


@pytest.mark.parametrize("density, distribution, message", [
    ([0.5], "uniform", "one fraction per layer-to-next-layer block (2 for sizes [16, 8, 4]), got 1"),
    ([0.5, 0.5], "erdos_renyi", "shares a single density"),
    ([0.5, 1.5], "uniform", "network.density"),
])
def test_bad_per_block_density_is_named(density, distribution, message):
    doc = small_doc()
    doc["network"] = {"generator": "layered", "sizes": [16, 8, 4], "density": density,
                      "density_distribution": distribution}
    assert message in error_of(doc)


def test_build_layered_deep_is_network_or_scenario_error():
    # ≥3 layers of Glorot weights have ‖W_free‖₂ > 1 (see report): at least never a raw exception
    doc = small_doc()
    doc["network"] = {"generator": "layered", "sizes": [16, 32, 10]}
    try:
        net = build_network(parse_scenario(doc).network)
    except ScenarioError as exc:
        assert str(exc).startswith("network: ") and "contractive" in str(exc)
    else:
        assert net.n == 58


def test_build_random_sparse():
    doc = small_doc()
    doc["network"] = {"generator": "random_sparse", "neurons": 60, "inputs": 16, "density": 0.2,
                      "weight_scale": 0.3, "seed": 4}
    net = build_network(parse_scenario(doc).network)
    assert (net.n, net.n_inputs) == (60, 16)
    assert _arrays_equal(net.graph, generators.random_sparse(60, 0.2, 4, weight_scale=0.3))


def test_build_network_non_contractive_is_scenario_error():
    doc = small_doc()
    doc["network"] = {"generator": "random_sparse", "neurons": 60, "inputs": 16, "density": 0.5,
                      "weight_scale": 5.0}
    with pytest.raises(ScenarioError, match="^network: weights are not contractive"):
        build_network(parse_scenario(doc).network)


def test_build_generated_inputs():
    doc = small_doc()
    doc["input"].update(density=0.3, seed=9)
    doc["run"]["samples"] = 7
    sc = parse_scenario(doc)
    x = build_inputs(sc.input, 16, sc.run.samples)
    assert x.shape == (7, 16) and x.dtype == np.float32
    np.testing.assert_array_equal(x, generated_inputs(7, 16, 9, density=0.3))
    assert np.all((x >= 0) & (x <= 1))


def test_build_generated_inputs_default_seed():
    doc = small_doc()
    doc["run"]["seed"] = 4
    sc = parse_scenario(doc)
    np.testing.assert_array_equal(build_inputs(sc.input, 16, 3), generated_inputs(3, 16, 5, density=0.5))


def test_build_fashion_inputs_missing_dir(tmp_path):
    sec = FashionMnistInput(source="fashion_mnist", data_dir=str(tmp_path / "nowhere"))
    with pytest.raises(ScenarioError) as info:
        build_inputs(sec, 784, 3)
    msg = str(info.value)
    assert msg.startswith("input: ") and INSTALL_CMD in msg and "nowhere" in msg


@pytest.mark.skipif(not fashion_mnist_available(), reason=f"Fashion-MNIST not installed (`{INSTALL_CMD}`)")
def test_build_fashion_inputs():
    sc = load_scenario(FASHION)
    x = build_inputs(sc.input, 784, 5)
    assert x.shape == (5, 784) and x.dtype == np.float32 and x.flags.c_contiguous
    assert 0 <= x.min() and x.max() <= 1 and x.max() > 0


def test_float_edge_values_reported_not_raised():
    doc = small_doc()
    doc["network"]["spectral_norm"] = math.inf
    assert "network.spectral_norm" in error_of(doc)
