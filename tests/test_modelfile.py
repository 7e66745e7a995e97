"""Tests for :mod:`eventhorizon.modelfile`: saving and loading trained EqProp models.

Corrupted files are made by editing a good file: raw byte damage (zip-level
errors), or a rewritten archive whose arrays or metadata were changed (the
loader's own checks). Every error must be a :class:`ModelFileError` whose
message names the file.
"""

import json
import os
import zipfile

import numpy as np
import pytest

from eventhorizon import modelfile
from eventhorizon.eqprop import EqPropConfig, EqPropModel
from eventhorizon.modelfile import FORMAT, FORMAT_VERSION, ModelFileError, load_model, save_model

ARRAYS = ("indptr", "indices", "weights", "bias", "velocity_w", "velocity_b")


def data(seed=0, n=24):
    rng = np.random.default_rng(seed)
    X = rng.random((n, 6)).astype(np.float32)
    labels = np.argmax(X.reshape(n, 3, 2).sum(2), axis=1)
    return X, labels


def trained_model(nudging="symmetric", momentum=0.9):
    cfg = EqPropConfig(sizes=(6, 8, 3), nudging=nudging, learning_rates=(0.1, 0.05), momentum=momentum,
                       batch_size=6, beta=0.3, epsilon=1e-4, seed=2)
    model = EqPropModel(cfg, bias=np.random.default_rng(1).normal(0, 0.1, sum(cfg.sizes)))
    X, labels = data()
    for s in range(0, len(labels), 6):
        model.train_batch(X[s:s + 6], labels[s:s + 6])
    return model


@pytest.fixture(scope="module")
def model():
    return trained_model()


@pytest.fixture
def saved(tmp_path, model):
    path = tmp_path / "model.npz"
    save_model(path, model, info={"epoch": 3, "accuracy": 0.5, "history": [1, 2.5, None], "name": "ü"})
    return path


def rewrite(path, drop=(), meta=None, **arrays):
    """Rewrite the archive at ``path`` with arrays replaced/dropped and metadata edited by ``meta(dict)``."""
    with np.load(path, allow_pickle=False) as npz:
        entries = {k: npz[k] for k in npz.files}
    for name in drop:
        del entries[name]
    entries.update(arrays)
    if meta is not None:
        m = json.loads(str(entries["metadata"]))
        meta(m)
        entries["metadata"] = np.array(json.dumps(m))
    with open(path, "wb") as fh:
        np.savez(fh, **entries)


def assert_fails(path, pattern, **kw):
    with pytest.raises(ModelFileError, match=pattern) as info:
        load_model(path, **kw)
    assert str(path) in str(info.value)
    return str(info.value)


# ------------------------------------------------------------ round trip


def test_round_trip(saved, model):
    again, info = load_model(saved)
    assert info == {"epoch": 3, "accuracy": 0.5, "history": [1, 2.5, None], "name": "ü"}
    assert again.config == model.config
    for a, b in ((again.graph.indptr, model.graph.indptr), (again.graph.indices, model.graph.indices),
                 (again.graph.weights, model.graph.weights), (again.network.bias, model.network.bias),
                 (again._opt.velocity_w, model._opt.velocity_w), (again._opt.velocity_b, model._opt.velocity_b)):
        assert a.dtype == b.dtype
        np.testing.assert_array_equal(a, b)
    assert np.any(model._opt.velocity_w != 0)   # the buffers really carry something
    # the loaded model owns its arrays
    assert not np.shares_memory(again.graph.weights, model.graph.weights)
    X, labels = data(seed=5)
    np.testing.assert_array_equal(again.predict(X), model.predict(X))
    for x in X[:5]:
        np.testing.assert_array_equal(again.free_phase(x).x, model.free_phase(x).x)
    assert again.evaluate(X, labels) == model.evaluate(X, labels)


def test_round_trip_with_str_path_and_no_info(tmp_path, model):
    path = str(tmp_path / "plain")          # no suffix: the name is kept as given
    save_model(path, model)
    assert os.listdir(tmp_path) == ["plain"]
    again, info = load_model(path, expect_sizes=[6, 8, 3])
    assert info == {}
    np.testing.assert_array_equal(again.graph.weights, model.graph.weights)


def test_resumed_training_matches_uninterrupted(tmp_path):
    """Momentum buffers are saved: training on after a reload equals training straight through."""
    X, labels = data(seed=3)
    straight = trained_model(momentum=0.9)
    path = tmp_path / "m.npz"
    save_model(path, straight)
    resumed, _ = load_model(path)
    for s in range(0, len(labels), 6):
        straight.train_batch(X[s:s + 6], labels[s:s + 6])
        resumed.train_batch(X[s:s + 6], labels[s:s + 6])
    np.testing.assert_array_equal(resumed.graph.weights, straight.graph.weights)
    np.testing.assert_array_equal(resumed.network.bias, straight.network.bias)


def test_resumed_random_sign_training_matches_uninterrupted(tmp_path):
    X, labels = data(seed=3)
    straight = trained_model(nudging="random_sign", momentum=0.0)
    path = tmp_path / "m.npz"
    save_model(path, straight)
    resumed, _ = load_model(path)
    for s in range(0, len(labels), 6):
        straight.train_batch(X[s:s + 6], labels[s:s + 6])
        resumed.train_batch(X[s:s + 6], labels[s:s + 6])
    np.testing.assert_array_equal(resumed.graph.weights, straight.graph.weights)


def test_file_contents_follow_the_documented_format(saved, model):
    with zipfile.ZipFile(saved) as zf:
        assert sorted(zf.namelist()) == sorted(f"{k}.npy" for k in (*ARRAYS, "metadata"))
    with np.load(saved, allow_pickle=False) as npz:   # readable without pickle
        meta = json.loads(str(npz["metadata"]))
        for name in ARRAYS:
            assert npz[name].dtype == modelfile._ARRAYS[name]
    assert meta["format"] == FORMAT and meta["format_version"] == FORMAT_VERSION
    assert meta["n"] == model.graph.n and meta["nnz"] == model.graph.nnz
    assert meta["config"] == model.config.as_dict()
    assert set(meta["sha256"]) == set(ARRAYS)


# ---------------------------------------------------------------- atomic


def test_save_is_atomic_and_overwrites(tmp_path, model):
    path = tmp_path / "m.npz"
    save_model(path, EqPropModel(model.config))
    save_model(path, model, info={"v": 2})
    assert sorted(os.listdir(tmp_path)) == ["m.npz"]      # no .tmp left behind
    again, info = load_model(path)
    assert info == {"v": 2}
    np.testing.assert_array_equal(again.graph.weights, model.graph.weights)


def test_failed_save_keeps_the_old_file_and_leaves_no_tmp(tmp_path, model, monkeypatch):
    path = tmp_path / "m.npz"
    save_model(path, model, info={"v": 1})
    before = path.read_bytes()

    def broken_savez(fh, **arrays):
        fh.write(b"PK\x03\x04 partial")
        raise OSError("disk full")

    monkeypatch.setattr(modelfile.np, "savez", broken_savez)
    with pytest.raises(OSError, match="disk full"):
        save_model(path, model, info={"v": 2})
    monkeypatch.undo()
    assert path.read_bytes() == before
    assert sorted(os.listdir(tmp_path)) == ["m.npz"]
    with pytest.raises(TypeError):                          # info must be JSON
        save_model(path, model, info={"bad": object()})
    assert path.read_bytes() == before
    assert sorted(os.listdir(tmp_path)) == ["m.npz"]


# ---------------------------------------------------------------- errors


def test_missing_file(tmp_path):
    assert_fails(tmp_path / "nope.npz", r"no such model file")


def test_directory_instead_of_file(tmp_path):
    assert_fails(tmp_path, r"model file")


@pytest.mark.parametrize("content", [b"", b"PK", b"hello, I am not a zip archive\n" * 10, b"\x93NUMPY garbage"])
def test_not_a_zip(tmp_path, content):
    path = tmp_path / "m.npz"
    path.write_bytes(content)
    msg = assert_fails(path, r"not a model file: an .npz is a zip archive")
    assert "pickle" not in msg      # np.load's own message would suggest allow_pickle=True


def test_single_npy_array_is_not_a_model(tmp_path):
    path = tmp_path / "m.npy"
    np.save(path, np.zeros(3))
    assert_fails(path, r"not a model file")


@pytest.mark.parametrize("keep", [0.1, 0.5, 0.9, 0.999])
def test_truncated_file(saved, keep):
    raw = saved.read_bytes()
    saved.write_bytes(raw[:int(len(raw) * keep)])
    assert_fails(saved, r"(not a readable model file|corrupted model file)")


def _member_data_offset(path, member):
    with zipfile.ZipFile(path) as zf:
        info = zf.getinfo(member)
    raw = path.read_bytes()
    h = info.header_offset
    name_len, extra_len = int.from_bytes(raw[h + 26:h + 28], "little"), int.from_bytes(raw[h + 28:h + 30], "little")
    return h + 30 + name_len + extra_len, info.compress_size


def test_flipped_byte_in_an_array_is_detected(saved):
    start, size = _member_data_offset(saved, "weights.npy")
    raw = bytearray(saved.read_bytes())
    raw[start + size - 3] ^= 0x40       # inside the last weight's bytes
    saved.write_bytes(bytes(raw))
    assert_fails(saved, r"(corrupted|checksum)")


def test_edited_array_fails_its_checksum(saved):
    with np.load(saved) as npz:
        w = npz["weights"].copy()
    w[0] = np.nextafter(w[0], np.float32(np.inf))   # one ulp: a valid archive, a wrong array
    rewrite(saved, weights=w)
    msg = assert_fails(saved, r"array 'weights' does not match its checksum")
    assert "corrupted or edited" in msg


@pytest.mark.parametrize("sums", [None, "abc", [1, 2], {}])
def test_missing_or_malformed_checksums(saved, sums):
    rewrite(saved, meta=lambda m: m.update(sha256=sums))
    assert_fails(saved, r"array 'indptr' does not match its checksum")


def test_wrong_format_name(saved):
    rewrite(saved, meta=lambda m: m.update(format="something-else"))
    assert_fails(saved, r"format is 'something-else', expected 'eventhorizon-eqprop-model'")


def test_metadata_not_a_dict_or_not_json(saved):
    rewrite(saved, metadata=np.array("[1, 2]"))
    assert_fails(saved, r"format is \[1, 2\]")
    rewrite(saved, metadata=np.array("{not json"))
    assert_fails(saved, r"metadata is not valid JSON")


def test_missing_metadata(saved):
    rewrite(saved, drop=["metadata"])
    assert_fails(saved, r"no 'metadata' entry")


@pytest.mark.parametrize("version", [2, 0, "1", None])
def test_unsupported_format_version(saved, version):
    rewrite(saved, meta=lambda m: m.update(format_version=version))
    assert_fails(saved, rf"format_version {version!r} is not supported")


@pytest.mark.parametrize("name", ARRAYS)
def test_missing_array(saved, name):
    rewrite(saved, drop=[name])
    assert_fails(saved, rf"missing array '{name}'")


@pytest.mark.parametrize("name, dtype", [("weights", np.float64), ("indptr", np.int32), ("indices", np.int64),
                                         ("bias", np.float16), ("velocity_w", np.int32)])
def test_wrong_dtype(saved, name, dtype):
    with np.load(saved) as npz:
        arr = npz[name].astype(dtype)
    rewrite(saved, **{name: arr})
    assert_fails(saved, rf"array '{name}' has dtype {np.dtype(dtype)}, expected")


def test_wrong_shape_with_matching_checksum(saved):
    with np.load(saved) as npz:
        bias = np.concatenate([npz["bias"], [0.0]]).astype(np.float32)
    rewrite(saved, bias=bias, meta=lambda m: m["sha256"].update(bias=modelfile._sha256(bias)))
    assert_fails(saved, r"array 'bias' has shape \(18,\), expected \(17,\)")


def test_mismatched_expect_sizes(saved):
    load_model(saved, expect_sizes=(6, 8, 3))
    assert_fails(saved, r"model has layer sizes \[6, 8, 3\], expected \[784, 500, 10\]", expect_sizes=(784, 500, 10))


@pytest.mark.parametrize("edit, pattern", [
    (lambda c: c.update(beta=-1.0), r"invalid config in metadata: beta must be"),
    (lambda c: c.update(nudging="sideways"), r"invalid config in metadata: nudging must be one of"),
    (lambda c: c.update(learning_rates=[0.1]), r"invalid config in metadata: learning_rates needs"),
    (lambda c: c.update(unknown_field=1), r"invalid config in metadata: .*unknown_field"),
    (lambda c: c.pop("sizes"), r"invalid config in metadata: .*sizes"),
    (lambda c: c.update(activation="nope"), r"invalid config in metadata: activation must be one of"),
])
def test_invalid_config(saved, edit, pattern):
    rewrite(saved, meta=lambda m: edit(m["config"]))
    assert_fails(saved, pattern)


def test_config_missing_entirely(saved):
    rewrite(saved, meta=lambda m: m.pop("config"))
    assert_fails(saved, r"invalid config in metadata")


def test_config_that_does_not_describe_the_weights(saved):
    # same neuron count (17), different layering: the synapses no longer join adjacent layers
    rewrite(saved, meta=lambda m: m["config"].update(sizes=[8, 6, 3]))
    assert_fails(saved, r"weights do not form the model its config describes")
    rewrite(saved, meta=lambda m: m["config"].update(sizes=[6, 8, 3, 1], learning_rates=[0.1, 0.1, 0.1]))
    assert_fails(saved, r"weights do not form the model its config describes: graph has 17 neurons")
