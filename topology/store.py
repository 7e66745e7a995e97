"""Synapse store: out-edges of every pre-synaptic neuron in contiguous arrays.

Convention (the same as :func:`networkx.to_scipy_sparse_array`): the
*adjacency* matrix ``A`` has ``A[pre, post] = weight``. Row ``i`` of the
store lists the out-edges of neuron ``i``; a neuron's input is
``u = A.T @ x``. The arrays are CSR of ``A`` with int64 ``indptr``, int32
``indices`` sorted within each row, and float32 ``weights``.

Rows whose targets form long contiguous id ranges (a dense layer, a
recurrent block minus its diagonal) also get a *segment table*: segment
``s`` of row ``i`` (``seg_ptr[i] <= s < seg_ptr[i+1]``) starts at position
``seg_pos[s]`` of ``indices``/``weights`` and targets ids ``seg_first[s],
seg_first[s]+1, ...`` up to the next segment's position (or the row's end).
Kernels turn the scatter ``u[indices[k]] += w[k] * d`` of such rows into
SIMD-friendly AXPYs on contiguous slices of ``u``. Rows whose segments are
short on average (fewer than :data:`MIN_SEGMENT_MEAN` targets) have no
segments and are scattered.
"""

from typing import NamedTuple

import networkx as nx
import numpy as np
import scipy.sparse as sp

__all__ = ["MIN_SEGMENT_MEAN", "SynapseArrays", "SynapseGraph"]

MIN_SEGMENT_MEAN = 8


class SynapseArrays(NamedTuple):
    """The arrays a kernel reads (see the module docstring)."""

    indptr: np.ndarray
    indices: np.ndarray
    weights: np.ndarray
    seg_ptr: np.ndarray
    seg_pos: np.ndarray
    seg_first: np.ndarray


def _segment_table(indptr, indices):
    """``(seg_ptr, seg_pos, seg_first)`` for sorted, duplicate-free CSR rows."""
    n = indptr.shape[0] - 1
    lengths = np.diff(indptr)
    starts = np.ones(indices.shape[0], dtype=bool)
    np.not_equal(indices[1:], indices[:-1] + 1, out=starts[1:])  # ids < n <= 2**31 - 1: no overflow
    starts[indptr[:-1][lengths > 0]] = True
    row = np.repeat(np.arange(n, dtype=np.int64), lengths)
    per_row = np.bincount(row[starts], minlength=n)
    use = per_row * MIN_SEGMENT_MEAN <= lengths
    seg_pos = np.flatnonzero(starts & use[row]).astype(np.int64)
    seg_ptr = np.concatenate([[0], np.cumsum(np.where(use, per_row, 0))]).astype(np.int64)
    return seg_ptr, seg_pos, indices[seg_pos].astype(np.int32)


class SynapseGraph:
    """A directed, weighted synapse graph over ``n`` neurons.

    Build it with :meth:`from_adjacency`, :meth:`from_dense`,
    :meth:`from_edges` or a generator in :mod:`topology.generators`.

    Parameters
    ----------
    indptr, indices, weights : array_like
        CSR of the adjacency matrix ``A[pre, post]``.
    n : int
        Number of neurons.

    Examples
    --------
    >>> g = SynapseGraph.from_edges(3, pre=[0, 0, 1], post=[1, 2, 2], weight=[0.5, -1.0, 2.0])
    >>> g.n, g.nnz
    (3, 3)
    >>> g.fan_out().tolist()
    [2, 1, 0]
    >>> sorted(g.to_networkx().edges(data="weight"))
    [(0, 1, 0.5), (0, 2, -1.0), (1, 2, 2.0)]
    """

    def __init__(self, indptr, indices, weights, n):
        self.n = int(n)
        self.indptr = np.ascontiguousarray(indptr, dtype=np.int64)
        self.indices = np.ascontiguousarray(indices, dtype=np.int32)
        self.weights = np.ascontiguousarray(weights, dtype=np.float32)
        self._check()
        self.seg_ptr, self.seg_pos, self.seg_first = _segment_table(self.indptr, self.indices)

    def _check(self):
        if self.indptr.shape != (self.n + 1,):
            raise ValueError(f"indptr must have shape ({self.n + 1},), got {self.indptr.shape}")
        if self.indptr[0] != 0 or np.any(np.diff(self.indptr) < 0):
            raise ValueError("indptr must start at 0 and be non-decreasing")
        nnz = int(self.indptr[-1])
        if self.indices.shape != (nnz,) or self.weights.shape != (nnz,):
            raise ValueError(
                f"indices and weights must have shape ({nnz},) to match indptr[-1], "
                f"got {self.indices.shape} and {self.weights.shape}"
            )
        if nnz and (self.indices.min() < 0 or self.indices.max() >= self.n):
            raise ValueError(f"indices must lie in [0, {self.n}), got values in "
                             f"[{self.indices.min()}, {self.indices.max()}]")
        if not np.all(np.isfinite(self.weights)):
            bad = int(np.flatnonzero(~np.isfinite(self.weights))[0])
            raise ValueError(f"weights must be finite; synapse {bad} has weight {self.weights[bad]}")

    # ----------------------------------------------------------------- builders
    @classmethod
    def from_adjacency(cls, adjacency):
        """Build from a scipy.sparse adjacency matrix ``A[pre, post]``.

        Explicitly stored zeros are kept as synapses of weight 0; duplicate
        entries are summed.

        Examples
        --------
        >>> import scipy.sparse as sp
        >>> g = SynapseGraph.from_adjacency(sp.csr_array([[0, 2.0], [0, 0]]))
        >>> g.nnz
        1
        """
        if not sp.issparse(adjacency):
            raise TypeError(f"adjacency must be a scipy.sparse matrix, got {type(adjacency).__name__}")
        if adjacency.ndim != 2 or adjacency.shape[0] != adjacency.shape[1]:
            raise ValueError(f"adjacency must be square, got shape {adjacency.shape}")
        csr = sp.csr_array(adjacency, dtype=np.float32, copy=True)
        csr.sum_duplicates()
        csr.sort_indices()
        return cls(csr.indptr, csr.indices, csr.data, csr.shape[0])

    @classmethod
    def from_dense(cls, adjacency):
        """Build from a dense ``A[pre, post]``; zeros mean no synapse.

        Examples
        --------
        >>> SynapseGraph.from_dense([[0.0, 1.0], [1.0, 0.0]]).nnz
        2
        """
        arr = np.asarray(adjacency, dtype=np.float32)
        if arr.ndim != 2 or arr.shape[0] != arr.shape[1]:
            raise ValueError(f"adjacency must be a square 2-D array, got shape {arr.shape}")
        if not np.all(np.isfinite(arr)):
            raise ValueError("adjacency must be finite (found NaN or inf)")
        return cls.from_adjacency(sp.csr_array(arr))

    @classmethod
    def from_edges(cls, n, pre, post, weight):
        """Build from parallel arrays of edges ``pre -> post`` with ``weight``.

        Examples
        --------
        >>> SynapseGraph.from_edges(2, [0], [1], [0.5]).nnz
        1
        """
        pre = np.asarray(pre, dtype=np.int64)
        post = np.asarray(post, dtype=np.int64)
        weight = np.asarray(weight, dtype=np.float32)
        if not pre.shape == post.shape == weight.shape or pre.ndim != 1:
            raise ValueError(f"pre, post and weight must be 1-D of one length, got shapes "
                             f"{pre.shape}, {post.shape}, {weight.shape}")
        for name, ids in (("pre", pre), ("post", post)):
            if ids.size and (ids.min() < 0 or ids.max() >= n):
                raise ValueError(f"{name} ids must lie in [0, {n}), got values in [{ids.min()}, {ids.max()}]")
        coo = sp.coo_array((weight, (pre, post)), shape=(n, n))
        return cls.from_adjacency(coo)

    @classmethod
    def _trusted(cls, indptr, indices, weights, n):
        """Wrap arrays already known to be valid CSR (int64, int32, float32, sorted rows); no checks."""
        graph = cls.__new__(cls)
        graph.n, graph.indptr, graph.indices, graph.weights = int(n), indptr, indices, weights
        graph.seg_ptr, graph.seg_pos, graph.seg_first = _segment_table(indptr, indices)
        return graph

    # -------------------------------------------------------------- accessors
    @property
    def nnz(self):
        """Number of synapses."""
        return int(self.indptr[-1])

    def arrays(self):
        """The :class:`SynapseArrays` kernels read (no copy)."""
        return SynapseArrays(self.indptr, self.indices, self.weights,
                             self.seg_ptr, self.seg_pos, self.seg_first)

    def pre_ids(self):
        """Pre-synaptic neuron of every synapse, in CSR order (int64): the row of each position.

        Examples
        --------
        >>> SynapseGraph.from_edges(3, [2, 0, 0], [0, 1, 2], [1.0, 1.0, 1.0]).pre_ids().tolist()
        [0, 0, 2]
        """
        return np.repeat(np.arange(self.n, dtype=np.int64), np.diff(self.indptr))

    def fan_out(self):
        """Out-degree of every neuron (int64 array)."""
        return np.diff(self.indptr)

    def fan_in(self):
        """In-degree of every neuron (int64 array)."""
        return np.bincount(self.indices, minlength=self.n).astype(np.int64)

    def to_scipy(self):
        """Adjacency ``A[pre, post]`` as a ``scipy.sparse.csr_array`` (copy)."""
        return sp.csr_array((self.weights.copy(), self.indices.copy(), self.indptr.copy()),
                            shape=(self.n, self.n))

    def to_networkx(self):
        """A :class:`networkx.DiGraph` with edge attribute ``weight``."""
        graph = nx.DiGraph()
        graph.add_nodes_from(range(self.n))
        graph.add_weighted_edges_from(zip(self.pre_ids().tolist(), self.indices.tolist(), self.weights.tolist()))
        return graph

    def __repr__(self):
        return f"SynapseGraph(n={self.n}, nnz={self.nnz})"
