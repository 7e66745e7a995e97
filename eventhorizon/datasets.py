"""Local datasets: an IDX reader/writer, Fashion-MNIST and synthetic stimuli.

Everything here reads files that are already on disk; nothing downloads
anything.  Fashion-MNIST is looked up in, in order, an explicit directory
argument, the ``EVENTHORIZON_FASHION_MNIST`` environment variable and
``/usr/share/datasets/fashion-mnist`` (where Debian's
``apt-get install dataset-fashion-mnist`` puts the files).

The IDX format (used by MNIST and Fashion-MNIST) is a 4-byte magic number --
two zero bytes, a dtype code byte and a byte giving the number of
dimensions -- followed by one big-endian ``uint32`` per dimension and then the
raw, big-endian, C-ordered data.
"""

from __future__ import annotations

__all__ = [
    "DATA_DIR_ENV",
    "DEFAULT_FASHION_MNIST_DIR",
    "FASHION_MNIST_CLASSES",
    "Dataset",
    "DatasetError",
    "fashion_mnist_available",
    "generated_inputs",
    "load_fashion_mnist",
    "read_idx",
    "resolve_data_dir",
    "write_idx",
]

import gzip
import math
import operator
import os
import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from numpy.typing import ArrayLike

StrPath = str | os.PathLike[str]

DATA_DIR_ENV = "EVENTHORIZON_FASHION_MNIST"
DEFAULT_FASHION_MNIST_DIR = "/usr/share/datasets/fashion-mnist"

FASHION_MNIST_CLASSES: tuple[str, ...] = (
    "T-shirt/top",
    "Trouser",
    "Pullover",
    "Dress",
    "Coat",
    "Sandal",
    "Shirt",
    "Sneaker",
    "Bag",
    "Ankle boot",
)

#: IDX dtype code -> big-endian numpy dtype.
_IDX_DTYPES: dict[int, np.dtype] = {
    0x08: np.dtype(">u1"),
    0x09: np.dtype(">i1"),
    0x0B: np.dtype(">i2"),
    0x0C: np.dtype(">i4"),
    0x0D: np.dtype(">f4"),
    0x0E: np.dtype(">f8"),
}
#: ``dtype.kind + itemsize`` (byte order ignored) -> IDX dtype code.
_IDX_CODES: dict[str, int] = {
    dt.kind + str(dt.itemsize): code for code, dt in _IDX_DTYPES.items()
}
_GZIP_MAGIC = b"\x1f\x8b"
_SPLIT_PREFIX = {"train": "train", "test": "t10k"}
_IMAGE_SHAPE = (28, 28)
_INSTALL_HINT = (
    "install them with `apt-get install -y dataset-fashion-mnist` or set "
    f"{DATA_DIR_ENV} to a directory holding the IDX files"
)


class DatasetError(ValueError):
    """A dataset file or directory is missing or malformed.

    The message names the offending path and says what was expected.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> from eventhorizon.datasets import DatasetError, read_idx
    >>> issubclass(DatasetError, ValueError)
    True
    >>> with tempfile.TemporaryDirectory() as tmp:
    ...     bad = pathlib.Path(tmp, "bad-idx1-ubyte")
    ...     _ = bad.write_bytes(b"PK\\x03\\x04")
    ...     try:
    ...         read_idx(bad)
    ...     except DatasetError as exc:
    ...         print(str(exc).split(": ", 1)[1])
    expected IDX magic 0x0000 followed by a dtype code, got b'PK\\x03\\x04'

    """


@dataclass(frozen=True, eq=False)
class Dataset:
    """Images and labels of one dataset split.

    Attributes
    ----------
    images : numpy.ndarray
        ``float32`` array of shape ``(n, 784)`` with values in ``[0, 1]``.
    labels : numpy.ndarray
        ``int64`` array of shape ``(n,)``.
    split : str
        ``"train"`` or ``"test"``.
    source : str
        Directory the files were read from.

    Examples
    --------
    >>> import numpy as np
    >>> from eventhorizon.datasets import Dataset
    >>> ds = Dataset(np.zeros((2, 784), np.float32), np.array([3, 7]), "test", "/tmp")
    >>> len(ds), ds.images.shape
    (2, (2, 784))
    """

    images: np.ndarray
    labels: np.ndarray
    split: str
    source: str

    def __len__(self) -> int:
        return int(self.labels.shape[0])


# --------------------------------------------------------------------------
# IDX reading and writing
# --------------------------------------------------------------------------


def _read_bytes(path: Path) -> bytes:
    """Return the (decompressed, if gzip) contents of ``path``."""
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise DatasetError(f"{path}: no such file (expected an IDX file)") from None
    except OSError as exc:
        raise DatasetError(f"{path}: cannot read IDX file: {exc}") from exc
    if not raw.startswith(_GZIP_MAGIC):
        return raw
    try:
        return gzip.decompress(raw)
    except (OSError, EOFError, zlib.error) as exc:
        raise DatasetError(f"{path}: corrupt or truncated gzip data: {exc}") from exc


def _parse_header(path: Path, data: bytes) -> tuple[np.dtype, tuple[int, ...], int]:
    """Return ``(big-endian dtype, shape, header length)`` of IDX ``data``."""
    if len(data) < 4 or data[:2] != b"\x00\x00":
        raise DatasetError(
            f"{path}: expected IDX magic 0x0000 followed by a dtype code, "
            f"got {data[:4]!r}"
        )
    code, ndim = data[2], data[3]
    if code not in _IDX_DTYPES:
        known = ", ".join(f"0x{c:02X}" for c in _IDX_DTYPES)
        raise DatasetError(
            f"{path}: unknown IDX dtype code 0x{code:02X}, expected one of {known}"
        )
    header_len = 4 + 4 * ndim
    if len(data) < header_len:
        raise DatasetError(
            f"{path}: truncated header: {ndim} dimensions need {header_len} "
            f"header bytes, file has {len(data)}"
        )
    shape = tuple(int(s) for s in np.frombuffer(data, ">u4", ndim, offset=4))
    return _IDX_DTYPES[code], shape, header_len


def _size_text(shape: tuple[int, ...], dtype: np.dtype) -> str:
    """Describe the data size implied by ``shape`` and ``dtype``."""
    dims = "×".join(str(s) for s in shape) or "scalar"
    n_bytes = math.prod(shape) * dtype.itemsize
    if dtype.itemsize == 1:
        return f"{dims} = {n_bytes} bytes of data"
    return f"{dims} × {dtype.itemsize}-byte {dtype.name} = {n_bytes} bytes of data"


def read_idx(path: StrPath) -> np.ndarray:
    """Read an IDX file, raw or gzip-compressed.

    Gzip compression is detected from the file's magic bytes (``1f 8b``),
    not from its name.

    Parameters
    ----------
    path : str or os.PathLike
        File to read.

    Returns
    -------
    numpy.ndarray
        A new, writable, native-byte-order array with the shape and dtype
        declared in the file header.

    Raises
    ------
    DatasetError
        If the file is missing or unreadable, is corrupt gzip, has a bad
        magic number or an unknown dtype code, or holds fewer or more data
        bytes than its header declares.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> import numpy as np
    >>> from eventhorizon.datasets import read_idx, write_idx
    >>> with tempfile.TemporaryDirectory() as tmp:
    ...     path = pathlib.Path(tmp, "tiny-idx2-ubyte.gz")
    ...     write_idx(path, np.arange(6, dtype=np.int16).reshape(2, 3))
    ...     arr = read_idx(path)
    >>> arr.shape, arr.dtype.name, arr.tolist()
    ((2, 3), 'int16', [[0, 1, 2], [3, 4, 5]])
    """
    path = Path(path)
    data = _read_bytes(path)
    dtype, shape, offset = _parse_header(path, data)
    expected = math.prod(shape) * dtype.itemsize
    if len(data) - offset != expected:
        raise DatasetError(
            f"{path}: size mismatch: header says {_size_text(shape, dtype)}, "
            f"file has {len(data) - offset}"
        )
    flat = np.frombuffer(data, dtype, math.prod(shape), offset=offset)
    return flat.astype(dtype.newbyteorder("=")).reshape(shape)


def _idx_code(dtype: np.dtype) -> int:
    """Return the IDX dtype code for ``dtype`` or raise ValueError."""
    code = _IDX_CODES.get(dtype.kind + str(dtype.itemsize))
    if code is None:
        supported = ", ".join(dt.name for dt in _IDX_DTYPES.values())
        raise ValueError(
            f"write_idx: unsupported dtype {dtype}; IDX supports {supported}"
        )
    return code


def write_idx(path: StrPath, array: ArrayLike) -> None:
    """Write ``array`` to an IDX file, gzip-compressed if ``path`` ends in ``.gz``.

    Parameters
    ----------
    path : str or os.PathLike
        File to write (overwritten if it exists).
    array : array_like
        Data of dtype uint8, int8, int16, int32, float32 or float64, with at
        most 255 dimensions each smaller than 2**32.

    Raises
    ------
    ValueError
        If the dtype is not representable in IDX (the message names it), or
        the shape is.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> import numpy as np
    >>> from eventhorizon.datasets import read_idx, write_idx
    >>> with tempfile.TemporaryDirectory() as tmp:
    ...     path = pathlib.Path(tmp, "labels-idx1-ubyte")
    ...     write_idx(path, np.array([3, 1, 4], dtype=np.uint8))
    ...     print(path.read_bytes()[:4].hex(), read_idx(path).tolist())
    00000801 [3, 1, 4]
    >>> write_idx("never-written", np.zeros(2, dtype=np.uint64))  # doctest: +ELLIPSIS
    Traceback (most recent call last):
        ...
    ValueError: write_idx: unsupported dtype uint64; IDX supports uint8, ...
    """
    arr = np.asarray(array)
    code = _idx_code(arr.dtype)
    if arr.ndim > 255 or any(s >= 2**32 for s in arr.shape):
        raise ValueError(f"write_idx: shape {arr.shape} cannot be stored in IDX")
    header = bytes([0, 0, code, arr.ndim]) + np.asarray(arr.shape, ">u4").tobytes()
    payload = header + arr.astype(_IDX_DTYPES[code], order="C").tobytes()
    path = Path(path)
    if path.name.endswith(".gz"):
        payload = gzip.compress(payload, mtime=0)
    path.write_bytes(payload)


# --------------------------------------------------------------------------
# Fashion-MNIST
# --------------------------------------------------------------------------


def resolve_data_dir(data_dir: StrPath | None = None) -> Path:
    """Return the Fashion-MNIST directory to use; existence is not checked.

    Parameters
    ----------
    data_dir : str or os.PathLike, optional
        Explicit directory; wins if given.  Otherwise the environment
        variable ``EVENTHORIZON_FASHION_MNIST`` is used if set and non-empty,
        else ``/usr/share/datasets/fashion-mnist``.

    Returns
    -------
    pathlib.Path

    Examples
    --------
    >>> from eventhorizon.datasets import resolve_data_dir
    >>> resolve_data_dir("/data/fashion").as_posix()
    '/data/fashion'
    """
    if data_dir is not None:
        return Path(data_dir).expanduser()
    from_env = os.environ.get(DATA_DIR_ENV)
    if from_env:
        return Path(from_env).expanduser()
    return Path(DEFAULT_FASHION_MNIST_DIR)


def _check_split(split: str) -> str:
    if split not in _SPLIT_PREFIX:
        raise ValueError(f"split must be 'train' or 'test', got {split!r}")
    return _SPLIT_PREFIX[split]


def _split_files(directory: Path, split: str) -> tuple[Path | None, Path | None]:
    """Return the (images, labels) files of ``split``; None where missing.

    A ``.gz`` file is preferred over an uncompressed one of the same name.
    """
    prefix = _check_split(split)
    found: list[Path | None] = []
    for stem in (f"{prefix}-images-idx3-ubyte", f"{prefix}-labels-idx1-ubyte"):
        candidates = (directory / f"{stem}.gz", directory / stem)
        found.append(next((p for p in candidates if p.is_file()), None))
    return found[0], found[1]


def _missing_error(directory: Path, split: str) -> DatasetError:
    prefix = _check_split(split)
    names = ", ".join(
        f"{stem}[.gz]"
        for stem in (f"{prefix}-images-idx3-ubyte", f"{prefix}-labels-idx1-ubyte")
    )
    where = (
        f"in {directory}"
        if directory.is_dir()
        else f"in {directory} (directory does not exist)"
    )
    return DatasetError(
        f"Fashion-MNIST {split} split not found: looked for {names} {where}; "
        f"{_INSTALL_HINT}"
    )


def _check_positive_int(name: str, value: object) -> int:
    if isinstance(value, bool):
        raise ValueError(f"{name} must be a positive int, got {value!r}")
    try:
        number = operator.index(value)  # type: ignore[arg-type]
    except TypeError:
        raise ValueError(f"{name} must be a positive int, got {value!r}") from None
    if number <= 0:
        raise ValueError(f"{name} must be a positive int, got {value!r}")
    return number


def _check_images(path: Path, images: np.ndarray) -> None:
    shape_ok = images.ndim == 3 and images.shape[1:] == _IMAGE_SHAPE
    if images.dtype != np.uint8 or not shape_ok:
        raise DatasetError(
            f"{path}: expected 3-D uint8 images of shape (n, 28, 28), "
            f"got {images.dtype} array of shape {images.shape}"
        )


def _check_labels(path: Path, labels: np.ndarray) -> None:
    if labels.dtype != np.uint8 or labels.ndim != 1:
        raise DatasetError(
            f"{path}: expected 1-D uint8 labels, "
            f"got {labels.dtype} array of shape {labels.shape}"
        )
    if labels.size and labels.max() >= len(FASHION_MNIST_CLASSES):
        raise DatasetError(
            f"{path}: expected labels in 0..{len(FASHION_MNIST_CLASSES) - 1}, "
            f"got {int(labels.max())}"
        )


def load_fashion_mnist(
    split: str = "test",
    data_dir: StrPath | None = None,
    limit: int | None = None,
) -> Dataset:
    """Load one split of Fashion-MNIST from local IDX files.

    The files ``{train,t10k}-images-idx3-ubyte`` and
    ``{train,t10k}-labels-idx1-ubyte`` are looked up in
    :func:`resolve_data_dir` ``(data_dir)``, each with or without a ``.gz``
    suffix; if both forms exist the ``.gz`` file is used.

    Parameters
    ----------
    split : {"test", "train"}
        Which split to load (``t10k-*`` or ``train-*`` files).
    data_dir : str or os.PathLike, optional
        Directory holding the files; see :func:`resolve_data_dir`.
    limit : int, optional
        Keep only the first ``limit`` samples (all of them if ``limit`` is
        larger than the split).  Must be a positive int or None.

    Returns
    -------
    Dataset
        ``images`` as float32 ``(n, 784)`` in ``[0, 1]``, ``labels`` as
        int64 ``(n,)``.

    Raises
    ------
    ValueError
        If ``split`` or ``limit`` is invalid.
    DatasetError
        If the directory or files are missing (the message says which files
        were looked for, where, and how to install them), malformed, not
        28×28 uint8 images / uint8 labels, or their counts differ.

    Examples
    --------
    >>> import tempfile
    >>> import numpy as np
    >>> from eventhorizon.datasets import load_fashion_mnist, write_idx
    >>> with tempfile.TemporaryDirectory() as tmp:
    ...     images = np.full((3, 28, 28), 255, dtype=np.uint8)
    ...     write_idx(f"{tmp}/t10k-images-idx3-ubyte.gz", images)
    ...     write_idx(f"{tmp}/t10k-labels-idx1-ubyte", np.array([9, 0, 4], np.uint8))
    ...     ds = load_fashion_mnist("test", data_dir=tmp, limit=2)
    >>> ds.images.shape, ds.images.dtype.name, float(ds.images.max())
    ((2, 784), 'float32', 1.0)
    >>> ds.labels.tolist(), ds.labels.dtype.name, ds.split
    ([9, 0], 'int64', 'test')
    """
    _check_split(split)
    if limit is not None:
        limit = _check_positive_int("limit", limit)
    directory = resolve_data_dir(data_dir)
    images_path, labels_path = _split_files(directory, split)
    if images_path is None or labels_path is None:
        raise _missing_error(directory, split)
    images, labels = read_idx(images_path), read_idx(labels_path)
    _check_images(images_path, images)
    _check_labels(labels_path, labels)
    if images.shape[0] != labels.shape[0]:
        raise DatasetError(
            f"count mismatch: {images_path} has {images.shape[0]} images "
            f"but {labels_path} has {labels.shape[0]} labels"
        )
    images, labels = images[:limit], labels[:limit]
    scaled = images.reshape(len(images), -1).astype(np.float32) / np.float32(255)
    return Dataset(scaled, labels.astype(np.int64), split, str(directory))


def fashion_mnist_available(data_dir: StrPath | None = None) -> bool:
    """Tell whether all four Fashion-MNIST files exist (contents not checked).

    Parameters
    ----------
    data_dir : str or os.PathLike, optional
        Directory to look in; see :func:`resolve_data_dir`.

    Returns
    -------
    bool
        True if the image and label files of both the train and the test
        split are present, with or without ``.gz``.

    Examples
    --------
    >>> import tempfile
    >>> from eventhorizon.datasets import fashion_mnist_available
    >>> with tempfile.TemporaryDirectory() as tmp:
    ...     fashion_mnist_available(tmp)
    False
    """
    directory = resolve_data_dir(data_dir)
    return all(
        path is not None
        for split in _SPLIT_PREFIX
        for path in _split_files(directory, split)
    )


# --------------------------------------------------------------------------
# Synthetic stimuli
# --------------------------------------------------------------------------


def generated_inputs(
    n_samples: int, n_inputs: int, seed: int, density: float = 0.5
) -> np.ndarray:
    """Generate sparse random stimuli in ``[0, 1]`` for runs without data.

    Each entry is nonzero with probability ``density``; nonzero values are
    uniform in ``(0, 1]``.  The result depends only on the arguments.

    Parameters
    ----------
    n_samples, n_inputs : int
        Output shape; positive ints.
    seed : int
        Non-negative seed for :func:`numpy.random.default_rng`.
    density : float, default 0.5
        Probability that an entry is nonzero, ``0 < density <= 1``.

    Returns
    -------
    numpy.ndarray
        float32 array of shape ``(n_samples, n_inputs)``.

    Raises
    ------
    ValueError
        If an argument is out of range; the message names it.

    Examples
    --------
    >>> import numpy as np
    >>> from eventhorizon.datasets import generated_inputs
    >>> x = generated_inputs(4, 10, seed=1, density=1.0)
    >>> x.shape, x.dtype.name, bool((x > 0).all() and (x <= 1).all())
    ((4, 10), 'float32', True)
    >>> bool(np.array_equal(x, generated_inputs(4, 10, seed=1, density=1.0)))
    True
    """
    n_samples = _check_positive_int("n_samples", n_samples)
    n_inputs = _check_positive_int("n_inputs", n_inputs)
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ValueError(f"seed must be a non-negative int, got {seed!r}")
    if isinstance(density, bool) or not isinstance(density, (int, float, np.number)):
        raise ValueError(f"density must be a number in (0, 1], got {density!r}")
    if not 0 < density <= 1:  # also rejects NaN
        raise ValueError(f"density must be in (0, 1], got {density!r}")
    rng = np.random.default_rng(seed)
    shape = (n_samples, n_inputs)
    mask = rng.random(shape) < density
    values = 1.0 - rng.random(shape)  # uniform in (0, 1]
    return np.where(mask, values, 0.0).astype(np.float32)
