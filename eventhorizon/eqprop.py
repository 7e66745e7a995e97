"""Equilibrium Propagation with event-driven phases (Scellier & Bengio 2017; Laborieux et al. 2021).

The model is a layered network with symmetric feedback (``W_back = W_fwdᵀ``,
no feedback into the clamped input layer) and a bounded ρ (hard sigmoid by
default). Its fixed point ``x = ρ(W x + b)`` is an equilibrium of an energy,
so asynchronous settling — one neuron at a time, as the event scheduler does
— converges for any symmetric weights (each update is an exact coordinate
minimisation of that energy); no contraction bound is required.

Phases, per sample:

* **free**: event-driven settle from rest with the input clamped → ``x⁰``;
* **nudged**: from ``x⁰``, the boundary current ``β (y − x⁰_out)`` enters the
  output neurons and only its consequences propagate → ``x^β``.

The nudge is the cost gradient at the *free* equilibrium, held fixed during
the phase: it is then a single boundary event (no per-event cost evaluation),
and it differs from the state-dependent current ``β (y − x_out)`` only at
order β², which symmetric nudging cancels to the same order.

Learning is local (:mod:`eventhorizon.learning`): ``ΔW_ij ∝ (a_i a_j − b_i b_j)
/ (β_a − β_b)`` on existing synapses, with ``a, b`` the ``+β, −β`` equilibria
(``nudging="symmetric"``), ``+β`` and free (``"positive"``), or ``±β`` with a
random sign per mini-batch and free (``"random_sign"``).
"""

import time
from dataclasses import asdict, dataclass, field

import numpy as np

from eventhorizon import kernels as K
from eventhorizon.batch_settle import settle_batch, thread_pool
from eventhorizon.checks import check_eps, settle_rule
from eventhorizon.eqprop_rows import FREE, Nudge, _nudge_current, eqprop_rows
from eventhorizon.learning import sgd_step
from eventhorizon.models import check_straight_through, get_model
from eventhorizon.network import RateNetwork
from eventhorizon.settle import settle
from topology.generators import layered

__all__ = ["EqPropConfig", "EqPropModel", "BatchStats", "CandidateScore", "StateWindow", "NUDGING"]

NUDGING = ("symmetric", "positive", "random_sign")


@dataclass(frozen=True)
class EqPropConfig:
    """Hyperparameters of an EqProp model (see the module docstring).

    Attributes
    ----------
    sizes : tuple of int
        Layer sizes, input first, output last (e.g. ``(784, 500, 10)``).
    activation : str
        ρ of the free neurons.
    beta : float
        Nudging strength β > 0.
    nudging : {"symmetric", "positive", "random_sign"}
    learning_rates : tuple of float
        One per weight layer (``len(sizes) − 1``); a layer's biases use the
        rate of the weights that feed it.
    momentum : float
    batch_size : int
    epsilon : float
        Settling threshold ε of both phases.
    seed : int
        Initial weights and the random nudging signs.
    init_scale : float
        Initial weights are Glorot-uniform times this factor. With the full
        Glorot range (1.0) most hard-sigmoid outputs of a 784-500-10 network
        start clipped at 0 or 1, where ρ' = 0 and nothing is learned (measured:
        34% test accuracy after 3 epochs on 2000 images, against 78% at 0.5).
    threads : int
        Samples of a mini-batch are independent until the weight update, so
        ``threads > 1`` splits each batch into that many contiguous chunks
        settled concurrently (the kernels release the GIL), each with its own
        gradient accumulator; the chunks' sums are added in chunk order, so a
        run is reproducible for a given thread count.
    straight_through : bool
        Let the nudge reach saturated outputs (see
        :func:`~eventhorizon.eqprop_rows._nudge_current`); needs a clipped ρ.
        Without it, a sample whose wrong output is clipped at 1 with
        ``u − 1 > β`` gives no gradient; measured on the 5000 first training
        images, that was 89% of the misclassified ones after 60 epochs of the
        90%-sparse ``darwin_sparse`` network (whose accuracy then falls from
        epoch ~25 on) and 16% of them for the dense 784-1000-10 model after 30
        (``benchmarks/dead_nudges.py``).
    """

    sizes: tuple
    activation: str = "hard_sigmoid"
    beta: float = 0.5
    nudging: str = "symmetric"
    learning_rates: tuple = (0.05, 0.025)
    momentum: float = 0.0
    batch_size: int = 20
    epsilon: float = 1e-3
    seed: int = 0
    init_scale: float = 0.5
    threads: int = 1
    straight_through: bool = False

    def __post_init__(self):
        sizes = tuple(int(s) for s in self.sizes)
        object.__setattr__(self, "sizes", sizes)
        object.__setattr__(self, "learning_rates", tuple(float(r) for r in self.learning_rates))
        if len(sizes) < 2 or min(sizes) < 1:
            raise ValueError(f"sizes must list at least two positive layer sizes, got {sizes}")
        if len(self.learning_rates) != len(sizes) - 1:
            raise ValueError(f"learning_rates needs one rate per weight layer ({len(sizes) - 1}), "
                             f"got {len(self.learning_rates)}")
        if not self.beta > 0:
            raise ValueError(f"beta must be > 0, got {self.beta}")
        if self.nudging not in NUDGING:
            raise ValueError(f"nudging must be one of {NUDGING}, got {self.nudging!r}")
        if not 0 <= self.momentum < 1:
            raise ValueError(f"momentum must lie in [0, 1), got {self.momentum}")
        bs = self.batch_size
        integral = isinstance(bs, (int, np.integer)) or (isinstance(bs, (float, np.floating)) and float(bs).is_integer())
        if isinstance(bs, bool) or not integral or bs < 1:
            raise ValueError(f"batch_size must be an integer >= 1, got {bs!r}")
        object.__setattr__(self, "batch_size", int(bs))
        try:
            object.__setattr__(self, "epsilon", check_eps(self.epsilon))
        except ValueError:
            raise ValueError(f"epsilon must be a finite number > 0, got {self.epsilon!r}") from None
        get_model(self.activation)  # ValueError naming the activation and the choices
        object.__setattr__(self, "straight_through", check_straight_through(self.activation, self.straight_through))
        if isinstance(self.threads, bool) or not isinstance(self.threads, int) or self.threads < 1:
            raise ValueError(f"threads must be an integer >= 1, got {self.threads!r}")
        if not self.init_scale > 0:
            raise ValueError(f"init_scale must be > 0, got {self.init_scale}")

    def as_dict(self):
        return {k: list(v) if isinstance(v, tuple) else v for k, v in asdict(self).items()}


@dataclass
class BatchStats:
    """Work and results of one mini-batch (totals over its samples)."""

    samples: int = 0
    loss: float = 0.0
    correct: int = 0
    free_ops: int = 0
    nudged_ops: int = 0
    learning_ops: int = 0
    free_updates: int = 0
    nudged_updates: int = 0
    phases_seconds: float = 0.0  # free + nudged phases + gradient accumulation (fused, wall time)
    update_seconds: float = 0.0  # the SGD step
    not_settled: int = 0

    def add(self, other):
        for name in self.__dataclass_fields__:
            setattr(self, name, getattr(self, name) + getattr(other, name))
        return self


@dataclass
class _Optimizer:
    grad_w: np.ndarray
    grad_b: np.ndarray
    velocity_w: np.ndarray
    velocity_b: np.ndarray
    lr_w: np.ndarray
    lr_b: np.ndarray
    rng: np.random.Generator = field(repr=False)
    base_lr_w: np.ndarray = None
    base_lr_b: np.ndarray = None
    lr_w_factor: float = 1.0

    def __post_init__(self):
        self.base_lr_w, self.base_lr_b = self.lr_w.copy(), self.lr_b.copy()


class CandidateScore:
    """Batch-mean EqProp gradient ``(a_i a_j − b_i b_j)/(β_a − β_b)`` of any pair, from settled states.

    ``A``/``B`` hold one settled state per row (the two nudged phases) and
    ``scale`` is ``1/(β_a − β_b)``: one number, or one per row (rows nudged
    with different signs). Call it with ``(pre, post)`` index arrays, or ask
    for a whole block as a matrix product (what
    :func:`topology.rules.grow_top_scores` uses).

    Examples
    --------
    >>> A, B = np.array([[1.0, 0.5], [1.0, 0.7]]), np.array([[1.0, 0.3], [1.0, 0.1]])
    >>> score = CandidateScore(A, B, [2.0, -2.0])
    >>> round(float(score(np.array([0]), np.array([1]))[0]), 6)    # mean of 2·(0.5 − 0.3) and −2·(0.7 − 0.1)
    -0.4
    >>> score.block(0, 1, 1, 2).round(6).tolist()
    [[-0.4]]
    """

    def __init__(self, A, B, scale):
        self.A, self.B = A, B
        self.scale = np.broadcast_to(np.asarray(scale, np.float64), (A.shape[0],))[:, None]

    def __call__(self, pre, post):
        pre, post = np.asarray(pre, np.int64), np.asarray(post, np.int64)
        return ((self.A[:, pre] * self.A[:, post] - self.B[:, pre] * self.B[:, post]) * self.scale).mean(axis=0)

    def block(self, pre_lo, pre_hi, post_lo, post_hi):
        """Scores of every pair ``[pre_lo, pre_hi) × [post_lo, post_hi)`` as a dense matrix."""
        A, B, scale = self.A, self.B, self.scale
        a_pre, b_pre = A[:, pre_lo:pre_hi], B[:, pre_lo:pre_hi]
        clamped = np.array_equal(a_pre, b_pre)  # inputs: the same in both phases, so one product
        if A.shape[0] and (scale != scale[0]).any():  # rows nudged with either sign: scale the rows first
            a_pre, b_pre, after = a_pre * scale, b_pre * scale, 1.0
        else:
            after = float(scale[0, 0]) if A.shape[0] else 0.0
        a_post, b_post = A[:, post_lo:post_hi], B[:, post_lo:post_hi]
        m = a_pre.T @ (a_post - b_post) if clamped else a_pre.T @ a_post - b_pre.T @ b_post
        return m * (after / max(1, A.shape[0]))


class StateWindow:
    """The learning rule's two equilibria of the last ``capacity`` training samples, for the growth score.

    Pass it to :meth:`EqPropModel.train_batch` as ``keep``: the states that
    training settles anyway are kept (no extra settling), and :meth:`score`
    turns them into a :class:`CandidateScore`.

    Examples
    --------
    >>> window = StateWindow(3)
    >>> window.add(np.ones((2, 4), np.float32), np.zeros((2, 4), np.float32), 2.0)
    >>> window.add(np.ones((2, 4), np.float32), np.ones((2, 4), np.float32), -2.0)
    >>> len(window), window.score().A.shape                # the oldest row is gone
    (3, (3, 4))
    """

    def __init__(self, capacity):
        self.capacity = int(capacity)
        self.clear()

    def clear(self):
        """Forget every kept state (e.g. at the start of an epoch, so a resumed run scores the same)."""
        self._rows = []  # (A, B, scale) per batch, oldest first

    def __len__(self):
        """How many samples :meth:`score` uses (at most ``capacity``)."""
        return min(self.capacity, self._kept())

    def _kept(self):
        return sum(r[0].shape[0] for r in self._rows)

    def add(self, A, B, scale):
        """Keep the rows of ``A``/``B`` (one sample each) nudged with ``scale = 1/(β_a − β_b)``."""
        self._rows.append((A, B, np.full(A.shape[0], float(scale))))
        while self._kept() - self._rows[0][0].shape[0] >= self.capacity:  # the oldest batch is not needed
            self._rows.pop(0)

    def score(self):
        """A :class:`CandidateScore` of the last ``capacity`` kept samples."""
        A, B, scale = (np.concatenate([r[i] for r in self._rows])[-self.capacity:] for i in range(3))
        return CandidateScore(A.astype(np.float64), B.astype(np.float64), scale)


class EqPropModel:
    """A layered symmetric network trained by event-driven EqProp.

    Parameters
    ----------
    config : EqPropConfig
    graph : topology.store.SynapseGraph, optional
        Weights; Glorot-uniform ``layered(sizes, seed, feedback=True)`` by default.
    bias : array_like, optional
        One per neuron; zeros by default.

    Examples
    --------
    >>> cfg = EqPropConfig(sizes=(4, 8, 2), learning_rates=(0.1, 0.05), batch_size=2)
    >>> model = EqPropModel(cfg)
    >>> X = np.array([[1, 0, 1, 0], [0, 1, 0, 1]], np.float32)
    >>> stats = model.train_batch(X, np.array([0, 1]))
    >>> stats.samples, stats.free_ops > 0
    (2, True)
    >>> model.predict(X).shape
    (2,)
    """

    def __init__(self, config, graph=None, bias=None):
        if not isinstance(config, EqPropConfig):
            raise TypeError(f"config must be an EqPropConfig, got {type(config).__name__}")
        self.config = config
        sizes = config.sizes
        if graph is None:
            graph = layered(sizes, config.seed, feedback=True)
            graph.weights *= np.float32(config.init_scale)
        if graph.n != sum(sizes):
            raise ValueError(f"graph has {graph.n} neurons but sizes {sizes} add up to {sum(sizes)}")
        self.network = RateNetwork(graph, config.activation, inputs=range(sizes[0]), bias=bias,
                                   check_contractive=False)
        self.offsets = np.concatenate([[0], np.cumsum(sizes)]).astype(np.int64)
        self.output_ids = np.arange(self.offsets[-2], self.offsets[-1], dtype=np.int32)
        self.layer_of = np.repeat(np.arange(len(sizes)), sizes).astype(np.int32)
        self._check_symmetric()
        self._opt = self._optimizer()
        self._max_updates = 1000 * graph.n

    @property
    def graph(self):
        return self.network.graph

    @property
    def n_inputs(self):
        return self.config.sizes[0]

    @property
    def n_classes(self):
        return self.config.sizes[-1]

    def _check_symmetric(self):
        A = self.graph.to_scipy().tocsr()
        free = slice(self.config.sizes[0], self.graph.n)
        block = A[free, free]
        if (block != block.T).nnz:
            raise ValueError("weights among free neurons are not symmetric (W_ij must equal W_ji for EqProp)")

    def _synapse_rates(self, pre, post, what):
        """Configured learning rate of each synapse ``pre → post``; refuses pairs of non-adjacent layers."""
        pre_layer, post_layer = self.layer_of[pre], self.layer_of[post]
        if np.any(np.abs(pre_layer - post_layer) != 1):
            raise ValueError(f"{what}; an EqProp model only has synapses between adjacent layers")
        rates = np.asarray(self.config.learning_rates, np.float32)
        return np.ascontiguousarray(rates[np.minimum(pre_layer, post_layer)])

    def _optimizer(self):
        g, cfg = self.graph, self.config
        rates = np.asarray(cfg.learning_rates, np.float32)
        lr_w = self._synapse_rates(g.pre_ids(), g.indices, "graph has synapses that do not join adjacent layers")
        lr_b = np.zeros(g.n, np.float32)
        lr_b[self.layer_of > 0] = rates[self.layer_of[self.layer_of > 0] - 1]
        zeros = lambda k: np.zeros(k, np.float32)  # noqa: E731
        return _Optimizer(zeros(g.nnz), zeros(g.n), zeros(g.nnz), zeros(g.n), lr_w, lr_b,
                          np.random.default_rng(cfg.seed))

    def scale_learning_rates(self, factor):
        """Use ``factor`` × the configured learning rates from now on (e.g. a schedule's value)."""
        if not factor >= 0:
            raise ValueError(f"factor must be >= 0, got {factor}")
        opt = self._opt
        opt.lr_w_factor = float(factor)
        opt.lr_w[:] = opt.base_lr_w * np.float32(factor)
        opt.lr_b[:] = opt.base_lr_b * np.float32(factor)

    # ------------------------------------------------------------ structure

    def rewire(self, deletes=((), ()), inserts=((), (), ())):
        """Delete and insert synapses (structural plasticity), keeping the optimizer state aligned.

        Uses :class:`topology.dynamic.DynamicSynapseStore` with the free
        neurons paired, so a free-free synapse and its mirror are deleted and
        inserted together and stay equal. Surviving synapses keep their
        weights, momentum and learning rates; new ones start with momentum 0
        and their layer's learning rate. Insertions must join adjacent layers.

        Parameters
        ----------
        deletes : topology.dynamic.Deletions or (pre, post)
        inserts : topology.dynamic.Insertions or (pre, post, weight)

        Returns
        -------
        topology.dynamic.EditResult

        Examples
        --------
        >>> model = EqPropModel(EqPropConfig(sizes=(3, 2, 2), learning_rates=(0.1, 0.05)))
        >>> nnz = model.graph.nnz
        >>> _ = model.rewire(deletes=([3], [5]))          # a hidden-output pair and its mirror
        >>> model.graph.nnz == nnz - 2
        True
        """
        from topology.dynamic import DynamicSynapseStore

        if getattr(self, "_store", None) is None or self._store.graph is not self.graph:
            self._store = DynamicSynapseStore(self.graph, symmetric_pairs=self.network.free_mask > 0)
        pre, post = np.asarray(inserts[0], np.int64), np.asarray(inserts[1], np.int64)
        lr_new = self._synapse_rates(pre, post, "inserts: a synapse joins non-adjacent layers")
        factor = self._opt.lr_w_factor
        opt = self._opt
        out = self._store.apply_edits(deletes, inserts, carry=[opt.grad_w, opt.velocity_w, opt.lr_w, opt.base_lr_w],
                                      carry_init=[0.0, 0.0, lr_new * np.float32(factor), lr_new])
        opt.grad_w, opt.velocity_w, opt.lr_w, opt.base_lr_w = (np.ascontiguousarray(a) for a in out.carried)
        self.network.graph = out.graph
        self.network._kernel_arrays = None  # net_arrays() rebuilds the kernels' view
        return out

    def candidate_scores(self, X, labels):
        """EqProp gradient estimate for *any* synapse, from one batch: a growth signal (GUIDE §3).

        Runs the free and nudged phases on ``X`` (no update; one compiled
        :func:`~eventhorizon.eqprop_rows.eqprop_rows` call per thread, which
        keeps each sample's two equilibria) and returns
        a :class:`CandidateScore`: ``score(pre, post)`` is the batch mean of ``(a_pre a_post − b_pre
        b_post)/(β_a − β_b)`` — what :func:`~eventhorizon.learning.accumulate_gradient`
        would give the synapse if it existed. Use with
        :func:`topology.rules.grow_top_scores`.

        Examples
        --------
        >>> model = EqPropModel(EqPropConfig(sizes=(3, 2, 2), learning_rates=(0.1, 0.05)))
        >>> score = model.candidate_scores(np.ones((2, 3), np.float32), np.array([0, 1]))
        >>> score(np.array([0]), np.array([3])).shape
        (1,)
        >>> score.block(0, 3, 3, 5).shape           # every input → hidden pair at once
        (3, 2)
        """
        X, labels = self._check_batch(X, labels)
        cfg = self.config
        symmetric = cfg.nudging == "symmetric"
        nudge = Nudge(float(cfg.beta), -float(cfg.beta) if symmetric else 0.0, symmetric, cfg.straight_through)
        chunks = np.array_split(np.arange(X.shape[0]), max(1, min(cfg.threads, X.shape[0])))
        results = self._in_threads(lambda rows: self._rows(X[rows], labels[rows], nudge, keep_states=True), chunks)
        return CandidateScore(np.concatenate([r.states_a for r in results]).astype(np.float64),
                              np.concatenate([r.states_b for r in results]).astype(np.float64),
                              1.0 / (nudge.beta_a - nudge.beta_b))

    # ------------------------------------------------------------------ phases

    def free_phase(self, x):
        """Event-driven settle from rest with the input ``x`` clamped (a SettleResult)."""
        return settle(self.network, x, eps=self.config.epsilon, max_updates=self._max_updates, on_budget="return")

    def nudged_phase(self, free, target, beta):
        """Settle from the free equilibrium with the current ``beta·(target − x⁰_out)`` on the outputs.

        The current of each output is :func:`~eventhorizon.eqprop_rows._nudge_current`'s
        (float64 rounded once to float32; with ``config.straight_through``,
        saturated wrong outputs are first moved to the edge of ρ's range).
        """
        target = np.asarray(target, np.float32)
        out = self.output_ids
        code, through = self.network.model.code, self.config.straight_through
        current = np.array([_nudge_current(float(beta), t, x, u, code, through)
                            for t, x, u in zip(target, free.state.x[out], free.state.u[out])], np.float32)
        return settle(self.network, None, eps=self.config.epsilon, state=free.state,
                      currents=(self.output_ids, current),
                      max_updates=self._max_updates, on_budget="return")

    def _one_hot(self, label):
        y = np.zeros(self.n_classes, np.float32)
        y[label] = 1.0
        return y

    # ---------------------------------------------------------------- training

    def _check_batch(self, X, labels):
        X = np.asarray(X, dtype=np.float32)
        labels = np.asarray(labels)
        if X.ndim != 2 or X.shape[1] != self.n_inputs:
            raise ValueError(f"X must have shape (samples, {self.n_inputs}), got {X.shape}")
        if labels.shape != (X.shape[0],) or not np.issubdtype(labels.dtype, np.integer):
            raise ValueError(f"labels must be {X.shape[0]} integers, got {labels.dtype}{labels.shape}")
        if labels.size and (labels.min() < 0 or labels.max() >= self.n_classes):
            raise ValueError(f"labels must lie in [0, {self.n_classes}), got [{labels.min()}, {labels.max()}]")
        return X, labels

    def train_batch(self, X, labels, keep=None):
        """One mini-batch: free and nudged phases per sample, then one SGD step.

        The phases and the gradient accumulation of a chunk of samples run in
        one compiled call (:func:`~eventhorizon.eqprop_rows.eqprop_rows`),
        which gives what :meth:`free_phase`, :meth:`nudged_phase` and
        :func:`~eventhorizon.learning.accumulate_gradient` give sample by
        sample; with ``threads > 1`` the chunks run concurrently.

        Parameters
        ----------
        X : ndarray, shape (samples, n_inputs)
        labels : ndarray of int, shape (samples,)
        keep : StateWindow, optional
            Receives each sample's two equilibria (for gradient growth without
            settling again).

        Returns
        -------
        BatchStats
        """
        X, labels = self._check_batch(X, labels)
        if X.shape[0] == 0:
            raise ValueError("X must hold at least one sample to train on, got 0 rows")
        cfg, opt = self.config, self._opt
        sign = opt.rng.choice((-1.0, 1.0)) if cfg.nudging == "random_sign" else 1.0
        beta = float(sign * cfg.beta)
        symmetric = cfg.nudging == "symmetric"
        nudge = Nudge(beta, -beta if symmetric else 0.0, symmetric, cfg.straight_through)
        start = time.perf_counter()
        stats = self._phases(X, labels, nudge, keep)
        stats.phases_seconds = time.perf_counter() - start
        start = time.perf_counter()
        sgd_step(self.graph.weights, opt.velocity_w, opt.grad_w, opt.lr_w, self.network.bias, opt.velocity_b,
                 opt.grad_b, opt.lr_b, cfg.momentum, X.shape[0])
        stats.update_seconds = time.perf_counter() - start
        return stats

    def _phases(self, X, labels, nudge, keep=None):
        """Phases and gradients of every sample, in ``config.threads`` chunks; their BatchStats.

        The first chunk accumulates straight into the optimizer's gradients,
        the others into buffers of their own (kept between batches) that are
        added in chunk order afterwards, so a run is reproducible for a given
        thread count. The first chunk runs in the calling thread.
        """
        opt = self._opt
        chunks = np.array_split(np.arange(X.shape[0]), min(self.config.threads, X.shape[0]))
        buffers = [(opt.grad_w, opt.grad_b)] + self._chunk_buffers(len(chunks) - 1)
        results = self._in_threads(lambda job: self._rows(X[job[0]], labels[job[0]], nudge, *job[1],
                                                          keep_states=keep is not None),
                                   list(zip(chunks, buffers)))
        if keep is not None:
            keep.add(np.concatenate([r.states_a for r in results]), np.concatenate([r.states_b for r in results]),
                     1.0 / (nudge.beta_a - nudge.beta_b))
        for gw, gb in buffers[1:]:
            opt.grad_w += gw
            opt.grad_b += gb
            gw.fill(0)
            gb.fill(0)
        return self._batch_stats(labels, results)

    def _rows(self, X, labels, nudge, grad_w=None, grad_b=None, keep_states=False):
        """:func:`~eventhorizon.eqprop_rows.eqprop_rows` on some samples with this model's rule and budget."""
        return eqprop_rows(self.network, X, labels, self.output_ids, nudge,
                           rule=settle_rule(self.config.epsilon, 1.0), max_updates=self._max_updates,
                           grad_w=grad_w, grad_b=grad_b, keep_states=keep_states)

    @staticmethod
    def _in_threads(run, jobs):
        """``[run(job) for job in jobs]``, the first in the calling thread and the others on the pool at once.

        Waits for every job before returning (or raising), so none runs past the call.
        """
        pool = thread_pool(len(jobs) - 1) if len(jobs) > 1 else None
        futures = [pool.submit(run, job) for job in jobs[1:]]
        try:
            first = run(jobs[0])
        finally:
            rest = [f.result() for f in futures]
        return [first] + rest

    def _chunk_buffers(self, count):
        """``count`` zeroed gradient accumulators ``(grad_w, grad_b)``, reused while the graph's size holds."""
        shape = (self.graph.nnz, self.graph.n)
        kept = getattr(self, "_buffers", [])
        if len(kept) < count or (kept and (kept[0][0].size, kept[0][1].size) != shape):
            kept = [(np.zeros(shape[0], np.float32), np.zeros(shape[1], np.float32)) for _ in range(count)]
            self._buffers = kept
        return kept[:count]

    def _batch_stats(self, labels, results):
        """Totals over the chunks' results (:class:`~eventhorizon.eqprop_rows.RowsResult`)."""
        out = np.concatenate([r.free_out for r in results]).astype(np.float64)
        counts = np.concatenate([r.stats for r in results])
        settled = np.concatenate([r.settled for r in results])
        y = np.eye(self.n_classes)[labels]
        ops, updates = counts[:, :, K.SYNAPTIC_OPS], counts[:, :, K.NEURON_UPDATES]
        return BatchStats(samples=labels.size, loss=0.5 * float(np.sum((y - out) ** 2)),
                          correct=int(np.sum(np.argmax(out, axis=1) == labels)),
                          free_ops=int(ops[:, FREE].sum()), nudged_ops=int(ops[:, FREE + 1:].sum()),
                          learning_ops=int(sum(r.learning_ops.sum() for r in results)),
                          free_updates=int(updates[:, FREE].sum()), nudged_updates=int(updates[:, FREE + 1:].sum()),
                          not_settled=int((~settled).sum()))

    # -------------------------------------------------------------- inference

    def predict(self, X):
        """Predicted class per row of ``X`` (argmax of the free-phase outputs)."""
        X = np.asarray(X, dtype=np.float32)
        return np.concatenate([np.argmax(out, axis=1) for out, _ in self._free_outputs(X)]
                              or [np.zeros(0, np.int64)]).astype(np.int64)

    def evaluate(self, X, labels):
        """Accuracy, mean loss and free-phase work on a labelled set.

        Returns
        -------
        dict
            ``accuracy``, ``loss``, ``free_ops``, ``samples``.
        """
        X, labels = self._check_batch(X, labels)
        correct, loss, ops, start = 0, 0.0, 0, 0
        for out, block_ops in self._free_outputs(X):
            block_labels = labels[start:start + out.shape[0]]
            y = np.eye(self.n_classes, dtype=np.float32)[block_labels]
            correct += int(np.sum(np.argmax(out, axis=1) == block_labels))
            loss += float(np.sum(0.5 * np.sum((y - out) ** 2, axis=1, dtype=np.float32), dtype=np.float64))
            ops += block_ops
            start += out.shape[0]
        n = max(1, X.shape[0])
        return {"accuracy": correct / n, "loss": loss / n, "free_ops": ops, "samples": int(X.shape[0])}

    def _free_outputs(self, X, block=1024):
        """Free-phase outputs of the rows of ``X``, ``block`` rows at a time on ``config.threads`` threads.

        Yields ``(outputs, synaptic_ops)`` per block; the states are those of
        :meth:`free_phase` (see :func:`~eventhorizon.batch_settle.settle_batch`).
        """
        for lo in range(0, X.shape[0], block):
            res = settle_batch(self.network, X[lo:lo + block], eps=self.config.epsilon, threads=self.config.threads,
                               max_updates=self._max_updates, on_budget="return")
            yield res.x[:, self.output_ids], res.total("synaptic_ops")

    # ---------------------------------------------------------- dense layout

    def dense_parameters(self):
        """Weights ``W[l]`` of shape ``(n_l, n_{l+1})`` and biases of layers 1..L, as float32 arrays.

        The layout of :class:`eventhorizon.dense_eqprop.DenseEqProp`; missing
        synapses are zeros.
        """
        A = self.graph.to_scipy().tocsr()
        o = self.offsets
        weights = [np.asarray(A[o[l]:o[l + 1], o[l + 1]:o[l + 2]].toarray(), np.float32)
                   for l in range(len(self.config.sizes) - 1)]
        biases = [self.network.bias[o[l]:o[l + 1]].copy() for l in range(1, len(self.config.sizes))]
        return weights, biases
