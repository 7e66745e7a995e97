"""Rate networks: a synapse graph plus neuron model, biases and clamped inputs."""

import networkx as nx
import numpy as np

from eventhorizon.models import get_model
from topology.generators import spectral_norm
from topology.store import SynapseGraph

__all__ = ["RateNetwork"]


class RateNetwork:
    """A network of rate neurons whose fixed point is ``x = ρ(Aᵀ x + b)``.

    Input neurons are *clamped*: their value is set from outside and they
    ignore their own inputs. Every other neuron is *free*.

    Parameters
    ----------
    graph : SynapseGraph
        Synapses, ``A[pre, post]``.
    activation : str
        A name in :data:`eventhorizon.models.RATE_MODELS`.
    inputs : array_like of int, optional
        Ids of the clamped input neurons, in the order input vectors are given.
    bias : array_like of float, optional
        One per neuron (ignored for inputs); zeros by default.
    check_contractive : bool
        Refuse weights for which the fixed-point iteration is not a
        contraction: ``L·‖W_free‖₂ ≥ 1``, where ``W_free`` is the free-to-free
        block, unless that block has no cycles (feed-forward networks settle
        in depth-many steps). Such networks may still settle; pass ``False`` to try, and
        the event budget stops a run that does not.

    Examples
    --------
    >>> from topology.generators import input_recurrent
    >>> net = RateNetwork(input_recurrent(4, 3, 0.5, seed=0), "tanh", inputs=range(4))
    >>> net.n, net.n_inputs, round(net.contraction, 3)
    (7, 4, 0.5)
    """

    def __init__(self, graph, activation="tanh", inputs=None, bias=None, check_contractive=True):
        if not isinstance(graph, SynapseGraph):
            raise TypeError(f"graph must be a topology.SynapseGraph, got {type(graph).__name__}")
        if graph.n == 0:
            raise ValueError("graph has no neurons: a network needs at least one")
        self.graph = graph
        self.model = get_model(activation)
        self.input_ids = self._check_inputs(inputs, graph.n)
        self.bias = self._check_bias(bias, graph.n)
        free = np.ones(graph.n, dtype=np.float32)
        free[self.input_ids] = 0.0
        self.free_mask = free
        self.free_ids = np.flatnonzero(free).astype(np.int32)
        free_block = self._free_block()
        self.contraction = self.model.lipschitz * spectral_norm(free_block)
        # Without cycles among free neurons (a feed-forward network) the
        # iteration reaches its fixed point in depth-many steps whatever the norm.
        self.acyclic = nx.is_directed_acyclic_graph(nx.from_scipy_sparse_array(free_block, create_using=nx.DiGraph))
        if check_contractive and self.contraction >= 1.0 and not self.acyclic:
            raise ValueError(
                f"weights are not contractive: L·‖W_free‖₂ = {self.contraction:.4g} ≥ 1 "
                f"(L = {self.model.lipschitz} for {self.model.name}), so settling may not converge. "
                "Scale the free-to-free weights below 1/L, or pass check_contractive=False to run "
                "anyway (the event budget then stops a run that does not settle)."
            )

    @staticmethod
    def _check_inputs(inputs, n):
        ids = np.asarray([] if inputs is None else list(inputs), dtype=np.int64)
        if ids.ndim != 1:
            raise ValueError(f"inputs must be a 1-D list of neuron ids, got shape {ids.shape}")
        if ids.size and (ids.min() < 0 or ids.max() >= n):
            raise ValueError(f"inputs must be neuron ids in [0, {n}), got values in [{ids.min()}, {ids.max()}]")
        if np.unique(ids).size != ids.size:
            raise ValueError("inputs must not repeat a neuron id")
        return ids.astype(np.int32)

    @staticmethod
    def _check_bias(bias, n):
        if bias is None:
            return np.zeros(n, dtype=np.float32)
        arr = np.asarray(bias, dtype=np.float32)
        if arr.shape != (n,):
            raise ValueError(f"bias must have shape ({n},), got {arr.shape}")
        if not np.all(np.isfinite(arr)):
            raise ValueError("bias must be finite (found NaN or inf)")
        return arr

    def _free_block(self):
        adjacency = self.graph.to_scipy()
        return adjacency[self.free_ids][:, self.free_ids]

    @property
    def n(self):
        """Number of neurons."""
        return self.graph.n

    @property
    def n_inputs(self):
        """Number of clamped input neurons."""
        return int(self.input_ids.shape[0])

    def check_input_vector(self, values, name="inputs"):
        """Validate one input vector and return it as float32.

        Examples
        --------
        >>> from topology.generators import input_recurrent
        >>> net = RateNetwork(input_recurrent(2, 2, 0.5, seed=0), inputs=[0, 1])
        >>> net.check_input_vector([1, 0]).dtype.name
        'float32'
        """
        arr = np.asarray(values, dtype=np.float32)
        if arr.shape != (self.n_inputs,):
            raise ValueError(f"{name} must have shape ({self.n_inputs},) (one value per input neuron), "
                             f"got {arr.shape}")
        if not np.all(np.isfinite(arr)):
            bad = int(np.flatnonzero(~np.isfinite(arr))[0])
            raise ValueError(f"{name} must be finite; entry {bad} is {arr[bad]}")
        return arr

    def __repr__(self):
        return (f"RateNetwork(n={self.n}, inputs={self.n_inputs}, synapses={self.graph.nnz}, "
                f"activation={self.model.name!r}, contraction={self.contraction:.3g})")
