"""Dense, synchronous reference for rate networks (numpy/BLAS).

Same network, same inputs, same fixed point ``x = ρ(Aᵀx + b)`` with inputs
clamped, solved by synchronous sweeps ``x_free ← ρ(W x + b_free)`` where
``W = Aᵀ[free, :]``:

* :meth:`DenseReference.settle` sweeps until ``max |Δx| < ε`` ("dense to ε");
* :meth:`DenseReference.looped` does exactly ``steps`` sweeps
  ("LoopedMLP-30", the seed repo's standard model, with ``steps=30``).

Multiply-adds are counted as executed: every sweep touches every synapse
onto a free neuron (``nnz(W)``). With ``hoist_inputs=True`` the input drive
``W[:, inputs] @ x_in`` is computed once and only the free-to-free block is
swept — the fastest honest dense variant, counted the same way.
"""

from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp

from eventhorizon.checks import check_eps
from eventhorizon.network import RateNetwork

__all__ = ["DenseResult", "DenseReference"]

# Below this fraction of nonzeros a block is kept sparse (scipy CSR), above it dense (BLAS).
DENSE_STORAGE_MIN_FILL = 0.05


@dataclass(frozen=True)
class DenseResult:
    """Outcome of a dense settle.

    Attributes
    ----------
    x : ndarray of float32
        Output of every neuron (inputs included).
    sweeps : int
    synaptic_ops : int
        Multiply-adds executed: synapses touched per sweep × sweeps
        (+ the input drive once when hoisted).
    converged : bool
        ``max |Δx| < ε`` reached (always True for :meth:`DenseReference.looped`).
    """

    x: np.ndarray
    sweeps: int
    synaptic_ops: int
    converged: bool


def _as_operator(block):
    """Dense float32 ndarray when the block is dense enough, else CSR."""
    block = sp.csr_array(block, dtype=np.float32)
    size = block.shape[0] * block.shape[1]
    if size and block.nnz / size >= DENSE_STORAGE_MIN_FILL:
        return np.ascontiguousarray(block.toarray()), block.nnz
    return block, block.nnz


class DenseReference:
    """Synchronous dense iteration of a :class:`RateNetwork`.

    Parameters
    ----------
    network : RateNetwork
    hoist_inputs : bool
        Compute the clamped inputs' drive once instead of every sweep.

    Examples
    --------
    >>> from topology.generators import input_recurrent
    >>> net = RateNetwork(input_recurrent(3, 4, 0.5, seed=0), "tanh", inputs=range(3))
    >>> ref = DenseReference(net)
    >>> res = ref.settle([1.0, 0.0, 0.5], eps=1e-6)
    >>> res.converged, res.synaptic_ops == res.sweeps * ref.ops_per_sweep
    (True, True)
    """

    def __init__(self, network, hoist_inputs=False):
        if not isinstance(network, RateNetwork):
            raise TypeError(f"network must be a RateNetwork, got {type(network).__name__}")
        self.network = network
        self.hoist_inputs = bool(hoist_inputs)
        weights_in = network.graph.to_scipy().T.tocsr()[network.free_ids]
        self._bias = network.bias[network.free_ids].copy()
        if self.hoist_inputs:
            self._w_in, self.input_ops = _as_operator(weights_in[:, network.input_ids])
            self._w, self.ops_per_sweep = _as_operator(weights_in[:, network.free_ids])
        else:
            self._w, self.ops_per_sweep = _as_operator(weights_in)
            self.input_ops = 0

    def _initial(self, inputs, state_x):
        net = self.network
        x = np.zeros(net.n, dtype=np.float32) if state_x is None else np.array(state_x, dtype=np.float32)
        if x.shape != (net.n,):
            raise ValueError(f"state_x must have shape ({net.n},), got {x.shape}")
        x[net.input_ids] = net.check_input_vector(inputs)
        return x

    def _run(self, inputs, eps, max_sweeps, state_x):
        net = self.network
        x = self._initial(inputs, state_x)
        rho = net.model
        free = net.free_ids
        if self.hoist_inputs:
            drive = self._w_in @ x[net.input_ids] + self._bias
            source, target = x[free], np.empty(free.shape[0], dtype=np.float32)
        else:
            drive = self._bias
            source, target = x, np.empty(free.shape[0], dtype=np.float32)
        sweeps = 0
        converged = False
        current = x[free]
        while sweeps < max_sweeps:
            rho(self._w @ source + drive, out=target)
            sweeps += 1
            change = float(np.max(np.abs(target - current))) if target.size else 0.0
            current, target = target, current
            if self.hoist_inputs:
                source = current
            else:
                source[free] = current
            if eps is not None and change < eps:
                converged = True
                break
        x[free] = current
        ops = self.input_ops + sweeps * self.ops_per_sweep
        return DenseResult(x, sweeps, ops, converged if eps is not None else True)

    def settle(self, inputs, eps, max_sweeps=10_000, state_x=None):
        """Sweep until ``max |Δx| < eps`` (or ``max_sweeps``).

        Parameters
        ----------
        inputs : array_like
            Values of the input neurons.
        eps : float
        max_sweeps : int
        state_x : array_like, optional
            Warm start (all neurons' outputs); zeros by default.
        """
        return self._run(inputs, check_eps(eps), int(max_sweeps), state_x)

    def looped(self, inputs, steps=30, state_x=None):
        """Exactly ``steps`` sweeps (LoopedMLP-``steps``)."""
        if isinstance(steps, bool) or not isinstance(steps, (int, np.integer)) or steps < 1:
            raise ValueError(f"steps must be an int >= 1, got {steps!r}")
        return self._run(inputs, None, int(steps), state_x)

    def settle_batch(self, inputs, eps, max_sweeps=10_000):
        """Settle a batch (rows of ``inputs``) together, hoisted; until every row converged.

        Returns the free neurons' outputs ``(batch, n_free)`` and the sweep count.
        """
        net = self.network
        if not self.hoist_inputs:
            raise ValueError("settle_batch needs a DenseReference built with hoist_inputs=True")
        eps = check_eps(eps)
        batch = np.asarray(inputs, dtype=np.float32)
        if batch.ndim != 2 or batch.shape[1] != net.n_inputs:
            raise ValueError(f"inputs must have shape (batch, {net.n_inputs}), got {batch.shape}")
        if batch.shape[0] == 0 or net.free_ids.shape[0] == 0:
            return np.zeros((batch.shape[0], net.free_ids.shape[0]), dtype=np.float32), 0
        drive = (self._w_in @ batch.T).T + self._bias
        x = np.zeros((batch.shape[0], net.free_ids.shape[0]), dtype=np.float32)
        for sweep in range(1, max_sweeps + 1):
            new = net.model((self._w @ x.T).T + drive)
            done = np.max(np.abs(new - x)) < eps
            x = new
            if done:
                return x, sweep
        return x, max_sweeps

    def looped_batch(self, inputs, steps=30):
        """LoopedMLP-``steps`` from rest on every row of ``inputs``, batched (one matrix product per sweep).

        The same sweeps as :meth:`looped`, so the same multiply-adds per row
        (``steps × ops_per_sweep``); needs ``hoist_inputs=False``.

        Returns
        -------
        (ndarray, int)
            Outputs of the free neurons ``(batch, n_free)`` and the multiply-adds per row.

        Examples
        --------
        >>> from topology.generators import input_recurrent
        >>> net = RateNetwork(input_recurrent(3, 4, 0.5, seed=0), "tanh", inputs=range(3))
        >>> ref = DenseReference(net)
        >>> x, ops = ref.looped_batch([[1.0, 0.0, 0.5]], steps=30)
        >>> bool(np.allclose(x[0], ref.looped([1.0, 0.0, 0.5], 30).x[net.free_ids], atol=1e-6))
        True
        """
        net = self.network
        if self.hoist_inputs:
            raise ValueError("looped_batch counts full sweeps; use a DenseReference built with hoist_inputs=False")
        if isinstance(steps, bool) or not isinstance(steps, (int, np.integer)) or steps < 1:
            raise ValueError(f"steps must be an int >= 1, got {steps!r}")
        batch = np.asarray(inputs, dtype=np.float32)
        if batch.ndim != 2 or batch.shape[1] != net.n_inputs:
            raise ValueError(f"inputs must have shape (batch, {net.n_inputs}), got {batch.shape}")
        x = np.zeros((batch.shape[0], net.n), dtype=np.float32)
        x[:, net.input_ids] = batch
        for _ in range(steps):
            x[:, net.free_ids] = net.model((self._w @ x.T).T + self._bias)
        return x[:, net.free_ids], steps * self.ops_per_sweep

