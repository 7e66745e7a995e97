"""Brian2 side of the CUBA comparison: firing statistics and run time of the reference network.

Simulates the current-based (CUBA) network of Vogels & Abbott (2005) exactly as
in Brian2's examples/CUBA.py (4000 LIF neurons, 80% excitatory, p = 0.02,
dt = 0.1 ms, exact integration) and reports, per seed: mean firing rate over all
neurons, population-mean ISI CV, spike and synapse counts, and the time Brian2
spends in its simulation loop per simulated second. `--neurons` scales the
network keeping 80% E / 20% I and p = 80 / neurons (~80 inputs per neuron).

This script does not import eventhorizon; it runs in its own Brian2 venv:

    python3 -m venv /tmp/b2 && /tmp/b2/bin/pip install "numpy<2.4" brian2

Examples:

    /tmp/b2/bin/python benchmarks/brian2_cuba.py --target cython --seeds 0 1 2 3 4 \\
        --duration 1.5 --discard 0.5 --json brian2_cython.json
    /tmp/b2/bin/python benchmarks/brian2_cuba.py --target cpp_standalone --neurons 40000 \\
        --duration 1.0 --seeds 0 --json brian2_cpp_40k.json

Timing: `loop_s` is Brian2's own `device._last_run_time`, the simulation loop
only. For runtime targets (cython, numpy) that is wall time of the loop inside
`Network.run`, after code generation/compilation (`before_run`); a warm-up run
fills the Cython cache first. For cpp_standalone it is the CPU time (std::clock)
of the loop in the compiled binary, so C++ compilation, binary start-up,
loading of arrays and writing of results are excluded; the project is compiled
once per seed (make -j1) and the binary is re-run for each repeat. `loop_cpu_s`
is CPU time of the loop for every target; `call_s` is the wall time of the
whole `run()` call (runtime) or of the whole binary (standalone). Per seed the
median over repeats is reported; aggregates are the median over seeds of those.
"""

import argparse
import json
import tempfile
import time

import numpy as np

import brian2 as b2
from brian2 import mV, ms, second

NAMESPACE = {
    "taum": 20 * ms,
    "taue": 5 * ms,
    "taui": 10 * ms,
    "Vt": -50 * mV,
    "Vr": -60 * mV,
    "El": -49 * mV,
    "we": (60 * 0.27 / 10) * mV,  # 1.62 mV
    "wi": (-20 * 4.5 / 10) * mV,  # -9 mV
}
EQUATIONS = """
dv/dt  = (ge+gi-(v-El))/taum : volt (unless refractory)
dge/dt = -ge/taue : volt
dgi/dt = -gi/taui : volt
"""
CV_RULE = (
    "per neuron: ISIs of its spikes in [discard, duration]; neurons with >= 3 spikes "
    "there; CV = std(ISI, ddof=0) / mean(ISI); mean over those neurons"
)
EXCLUDED = (
    "setup (network construction, connect, initialisation), code generation and "
    "compilation (Cython or C++), before_run/after_run, and for cpp_standalone binary "
    "start-up, array loading and result writing; loop_s is Brian2's device._last_run_time "
    "(wall time for runtime targets, CPU time via std::clock for cpp_standalone)"
)


def build_network(n_neurons, seed_value):
    """The CUBA network with connectivity and initial v drawn from `seed_value`.

    Fixed object names keep the generated code, hence Brian2's Cython cache
    key, identical across networks (auto-names change while old objects live).
    """
    b2.defaultclock.dt = 0.1 * ms
    b2.seed(seed_value)
    n_exc = int(0.8 * n_neurons)
    p = 80 / n_neurons
    group = b2.NeuronGroup(
        n_neurons, EQUATIONS, threshold="v>Vt", reset="v = Vr",
        refractory=5 * ms, method="exact", namespace=NAMESPACE, name="neurons",
    )
    group.v = "Vr + rand() * (Vt - Vr)"
    group.ge = 0 * mV
    group.gi = 0 * mV
    exc = b2.Synapses(group, group, on_pre="ge += we", namespace=NAMESPACE, name="exc")
    exc.connect(f"i<{n_exc}", p=p)
    inh = b2.Synapses(group, group, on_pre="gi += wi", namespace=NAMESPACE, name="inh")
    inh.connect(f"i>={n_exc}", p=p)
    monitor = b2.SpikeMonitor(group, name="spikes")
    return b2.Network(group, exc, inh, monitor), monitor, (exc, inh)


def spike_stats(i, t, n_neurons, discard, duration):
    """Rate (Hz, all neurons) and mean ISI CV over spikes with t >= discard."""
    keep = t >= discard
    i, t = i[keep], t[keep]
    order = np.lexsort((t, i))
    i, t = i[order], t[order]
    trains = np.split(t, np.flatnonzero(np.diff(i)) + 1) if len(t) else []
    cvs = [np.std(np.diff(s)) / np.mean(np.diff(s)) for s in trains if len(s) >= 3]
    return {
        "rate_hz": len(t) / (n_neurons * (duration - discard)),
        "cv_isi": float(np.mean(cvs)) if cvs else float("nan"),
        "cv_neurons": len(cvs),
        "spikes_window": int(len(t)),
    }


def timed_runtime_run(net, duration):
    """Run a runtime-mode network; loop wall/CPU time and wall time of the call."""
    cpu_marks = []  # report is called once before and once after the loop
    start = time.perf_counter()
    net.run(
        duration * second,
        report=lambda *_: cpu_marks.append(time.process_time()),
        report_period=1e6 * second,
    )
    call_s = time.perf_counter() - start
    return {
        "loop_s": b2.device._last_run_time,
        "loop_cpu_s": cpu_marks[-1] - cpu_marks[0],
        "call_s": call_s,
    }


def run_runtime_seed(args, seed_value):
    """Fresh network per repeat (same seed, identical spikes); stats from the last."""
    timings = []
    for _ in range(args.repeats):
        net, monitor, synapses = build_network(args.neurons, seed_value)
        timings.append(timed_runtime_run(net, args.duration))
    return monitor, synapses, timings, {}


def run_standalone_seed(args, seed_value, directory):
    """Generate and compile once for this seed, then run the binary `repeats` times."""
    b2.device.reinit()
    b2.device.activate(build_on_run=False)
    net, monitor, synapses = build_network(args.neurons, seed_value)
    net.run(args.duration * second)
    b2.device.build(directory=directory, compile=True, run=False, with_output=False)
    compile_s = b2.device.timers["compile"]["make"]
    timings = []
    for _ in range(args.repeats):
        b2.device.run(directory, with_output=False)
        loop_s = b2.device._last_run_time
        timings.append(
            {"loop_s": loop_s, "loop_cpu_s": loop_s, "call_s": b2.device.timers["run_binary"]}
        )
    return monitor, synapses, timings, {"compile_s": compile_s}


def seed_record(args, seed_value, monitor, synapses, timings, extra):
    record = {"seed": seed_value, "synapses": int(sum(len(s) for s in synapses))}
    record["spikes_total"] = int(monitor.num_spikes)
    record.update(spike_stats(
        np.asarray(monitor.i[:]), np.asarray(monitor.t_[:]),
        args.neurons, args.discard, args.duration,
    ))
    record["timings"] = timings
    record.update({
        f"{key}_per_sim_s": float(np.median([t[key] for t in timings])) / args.duration
        for key in ("loop_s", "loop_cpu_s", "call_s")
    })
    record.update(extra)
    return record


def aggregate(records):
    def mean_std(key):
        values = np.array([r[key] for r in records], dtype=float)
        std = float(np.std(values, ddof=1)) if len(values) > 1 else 0.0
        return {"mean": float(np.mean(values)), "std_ddof1": std}

    summary = {"rate_hz": mean_std("rate_hz"), "cv_isi": mean_std("cv_isi")}
    summary["synapses"] = mean_std("synapses")
    for key in ("loop_s", "loop_cpu_s", "call_s"):
        summary[f"median_{key}_per_sim_s"] = float(np.median([r[f"{key}_per_sim_s"] for r in records]))
    return summary


def configure(target):
    if target == "cpp_standalone":
        b2.set_device("cpp_standalone", build_on_run=False)
        b2.prefs.devices.cpp_standalone.extra_make_args_unix = ["-j1"]
    else:
        b2.prefs.codegen.target = target


def warm_up(args):
    """Compile/cache the runtime code objects so the timed runs start warm."""
    net, _, _ = build_network(args.neurons, args.seeds[0])
    net.run(1 * ms)


def run_seeds(args):
    """Yield one record per seed."""
    if args.target == "cpp_standalone":
        with tempfile.TemporaryDirectory(prefix="brian2_cuba_") as directory:
            for s in args.seeds:
                yield seed_record(args, s, *run_standalone_seed(args, s, directory))
    else:
        warm_up(args)
        for s in args.seeds:
            yield seed_record(args, s, *run_runtime_seed(args, s))


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--target", choices=["cython", "cpp_standalone", "numpy"], default="cython")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0])
    parser.add_argument("--duration", type=float, default=1.0, help="simulated seconds")
    parser.add_argument("--discard", type=float, default=0.5, help="seconds dropped before statistics")
    parser.add_argument("--neurons", type=int, default=4000)
    parser.add_argument("--repeats", type=int, default=3, help="timed runs per seed (median)")
    parser.add_argument("--json", help="write results here")
    args = parser.parse_args()

    configure(args.target)
    records = []
    for record in run_seeds(args):
        records.append(record)
        print(json.dumps({k: v for k, v in record.items() if k != "timings"}), flush=True)

    result = {
        "brian2_version": b2.__version__,
        "numpy_version": np.__version__,
        "target": args.target,
        "neurons": args.neurons,
        "duration_s": args.duration,
        "discard_s": args.discard,
        "dt_ms": 0.1,
        "repeats": args.repeats,
        "cv_rule": CV_RULE,
        "timing_excludes": EXCLUDED,
        "seeds": records,
        "aggregate": aggregate(records),
    }
    print(json.dumps(result["aggregate"], indent=2))
    if args.json:
        with open(args.json, "w") as f:
            json.dump(result, f, indent=2)


if __name__ == "__main__":
    main()
