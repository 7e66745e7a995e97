"""Which structure should deliver delayed spikes? Heap vs FIFO-per-delay vs delay ring.

    python benchmarks/bench_timequeue.py [--n 5000] [--rate 20] [--repeats 5]

Workload: ``n`` sources fire Poisson spike trains at ``rate`` Hz for 1
simulated second; each spike schedules one arrival (random target neuron,
random weight) at ``t + delay``; every arrival is delivered in time order
(``acc[target] += weight``).  The spike trains are generated beforehand
(sorted), except in (e), where each source's next spike is itself an event in
the heap.  Timed: the compiled delivery loop only (allocation excluded).

(a) :mod:`scheduler.timequeue` binary heap, constant delay 1.5 ms.
(b) A FIFO ring per distinct delay, merged by the minimum head: O(1) per
    event because arrivals of one delay are pushed in time order.
    (b) one delay 1.5 ms; (b') four projection delays {0.5, 1, 1.5, 3} ms.
(c) The heap with a random per-synapse delay, uniform in [0.5, 3] ms.
(d) :mod:`scheduler.delayring`, dt = 0.1 ms, the delays of (c) rounded to
    steps: one ``_ring_add`` per spike, one ``_ring_take`` (O(n)) per step.
(e) The heap holding the next spike of every source as well as the arrivals
    (delay 1.5 ms): ~n pending events instead of ~rate * n * delay.

Prints events delivered (popped) per second of wall time, median of the repeats.
"""

import argparse
import time

import numpy as np

from scheduler.delayring import _ring_add, _ring_take, new_delay_ring
from scheduler.jit import kernel
from scheduler.timequeue import _eq_peek_time, _eq_pop, _eq_push, _eq_size, new_event_heap

T_END = 1.0


@kernel
def _heap_deliver(h, spike_t, post, weight, delay, acc):
    count = 0
    for i in range(spike_t.shape[0]):
        t = spike_t[i]
        while _eq_size(h) > 0 and _eq_peek_time(h) <= t:
            e = _eq_pop(h)
            acc[e[4]] += e[5]
            count += 1
        if not _eq_push(h, t + delay[i], 0, 0, post[i], weight[i]):
            return -1  # capacity is sized by the caller
    while _eq_size(h) > 0:
        e = _eq_pop(h)
        acc[e[4]] += e[5]
        count += 1
    return count


@kernel
def _fifo_deliver(spike_t, post, weight, delay_index, delays, cap, acc):
    nd = delays.shape[0]
    mask = cap - 1
    ft = np.empty((nd, cap))
    fp = np.empty((nd, cap), dtype=np.int64)
    fw = np.empty((nd, cap))
    head = np.zeros(nd, dtype=np.int64)
    tail = np.zeros(nd, dtype=np.int64)
    count = 0
    m = spike_t.shape[0]
    i = 0
    while True:
        # the earliest head over the FIFOs
        best = -1
        best_t = np.inf
        for d in range(nd):
            if head[d] < tail[d]:
                hd = ft[d, head[d] & mask]
                if hd < best_t:
                    best_t = hd
                    best = d
        if i < m and (best < 0 or spike_t[i] < best_t):
            d = delay_index[i]
            if tail[d] - head[d] >= cap:
                return -1
            j = tail[d] & mask
            ft[d, j] = spike_t[i] + delays[d]
            fp[d, j] = post[i]
            fw[d, j] = weight[i]
            tail[d] += 1
            i += 1
        elif best >= 0:
            j = head[best] & mask
            acc[fp[best, j]] += fw[best, j]
            head[best] += 1
            count += 1
        else:
            break
    return count


@kernel
def _ring_deliver(r, spike_step, post, weight, delay_steps, n_steps, inp, acc):
    i = 0
    m = spike_step.shape[0]
    for s in range(n_steps):
        _ring_take(r, inp)
        for j in range(inp.shape[0]):
            acc[j] += inp[j]
        while i < m and spike_step[i] == s:
            _ring_add(r, delay_steps[i] - 1, post[i], weight[i])
            i += 1
    return m


@kernel
def _heap_sources(h, n, rate, t_end, delay, seed, acc):
    np.random.seed(seed)
    for src in range(n):
        t = np.random.exponential(1.0 / rate)
        if t < t_end:
            _eq_push(h, t, 0, 0, src, 0.0)  # kind 0: a source spikes
    count = 0
    while _eq_size(h) > 0:
        t, _, _, kind, target, value = _eq_pop(h)
        count += 1
        if kind == 0:
            if not _eq_push(h, t + delay, 0, 1, np.random.randint(n), np.random.random()):
                return -1
            nxt = t + np.random.exponential(1.0 / rate)
            if nxt < t_end and not _eq_push(h, nxt, 0, 0, target, 0.0):
                return -1
        else:
            acc[target] += value
    return count


def _spikes(n, rate, rng):
    counts = rng.poisson(rate * T_END, n)
    t = np.sort(rng.uniform(0.0, T_END, counts.sum()))
    m = t.shape[0]
    return t, rng.integers(0, n, m), rng.random(m)


def _median_rate(run, repeats):
    run()  # compile and warm up outside timing
    times, events = [], 0
    for _ in range(repeats):
        start = time.perf_counter()
        events = run()
        times.append(time.perf_counter() - start)
    assert events > 0
    return events, events / float(np.median(times))


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=5000)
    parser.add_argument("--rate", type=float, default=20.0)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    n, rng = args.n, np.random.default_rng(0)
    spike_t, post, weight = _spikes(n, args.rate, rng)
    m = spike_t.shape[0]
    const = np.full(m, 1.5e-3)
    rand = rng.uniform(0.5e-3, 3e-3, m)
    proj_delays = np.array([0.5e-3, 1e-3, 1.5e-3, 3e-3])
    proj = (rng.integers(0, n, m) % 4).astype(np.int64)  # source's projection
    dt = 1e-4
    n_steps = int(round(T_END / dt)) + 40
    spike_step = np.floor(spike_t / dt).astype(np.int64)
    delay_steps = np.maximum(1, np.rint(rand / dt)).astype(np.int64)
    cap = 1 << 14
    sums = {}

    def heap(delays, key):
        def run():
            acc = np.zeros(n)
            count = _heap_deliver(new_event_heap(cap), spike_t, post, weight, delays, acc)
            sums[key] = acc
            return count
        return run

    def fifo(index, delays, key):
        def run():
            acc = np.zeros(n)
            count = _fifo_deliver(spike_t, post, weight, index, delays, cap, acc)
            sums[key] = acc
            return count
        return run

    def ring():
        r = new_delay_ring(n, int(delay_steps.max()))
        inp = np.empty(n)
        acc = np.zeros(n)
        count = _ring_deliver(r, spike_step, post, weight, delay_steps, n_steps, inp, acc)
        sums["d"] = acc
        return count

    def sources():
        return _heap_sources(new_event_heap(cap), n, args.rate, T_END, 1.5e-3, 1, np.zeros(n))

    rows = [
        ("(a) heap, constant delay 1.5 ms", heap(const, "a")),
        ("(b) FIFO per delay, 1 delay 1.5 ms", fifo(np.zeros(m, dtype=np.int64), proj_delays[2:3], "b")),
        ("(b') FIFO per delay, 4 projection delays", fifo(proj, proj_delays, "b'")),
        ("(c) heap, per-synapse delay U[0.5, 3] ms", heap(rand, "c")),
        ("(d) DelayRing dt=0.1 ms, U[0.5, 3] ms", ring),
        ("(e) heap, sources in queue + arrivals", sources),
    ]
    print(f"n={n} sources at {args.rate:g} Hz for {T_END:g} s: {m} spikes; median of {args.repeats}")
    print(f"{'workload':<44} {'events':>8} {'M ev/s':>8}")
    for name, run in rows:
        events, rate = _median_rate(run, args.repeats)
        print(f"{name:<44} {events:>8} {rate / 1e6:>8.1f}")
    for key in ("b", "b'", "c", "d"):  # every structure delivered the same input
        assert np.allclose(sums[key], sums["a"]), key


if __name__ == "__main__":
    main()
