"""Tests for eventhorizon.datasets (IDX I/O, Fashion-MNIST, synthetic inputs)."""

from __future__ import annotations

import gzip
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from eventhorizon import datasets
from eventhorizon.datasets import (
    DATA_DIR_ENV,
    DEFAULT_FASHION_MNIST_DIR,
    FASHION_MNIST_CLASSES,
    Dataset,
    DatasetError,
    fashion_mnist_available,
    generated_inputs,
    load_fashion_mnist,
    read_idx,
    resolve_data_dir,
    write_idx,
)

IDX_DTYPES = ["uint8", "int8", "int16", "int32", "float32", "float64"]
INSTALL_CMD = "apt-get install -y dataset-fashion-mnist"

requires_real_data = pytest.mark.skipif(
    not fashion_mnist_available(),
    reason=(
        "real Fashion-MNIST not found (install with "
        f"`{INSTALL_CMD}` or set {DATA_DIR_ENV})"
    ),
)


def idx_bytes(code: int, shape: tuple[int, ...], data: bytes) -> bytes:
    """Hand-build an IDX file independently of write_idx."""
    dims = b"".join(s.to_bytes(4, "big") for s in shape)
    return bytes([0, 0, code, len(shape)]) + dims + data


def make_split(
    directory: Path,
    prefix: str,
    n: int,
    *,
    n_labels: int | None = None,
    gz: bool = True,
    seed: int = 0,
) -> tuple[np.ndarray, np.ndarray]:
    """Write a small fake Fashion-MNIST split; return (images, labels)."""
    rng = np.random.default_rng(seed)
    images = rng.integers(0, 256, size=(n, 28, 28), dtype=np.uint8)
    images[0, 0, 0], images[0, 0, 1] = 0, 255
    labels = (np.arange(n if n_labels is None else n_labels) % 10).astype(np.uint8)
    suffix = ".gz" if gz else ""
    write_idx(directory / f"{prefix}-images-idx3-ubyte{suffix}", images)
    write_idx(directory / f"{prefix}-labels-idx1-ubyte{suffix}", labels)
    return images, labels


# --------------------------------------------------------------------------
# IDX round trips
# --------------------------------------------------------------------------


@settings(max_examples=60, deadline=None)
@given(
    arr=hnp.arrays(
        dtype=st.sampled_from(IDX_DTYPES).map(np.dtype),
        shape=hnp.array_shapes(min_dims=1, max_dims=4, min_side=0, max_side=5),
    ),
    gz=st.booleans(),
    big_endian_input=st.booleans(),
)
def test_round_trip_every_dtype(
    tmp_path_factory: pytest.TempPathFactory,
    arr: np.ndarray,
    gz: bool,
    big_endian_input: bool,
) -> None:
    path = tmp_path_factory.mktemp("rt") / ("a.idx.gz" if gz else "a.idx")
    source = arr.astype(arr.dtype.newbyteorder(">")) if big_endian_input else arr
    write_idx(path, source)
    out = read_idx(path)
    assert out.shape == arr.shape
    assert out.dtype == arr.dtype
    assert out.dtype.isnative
    assert out.flags.writeable
    np.testing.assert_array_equal(out, arr)  # NaNs compare equal here


@pytest.mark.parametrize(
    ("dtype", "code"),
    [("uint8", 8), ("int8", 9), ("int16", 11), ("int32", 12),
     ("float32", 13), ("float64", 14)],
)
def test_write_idx_header_and_big_endian_data(
    tmp_path: Path, dtype: str, code: int
) -> None:
    arr = np.array([[1, 2, 3], [4, 5, 6]], dtype=dtype)
    write_idx(tmp_path / "x", arr)
    raw = (tmp_path / "x").read_bytes()
    big_endian = arr.astype(arr.dtype.newbyteorder(">")).tobytes()
    assert raw == idx_bytes(code, (2, 3), big_endian)


def test_read_hand_built_int32(tmp_path: Path) -> None:
    data = b"".join(v.to_bytes(4, "big", signed=True) for v in (-1, 2, 70000))
    (tmp_path / "x").write_bytes(idx_bytes(0x0C, (3,), data))
    out = read_idx(tmp_path / "x")
    assert out.dtype == np.int32 and out.dtype.isnative
    assert out.tolist() == [-1, 2, 70000]


def test_gzip_written_for_gz_suffix_only(tmp_path: Path) -> None:
    arr = np.arange(10, dtype=np.uint8)
    write_idx(tmp_path / "a.gz", arr)
    write_idx(tmp_path / "a", arr)
    assert (tmp_path / "a.gz").read_bytes()[:2] == b"\x1f\x8b"
    assert (tmp_path / "a").read_bytes()[:4] == b"\x00\x00\x08\x01"
    np.testing.assert_array_equal(read_idx(tmp_path / "a.gz"), arr)
    np.testing.assert_array_equal(read_idx(tmp_path / "a"), arr)


def test_gzip_detected_by_magic_not_name(tmp_path: Path) -> None:
    arr = np.arange(12, dtype=np.int16).reshape(3, 4)
    write_idx(tmp_path / "real.gz", arr)
    disguised = tmp_path / "no-suffix-idx2-ubyte"
    disguised.write_bytes((tmp_path / "real.gz").read_bytes())
    np.testing.assert_array_equal(read_idx(disguised), arr)
    # and a raw file named .gz is read as raw
    write_idx(tmp_path / "raw", arr)
    fake_gz = tmp_path / "fake.gz"
    fake_gz.write_bytes((tmp_path / "raw").read_bytes())
    np.testing.assert_array_equal(read_idx(fake_gz), arr)


def test_write_idx_rejects_unsupported_dtype(tmp_path: Path) -> None:
    for dtype in ("uint16", "int64", "float16", "bool", "complex64"):
        with pytest.raises(ValueError, match=dtype):
            write_idx(tmp_path / "x", np.zeros(3, dtype=dtype))
    assert not (tmp_path / "x").exists()


# --------------------------------------------------------------------------
# IDX errors
# --------------------------------------------------------------------------


@pytest.mark.parametrize("gz", [False, True])
def test_truncated_data(tmp_path: Path, gz: bool) -> None:
    raw = idx_bytes(0x08, (3, 28, 28), bytes(100))
    path = tmp_path / "t.idx"
    path.write_bytes(gzip.compress(raw) if gz else raw)
    with pytest.raises(DatasetError) as info:
        read_idx(path)
    msg = str(info.value)
    assert str(path) in msg
    assert "3×28×28 = 2352 bytes of data, file has 100" in msg


def test_extra_bytes(tmp_path: Path) -> None:
    path = tmp_path / "x"
    path.write_bytes(idx_bytes(0x0B, (2,), bytes(4) + b"junk"))
    with pytest.raises(DatasetError, match="size mismatch") as info:
        read_idx(path)
    assert "2 × 2-byte int16 = 4 bytes of data, file has 8" in str(info.value)


def test_truncated_header(tmp_path: Path) -> None:
    path = tmp_path / "x"
    path.write_bytes(bytes([0, 0, 8, 3]) + (5).to_bytes(4, "big"))
    with pytest.raises(DatasetError, match="truncated header") as info:
        read_idx(path)
    assert str(path) in str(info.value)


def test_truncated_gzip_stream(tmp_path: Path) -> None:
    blob = gzip.compress(idx_bytes(0x08, (50,), bytes(range(50))))
    path = tmp_path / "x.gz"
    path.write_bytes(blob[: len(blob) // 2])
    with pytest.raises(DatasetError, match="gzip") as info:
        read_idx(path)
    assert str(path) in str(info.value)


@pytest.mark.parametrize(
    "content", [b"PK\x03\x04rest", b"\x01\x00\x08\x01", b"", b"\x00"]
)
def test_bad_magic(tmp_path: Path, content: bytes) -> None:
    path = tmp_path / "train-images-idx3-ubyte.gz"
    path.write_bytes(content)
    with pytest.raises(DatasetError) as info:
        read_idx(path)
    msg = str(info.value)
    assert msg.startswith(f"{path}: expected IDX magic 0x0000 followed by a dtype code")
    assert repr(content[:4]) in msg


def test_unknown_dtype_code(tmp_path: Path) -> None:
    path = tmp_path / "x"
    path.write_bytes(idx_bytes(0x0A, (1,), b"\x00"))
    with pytest.raises(DatasetError, match="unknown IDX dtype code 0x0A") as info:
        read_idx(path)
    assert str(path) in str(info.value)


def test_missing_file_names_path(tmp_path: Path) -> None:
    path = tmp_path / "nowhere" / "t10k-labels-idx1-ubyte"
    with pytest.raises(DatasetError) as info:
        read_idx(path)
    assert str(path) in str(info.value)
    assert isinstance(info.value, ValueError)


def test_directory_instead_of_file(tmp_path: Path) -> None:
    with pytest.raises(DatasetError, match=str(tmp_path)):
        read_idx(tmp_path)


# --------------------------------------------------------------------------
# Data directory resolution
# --------------------------------------------------------------------------


def test_resolve_data_dir_precedence(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv(DATA_DIR_ENV, raising=False)
    assert resolve_data_dir() == Path(DEFAULT_FASHION_MNIST_DIR)
    assert DEFAULT_FASHION_MNIST_DIR == "/usr/share/datasets/fashion-mnist"
    monkeypatch.setenv(DATA_DIR_ENV, str(tmp_path / "env"))
    assert resolve_data_dir() == tmp_path / "env"
    assert resolve_data_dir(tmp_path / "arg") == tmp_path / "arg"
    assert resolve_data_dir(str(tmp_path / "arg")) == tmp_path / "arg"
    monkeypatch.setenv(DATA_DIR_ENV, "")
    assert resolve_data_dir() == Path(DEFAULT_FASHION_MNIST_DIR)


def test_env_var_used_by_loader(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    images, labels = make_split(tmp_path, "t10k", 5)
    monkeypatch.setenv(DATA_DIR_ENV, str(tmp_path))
    ds = load_fashion_mnist()
    assert ds.split == "test"
    assert ds.source == str(tmp_path)
    assert ds.labels.tolist() == labels.tolist()


# --------------------------------------------------------------------------
# load_fashion_mnist on fake data
# --------------------------------------------------------------------------


@pytest.mark.parametrize("gz", [True, False])
@pytest.mark.parametrize(("split", "prefix"), [("train", "train"), ("test", "t10k")])
def test_load_fake_split(tmp_path: Path, gz: bool, split: str, prefix: str) -> None:
    images, labels = make_split(tmp_path, prefix, 7, gz=gz)
    ds = load_fashion_mnist(split, data_dir=tmp_path)
    assert isinstance(ds, Dataset)
    assert len(ds) == 7
    assert ds.images.shape == (7, 784) and ds.images.dtype == np.float32
    assert ds.labels.shape == (7,) and ds.labels.dtype == np.int64
    assert ds.images.min() == 0.0 and ds.images.max() == 1.0
    np.testing.assert_allclose(ds.images, images.reshape(7, 784) / 255.0, rtol=1e-6)
    assert ds.labels.tolist() == labels.tolist()
    assert (ds.split, ds.source) == (split, str(tmp_path))


def test_dataset_is_frozen(tmp_path: Path) -> None:
    make_split(tmp_path, "t10k", 2)
    ds = load_fashion_mnist(data_dir=tmp_path)
    with pytest.raises(AttributeError):
        ds.split = "train"  # type: ignore[misc]


def test_gz_preferred_when_both_exist(tmp_path: Path) -> None:
    make_split(tmp_path, "t10k", 4, gz=True)
    make_split(tmp_path, "t10k", 6, gz=False)
    assert len(load_fashion_mnist(data_dir=tmp_path)) == 4


def test_limit(tmp_path: Path) -> None:
    images, labels = make_split(tmp_path, "t10k", 9)
    ds = load_fashion_mnist(data_dir=tmp_path, limit=3)
    assert ds.images.shape == (3, 784)
    assert ds.labels.tolist() == labels[:3].tolist()
    assert len(load_fashion_mnist(data_dir=tmp_path, limit=100)) == 9
    assert len(load_fashion_mnist(data_dir=tmp_path, limit=np.int64(2))) == 2


@pytest.mark.parametrize("limit", [0, -1, 2.5, True, "3"])
def test_limit_validation(tmp_path: Path, limit: object) -> None:
    make_split(tmp_path, "t10k", 3)
    with pytest.raises(ValueError, match="limit"):
        load_fashion_mnist(data_dir=tmp_path, limit=limit)  # type: ignore[arg-type]


@pytest.mark.parametrize("split", ["t10k", "validation", "Test", ""])
def test_split_validation(tmp_path: Path, split: str) -> None:
    with pytest.raises(ValueError, match="split") as info:
        load_fashion_mnist(split, data_dir=tmp_path)
    assert not isinstance(info.value, DatasetError)
    assert "'train'" in str(info.value) and "'test'" in str(info.value)


def test_count_mismatch(tmp_path: Path) -> None:
    make_split(tmp_path, "t10k", 5, n_labels=4)
    with pytest.raises(DatasetError, match="count mismatch") as info:
        load_fashion_mnist(data_dir=tmp_path)
    msg = str(info.value)
    assert "5 images" in msg and "4 labels" in msg
    assert "t10k-images-idx3-ubyte.gz" in msg and "t10k-labels-idx1-ubyte.gz" in msg


def test_missing_directory_error(tmp_path: Path) -> None:
    missing = tmp_path / "no-such-dir"
    with pytest.raises(DatasetError) as info:
        load_fashion_mnist("train", data_dir=missing)
    msg = str(info.value)
    assert str(missing) in msg
    assert "does not exist" in msg
    assert "train-images-idx3-ubyte" in msg and "train-labels-idx1-ubyte" in msg
    assert INSTALL_CMD in msg
    assert DATA_DIR_ENV in msg


def test_missing_labels_file_error(tmp_path: Path) -> None:
    make_split(tmp_path, "t10k", 3)
    (tmp_path / "t10k-labels-idx1-ubyte.gz").unlink()
    with pytest.raises(DatasetError) as info:
        load_fashion_mnist(data_dir=tmp_path)
    msg = str(info.value)
    assert str(tmp_path) in msg and "t10k-labels-idx1-ubyte" in msg
    assert INSTALL_CMD in msg and DATA_DIR_ENV in msg
    assert not fashion_mnist_available(tmp_path)


def test_wrong_image_shape_and_dtype(tmp_path: Path) -> None:
    make_split(tmp_path, "t10k", 3)
    path = tmp_path / "t10k-images-idx3-ubyte.gz"
    for bad in (np.zeros((3, 28, 27), np.uint8), np.zeros((3, 784), np.uint8),
                np.zeros((3, 28, 28), np.float32)):
        write_idx(path, bad)
        with pytest.raises(DatasetError, match="28, 28") as info:
            load_fashion_mnist(data_dir=tmp_path)
        assert str(path) in str(info.value)


def test_wrong_labels(tmp_path: Path) -> None:
    make_split(tmp_path, "t10k", 3)
    path = tmp_path / "t10k-labels-idx1-ubyte.gz"
    write_idx(path, np.zeros((3, 1), np.uint8))
    with pytest.raises(DatasetError, match="1-D uint8 labels"):
        load_fashion_mnist(data_dir=tmp_path)
    write_idx(path, np.array([0, 10, 2], np.uint8))
    with pytest.raises(DatasetError, match="labels in 0..9"):
        load_fashion_mnist(data_dir=tmp_path)


def test_fashion_mnist_available(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert not fashion_mnist_available(tmp_path / "missing")
    make_split(tmp_path, "t10k", 2)
    assert not fashion_mnist_available(tmp_path)  # train split still missing
    make_split(tmp_path, "train", 2, gz=False)
    assert fashion_mnist_available(tmp_path)
    monkeypatch.setenv(DATA_DIR_ENV, str(tmp_path))
    assert fashion_mnist_available()


def test_class_names() -> None:
    assert len(FASHION_MNIST_CLASSES) == 10
    assert FASHION_MNIST_CLASSES[0] == "T-shirt/top"
    assert FASHION_MNIST_CLASSES[9] == "Ankle boot"


def test_public_api() -> None:
    for name in datasets.__all__:
        assert hasattr(datasets, name), name
        obj = getattr(datasets, name)
        if callable(obj):
            assert obj.__doc__ and "Examples" in obj.__doc__, name


# --------------------------------------------------------------------------
# Real data (skipped when absent)
# --------------------------------------------------------------------------


@requires_real_data
def test_real_fashion_mnist_test_split() -> None:
    ds = load_fashion_mnist("test", limit=100)
    assert ds.images.shape == (100, 784) and ds.images.dtype == np.float32
    assert ds.labels.shape == (100,) and ds.labels.dtype == np.int64
    assert 0.0 <= ds.images.min() and ds.images.max() <= 1.0
    assert ds.images.max() > 0.5
    assert 0 <= ds.labels.min() and ds.labels.max() <= 9
    assert len(np.unique(ds.labels)) > 1


@requires_real_data
def test_real_fashion_mnist_full_sizes() -> None:
    assert len(load_fashion_mnist("train")) == 60000
    assert len(load_fashion_mnist("test")) == 10000


# --------------------------------------------------------------------------
# generated_inputs
# --------------------------------------------------------------------------


def test_generated_inputs_deterministic() -> None:
    a = generated_inputs(20, 30, seed=7)
    np.testing.assert_array_equal(a, generated_inputs(20, 30, seed=7))
    assert not np.array_equal(a, generated_inputs(20, 30, seed=8))
    assert a.shape == (20, 30) and a.dtype == np.float32


@settings(max_examples=40, deadline=None)
@given(
    n_samples=st.integers(1, 20),
    n_inputs=st.integers(1, 20),
    seed=st.integers(0, 2**32),
    density=st.floats(1e-6, 1.0),
)
def test_generated_inputs_range(
    n_samples: int, n_inputs: int, seed: int, density: float
) -> None:
    x = generated_inputs(n_samples, n_inputs, seed, density)
    assert x.shape == (n_samples, n_inputs) and x.dtype == np.float32
    assert ((x >= 0) & (x <= 1)).all()


@pytest.mark.parametrize("density", [0.1, 0.5, 0.9])
def test_generated_inputs_density(density: float) -> None:
    x = generated_inputs(200, 500, seed=3, density=density)
    assert abs((x > 0).mean() - density) < 0.01
    nonzero = x[x > 0]
    assert abs(nonzero.mean() - 0.5) < 0.01


def test_generated_inputs_full_density() -> None:
    x = generated_inputs(50, 50, seed=0, density=1.0)
    assert (x > 0).all() and (x <= 1).all()


@pytest.mark.parametrize(
    ("kwargs", "name"),
    [
        ({"n_samples": 0}, "n_samples"),
        ({"n_samples": -3}, "n_samples"),
        ({"n_samples": 2.0}, "n_samples"),
        ({"n_samples": True}, "n_samples"),
        ({"n_inputs": 0}, "n_inputs"),
        ({"n_inputs": "4"}, "n_inputs"),
        ({"seed": -1}, "seed"),
        ({"seed": 1.5}, "seed"),
        ({"seed": None}, "seed"),
        ({"density": 0.0}, "density"),
        ({"density": 1.01}, "density"),
        ({"density": -0.5}, "density"),
        ({"density": float("nan")}, "density"),
        ({"density": "0.5"}, "density"),
    ],
)
def test_generated_inputs_validation(kwargs: dict[str, object], name: str) -> None:
    args: dict[str, object] = {"n_samples": 2, "n_inputs": 3, "seed": 0, "density": 0.5}
    args.update(kwargs)
    with pytest.raises(ValueError, match=name):
        generated_inputs(**args)  # type: ignore[arg-type]
