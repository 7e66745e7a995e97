"""``eventhorizon run`` of a spiking scenario: simulate in chunks, checkpoint, resume, report.

A spiking run directory holds, besides ``scenario.toml``, ``status.json``
and ``run.log``:

=====================  ==================================================================
``checkpoint.npz``     the whole simulation (state, queue, random stream, monitors, counts)
``monitors.npz``       spikes (``spike_i``, ``spike_t``), spikes per step, sampled v/ge/gi
``metrics.json``       rates, ISI CV, event counts against the clock-driven dense baseline,
                       wall time per simulated second, memory per synapse
``figures/*.png``      raster, population rate, ISI-CV histogram, voltage traces
=====================  ==================================================================

A resumed run continues from the checkpoint bit for bit (the test suite
checks it). Wall time counts only the simulation chunks, after a warm-up
that compiles the kernels (or loads them from Numba's cache).
"""

import time

import numpy as np

from eventhorizon.spiking.monitors import save_monitors
from eventhorizon.spiking.network import build_spiking_network, initial_potentials
from eventhorizon.spiking.simulation import Simulation
from eventhorizon.spiking.stats import isi_cvs, mean_rate

__all__ = ["execute_spiking", "spiking_metrics", "CHUNK_SECONDS"]

CHUNK_SECONDS = 0.05  # simulated seconds between progress updates and checkpoint chances


def _simulation(sc, network):
    every = max(int(round(sc.monitors.state_every_ms * 1e-3 / network.dt)), 1)
    return Simulation(network, initial_potentials(sc, network.n), record=sc.monitors.state_neurons,
                      record_every=every, seed=sc.run.seed + 1)


def _warm_up(sc, network):
    """Compile (or load from cache) the kernels on a throwaway copy, so no chunk's time includes it."""
    _simulation(sc, network).run(min(network.dt * 10, sc.run.duration_s))


def execute_spiking(run, progress=None, stop=None):
    """Run (or continue) a spiking scenario's ``run`` to its duration; returns the metrics.

    Parameters
    ----------
    run : eventhorizon.runner.Run
    progress : callable, optional
        ``progress(simulated_seconds_done, duration, "simulated seconds")`` after every chunk.
    stop : dict, optional
        ``stop["stop"]`` set (by a signal handler) ends the run after the current chunk, with a checkpoint.
    """
    from eventhorizon.runner import RunInterrupted, _atomic_write, _write_json, _write_status

    sc = run.scenario
    network = build_spiking_network(sc)
    sim = _simulation(sc, network)
    checkpoint = run.directory / "checkpoint.npz"
    wall = 0.0
    if checkpoint.exists():
        with np.load(checkpoint) as data:
            sim.restore({k: data[k] for k in data.files})
            wall = float(data["wall_seconds"])
        run.log.info("resuming from checkpoint at t = %.4f s of %g s", sim.t, sc.run.duration_s)
    _warm_up(sc, network)
    stop = {} if stop is None else stop

    def save(status, message=""):
        _atomic_write(checkpoint, lambda fh: np.savez(fh, wall_seconds=np.float64(wall), **sim.state_arrays()))
        _atomic_write(run.directory / "monitors.npz", lambda fh: save_monitors(fh, sim.spikes, sim.rate, sim.state))
        _write_json(run.directory / "metrics.json", spiking_metrics(sc, network, sim, wall, run.name, status))
        _write_status(run, status, sim.t, message)

    last_save = time.monotonic()
    _write_status(run, "running", sim.t)
    total_steps = int(round(sc.run.duration_s / network.dt))
    try:
        while sim.step < total_steps and not stop.get("stop"):
            start = time.perf_counter()
            sim.run(min(CHUNK_SECONDS, (total_steps - sim.step) * network.dt))
            wall += time.perf_counter() - start
            if progress is not None:
                progress(round(sim.t, 6), sc.run.duration_s, "simulated seconds")
            if time.monotonic() - last_save >= sc.run.checkpoint_seconds:
                save("running")
                last_save = time.monotonic()
    except BaseException as exc:
        save("failed", f"{type(exc).__name__}: {exc}")
        raise
    if stop.get("stop"):
        save("interrupted", f"stopped by {stop['stop']}")
        raise RunInterrupted(f"interrupted by {stop['stop']} at t = {sim.t:.3f} s of {sc.run.duration_s} s; "
                             f"checkpoint saved — continue with: eventhorizon run --resume {run.directory}")
    save("complete")
    metrics = spiking_metrics(sc, network, sim, wall, run.name, "complete")
    run.log.info("complete: %s", metrics["in_words"])
    return metrics


def _population_stats(sc, network, sim, t_start, t_stop):
    bounds = np.concatenate([[0], np.cumsum(network.population_sizes)])
    rows = {}
    cvs_all = isi_cvs(sim.spikes, t_start, t_stop)
    for k, name in enumerate(network.population_names):
        members = np.arange(bounds[k], bounds[k + 1])
        sub = sim.spikes.restricted(members)
        cvs = isi_cvs(sub, t_start, t_stop)
        rows[name] = {"neurons": int(members.size), "rate_hz": mean_rate(sim.spikes, t_start, t_stop, members),
                      "cv_isi_mean": float(cvs.mean()) if cvs.size else None, "cv_isi_neurons": int(cvs.size)}
    return rows, cvs_all


def spiking_metrics(sc, network, sim, wall_seconds, name, status):
    """The metrics.json object of a spiking run at its current time."""
    t_start, t_stop = sc.monitors.statistics_from_s, max(sim.t, sc.monitors.statistics_from_s + network.dt)
    populations, cvs = _population_stats(sc, network, sim, t_start, t_stop)
    dense = sim.dense_baseline()
    counts = sim.counts
    graph = network.graph
    synapse_bytes = graph.indices.nbytes + graph.weights.nbytes + graph.indptr.nbytes
    simulated = max(sim.t, 1e-12)
    metrics = {
        "name": name, "status": status, "engine": sim.engine, "neurons": network.n, "synapses": graph.nnz,
        "simulated_seconds": sim.t, "statistics_window_s": [t_start, t_stop],
        "spikes": sim.spikes.num_spikes,
        "rate_hz": mean_rate(sim.spikes, t_start, t_stop),
        "cv_isi_mean": float(cvs.mean()) if cvs.size else None, "cv_isi_neurons": int(cvs.size),
        "populations": populations,
        "counts": dict(counts),
        "dense_step_baseline": dense,
        "neuron_updates_vs_dense": counts["neuron_updates"] / max(dense["neuron_updates"], 1),
        "wall_seconds": wall_seconds,
        "wall_seconds_per_simulated_second": wall_seconds / simulated,
        "synaptic_events_per_wall_second": counts["synaptic_events"] / max(wall_seconds, 1e-12),
        "bytes_per_synapse": synapse_bytes / max(graph.nnz, 1),
    }
    metrics["in_words"] = _in_words(metrics)
    return metrics


def _in_words(m):
    cv = "n/a" if m["cv_isi_mean"] is None else f"{m['cv_isi_mean']:.2f}"
    return (f"{m['neurons']} neurons ({m['engine']} engine) simulated for {m['simulated_seconds']:.3g} s: "
            f"{m['rate_hz']:.2f} Hz mean rate and mean ISI CV {cv} from {m['statistics_window_s'][0]:g} s on; "
            f"{m['counts']['synaptic_events']:,} synaptic events and {m['counts']['neuron_updates']:,} neuron updates "
            f"({m['neuron_updates_vs_dense']:.2f}× a clock-driven dense step); "
            f"{m['wall_seconds_per_simulated_second']:.3f} s of wall time per simulated second.")
