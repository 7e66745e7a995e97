"""Model files: a trained EqProp network saved as one ``.npz`` with JSON metadata.

Format (``format = "eventhorizon-eqprop-model"``, ``format_version = 1``),
a numpy ``.npz`` archive read without pickle:

=================  ==========================================================
``indptr``         int64[n+1], CSR row pointers of ``A[pre, post]``
``indices``        int32[nnz], post-synaptic neuron of each synapse
``weights``        float32[nnz]
``bias``           float32[n]
``velocity_w``     float32[nnz], SGD momentum buffers (to resume training)
``velocity_b``     float32[n]
``metadata``       0-d string: JSON with ``format``, ``format_version``,
                   ``eventhorizon_version``, ``config`` (the
                   :class:`~eventhorizon.eqprop.EqPropConfig`), ``n``, ``nnz``,
                   ``sha256`` of every array above, and free-form ``info``
                   (e.g. epoch, accuracy), and ``rng_state`` (the
                   generator of random nudging signs, so training resumes exactly)
=================  ==========================================================

Loading checks the format, the version, every checksum, shapes and dtypes,
and that the topology is the layered one the config describes; any mismatch
raises :class:`ModelFileError` naming the file and what is wrong.
"""

import hashlib
import json
import os
from pathlib import Path

import numpy as np

from eventhorizon import __version__

__all__ = ["ModelFileError", "save_model", "load_model", "FORMAT", "FORMAT_VERSION"]

FORMAT, FORMAT_VERSION = "eventhorizon-eqprop-model", 1
_ARRAYS = {"indptr": np.int64, "indices": np.int32, "weights": np.float32, "bias": np.float32,
           "velocity_w": np.float32, "velocity_b": np.float32}


class ModelFileError(ValueError):
    """A model file is missing, corrupted, or does not match what was expected."""


def _sha256(arr):
    return hashlib.sha256(np.ascontiguousarray(arr).tobytes()).hexdigest()


def save_model(path, model, info=None):
    """Write ``model`` (an :class:`~eventhorizon.eqprop.EqPropModel`) to ``path`` atomically.

    Examples
    --------
    >>> import tempfile
    >>> from eventhorizon.eqprop import EqPropConfig, EqPropModel
    >>> model = EqPropModel(EqPropConfig(sizes=(4, 3, 2)))
    >>> path = Path(tempfile.mkdtemp()) / "m.npz"
    >>> save_model(path, model, info={"epoch": 0})
    >>> again, info = load_model(path)
    >>> np.array_equal(again.graph.weights, model.graph.weights), info
    (True, {'epoch': 0})
    """
    path = Path(path)
    g, opt = model.graph, model._opt
    arrays = {"indptr": g.indptr, "indices": g.indices, "weights": g.weights, "bias": model.network.bias,
              "velocity_w": opt.velocity_w, "velocity_b": opt.velocity_b}
    arrays = {k: np.ascontiguousarray(v, dtype=_ARRAYS[k]) for k, v in arrays.items()}
    meta = {"format": FORMAT, "format_version": FORMAT_VERSION, "eventhorizon_version": __version__,
            "config": model.config.as_dict(), "n": int(g.n), "nnz": int(g.nnz),
            "sha256": {k: _sha256(v) for k, v in arrays.items()}, "info": info or {},
            "rng_state": opt.rng.bit_generator.state}
    metadata = np.array(json.dumps(meta))  # fails (info not JSON) before any file is touched
    tmp = path.with_name(path.name + ".tmp")
    try:
        with open(tmp, "wb") as fh:
            np.savez(fh, metadata=metadata, **arrays)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)  # a failed save leaves the old file, and nothing else, behind
        raise


def _read(path):
    try:
        with open(path, "rb") as fh:
            head = fh.read(4)
    except FileNotFoundError:
        raise ModelFileError(f"{path}: no such model file") from None
    except OSError as exc:
        raise ModelFileError(f"{path}: not a readable model file (.npz): {exc}") from None
    if head != b"PK\x03\x04":
        # without this, np.load reports any other file as "pickled data" and suggests allow_pickle
        raise ModelFileError(f"{path}: not a model file: an .npz is a zip archive and this file "
                             f"does not start like one (first bytes {head!r})")
    try:
        with np.load(path, allow_pickle=False) as data:
            return {k: data[k] for k in data.files}
    except FileNotFoundError:
        raise ModelFileError(f"{path}: no such model file") from None
    except (OSError, ValueError, EOFError) as exc:
        raise ModelFileError(f"{path}: not a readable model file (.npz): {exc}") from None
    except Exception as exc:  # zipfile.BadZipFile and friends from a truncated archive
        raise ModelFileError(f"{path}: corrupted model file: {type(exc).__name__}: {exc}") from None


def _metadata(path, data):
    if "metadata" not in data:
        raise ModelFileError(f"{path}: no 'metadata' entry; not an eventhorizon model file")
    try:
        meta = json.loads(str(data["metadata"]))
    except ValueError as exc:
        raise ModelFileError(f"{path}: metadata is not valid JSON: {exc}") from None
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        raise ModelFileError(f"{path}: format is {meta.get('format') if isinstance(meta, dict) else meta!r}, "
                             f"expected {FORMAT!r}")
    if meta.get("format_version") != FORMAT_VERSION:
        raise ModelFileError(f"{path}: format_version {meta.get('format_version')!r} is not supported "
                             f"(this eventhorizon {__version__} reads version {FORMAT_VERSION})")
    return meta


def _check_arrays(path, data, meta):
    sums = meta.get("sha256")
    sums = sums if isinstance(sums, dict) else {}  # missing or malformed: every array fails its checksum
    for name, dtype in _ARRAYS.items():
        if name not in data:
            raise ModelFileError(f"{path}: missing array {name!r}")
        if data[name].dtype != dtype:
            raise ModelFileError(f"{path}: array {name!r} has dtype {data[name].dtype}, expected {np.dtype(dtype)}")
        if sums.get(name) != _sha256(data[name]):
            raise ModelFileError(f"{path}: array {name!r} does not match its checksum (file corrupted or edited)")
    n, nnz = meta.get("n"), meta.get("nnz")
    for name, size in (("indptr", n + 1 if isinstance(n, int) else None), ("indices", nnz), ("weights", nnz),
                       ("bias", n), ("velocity_w", nnz), ("velocity_b", n)):
        if data[name].shape != (size,):
            raise ModelFileError(f"{path}: array {name!r} has shape {data[name].shape}, expected ({size},)")


def load_model(path, expect_sizes=None):
    """Read a model file written by :func:`save_model`.

    Parameters
    ----------
    path : str or Path
    expect_sizes : sequence of int, optional
        Refuse a model whose layer sizes differ (e.g. 784 inputs, 10 classes).

    Returns
    -------
    (EqPropModel, dict)
        The model (with its momentum buffers) and the saved ``info``.

    Raises
    ------
    ModelFileError
    """
    from eventhorizon.eqprop import EqPropConfig, EqPropModel
    from topology.store import SynapseGraph

    path = Path(path)
    data = _read(path)
    meta = _metadata(path, data)
    _check_arrays(path, data, meta)
    try:
        config = EqPropConfig(**meta["config"])
    except (TypeError, ValueError, KeyError) as exc:
        raise ModelFileError(f"{path}: invalid config in metadata: {exc}") from None
    if expect_sizes is not None and tuple(config.sizes) != tuple(expect_sizes):
        raise ModelFileError(f"{path}: model has layer sizes {list(config.sizes)}, expected {list(expect_sizes)}")
    try:
        graph = SynapseGraph(data["indptr"], data["indices"], data["weights"].copy(), meta["n"])
        model = EqPropModel(config, graph=graph, bias=data["bias"])
    except (TypeError, ValueError) as exc:
        raise ModelFileError(f"{path}: weights do not form the model its config describes: {exc}") from None
    model._opt.velocity_w[:] = data["velocity_w"]
    model._opt.velocity_b[:] = data["velocity_b"]
    if "rng_state" in meta:
        try:
            model._opt.rng.bit_generator.state = meta["rng_state"]
        except (TypeError, ValueError, KeyError) as exc:
            raise ModelFileError(f"{path}: invalid rng_state in metadata: {exc}") from None
    return model, meta.get("info", {})
