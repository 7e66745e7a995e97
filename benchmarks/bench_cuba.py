"""CUBA side by side: eventhorizon's exact clock engine against Brian2 (rates, ISI CV, time per simulated second).

What it measures, per seed (the seed drives the wiring and the initial potentials):
mean firing rate and mean ISI CV over [discard, duration) with the rule of
``eventhorizon.spiking.stats`` (the same as benchmarks/brian2_cuba.py), and
wall time of the simulation loop per simulated second (median over
repeats; network construction, initial state and JIT compilation excluded:
a warm-up run compiles or loads the kernels first). Also synaptic events per
wall second and bytes of synapse storage per synapse.

Brian2 is optional. To compare, install it in its own venv and run its side:

    python3 -m venv /tmp/b2 && /tmp/b2/bin/pip install "numpy<2.4" brian2
    /tmp/b2/bin/python benchmarks/brian2_cuba.py --target cpp_standalone --seeds 0 1 2 3 4 \\
        --duration 1.5 --discard 0.5 --json /tmp/brian2_cpp.json
    /tmp/b2/bin/python benchmarks/brian2_cuba.py --target cython --seeds 0 1 2 3 4 \\
        --duration 1.5 --discard 0.5 --json /tmp/brian2_cython.json

then pass those files here:

    python3 benchmarks/bench_cuba.py --seeds 0 1 2 3 4 --brian2 /tmp/brian2_cpp.json /tmp/brian2_cython.json
    python3 benchmarks/bench_cuba.py --neurons 40000 --duration 1.0 --seeds 0   # the scale-up variant
"""

import argparse
import json
import statistics
import time

import numpy as np

from eventhorizon.scenario import load_scenario, resolve_scenario
from eventhorizon.spiking.network import build_spiking_network, initial_potentials
from eventhorizon.spiking.simulation import Simulation
from eventhorizon.spiking.stats import isi_cvs, mean_rate


def _scenario(neurons, seed, duration):
    excitatory = int(round(0.8 * neurons))
    return load_scenario(resolve_scenario("cuba"), [
        f"network.sizes=[{excitatory}, {neurons - excitatory}]", f"network.probability={80 / neurons}",
        f"run.seed={seed}", f"run.duration_s={duration}", "monitors.state_neurons=[]"])


def measure_seed(neurons, seed, duration, discard, repeats):
    """Statistics and median loop time of one seed."""
    sc = _scenario(neurons, seed, duration)
    net = build_spiking_network(sc)
    v0 = initial_potentials(sc, net.n)
    Simulation(net, v0).run(0.01)  # warm-up: compile or load the kernels
    times, sim = [], None
    for _ in range(repeats):
        sim = Simulation(net, v0)
        start = time.perf_counter()
        sim.run(duration, chunk=duration)
        times.append(time.perf_counter() - start)
    cvs = isi_cvs(sim.spikes, discard, duration)
    graph = net.graph
    loop = statistics.median(times)
    return {"seed": seed, "synapses": graph.nnz, "spikes": sim.spikes.num_spikes,
            "rate_hz": mean_rate(sim.spikes, discard, duration), "cv_isi_mean": float(cvs.mean()),
            "cv_neurons": int(cvs.size), "loop_s_per_sim_s": loop / duration, "loop_s_all": times,
            "synaptic_events_per_s": sim.counts["synaptic_events"] / loop,
            "bytes_per_synapse": (graph.indices.nbytes + graph.weights.nbytes + graph.indptr.nbytes) / graph.nnz}


def _mean_std(values):
    return float(np.mean(values)), float(np.std(values, ddof=1)) if len(values) > 1 else 0.0


def summarize(records):
    rate, cv = _mean_std([r["rate_hz"] for r in records]), _mean_std([r["cv_isi_mean"] for r in records])
    return {"rate_hz": rate, "cv_isi_mean": cv,
            "loop_s_per_sim_s_median": statistics.median(r["loop_s_per_sim_s"] for r in records),
            "synaptic_events_per_s_median": statistics.median(r["synaptic_events_per_s"] for r in records),
            "bytes_per_synapse": records[0]["bytes_per_synapse"]}


def _brian2_line(path, ours):
    data = json.loads(open(path, encoding="utf-8").read())
    agg = data["aggregate"]
    rate, cv = agg["rate_hz"]["mean"], agg["cv_isi"]["mean"]
    t = agg["median_loop_cpu_s_per_sim_s"]  # Brian2's standalone timer is CPU time; compare like with like
    return (f"  Brian2 {data['brian2_version']} {data['target']:<15} rate {rate:6.3f} ± {agg['rate_hz']['std_ddof1']:.3f}"
            f" Hz  CV {cv:.3f} ± {agg['cv_isi']['std_ddof1']:.3f}  loop {t:.4f} s/sim-s   "
            f"ours/theirs: rate {ours['rate_hz'][0] / rate - 1:+.1%}, CV {ours['cv_isi_mean'][0] / cv - 1:+.1%}, "
            f"speed-up {t / ours['loop_s_per_sim_s_median']:.2f}×")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--neurons", type=int, default=4000)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3, 4])
    parser.add_argument("--duration", type=float, default=1.5, help="simulated seconds")
    parser.add_argument("--discard", type=float, default=0.5, help="seconds dropped before statistics")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--brian2", nargs="*", default=[], help="JSON files written by brian2_cuba.py")
    parser.add_argument("--json", help="write the results here")
    args = parser.parse_args(argv)
    records = [measure_seed(args.neurons, s, args.duration, args.discard, args.repeats) for s in args.seeds]
    ours = summarize(records)
    print(f"CUBA, {args.neurons} neurons, {args.duration} s, statistics from {args.discard} s, seeds {args.seeds}, "
          f"median of {args.repeats} repeats")
    for r in records:
        print(f"  seed {r['seed']}: {r['synapses']} synapses, {r['spikes']} spikes, rate {r['rate_hz']:.3f} Hz, "
              f"CV {r['cv_isi_mean']:.3f}, loop {r['loop_s_per_sim_s']:.4f} s/sim-s")
    print(f"  eventhorizon clock engine   rate {ours['rate_hz'][0]:6.3f} ± {ours['rate_hz'][1]:.3f} Hz"
          f"  CV {ours['cv_isi_mean'][0]:.3f} ± {ours['cv_isi_mean'][1]:.3f}  loop "
          f"{ours['loop_s_per_sim_s_median']:.4f} s/sim-s, {ours['synaptic_events_per_s_median'] / 1e6:.1f} M "
          f"synaptic events/s, {ours['bytes_per_synapse']:.2f} bytes/synapse")
    for path in args.brian2:
        print(_brian2_line(path, ours))
    if args.json:
        with open(args.json, "w", encoding="utf-8") as fh:
            json.dump({"args": vars(args), "records": records, "aggregate": ours}, fh, indent=2)


if __name__ == "__main__":
    main()
