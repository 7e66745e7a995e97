"""How should the synapse store take structural edits? Batched CSR rebuild vs per-row slack.

One plasticity step deletes a fraction of the synapses (1% by default) and
inserts as many new ones, carrying three per-synapse optimizer arrays
(gradient, velocity, learning rate) along, as EqProp's optimizer needs.
Network: 784-500-10 layered with symmetric feedback among free neurons
(hidden <-> output), 90% sparse; paired synapses are edited in pairs.

    python benchmarks/bench_store.py [--steps 50] [--fraction 0.01] [--density 0.1]

Designs, median µs per step:

* ``rebuild``: :meth:`topology.dynamic.DynamicSynapseStore.apply_edits`,
  one vectorised O(nnz + edits) pass giving a new CSR and segment table
  (validation included).
* ``slack edits``: rows with free slots at their ends (25% slack, at least
  4), each edit a binary search plus a shift inside its row, in njit. This
  alone is the cost if every kernel learnt to read row ends and skip holes.
* ``slack + CSR``: the slack edits followed by compaction to contiguous CSR
  and the segment table, which is what the kernels read today.
"""

import argparse
import time

import numba as nb
import numpy as np

from topology.dynamic import DynamicSynapseStore
from topology.generators import layered
from topology.store import SynapseGraph, _segment_table

SIZES = (784, 500, 10)


# --------------------------------------------------------------- slack layout
class SlackStore:
    """Rows with free slots at their ends; carry arrays stacked as rows of ``side``."""

    def __init__(self, graph, carry, slack=0.25, minimum=4):
        self.slack, self.minimum, self.overflows = slack, minimum, 0
        self._layout(graph, carry)

    def _layout(self, graph, carry):
        slack, minimum = self.slack, self.minimum
        counts = np.diff(graph.indptr)
        caps = counts + np.maximum(minimum, np.ceil(slack * counts)).astype(np.int64)
        self.start = np.zeros(graph.n + 1, np.int64)
        np.cumsum(caps, out=self.start[1:])
        self.count = counts.copy()
        dest = np.repeat(self.start[:-1], counts) + (np.arange(graph.nnz) - np.repeat(graph.indptr[:-1], counts))
        self.idx = np.full(self.start[-1], -1, np.int32)
        self.w = np.zeros(self.start[-1], np.float32)
        self.side = np.zeros((len(carry), self.start[-1]), np.float32)
        self.idx[dest], self.w[dest] = graph.indices, graph.weights
        for k, arr in enumerate(carry):
            self.side[k, dest] = arr

    def edit(self, del_pre, del_post, ins_pre, ins_post, ins_w, init):
        done = _slack_edits(self.start, self.count, self.idx, self.w, self.side,
                            del_pre, del_post, ins_pre, ins_post, ins_w, init)
        while done < ins_pre.size:  # a row is full: lay everything out again with fresh slack
            self.overflows += 1
            self._layout(*self.to_csr())
            none = np.zeros(0, np.int64)
            done += _slack_edits(self.start, self.count, self.idx, self.w, self.side, none, none,
                                 ins_pre[done:], ins_post[done:], ins_w[done:], init)

    def to_csr(self):
        """Contiguous CSR + segment table (what the kernels read) and the carried arrays."""
        indptr = np.zeros(self.count.shape[0] + 1, np.int64)
        np.cumsum(self.count, out=indptr[1:])
        live = np.repeat(self.start[:-1], self.count) + (np.arange(indptr[-1]) - np.repeat(indptr[:-1], self.count))
        indices = self.idx[live]
        graph = SynapseGraph._trusted(indptr, indices, self.w[live], self.count.shape[0])
        return graph, self.side[:, live]


@nb.njit(cache=True)
def _find(idx, lo, hi, j):
    while lo < hi:
        mid = (lo + hi) // 2
        if idx[mid] < j:
            lo = mid + 1
        else:
            hi = mid
    return lo


@nb.njit(cache=True)
def _slack_edits(start, count, idx, w, side, del_pre, del_post, ins_pre, ins_post, ins_w, init):
    for e in range(del_pre.shape[0]):
        i, j = del_pre[e], del_post[e]
        lo, hi = start[i], start[i] + count[i]
        p = _find(idx, lo, hi, j)
        if p == hi or idx[p] != j:
            raise ValueError("deletes: synapse does not exist")
        for q in range(p, hi - 1):
            idx[q], w[q] = idx[q + 1], w[q + 1]
            for k in range(side.shape[0]):
                side[k, q] = side[k, q + 1]
        idx[hi - 1] = -1
        count[i] -= 1
    for e in range(ins_pre.shape[0]):
        i, j = ins_pre[e], ins_post[e]
        lo, hi = start[i], start[i] + count[i]
        if hi == start[i + 1]:
            return e
        p = _find(idx, lo, hi, j)
        if p < hi and idx[p] == j:
            raise ValueError("inserts: synapse already exists")
        for q in range(hi, p, -1):
            idx[q], w[q] = idx[q - 1], w[q - 1]
            for k in range(side.shape[0]):
                side[k, q] = side[k, q - 1]
        idx[p], w[p] = j, ins_w[e]
        for k in range(side.shape[0]):
            side[k, p] = init[k]
        count[i] += 1
    return ins_pre.shape[0]


# ------------------------------------------------------------------ workload
def _forward_edges(graph):
    pre = np.repeat(np.arange(graph.n), np.diff(graph.indptr))
    fwd = pre < graph.indices
    return pre[fwd], graph.indices[fwd].astype(np.int64)


def _step_edits(store, fraction, rng):
    """Delete ``fraction`` of the forward synapses at random, insert as many missing forward pairs."""
    pre, post = _forward_edges(store.graph)
    k = max(1, int(round(fraction * store.nnz / (2 - pre.size / store.nnz))))  # mirrors double paired edits
    pick = rng.choice(pre.size, size=k, replace=False)
    offsets = np.cumsum((0,) + SIZES)
    sizes = np.array(SIZES)
    layer = np.tile(np.searchsorted(offsets, pre[pick], side="right") - 1, 4)  # regrow in the same layers
    new_pre = offsets[layer] + (rng.random(4 * k) * sizes[layer]).astype(np.int64)
    new_post = offsets[layer + 1] + (rng.random(4 * k) * sizes[layer + 1]).astype(np.int64)
    fresh = store.positions(new_pre, new_post) < 0
    _, first = np.unique(new_pre[fresh] * store.n + new_post[fresh], return_index=True)
    chosen = np.sort(first)[:k]
    ins_pre, ins_post = new_pre[fresh][chosen], new_post[fresh][chosen]
    weights = rng.uniform(-0.05, 0.05, size=ins_pre.size).astype(np.float32)
    return (pre[pick], post[pick]), (ins_pre, ins_post, weights)


def _expanded(store, deletes, inserts):
    """The edits with paired mirrors spelt out (the slack store has no pairing logic)."""
    (dp, dq), (ip, iq, iw) = deletes, inserts
    dm, im = store._mirror(dp, dq), store._mirror(ip, iq)
    return (np.concatenate([dp, dq[dm]]), np.concatenate([dq, dp[dm]]),
            np.concatenate([ip, iq[im]]), np.concatenate([iq, ip[im]]), np.concatenate([iw, iw[im]]))


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=50)
    parser.add_argument("--fraction", type=float, default=0.01)
    parser.add_argument("--density", type=float, default=0.1)
    args = parser.parse_args()
    graph = layered(SIZES, seed=0, feedback=True, density=args.density)
    free = np.arange(graph.n) >= SIZES[0]
    store = DynamicSynapseStore(graph, symmetric_pairs=free)
    carry = [np.zeros(graph.nnz, np.float32), np.zeros(graph.nnz, np.float32), np.full(graph.nnz, 0.05, np.float32)]
    init = np.array([0.0, 0.0, 0.05], np.float32)
    slack = SlackStore(graph, carry)
    rng = np.random.default_rng(1)
    times = {"rebuild": [], "slack edits": [], "slack + CSR": []}
    edits = 0
    for step in range(args.steps + 1):  # step 0 compiles the slack kernel
        deletes, inserts = _step_edits(store, args.fraction, rng)
        expanded = _expanded(store, deletes, inserts)
        edits += expanded[0].size + expanded[2].size
        t0 = time.perf_counter()
        out = store.apply_edits(deletes, inserts, carry=carry, carry_init=init)
        t1 = time.perf_counter()
        slack.edit(*expanded, init)
        t2 = time.perf_counter()
        slack_graph, slack_carry = slack.to_csr()
        t3 = time.perf_counter()
        carry = list(out.carried)
        if step:
            times["rebuild"].append(t1 - t0)
            times["slack edits"].append(t2 - t1)
            times["slack + CSR"].append(t3 - t1)
    for name in ("indptr", "indices", "weights", "seg_ptr", "seg_pos", "seg_first"):
        np.testing.assert_array_equal(getattr(slack_graph, name), getattr(store.graph, name))
    np.testing.assert_array_equal(slack_carry, np.stack(carry))
    print(f"784-500-10 layered, density {args.density}, nnz {store.nnz}, "
          f"{edits / (args.steps + 1):.0f} synapse edits per step (deletes + inserts, mirrors included), "
          f"3 carried arrays, {args.steps} steps; both designs end with identical CSR and carried arrays")
    print(f"slack store: {slack.overflows} full relayouts after a row ran out of slack (included in its times)")
    print(f"{'design':<14} {'median µs/step':>15} {'min':>8} {'max':>8}")
    for name, values in times.items():
        us = 1e6 * np.array(values)
        print(f"{name:<14} {np.median(us):>15.0f} {us.min():>8.0f} {us.max():>8.0f}")
    t = time.perf_counter()
    for _ in range(20):
        _segment_table(store.graph.indptr, store.graph.indices)
    print(f"(of which the segment table alone: {1e6 * (time.perf_counter() - t) / 20:.0f} µs)")


if __name__ == "__main__":
    main()
