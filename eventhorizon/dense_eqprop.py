"""Dense, batched Equilibrium Propagation on a layered symmetric network (numpy/BLAS).

This is the reference the event-driven EqProp is compared against on the same weights.

Model
-----
Sizes ``(n_0, n_1, …, n_L)``. Layer 0 is the clamped input ``x_0``; layers ``1..L`` are free.
``weights[l]`` has shape ``(n_l, n_{l+1})`` (forward ``l → l+1``; the feedback ``l+1 → l``
uses the same matrix transposed; nothing feeds back into the input). ``biases[j]`` belongs to
free layer ``j + 1`` and has shape ``(n_{j+1},)``. The fixed point is

* hidden layers ``1 ≤ l < L``: ``x_l = ρ(x_{l-1} @ W[l-1] + x_{l+1} @ W[l].T + b_l)``;
* output: ``x_L = ρ(x_{L-1} @ W[L-1] + b_L + c)`` with an injected current ``c``.

Phases
------
* **free** (:meth:`DenseEqProp.free`): from rest (free ``x = 0``), ``c = 0``;
* **nudged** (:meth:`DenseEqProp.nudged`): from the free equilibrium ``x⁰``, with the constant
  current ``c = β (y − x_L⁰)`` (minus the gradient of ``C = ½‖y − x_L‖²`` at the *free*
  equilibrium, held fixed during the phase).

Solver ("dense to ε")
---------------------
Layer-alternating sweeps (block Gauss–Seidel): one sweep updates layer 1, 2, …, L in turn,
each from the newest values of its neighbours. A sample stops being updated after the first
sweep in which ``max |Δx|`` over all its free neurons is ``< ε``; only the still-active rows
are gathered and multiplied. The input drive ``x_0 @ W[0]`` is computed once per phase.
If some samples have not converged after ``max_sweeps`` sweeps a :class:`RuntimeError`
naming how many is raised by default (``on_nonconvergence="raise"``); with ``"warn"`` a
:class:`RuntimeWarning` is issued instead and with ``"ignore"`` nothing: the states reached at the
cap are returned and :attr:`PhaseStats.converged` marks the samples that did converge.

Multiply-adds (as executed)
---------------------------
Per sweep and per active sample row, the sum over free layers of the matmul sizes without the
input drive: ``Σ_{l=2..L} n_{l-1}·n_l + Σ_{l=1..L-1} n_{l+1}·n_l``; plus ``B·n_0·n_1`` once per
phase (the hoisted input drive). ``macs_unhoisted`` is the project's "dense" definition: every
synapse onto a free neuron in every sweep, i.e. the input drive counted again in every sweep.
Bias and current additions and ρ are not counted.

Learning rule
-------------
For two nudged states ``a`` (strength ``β_a``) and ``b`` (``β_b``), with batch means,
``grad_W[l] = mean(x_l^a ⊗ x_{l+1}^a − x_l^b ⊗ x_{l+1}^b) / (β_a − β_b)`` and
``grad_b[l] = mean(x_l^a − x_l^b) / (β_a − β_b)``; they approximate ``−∂Loss/∂θ``.
``nudging`` chooses the pair: ``"symmetric"`` (``+β`` and ``−β``, both from the free state;
Laborieux et al. 2021), ``"positive"`` (``+β`` and the free state), ``"random_sign"`` (``sβ`` with
``s = ±1`` drawn per batch from the model's generator, and the free state). Parameters are
updated by SGD with momentum, ``v = momentum·v + grad; θ += lr[l]·v``, one learning rate per
weight matrix (the biases of layer ``l + 1`` use ``lr[l]``).
"""

import time
import warnings
from dataclasses import dataclass, replace

import numpy as np

from eventhorizon.checks import check_eps
from eventhorizon.models import check_straight_through, get_model

__all__ = ["PhaseStats", "DenseEqProp", "init_params", "NUDGING_MODES"]

NUDGING_MODES = ("symmetric", "positive", "random_sign")
NONCONVERGENCE_POLICIES = ("raise", "warn", "ignore")
_DTYPES = (np.float32, np.float64)


@dataclass(frozen=True)
class PhaseStats:
    """Work done by one phase on one batch (totals over the batch).

    Attributes
    ----------
    sweeps : ndarray of int64, shape (B,)
        Sweeps executed for each sample, the last one (in which ``max |Δx| < ε``) included.
    macs : int
        Multiply-adds executed, with the input drive hoisted (counted once).
    macs_unhoisted : int
        Multiply-adds of a plain implementation that recomputes the input drive every sweep
        (the project's "dense" count: every synapse onto a free neuron, every sweep).
    converged : ndarray of bool, shape (B,) or None
        Whether each sample reached ``max |Δx| < ε`` (all True unless
        ``on_nonconvergence`` is ``"warn"`` or ``"ignore"``).
    """

    sweeps: np.ndarray
    macs: int
    macs_unhoisted: int
    converged: np.ndarray = None


def init_params(sizes, *, seed=0, dtype=np.float32):
    """Glorot-uniform weights and zero biases for a layered network.

    Parameters
    ----------
    sizes : sequence of int
        ``(n_0, n_1, …, n_L)``, at least two layers.
    seed : int
    dtype : numpy float dtype

    Returns
    -------
    weights : list of ndarray, ``weights[l]`` of shape ``(n_l, n_{l+1})``
    biases : list of ndarray, ``biases[j]`` of shape ``(n_{j+1},)``, zeros

    Examples
    --------
    >>> w, b = init_params((3, 4, 2), seed=1)
    >>> [m.shape for m in w], [v.shape for v in b], w[0].dtype
    ([(3, 4), (4, 2)], [(4,), (2,)], dtype('float32'))
    """
    sizes = [int(n) for n in sizes]
    if len(sizes) < 2 or min(sizes) < 1:
        raise ValueError(f"sizes must hold at least two positive layer sizes, got {sizes}")
    rng = np.random.default_rng(seed)
    weights = []
    for n_in, n_out in zip(sizes[:-1], sizes[1:]):
        limit = np.sqrt(6.0 / (n_in + n_out))
        weights.append(rng.uniform(-limit, limit, size=(n_in, n_out)).astype(dtype))
    biases = [np.zeros(n, dtype=dtype) for n in sizes[1:]]
    return weights, biases


def _is_real_number(x):
    return isinstance(x, (int, float, np.integer, np.floating)) and not isinstance(x, (bool, np.bool_))


def _read_only(a):
    v = a.view()
    v.flags.writeable = False
    return v


def _check_float_array(name, a, dtype):
    """``a`` as a C-contiguous copy in ``dtype``; real floating, finite, else ``ValueError``/``TypeError``."""
    arr = np.asarray(a)
    if not (np.issubdtype(arr.dtype, np.floating) and arr.dtype.itemsize >= 2):
        raise TypeError(f"{name} must be a real floating-point array, got dtype {arr.dtype}")
    if not np.all(np.isfinite(arr)):
        raise ValueError(f"{name} contains non-finite values (NaN or inf)")
    return np.array(arr, dtype=dtype, order="C", copy=True)


class DenseEqProp:
    """Batched dense Equilibrium Propagation on a layered symmetric network.

    Parameters
    ----------
    weights : sequence of 2-D float arrays
        ``weights[l]`` of shape ``(n_l, n_{l+1})``, ``l = 0..L-1``. Copied.
    biases : sequence of 1-D float arrays
        ``biases[j]`` of shape ``(n_{j+1},)`` for the free layers ``1..L``. Copied.
    activation : {"hard_sigmoid", "tanh", "clipped_relu"}
        ρ: ``clip(u, 0, 1)``, ``tanh(u)`` or ``clip(u, 0, 6)``.
    beta : float
        Nudging strength ``β > 0`` used by :meth:`gradients` / :meth:`train_batch`.
    nudging : {"symmetric", "positive", "random_sign"}
    learning_rates : float or sequence of float
        One rate ``≥ 0`` per weight matrix (a scalar is used for all); the biases of layer
        ``l + 1`` use ``learning_rates[l]``.
    momentum : float
        In ``[0, 1)``.
    epsilon : float
        Convergence threshold on ``max |Δx|`` per sample and sweep.
    max_sweeps : int
        Hard cap on sweeps per phase.
    on_nonconvergence : {"raise", "warn", "ignore"}
        What to do when samples are still moving after ``max_sweeps`` sweeps:
        raise :class:`RuntimeError` (default), issue a :class:`RuntimeWarning`, or nothing;
        in the last two cases the states at the cap are used.
    seed : int
        Seeds the generator of ``"random_sign"`` nudging.
    straight_through : bool
        Let the nudge reach saturated wrong outputs, as the event-driven
        trainer does (:func:`eventhorizon.eqprop_rows._nudge_current`); needs a clipped ρ.
    dtype : {numpy.float32, numpy.float64}
        Storage and arithmetic precision (float64 is meant for tests such as gradient checks).

    Attributes
    ----------
    weights, biases : list of ndarray
        Read-only views of the current parameters (they follow the updates).
    sizes : tuple of int
    rng : numpy.random.Generator

    Examples
    --------
    >>> w, b = init_params((4, 8, 3), seed=0)
    >>> model = DenseEqProp(w, b, learning_rates=[0.1, 0.05], epsilon=1e-4)
    >>> X = np.random.default_rng(0).random((5, 4), dtype=np.float32)
    >>> states, stats = model.free(X)
    >>> [s.shape for s in states]
    [(5, 4), (5, 8), (5, 3)]
    >>> bool(stats.macs == stats.sweeps.sum() * (8 * 3 + 3 * 8) + 5 * 4 * 8)
    True
    >>> info = model.train_batch(X, np.array([0, 1, 2, 0, 1]))
    >>> sorted(k for k in info if k.startswith("free"))
    ['free_macs', 'free_macs_unhoisted', 'free_seconds', 'free_sweeps']
    """

    def __init__(
        self,
        weights,
        biases,
        *,
        activation="hard_sigmoid",
        beta=0.5,
        nudging="symmetric",
        learning_rates,
        momentum=0.0,
        epsilon=1e-3,
        max_sweeps=1000,
        seed=0,
        dtype=np.float32,
        on_nonconvergence="raise",
        straight_through=False,
    ):
        try:
            dtype = np.dtype(dtype).type
        except TypeError:
            dtype = None
        if dtype not in _DTYPES:
            raise ValueError(f"dtype must be numpy.float32 or numpy.float64, got {dtype!r}")
        self.dtype = dtype
        if isinstance(weights, np.ndarray) or isinstance(biases, np.ndarray):
            raise TypeError("weights and biases must be sequences (lists) of arrays, one per layer")
        weights, biases = list(weights), list(biases)
        if not weights:
            raise ValueError("weights must hold at least one matrix")
        self._W = []
        for l, w in enumerate(weights):
            w = _check_float_array(f"weights[{l}]", w, dtype)
            if w.ndim != 2 or 0 in w.shape:
                raise ValueError(f"weights[{l}] must be a non-empty 2-D array, got shape {w.shape}")
            if l and w.shape[0] != self._W[-1].shape[1]:
                raise ValueError(
                    f"weights[{l}] has shape {w.shape} but weights[{l - 1}] has shape "
                    f"{self._W[-1].shape}: need weights[{l}].shape[0] == weights[{l - 1}].shape[1]"
                )
            self._W.append(w)
        self.sizes = (self._W[0].shape[0],) + tuple(w.shape[1] for w in self._W)
        L = len(self._W)
        if len(biases) != L:
            raise ValueError(f"biases must hold {L} vectors (one per free layer), got {len(biases)}")
        self._b = []
        for j, b in enumerate(biases):
            b = _check_float_array(f"biases[{j}]", b, dtype)
            if b.shape != (self.sizes[j + 1],):
                raise ValueError(f"biases[{j}] must have shape ({self.sizes[j + 1]},), got {b.shape}")
            self._b.append(b)

        self.activation = activation
        self._rho = get_model(activation)
        self.beta = self._check_beta(beta, "beta")
        if nudging not in NUDGING_MODES:
            raise ValueError(f"nudging must be one of {NUDGING_MODES}, got {nudging!r}")
        self.nudging = nudging
        self.straight_through = check_straight_through(activation, straight_through)
        self.learning_rates = self._check_learning_rates(learning_rates)
        if not (_is_real_number(momentum) and 0.0 <= momentum < 1.0):
            raise ValueError(f"momentum must be a number in [0, 1), got {momentum!r}")
        self.momentum = float(momentum)
        self.epsilon = check_eps(epsilon)
        if isinstance(max_sweeps, bool) or not isinstance(max_sweeps, (int, np.integer)) or max_sweeps < 1:
            raise ValueError(f"max_sweeps must be an integer >= 1, got {max_sweeps!r}")
        self.max_sweeps = int(max_sweeps)
        if on_nonconvergence not in NONCONVERGENCE_POLICIES:
            raise ValueError(f"on_nonconvergence must be one of {NONCONVERGENCE_POLICIES}, got {on_nonconvergence!r}")
        self.on_nonconvergence = on_nonconvergence
        self.rng = np.random.default_rng(seed)
        self._vW = [np.zeros_like(w) for w in self._W]
        self._vb = [np.zeros_like(b) for b in self._b]

        # Multiply-adds per active sample row and sweep, without the (hoisted) input drive.
        n = self.sizes
        self.macs_per_sweep = sum(n[l - 1] * n[l] for l in range(2, L + 1)) + sum(
            n[l + 1] * n[l] for l in range(1, L)
        )
        self.input_macs = n[0] * n[1]

    # ------------------------------------------------------------------ parameters
    @property
    def n_layers(self):
        """Number of weight matrices ``L`` (= number of free layers)."""
        return len(self._W)

    @property
    def weights(self):
        """Read-only views of the weight matrices."""
        return [_read_only(w) for w in self._W]

    @property
    def biases(self):
        """Read-only views of the free layers' biases."""
        return [_read_only(b) for b in self._b]

    def _check_learning_rates(self, lr):
        L = self.n_layers
        if np.ndim(lr) == 0:
            lr = [lr] * L
        lr = list(lr)
        if len(lr) != L:
            raise ValueError(
                f"learning_rates must be a number or hold {L} values (one per weight matrix), got {len(lr)}"
            )
        out = []
        for l, r in enumerate(lr):
            if not _is_real_number(r) or not np.isfinite(r) or r < 0:
                raise ValueError(f"learning_rates[{l}] must be a finite number >= 0, got {r!r}")
            out.append(float(r))
        return tuple(out)

    @staticmethod
    def _check_beta(beta, name):
        if not _is_real_number(beta) or not np.isfinite(beta) or beta <= 0:
            raise ValueError(f"{name} must be a finite number > 0, got {beta!r}")
        return float(beta)

    # ------------------------------------------------------------------ input checks
    def _check_X(self, X):
        X = np.asarray(X)
        if X.ndim != 2 or X.shape[1] != self.sizes[0]:
            raise ValueError(f"X must have shape (B, {self.sizes[0]}), got {X.shape}")
        if X.shape[0] == 0:
            raise ValueError("X must hold at least one sample")
        if not (np.issubdtype(X.dtype, np.floating) or np.issubdtype(X.dtype, np.integer)) or X.dtype == bool:
            raise TypeError(f"X must be a real numeric array, got dtype {X.dtype}")
        if not np.all(np.isfinite(X)):
            raise ValueError("X contains non-finite values (NaN or inf)")
        return np.ascontiguousarray(X, dtype=self.dtype)

    def _check_labels(self, labels, B):
        labels = np.asarray(labels)
        if labels.shape != (B,):
            raise ValueError(f"labels must have shape ({B},), got {labels.shape}")
        if not np.issubdtype(labels.dtype, np.integer) or labels.dtype == bool:
            raise TypeError(f"labels must be integers, got dtype {labels.dtype}")
        n_out = self.sizes[-1]
        if labels.size and (labels.min() < 0 or labels.max() >= n_out):
            bad = labels[(labels < 0) | (labels >= n_out)][0]
            raise ValueError(f"labels must lie in [0, {n_out}), got {bad}")
        return labels.astype(np.int64)

    def _one_hot(self, labels):
        Y = np.zeros((labels.size, self.sizes[-1]), dtype=self.dtype)
        Y[np.arange(labels.size), labels] = 1
        return Y

    def _check_states(self, states, B, name):
        states = list(states)
        if len(states) != self.n_layers + 1:
            raise ValueError(f"{name} must hold {self.n_layers + 1} arrays (input layer included), got {len(states)}")
        out = []
        for l, s in enumerate(states):
            s = np.asarray(s)
            if s.shape != (B, self.sizes[l]):
                raise ValueError(f"{name}[{l}] must have shape ({B}, {self.sizes[l]}), got {s.shape}")
            if not np.all(np.isfinite(s)):
                raise ValueError(f"{name}[{l}] contains non-finite values (NaN or inf)")
            out.append(np.array(s, dtype=self.dtype, order="C", copy=True))
        return out

    # ------------------------------------------------------------------ solver
    def _settle(self, X, x, current):
        """Block Gauss–Seidel sweeps from the states ``x`` (modified in place) to ε.

        ``x[0]`` is ``X``; ``current`` is added to the output drive (None for 0).
        """
        W, b, rho, eps = self._W, self._b, self._rho, self.epsilon
        L = self.n_layers
        B = X.shape[0]
        drive_in = X @ W[0]  # hoisted: the input never changes during a phase
        sweeps = np.zeros(B, dtype=np.int64)
        active = np.arange(B)
        delta = None
        for k in range(1, self.max_sweeps + 1):
            # Only the rows still moving are gathered and multiplied (a view while all are).
            full = active.size == B
            rows = slice(None) if full else active
            delta = np.zeros(active.size, dtype=self.dtype)
            for l in range(1, L + 1):
                if l == 1:
                    u = drive_in.copy() if full else drive_in[active]
                else:
                    u = x[l - 1][rows] @ W[l - 1]
                if l < L:
                    u += x[l + 1][rows] @ W[l].T
                u += b[l - 1]
                if l == L and current is not None:
                    u += current[rows]
                rho(u, out=u)
                np.maximum(delta, np.abs(u - x[l][rows]).max(axis=1), out=delta)
                x[l][rows] = u
            sweeps[active] = k
            active = active[delta >= eps]
            if active.size == 0:
                break
        converged = np.ones(B, dtype=bool)
        if active.size:
            converged[active] = False
            worst = float(delta[delta >= eps].max())
            message = (
                f"{active.size} of {B} samples did not converge within max_sweeps={self.max_sweeps} "
                f"sweeps (epsilon={self.epsilon:g}; largest max|Δx| in the last sweep {worst:.3g})"
            )
            if self.on_nonconvergence == "raise":
                raise RuntimeError(message)
            if self.on_nonconvergence == "warn":
                warnings.warn(message, RuntimeWarning, stacklevel=3)
        total = int(sweeps.sum())
        stats = PhaseStats(
            sweeps=sweeps,
            macs=total * self.macs_per_sweep + B * self.input_macs,
            macs_unhoisted=total * (self.macs_per_sweep + self.input_macs),
            converged=converged,
        )
        return x, stats

    def free(self, X):
        """Free phase: from rest, input clamped, solve the fixed point to ε.

        Parameters
        ----------
        X : array, shape (B, n_0)
            Inputs (expected in [0, 1]; only finiteness is checked).

        Returns
        -------
        states : list of ndarray
            ``[x_0, x_1, …, x_L]``, each of shape ``(B, n_l)`` (``x_0`` is a copy of ``X``).
        stats : PhaseStats

        Raises
        ------
        RuntimeError
            If some samples did not converge within ``max_sweeps`` (and
            ``on_nonconvergence="raise"``).

        Examples
        --------
        >>> w, b = init_params((2, 3, 2), seed=0)
        >>> model = DenseEqProp(w, b, learning_rates=0.1)
        >>> states, stats = model.free(np.ones((1, 2), dtype=np.float32))
        >>> int(stats.sweeps[0]) >= 2, states[2].shape
        (True, (1, 2))
        """
        X = self._check_X(X)
        B = X.shape[0]
        x = [X.copy()] + [np.zeros((B, n), dtype=self.dtype) for n in self.sizes[1:]]
        return self._settle(X, x, None)

    def nudged(self, X, free_states, Y_onehot, beta):
        """Nudged phase: from the free equilibrium, with the current ``β (y − x_L⁰)`` on the output.

        With ``straight_through``, a saturated output whose target differs
        from it also gets ``−(u_L⁰ − ρ(u_L⁰))``; recomputing ``u_L⁰`` costs
        ``B·n_{L−1}·n_L`` multiply-adds, counted in the stats.

        Parameters
        ----------
        X : array, shape (B, n_0)
        free_states : list of arrays
            The free equilibrium ``[x_0, …, x_L]`` returned by :meth:`free` (not modified).
        Y_onehot : array, shape (B, n_L)
            Targets ``y``.
        beta : float
            Signed nudging strength (any finite number; ``0`` returns the free state after one sweep).

        Returns
        -------
        states : list of ndarray
        stats : PhaseStats

        Examples
        --------
        >>> w, b = init_params((2, 3, 2), seed=0)
        >>> model = DenseEqProp(w, b, learning_rates=0.1, epsilon=1e-6)
        >>> X = np.array([[1.0, 0.5]], dtype=np.float32)
        >>> s0, _ = model.free(X)
        >>> s1, st = model.nudged(X, s0, np.array([[1.0, 0.0]], dtype=np.float32), 0.0)
        >>> int(st.sweeps[0]), bool(np.allclose(s1[2], s0[2], atol=1e-6))
        (1, True)
        """
        X = self._check_X(X)
        B = X.shape[0]
        if not _is_real_number(beta) or not np.isfinite(beta):
            raise ValueError(f"beta must be a finite number, got {beta!r}")
        x = self._check_states(free_states, B, "free_states")
        if not np.array_equal(x[0], X):
            raise ValueError("free_states[0] must equal X (the clamped input of the free phase)")
        Y = np.asarray(Y_onehot)
        if Y.shape != (B, self.sizes[-1]):
            raise ValueError(f"Y_onehot must have shape ({B}, {self.sizes[-1]}), got {Y.shape}")
        if not np.all(np.isfinite(Y)):
            raise ValueError("Y_onehot contains non-finite values (NaN or inf)")
        current = (self.dtype(beta) * (Y.astype(self.dtype) - x[-1])).astype(self.dtype)
        if not self.straight_through:
            return self._settle(X, x, current)
        u = x[-2] @ self._W[-1] + self._b[-1]  # the outputs' free drive (not kept by the free phase)
        current -= np.where(Y != x[-1], u - self._rho(u), 0).astype(self.dtype)
        states, stats = self._settle(X, x, current)
        extra = B * self._W[-1].size
        return states, replace(stats, macs=stats.macs + extra, macs_unhoisted=stats.macs_unhoisted + extra)

    # ------------------------------------------------------------------ learning
    def _pair_gradients(self, a, b, beta_a, beta_b):
        """Batch-mean EqProp gradients from nudged states ``a`` and ``b``."""
        B = a[0].shape[0]
        scale = self.dtype(1.0 / (B * (beta_a - beta_b)))
        d = [sa - sb for sa, sb in zip(a, b)]  # d[0] = 0: the input is clamped in both
        # a_l ⊗ a_{l+1} − b_l ⊗ b_{l+1} = d_l ⊗ a_{l+1} + b_l ⊗ d_{l+1} (no cancellation of products)
        grad_W = [(d[l].T @ a[l + 1] + b[l].T @ d[l + 1]) * scale for l in range(self.n_layers)]
        grad_b = [d[l + 1].sum(axis=0) * scale for l in range(self.n_layers)]
        return grad_W, grad_b

    def gradients(self, X, labels):
        """EqProp gradient estimates (≈ ``−∂Loss/∂θ``) on one batch, without updating.

        Parameters
        ----------
        X : array, shape (B, n_0)
        labels : int array, shape (B,)

        Returns
        -------
        grad_W : list of ndarray, shapes of ``weights``
        grad_b : list of ndarray, shapes of ``biases``
        info : dict
            ``loss`` (batch mean of ``½‖y − x_L⁰‖²``), ``correct`` (int), ``free`` (PhaseStats),
            ``nudged`` (list of PhaseStats, one per nudged phase), ``betas`` (β_a, β_b),
            ``free_states``, ``free_seconds``, ``nudged_seconds``.

        Examples
        --------
        >>> w, b = init_params((3, 5, 2), seed=0)
        >>> model = DenseEqProp(w, b, learning_rates=0.1, nudging="positive", beta=0.1)
        >>> gW, gb, info = model.gradients(np.ones((2, 3), dtype=np.float32), np.array([0, 1]))
        >>> [g.shape for g in gW], info["betas"], len(info["nudged"])
        ([(3, 5), (5, 2)], (0.1, 0.0), 1)
        """
        X = self._check_X(X)
        labels = self._check_labels(labels, X.shape[0])
        Y = self._one_hot(labels)
        t0 = time.perf_counter()
        s0, free_stats = self.free(X)
        t1 = time.perf_counter()
        beta = self.beta
        if self.nudging == "symmetric":
            a, st_a = self.nudged(X, s0, Y, beta)
            b, st_b = self.nudged(X, s0, Y, -beta)
            betas, nudged_stats = (beta, -beta), [st_a, st_b]
        else:
            if self.nudging == "random_sign":
                beta = beta * (2 * int(self.rng.integers(0, 2)) - 1)
            a, st_a = self.nudged(X, s0, Y, beta)
            b, betas, nudged_stats = s0, (beta, 0.0), [st_a]
        t2 = time.perf_counter()
        grad_W, grad_b = self._pair_gradients(a, b, *betas)
        out = s0[-1]
        info = {
            "loss": float(0.5 * np.mean(np.sum((Y.astype(np.float64) - out) ** 2, axis=1))),
            "correct": int(np.sum(np.argmax(out, axis=1) == labels)),
            "free": free_stats,
            "nudged": nudged_stats,
            "betas": betas,
            "free_states": s0,
            "free_seconds": t1 - t0,
            "nudged_seconds": t2 - t1,
        }
        return grad_W, grad_b, info

    def train_batch(self, X, labels):
        """One SGD-with-momentum step on a batch: ``v = momentum·v + grad; θ += lr[l]·v``.

        Returns
        -------
        dict
            ``loss``, ``correct``, ``batch_size``, ``betas``, ``free_sweeps`` (int64 per sample),
            ``nudged_sweeps`` (int64, shape (phases, B)), ``free_macs``, ``free_macs_unhoisted``,
            ``nudged_macs``, ``nudged_macs_unhoisted`` (summed over the nudged phases),
            ``free_seconds``, ``nudged_seconds``, ``update_seconds``.

        Examples
        --------
        >>> w, b = init_params((3, 5, 2), seed=0)
        >>> model = DenseEqProp(w, b, learning_rates=[0.0, 0.1])
        >>> info = model.train_batch(np.ones((2, 3), dtype=np.float32), np.array([0, 1]))
        >>> bool(np.array_equal(model.weights[0], w[0])), info["nudged_sweeps"].shape
        (True, (2, 2))
        """
        grad_W, grad_b, info = self.gradients(X, labels)
        t0 = time.perf_counter()
        for l in range(self.n_layers):
            lr = self.dtype(self.learning_rates[l])
            for p, v, g in ((self._W[l], self._vW[l], grad_W[l]), (self._b[l], self._vb[l], grad_b[l])):
                v *= self.dtype(self.momentum)
                v += g
                if lr:
                    p += lr * v
        t1 = time.perf_counter()
        free, nudged = info["free"], info["nudged"]
        return {
            "loss": info["loss"],
            "correct": info["correct"],
            "batch_size": int(free.sweeps.size),
            "betas": info["betas"],
            "free_sweeps": free.sweeps,
            "nudged_sweeps": np.stack([s.sweeps for s in nudged]),
            "free_macs": free.macs,
            "free_macs_unhoisted": free.macs_unhoisted,
            "nudged_macs": sum(s.macs for s in nudged),
            "nudged_macs_unhoisted": sum(s.macs_unhoisted for s in nudged),
            "free_seconds": info["free_seconds"],
            "nudged_seconds": info["nudged_seconds"],
            "update_seconds": t1 - t0,
        }

    # ------------------------------------------------------------------ inference
    def predict(self, X):
        """Labels (int64) = argmax of the output at the free equilibrium.

        Examples
        --------
        >>> w, b = init_params((3, 5, 2), seed=0)
        >>> DenseEqProp(w, b, learning_rates=0.1).predict(np.ones((4, 3), dtype=np.float32)).dtype
        dtype('int64')
        """
        states, _ = self.free(X)
        return np.argmax(states[-1], axis=1).astype(np.int64)

    def evaluate(self, X, labels, batch_size=1000):
        """Accuracy and loss of the free phase over a data set, in batches.

        Returns
        -------
        dict
            ``accuracy``, ``loss`` (mean of ``½‖y − x_L⁰‖²``), ``macs``, ``macs_unhoisted``
            (free phase totals), ``mean_sweeps``.

        Examples
        --------
        >>> w, b = init_params((3, 5, 2), seed=0)
        >>> model = DenseEqProp(w, b, learning_rates=0.1)
        >>> r = model.evaluate(np.ones((5, 3), dtype=np.float32), np.zeros(5, dtype=int), batch_size=2)
        >>> sorted(r)
        ['accuracy', 'loss', 'macs', 'macs_unhoisted', 'mean_sweeps']
        """
        X = self._check_X(X)
        labels = self._check_labels(labels, X.shape[0])
        if isinstance(batch_size, bool) or not isinstance(batch_size, (int, np.integer)) or batch_size < 1:
            raise ValueError(f"batch_size must be an integer >= 1, got {batch_size!r}")
        correct, loss, macs, macs_unhoisted, sweeps = 0, 0.0, 0, 0, 0
        for start in range(0, X.shape[0], batch_size):
            xb, lb = X[start : start + batch_size], labels[start : start + batch_size]
            states, stats = self.free(xb)
            out = states[-1].astype(np.float64)
            correct += int(np.sum(np.argmax(out, axis=1) == lb))
            loss += float(0.5 * np.sum((self._one_hot(lb) - out) ** 2))
            macs += stats.macs
            macs_unhoisted += stats.macs_unhoisted
            sweeps += int(stats.sweeps.sum())
        n = X.shape[0]
        return {
            "accuracy": correct / n,
            "loss": loss / n,
            "macs": macs,
            "macs_unhoisted": macs_unhoisted,
            "mean_sweeps": sweeps / n,
        }
