"""Dynamic synapse store: insert and delete synapses in batches during a run.

Structural plasticity changes the graph every few hundred samples, not per
event, so edits come in batches. :meth:`DynamicSynapseStore.apply_edits`
applies one batch (deletes first, then inserts) in a single vectorised
``O(nnz + edits·log(edits))`` pass and returns a fresh
:class:`~topology.store.SynapseGraph`: kernels keep reading plain CSR with
sorted rows and an up-to-date segment table, with no gaps to skip.

Per-synapse side arrays (optimizer state such as gradients, momentum or
per-synapse learning rates) are passed as ``carry`` and come back remapped
to the new synapse order; new synapses get given initial values. The
result also holds the old-position → new-position map, so anything else
indexed by synapse can follow.

Why a rebuild rather than per-row slack: measured on a 784-500-10 layered
graph at 90% sparsity (40k synapses) with 1% of synapses rewired per step
and three carried arrays (``benchmarks/bench_store.py``), the rebuild takes
about 1 ms per step; a slack layout (free slots at row ends, njit edits)
takes 0.14 ms for the edits but 0.9 ms once compacted to the CSR the
kernels read, and needs occasional full relayouts when a row fills up.
Reading the slack layout directly would mean teaching every kernel about
row ends and holes (and skipping holes in the optimizer arrays) to save
under a millisecond per plasticity step, which comes every few hundred
samples of about a millisecond each.

Symmetric pairs: EqProp's free-free synapses must satisfy ``W_ij = W_ji``.
With ``symmetric_pairs`` the store treats ``(i, j)`` and ``(j, i)``
between paired neurons as one unit: inserting one inserts both with the
same weight and the same carried initial values, deleting one deletes both.
List each pair once per batch, in either direction.
"""

from typing import NamedTuple

import numpy as np

from topology.store import SynapseGraph

__all__ = ["DynamicSynapseStore", "EditResult", "Deletions", "Insertions"]


class Deletions(NamedTuple):
    """Synapses to delete: parallel int arrays ``pre -> post``."""

    pre: np.ndarray
    post: np.ndarray


class Insertions(NamedTuple):
    """Synapses to insert: parallel arrays ``pre -> post`` with float32 ``weight``."""

    pre: np.ndarray
    post: np.ndarray
    weight: np.ndarray


class EditResult(NamedTuple):
    """What :meth:`DynamicSynapseStore.apply_edits` returns.

    Attributes
    ----------
    graph : SynapseGraph
        The edited graph (a new object; the old one is unchanged).
    carried : tuple of numpy.ndarray
        The ``carry`` arrays remapped to ``graph``'s synapse order (float32).
    old_to_new : numpy.ndarray
        int64, one per old synapse: its position in ``graph``, or -1 if deleted.
    inserted : numpy.ndarray
        int64, one per listed insert: its position in ``graph``.
    mirrored : numpy.ndarray
        int64, one per listed insert: the position of its mirror ``(post,
        pre)`` inserted with it, or -1 when the synapse is not paired.
    """

    graph: SynapseGraph
    carried: tuple
    old_to_new: np.ndarray
    inserted: np.ndarray
    mirrored: np.ndarray


def _pair(name, pre, post, n):
    """Validated int64 ``(pre, post)`` arrays of argument ``name``."""
    pre = np.asarray(pre)
    post = np.asarray(post)
    if pre.ndim != 1 or pre.shape != post.shape:
        raise ValueError(f"{name}: pre and post must be 1-D of one length, got shapes {pre.shape} and {post.shape}")
    for part, ids in (("pre", pre), ("post", post)):
        if ids.size and not np.issubdtype(ids.dtype, np.integer):
            raise TypeError(f"{name}: {part} ids must be integers, got dtype {ids.dtype}")
        if ids.size and (ids.min() < 0 or ids.max() >= n):
            bad = ids[(ids < 0) | (ids >= n)][0]
            raise ValueError(f"{name}: {part} ids must lie in [0, {n}), got {bad}")
    return pre.astype(np.int64), post.astype(np.int64)


def _first_repeat(keys):
    """Index of a key that occurs twice in ``keys``, or -1."""
    if keys.size < 2:
        return -1
    order = np.argsort(keys, kind="stable")
    same = np.flatnonzero(keys[order][1:] == keys[order][:-1])
    return int(order[same[0] + 1]) if same.size else -1


def _lookup(sorted_keys, keys):
    """Positions of ``keys`` in ``sorted_keys`` and whether each is there."""
    pos = np.searchsorted(sorted_keys, keys)
    found = pos < sorted_keys.shape[0]
    found[found] = sorted_keys[pos[found]] == keys[found]
    return pos, found


class DynamicSynapseStore:
    """A synapse graph edited in batches, keeping CSR and side arrays in step.

    Parameters
    ----------
    graph : SynapseGraph
        The starting graph (not modified).
    allow_self_loops : bool
        Whether inserts may add ``i -> i``.
    symmetric_pairs : bool or array_like of bool
        ``True`` pairs every ``(i, j)`` with ``(j, i)``; a boolean mask over
        neurons pairs only synapses whose two ends are both in the mask
        (e.g. EqProp's free neurons). Paired synapses of ``graph`` must
        already come in pairs with bit-identical weights.

    Notes
    -----
    The store keeps (does not copy) ``graph`` until the first edit, and
    each edit's new graph after that: in-place weight updates on
    ``store.graph.weights`` during training are what the next edit carries.
    Whatever caches arrays of the old graph (a network's kernel arrays)
    must switch to :attr:`EditResult.graph` and drop its caches after an
    edit; ``EditResult.carried`` replaces the old per-synapse arrays.

    Examples
    --------
    >>> g = SynapseGraph.from_edges(4, pre=[0, 1, 2], post=[1, 2, 1], weight=[0.5, 1.0, 1.0])
    >>> store = DynamicSynapseStore(g, symmetric_pairs=[False, True, True, True])
    >>> velocity = np.array([0.1, 0.2, 0.3], np.float32)
    >>> out = store.apply_edits(deletes=([2], [1]), inserts=([0, 3], [2, 1], [-1.0, 4.0]),
    ...                         carry=[velocity], carry_init=[0.0])
    >>> sorted(out.graph.to_networkx().edges(data="weight"))
    [(0, 1, 0.5), (0, 2, -1.0), (1, 3, 4.0), (3, 1, 4.0)]
    >>> out.carried[0]
    array([0.1, 0. , 0. , 0. ], dtype=float32)
    >>> out.old_to_new.tolist(), out.inserted.tolist(), out.mirrored.tolist()
    ([0, -1, -1], [1, 3], [-1, 2])
    >>> store.graph is out.graph
    True
    """

    def __init__(self, graph, allow_self_loops=False, symmetric_pairs=False):
        if not isinstance(graph, SynapseGraph):
            raise TypeError(f"graph must be a topology.SynapseGraph, got {type(graph).__name__}")
        self.allow_self_loops = bool(allow_self_loops)
        self.paired = self._pair_mask(symmetric_pairs, graph.n)
        self._set_graph(graph)
        if not self.allow_self_loops and np.any(self._keys // graph.n == self._keys % graph.n):
            raise ValueError("graph has self-loops but allow_self_loops is False")
        self._check_pairs()

    @staticmethod
    def _pair_mask(symmetric_pairs, n):
        if isinstance(symmetric_pairs, (bool, np.bool_)):
            return np.full(n, bool(symmetric_pairs))
        mask = np.asarray(symmetric_pairs)
        if mask.dtype != np.bool_ or mask.shape != (n,):
            raise ValueError(f"symmetric_pairs must be a bool or a bool mask of shape ({n},), "
                             f"got dtype {mask.dtype} and shape {mask.shape}")
        return mask.copy()

    def _set_graph(self, graph, keys=None):
        """Make ``graph`` current; ``keys`` are its sorted ``pre * n + post`` if known."""
        self.graph = graph
        self._keys = graph.pre_ids() * graph.n + graph.indices if keys is None else keys

    def _check_pairs(self):
        """Paired synapses of the current graph come in pairs with equal weight bits."""
        n = self.graph.n
        pre, post = self._keys // n, self._keys % n
        paired = self.paired[pre] & self.paired[post] & (pre != post)
        pos, found = _lookup(self._keys, post[paired] * n + pre[paired])
        if not np.all(found):
            i = int(np.flatnonzero(~found)[0])
            raise ValueError(f"graph has paired synapse ({pre[paired][i]}, {post[paired][i]}) "
                             f"without its mirror (symmetric_pairs)")
        w = self.graph.weights
        same = w[paired].view(np.int32) == w[pos].view(np.int32)
        if not np.all(same):
            i = int(np.flatnonzero(~same)[0])
            raise ValueError(f"graph has paired synapses ({pre[paired][i]}, {post[paired][i]}) and its "
                             f"mirror with different weights (symmetric_pairs)")

    @property
    def n(self):
        """Number of neurons."""
        return self.graph.n

    @property
    def nnz(self):
        """Number of synapses."""
        return self.graph.nnz

    def positions(self, pre, post):
        """Positions of synapses ``pre -> post`` in the current graph (-1 where missing).

        Examples
        --------
        >>> store = DynamicSynapseStore(SynapseGraph.from_edges(3, [0, 1], [2, 0], [1.0, 2.0]))
        >>> store.positions([1, 0, 2], [0, 2, 2]).tolist()
        [1, 0, -1]
        """
        pre, post = _pair("positions", pre, post, self.n)
        pos, found = _lookup(self._keys, pre * self.n + post)
        return np.where(found, pos, -1).astype(np.int64)

    # ------------------------------------------------------------------ edits
    def _mirror(self, pre, post):
        """Boolean: which of the edges ``pre -> post`` have a mirror partner."""
        return self.paired[pre] & self.paired[post] & (pre != post)

    def _expand(self, name, pre, post):
        """Keys of the listed edges followed by their mirrors; the mirror flags."""
        n = self.n
        keys = pre * n + post
        has_mirror = self._mirror(pre, post)
        mirror_keys = post[has_mirror] * n + pre[has_mirror]
        all_keys = np.concatenate([keys, mirror_keys])
        dup = _first_repeat(all_keys)
        if dup >= 0:
            i, j = divmod(int(all_keys[dup]), n)
            hint = " (with symmetric_pairs, list each pair once)" if has_mirror.any() else ""
            raise ValueError(f"{name} lists synapse ({i}, {j}) more than once{hint}")
        return all_keys, has_mirror

    def _delete_positions(self, deletes):
        if len(deletes) != 2:
            raise ValueError(f"deletes must be (pre, post), got {len(deletes)} arrays")
        pre, post = _pair("deletes", *deletes, self.n)
        keys, _ = self._expand("deletes", pre, post)
        pos, found = _lookup(self._keys, keys)
        if not np.all(found):
            i, j = divmod(int(keys[np.flatnonzero(~found)[0]]), self.n)
            raise ValueError(f"deletes: synapse ({i}, {j}) does not exist")
        return pos

    def _insert_keys(self, inserts, kept_keys):
        if len(inserts) != 3:
            raise ValueError(f"inserts must be (pre, post, weight), got {len(inserts)} arrays")
        pre, post = _pair("inserts", inserts[0], inserts[1], self.n)
        weight = np.asarray(inserts[2], dtype=np.float32)
        if weight.shape != pre.shape:
            raise ValueError(f"inserts: weight must have shape {pre.shape} like pre, got {weight.shape}")
        if not np.all(np.isfinite(weight)):
            raise ValueError(f"inserts: weights must be finite, got {weight[~np.isfinite(weight)][0]}")
        if not self.allow_self_loops and np.any(pre == post):
            i = int(pre[pre == post][0])
            raise ValueError(f"inserts: self-loop ({i}, {i}) not allowed (allow_self_loops is False)")
        keys, has_mirror = self._expand("inserts", pre, post)
        _, exists = _lookup(kept_keys, keys)
        if np.any(exists):
            i, j = divmod(int(keys[np.flatnonzero(exists)[0]]), self.n)
            raise ValueError(f"inserts: synapse ({i}, {j}) already exists")
        return keys, has_mirror, weight

    def _check_carry(self, carry, carry_init, n_listed):
        carry = list(carry)
        init = [0.0] * len(carry) if carry_init is None else list(carry_init)
        if len(init) != len(carry):
            raise ValueError(f"carry_init must have one entry per carry array ({len(carry)}), got {len(init)}")
        for k, arr in enumerate(carry):
            if not isinstance(arr, np.ndarray) or arr.dtype != np.float32 or arr.shape != (self.nnz,):
                raise ValueError(f"carry[{k}] must be a float32 array of shape ({self.nnz},), got "
                                 f"{getattr(arr, 'dtype', type(arr).__name__)} {np.shape(arr)}")
        values = []
        for k, value in enumerate(init):
            value = np.broadcast_to(np.asarray(value, np.float32), (n_listed,)) if np.ndim(value) == 0 \
                else np.asarray(value, np.float32)
            if value.shape != (n_listed,):
                raise ValueError(f"carry_init[{k}] must be a scalar or have one value per insert "
                                 f"({n_listed}), got shape {value.shape}")
            values.append(value)
        return carry, values

    def apply_edits(self, deletes=((), ()), inserts=((), (), ()), carry=(), carry_init=None):
        """Delete, then insert, synapses in one pass; remap per-synapse arrays.

        Nothing changes if any argument is invalid. Deleting and re-inserting
        a synapse in one batch resets it (new weight, initial carried values).

        Parameters
        ----------
        deletes : (pre, post)
            Integer arrays of synapses to delete (a :class:`Deletions`).
            A paired synapse's mirror is deleted with it.
        inserts : (pre, post, weight)
            Synapses to insert (an :class:`Insertions`); a paired synapse's
            mirror is inserted with the same weight.
        carry : sequence of numpy.ndarray
            float32 arrays of shape ``(nnz,)`` in the current synapse order
            (optimizer state). Not modified.
        carry_init : sequence, optional
            One per ``carry`` array: the value(s) new synapses get, a scalar
            or one per listed insert (mirrors get their partner's). Zeros by
            default.

        Returns
        -------
        EditResult
            Also becomes the store's current ``graph``.

        Raises
        ------
        ValueError
            Naming the argument, for ids out of range, a missing synapse in
            ``deletes``, an existing one (or a self-loop) in ``inserts``, a
            synapse listed twice, or mis-shaped ``carry``/``carry_init``.

        Examples
        --------
        >>> store = DynamicSynapseStore(SynapseGraph.from_edges(3, [0, 0], [1, 2], [1.0, 2.0]))
        >>> out = store.apply_edits(deletes=Deletions([0], [1]), inserts=Insertions([1], [0], [3.0]))
        >>> out.graph.indptr.tolist(), out.graph.indices.tolist(), out.graph.weights.tolist()
        ([0, 1, 2, 2], [2, 0], [2.0, 3.0])
        >>> store.apply_edits(deletes=([0], [1]))
        Traceback (most recent call last):
        ...
        ValueError: deletes: synapse (0, 1) does not exist
        """
        del_pos = self._delete_positions(deletes)
        keep = np.ones(self.nnz, dtype=bool)
        keep[del_pos] = False
        kept_keys = self._keys[keep]
        ins_keys, has_mirror, weight = self._insert_keys(inserts, kept_keys)
        n_listed = weight.shape[0]
        carry, init = self._check_carry(carry, carry_init, n_listed)
        src, old_to_new, ins_new = self._sources(keep, kept_keys, ins_keys)
        new_keys = np.concatenate([self._keys, ins_keys])[src]
        listed = [weight] + init
        moved = [np.concatenate([old, value, value[has_mirror]])[src]
                 for old, value in zip([self.graph.weights] + carry, listed)]
        self._set_graph(self._edited_graph(del_pos, ins_keys, src, moved[0]), new_keys)
        mirrored = np.full(n_listed, -1, dtype=np.int64)
        mirrored[has_mirror] = ins_new[n_listed:]
        return EditResult(self.graph, tuple(moved[1:]), old_to_new, ins_new[:n_listed], mirrored)

    @staticmethod
    def _sources(keep, kept_keys, ins_keys):
        """Gather map of the new synapse order, the old → new map and the inserts' new positions.

        ``src[p]`` is, for the synapse at new position ``p``, its old position,
        or ``nnz + e`` for insert ``e`` (listed inserts, then mirrors):
        gathering ``concatenate([old, inserted])`` with ``src`` moves any
        per-synapse array in one pass.
        """
        nnz, n_kept, n_ins = keep.shape[0], kept_keys.shape[0], ins_keys.shape[0]
        order = np.argsort(ins_keys, kind="stable")
        before = np.searchsorted(kept_keys, ins_keys[order])  # kept synapse each insert goes in front of
        ins_new = np.empty(n_ins, dtype=np.int64)
        ins_new[order] = before + np.arange(n_ins, dtype=np.int64)
        shift = np.cumsum(np.bincount(before, minlength=n_kept + 1)[:n_kept])
        kept_new = np.arange(n_kept, dtype=np.int64) + shift
        old_to_new = np.full(nnz, -1, dtype=np.int64)
        old_to_new[keep] = kept_new
        src = np.empty(n_kept + n_ins, dtype=np.int64)
        src[kept_new] = np.flatnonzero(keep)
        src[ins_new] = nnz + np.arange(n_ins, dtype=np.int64)
        return src, old_to_new, ins_new

    def _edited_graph(self, del_pos, ins_keys, src, weights):
        """The new SynapseGraph: row counts from the edits, indices gathered with ``src``."""
        g, n = self.graph, self.n
        counts = (np.diff(g.indptr) - np.bincount(self._keys[del_pos] // n, minlength=n)
                  + np.bincount(ins_keys // n, minlength=n))
        indptr = np.zeros(n + 1, dtype=np.int64)
        np.cumsum(counts, out=indptr[1:])
        indices = np.concatenate([g.indices, (ins_keys % n).astype(np.int32)])[src]
        return SynapseGraph._trusted(indptr, indices, weights, n)
