"""Topology snapshots: a synapse graph at one moment of a run, as a compact ``.npz`` file.

A snapshot file holds the CSR arrays of the graph and a JSON ``info`` record:

===============  ==================================================================
``indptr``       int64[n + 1]
``indices``      int32[nnz], post-synaptic ids, sorted within each row
``weights``      float32[nnz]
``layer_sizes``  int64[L], neurons per layer in id order (empty when not layered)
``info``         a JSON string: where in the run (e.g. ``epoch``, ``step``,
                 ``samples_seen``) and anything else the writer records
``format``       ``"eventhorizon-topology-snapshot/1"``
===============  ==================================================================

A run directory keeps its snapshots in ``topology/snapshot_NNNNN.npz``
(``NNNNN`` the plasticity step) with an index, ``topology/index.json``: one
``{"file", "info", "metrics"}`` entry per snapshot, in time order. Files are
written to a temporary name and renamed, so a crash never leaves half a
snapshot.
"""

import json
import os
from pathlib import Path

import numpy as np

from topology.store import SynapseGraph

__all__ = ["FORMAT", "SnapshotError", "index_path", "save_snapshot", "load_snapshot", "changed_pairs"]

FORMAT = "eventhorizon-topology-snapshot/1"


class SnapshotError(ValueError):
    """A snapshot file is missing, corrupted or not a snapshot."""


def index_path(run_dir):
    """Where a run directory keeps its snapshot index: ``RUN/topology/index.json``.

    Examples
    --------
    >>> index_path("runs/a").as_posix()
    'runs/a/topology/index.json'
    """
    return Path(run_dir) / "topology" / "index.json"


def save_snapshot(path, graph, layer_sizes=(), info=None):
    """Write ``graph`` (and where in the run it was taken) to ``path`` atomically.

    Parameters
    ----------
    path : str or Path
    graph : SynapseGraph
    layer_sizes : sequence of int
        Neurons per layer in id order; must sum to ``graph.n`` (or be empty).
    info : dict, optional
        JSON-serialisable record (epoch, step, ...).

    Examples
    --------
    >>> import tempfile
    >>> g = SynapseGraph.from_edges(3, pre=[0, 1], post=[1, 2], weight=[0.5, -1.0])
    >>> path = Path(tempfile.mkdtemp()) / "s.npz"
    >>> save_snapshot(path, g, (2, 1), {"step": 4})
    >>> h, sizes, info = load_snapshot(path)
    >>> h.nnz, sizes.tolist(), info["step"]
    (2, [2, 1], 4)
    """
    sizes = np.asarray(layer_sizes, dtype=np.int64)
    if sizes.ndim != 1 or (sizes.size and int(sizes.sum()) != graph.n):
        raise ValueError(f"layer_sizes must be a list of layer sizes summing to n = {graph.n}, got {list(sizes)}")
    path = Path(path)
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "wb") as fh:
        np.savez_compressed(fh, indptr=graph.indptr, indices=graph.indices, weights=graph.weights,
                            layer_sizes=sizes, info=np.array(json.dumps(info or {})), format=np.array(FORMAT))
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)


def load_snapshot(path):
    """``(graph, layer_sizes, info)`` from a file written by :func:`save_snapshot`.

    Raises
    ------
    SnapshotError
        Naming the file and what is wrong with it.
    """
    path = Path(path)
    try:
        with np.load(path, allow_pickle=False) as data:
            if "format" not in data.files or str(data["format"]) != FORMAT:
                raise SnapshotError(f"{path}: not a topology snapshot (expected format {FORMAT!r})")
            indptr, indices, weights = data["indptr"], data["indices"], data["weights"]
            sizes, info = data["layer_sizes"].astype(np.int64), json.loads(str(data["info"]))
    except SnapshotError:
        raise
    except FileNotFoundError:
        raise SnapshotError(f"{path}: no such snapshot file") from None
    except Exception as exc:  # zip, npy or JSON damage
        raise SnapshotError(f"{path}: unreadable snapshot ({type(exc).__name__}: {exc})") from None
    try:
        graph = SynapseGraph(indptr, indices, weights, indptr.shape[0] - 1)
    except ValueError as exc:
        raise SnapshotError(f"{path}: inconsistent graph arrays ({exc})") from None
    return graph, sizes, info


def changed_pairs(before, after):
    """``(born, died)``: synapses of ``after`` missing from ``before``, and the reverse.

    Examples
    --------
    >>> a = SynapseGraph.from_edges(3, pre=[0, 1], post=[1, 2], weight=[1, 1])
    >>> b = SynapseGraph.from_edges(3, pre=[0, 2], post=[1, 0], weight=[1, 1])
    >>> changed_pairs(a, b)
    (1, 1)
    """
    if before.n != after.n:
        raise ValueError(f"graphs differ in size: {before.n} and {after.n} neurons")
    key_a = before.pre_ids() * before.n + before.indices
    key_b = after.pre_ids() * after.n + after.indices
    born = int(np.count_nonzero(~np.isin(key_b, key_a, assume_unique=True)))
    died = int(np.count_nonzero(~np.isin(key_a, key_b, assume_unique=True)))
    return born, died
