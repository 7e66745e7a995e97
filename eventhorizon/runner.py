"""``eventhorizon run``: run a scenario into a run directory, checkpoint, resume.

A run directory holds

============================  ==============================================================
``scenario.toml``             the resolved scenario (defaults filled, package version in a comment)
``status.json``               ``running`` / ``interrupted`` / ``failed`` / ``complete``, samples done
``samples.npz``               per-sample counts and times (valid up to ``done``) — the checkpoint
``metrics.json``              totals, savings and medians of the samples done so far
``states.npy``                final outputs per sample (only with ``output.save_states``)
``run.log``                   what happened, with timestamps
``figures/*.png``             drawn from ``samples.npz`` and ``metrics.json`` (``eventhorizon plot``)
============================  ==============================================================

Every sample is settled from rest, so a sample's counts depend only on the
scenario and the sample: a resumed run produces exactly the counts an
uninterrupted one would. Files are written to a temporary name and renamed,
so an interrupted or killed run always leaves the last complete checkpoint.
"""

import json
import logging
import os
import signal
import time
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import numpy as np

from eventhorizon import __version__
from eventhorizon.scenario import ScenarioError, build_inputs, build_network, dump_scenario, read_document, \
    parse_scenario

__all__ = ["RunInterrupted", "Run", "create_run", "open_run", "execute", "RUN_FILES"]

RUN_FILES = ("scenario.toml", "status.json", "samples.npz", "metrics.json", "run.log")
COUNT_FIELDS = ("event_ops", "event_input_ops", "broadcasts", "neuron_updates", "lower_bound_ops")
DENSE_FIELDS = ("dense_ops", "dense_sweeps", "dense_hoisted_ops", "looped30_ops")


class RunInterrupted(Exception):
    """The run stopped on SIGINT/SIGTERM after writing a checkpoint."""


@dataclass
class Run:
    """An open run directory and its scenario."""

    directory: Path
    scenario: object
    name: str

    @property
    def log(self):
        return logging.getLogger(f"eventhorizon.run.{self.directory}")


def _atomic_write(path, write):
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "wb") as fh:
        write(fh)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)


def _write_json(path, obj):
    _atomic_write(path, lambda fh: fh.write((json.dumps(obj, indent=2, ensure_ascii=False) + "\n").encode("utf-8")))


def _attach_log(run):
    logger = run.log
    logger.setLevel(logging.INFO)
    logger.propagate = False
    if not logger.handlers:
        handler = logging.FileHandler(run.directory / "run.log", encoding="utf-8")
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(message)s"))
        logger.addHandler(handler)
    return run


def _close_log(run):
    for handler in list(run.log.handlers):
        handler.close()
        run.log.removeHandler(handler)


def default_run_dir(name):
    """``runs/<name>-<YYYYmmdd-HHMMSS>`` under the working directory."""
    return Path("runs") / f"{name}-{datetime.now().strftime('%Y%m%d-%H%M%S')}"


def create_run(scenario, name, out=None, source=None, overrides=()):
    """Create a new run directory for ``scenario`` and write its resolved scenario.

    Raises
    ------
    ScenarioError
        ``out`` exists and is not an empty directory (a run is never overwritten).
    """
    directory = Path(out) if out is not None else default_run_dir(name)
    if directory.exists() and (not directory.is_dir() or any(directory.iterdir())):
        raise ScenarioError(f"--out {directory}: already exists and is not empty; choose a new directory "
                            f"(or resume it with --resume {directory})")
    directory.mkdir(parents=True, exist_ok=True)
    header = (f"Resolved scenario written by eventhorizon {__version__} on {datetime.now().isoformat(timespec='seconds')}"
              f"\nsource: {source or '-'}" + "".join(f"\n--set {o}" for o in overrides))
    (directory / "scenario.toml").write_text(dump_scenario(scenario, header), encoding="utf-8")
    run = _attach_log(Run(directory, scenario, name))
    run.log.info("created run of %s (eventhorizon %s)", source or name, __version__)
    _write_status(run, "created", 0)
    return run


def open_run(directory):
    """Re-open a run directory to resume it.

    Raises
    ------
    ScenarioError
        Not a run directory, or its scenario no longer validates.
    """
    directory = Path(directory)
    for needed in ("scenario.toml", "status.json"):
        if not (directory / needed).is_file():
            raise ScenarioError(f"--resume {directory}: not a run directory (missing {needed})")
    scenario_file = directory / "scenario.toml"
    scenario = parse_scenario(read_document(scenario_file), source=str(scenario_file), base_dir=directory)
    status = _read_json(directory / "status.json")
    run = _attach_log(Run(directory, scenario, status.get("name", directory.name)))
    if status.get("status") == "complete":
        raise ScenarioError(f"--resume {directory}: the run is already complete")
    return run


def _read_json(path):
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ScenarioError(f"{path}: cannot read: {exc}") from None


def _write_status(run, status, done, message=""):
    sc = run.scenario
    if sc.dynamics.mode == "spiking":
        unit, planned, done = "seconds", sc.run.duration_s, float(done)
    elif sc.dynamics.mode == "stream":
        unit, planned, done = "frames", sc.stream.frames, int(done)
    elif sc.learning is not None:
        unit, planned, done = "epochs", sc.run.epochs, int(done)
    else:
        unit, planned, done = "samples", sc.run.samples, int(done)
    _write_json(run.directory / "status.json", {
        "status": status, "name": run.name, f"{unit}_done": done, f"{unit}_planned": planned,
        "message": message, "updated": datetime.now().isoformat(timespec="seconds"),
        "eventhorizon_version": __version__,
    })


class _Record:
    """Per-sample arrays plus running aggregates; saved as the checkpoint."""

    def __init__(self, samples, n, free_mask, compare_dense):
        self.done = 0
        self.arrays = {f: np.zeros(samples, np.int64) for f in COUNT_FIELDS}
        self.arrays["settled"] = np.zeros(samples, bool)
        self.arrays["event_seconds"] = np.zeros(samples, np.float64)
        if compare_dense:
            self.arrays.update({f: np.zeros(samples, np.int64) for f in DENSE_FIELDS})
            self.arrays["dense_seconds"] = np.zeros(samples, np.float64)
            self.arrays["max_deviation"] = np.zeros(samples, np.float32)
        self.arrays["broadcast_totals"] = np.zeros(n, np.int64)
        self.arrays["broadcast_histogram"] = np.zeros(1, np.int64)
        self.arrays["free_mask"] = np.asarray(free_mask, bool)

    def add_histogram(self, counts):
        hist = np.bincount(counts)
        old = self.arrays["broadcast_histogram"]
        size = max(old.size, hist.size)
        self.arrays["broadcast_histogram"] = np.pad(old, (0, size - old.size)) + np.pad(hist, (0, size - hist.size))

    def save(self, path):
        _atomic_write(path, lambda fh: np.savez(fh, done=np.int64(self.done), **self.arrays))

    def load(self, path):
        with np.load(path, allow_pickle=False) as data:
            missing = [k for k in self.arrays if k not in data.files]
            if missing or "done" not in data.files:
                raise ScenarioError(f"{path}: not a checkpoint of this scenario (missing {missing or ['done']})")
            for key in self.arrays:
                if key != "broadcast_histogram" and data[key].shape != self.arrays[key].shape:
                    raise ScenarioError(f"{path}: array {key!r} has shape {data[key].shape}, "
                                        f"expected {self.arrays[key].shape} for this scenario")
                self.arrays[key] = data[key].copy()
            self.done = int(data["done"])


def _measure_sample(network, dense, hoisted, x_in, settings, record, k):
    from eventhorizon.flops import lower_bound_ops
    from eventhorizon.settle import settle

    a = record.arrays
    start = time.perf_counter()
    ev = settle(network, x_in, eps=settings.epsilon, scheduler=settings.scheduler,
                max_updates=settings.max_updates, on_budget="return", relaxation=settings.relaxation)
    a["event_seconds"][k] = time.perf_counter() - start
    st = ev.stats
    a["event_ops"][k], a["event_input_ops"][k] = st.synaptic_ops, st.input_synaptic_ops
    a["broadcasts"][k], a["neuron_updates"][k], a["settled"][k] = st.broadcasts, st.neuron_updates, ev.settled
    a["lower_bound_ops"][k] = lower_bound_ops(network, x_in, ev.x)
    a["broadcast_totals"] += ev.broadcast_counts
    record.add_histogram(ev.broadcast_counts[network.free_ids])
    if dense is not None:
        start = time.perf_counter()
        de = dense.settle(x_in, settings.epsilon)
        a["dense_seconds"][k] = time.perf_counter() - start
        a["dense_ops"][k], a["dense_sweeps"][k] = de.synaptic_ops, de.sweeps
        a["dense_hoisted_ops"][k] = hoisted.settle(x_in, settings.epsilon).synaptic_ops
        a["looped30_ops"][k] = dense.looped(x_in, 30).synaptic_ops
        a["max_deviation"][k] = float(np.max(np.abs(ev.x - de.x)))
    return ev


@contextmanager
def _stop_on_signals(flag):
    """While active, SIGINT/SIGTERM set ``flag["stop"]`` instead of killing the run."""
    def handler(signum, _frame):
        flag["stop"] = signal.Signals(signum).name

    try:
        previous = {s: signal.signal(s, handler) for s in (signal.SIGINT, signal.SIGTERM)}
    except ValueError:  # not the main thread: signals cannot be caught here
        previous = {}
    try:
        yield
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)


def summarize(scenario, record, name, status):
    """The metrics.json object for the samples done so far."""
    a = {k: v[: record.done] for k, v in record.arrays.items() if v.shape[0] == scenario.run.samples}
    free = int(record.arrays["free_mask"].sum())
    totals = {f: int(a[f].sum()) for f in COUNT_FIELDS}
    out = {
        "eventhorizon_version": __version__, "scenario_name": name, "status": status,
        "samples_done": record.done, "samples_planned": scenario.run.samples,
        "epsilon": scenario.dynamics.epsilon, "compare_dense": scenario.run.compare_dense,
        "samples_not_settled": int(record.done - a["settled"].sum()),
        "totals": totals,
        "broadcasts_per_free_neuron": totals["broadcasts"] / max(1, record.done * free),
        "ratio_to_lower_bound": totals["event_ops"] / max(1, totals["lower_bound_ops"]),
        "event_seconds_per_sample_median": float(np.median(a["event_seconds"])) if record.done else None,
    }
    if scenario.run.compare_dense:
        dense = {f: int(a[f].sum()) for f in DENSE_FIELDS}
        out["totals"].update(dense)
        for key, field in (("dense", "dense_ops"), ("dense_hoisted", "dense_hoisted_ops"),
                           ("looped30", "looped30_ops")):
            out[f"saving_vs_{key}"] = 1.0 - totals["event_ops"] / max(1, dense[field])
        out["dense_seconds_per_sample_median"] = float(np.median(a["dense_seconds"])) if record.done else None
        out["max_state_deviation"] = float(a["max_deviation"].max()) if record.done else None
    out["in_words"] = in_words(out)
    return out


def in_words(metrics):
    """One plain sentence saying what a run measured."""
    done, eps = metrics["samples_done"], metrics["epsilon"]
    text = (f"Settled {done} of {metrics['samples_planned']} samples to ε = {eps:g} by events: "
            f"{metrics['totals']['event_ops']:,} multiply-adds, "
            f"{metrics['broadcasts_per_free_neuron']:.2f} broadcasts per free neuron per sample, "
            f"{metrics['ratio_to_lower_bound']:.2f}× the fewest possible")
    if metrics.get("saving_vs_dense") is not None:
        text += (f"; dense sweeps to the same ε needed {metrics['totals']['dense_ops']:,} "
                 f"({metrics['saving_vs_dense']:.1%} saved by events, "
                 f"{metrics['saving_vs_looped30']:.1%} saved vs 30 dense sweeps)")
    if metrics["event_seconds_per_sample_median"] is not None:
        text += f". Median wall time per sample: {metrics['event_seconds_per_sample_median'] * 1e3:.3f} ms by events"
        if metrics.get("dense_seconds_per_sample_median") is not None:
            text += f", {metrics['dense_seconds_per_sample_median'] * 1e3:.3f} ms dense"
    if metrics["samples_not_settled"]:
        text += f". {metrics['samples_not_settled']} samples hit the event budget without settling"
    return text + "."


def execute(run, progress=None, echo=None, realtime=None):
    """Run (or continue) ``run`` to completion, checkpointing as it goes.

    Parameters
    ----------
    run : Run
    progress : callable, optional
        Called as ``progress(done, total)`` after each sample (``progress(done,
        total, "epoch k/K")`` after each mini-batch of a training run).
    echo : callable, optional
        Called with a one-line summary after each epoch of a training run.
    realtime : float, optional
        Streaming scenarios: pace the stream to this multiple of its frame
        rate and record the lag (``eventhorizon run --realtime``).

    Returns
    -------
    dict
        The final metrics (also in ``metrics.json``).

    Raises
    ------
    RunInterrupted
        SIGINT or SIGTERM arrived; the checkpoint and status were written first.
    """
    from eventhorizon.dense import DenseReference

    sc = run.scenario
    if sc.dynamics.mode == "spiking":
        from eventhorizon.spiking.runner import execute_spiking

        flag = {"stop": None}
        with _stop_on_signals(flag):
            return execute_spiking(run, progress=progress, stop=flag)
    if sc.dynamics.mode == "stream":
        from eventhorizon.stream_runner import execute_stream

        flag = {"stop": None}
        with _stop_on_signals(flag):
            return execute_stream(run, progress=progress, stop=flag, realtime=realtime)
    if realtime is not None:
        raise ValueError("--realtime applies to streaming scenarios ([dynamics] mode = 'stream') only")
    if sc.learning is not None:
        from eventhorizon.training import execute_training

        return execute_training(run, progress=progress, echo=echo)
    network = build_network(sc.network)
    inputs = build_inputs(sc.input, network.n_inputs, sc.run.samples)
    record = _Record(sc.run.samples, network.n, network.free_mask, sc.run.compare_dense)
    checkpoint = run.directory / "samples.npz"
    if checkpoint.exists():
        record.load(checkpoint)
        run.log.info("resuming from checkpoint: %d of %d samples done", record.done, sc.run.samples)
    states = _open_states(run, sc, network.n, record.done > 0)
    dense = DenseReference(network) if sc.run.compare_dense else None
    hoisted = DenseReference(network, hoist_inputs=True) if sc.run.compare_dense else None
    _warm_up(network, dense, inputs, sc.dynamics)
    flag = {"stop": None}
    last_save = time.monotonic()
    _write_status(run, "running", record.done)
    try:
        with _stop_on_signals(flag):
            while record.done < sc.run.samples and flag["stop"] is None:
                k = record.done
                ev = _measure_sample(network, dense, hoisted, inputs[k], sc.dynamics, record, k)
                if states is not None:
                    states[k] = ev.x
                record.done += 1
                if progress is not None:
                    progress(record.done, sc.run.samples)
                if time.monotonic() - last_save >= sc.run.checkpoint_seconds:
                    _checkpoint(run, record, states, "running")
                    last_save = time.monotonic()
    except BaseException as exc:
        _checkpoint(run, record, states, "failed", f"{type(exc).__name__}: {exc}")
        run.log.error("failed after %d samples: %s: %s", record.done, type(exc).__name__, exc)
        raise
    if flag["stop"] is not None:
        _checkpoint(run, record, states, "interrupted", f"stopped by {flag['stop']}")
        run.log.warning("interrupted by %s after %d of %d samples", flag["stop"], record.done, sc.run.samples)
        raise RunInterrupted(f"interrupted by {flag['stop']} after {record.done} of {sc.run.samples} samples; "
                             f"checkpoint saved — continue with: eventhorizon run --resume {run.directory}")
    metrics = _checkpoint(run, record, states, "complete")
    run.log.info("complete: %s", metrics["in_words"])
    return metrics


def _warm_up(network, dense, inputs, settings):
    """Compile the kernels and warm caches so that no sample's time includes them."""
    from eventhorizon.settle import settle

    if inputs.shape[0]:
        settle(network, inputs[0], eps=settings.epsilon, scheduler=settings.scheduler, max_updates=10,
               on_budget="return", relaxation=settings.relaxation)
        if dense is not None:
            dense.settle(inputs[0], settings.epsilon)


def _open_states(run, sc, n, resuming):
    if not sc.output.save_states:
        return None
    path = run.directory / "states.npy"
    if resuming and path.exists():
        return np.load(path, mmap_mode="r+")
    return np.lib.format.open_memmap(path, mode="w+", dtype=np.float32, shape=(sc.run.samples, n))


def _checkpoint(run, record, states, status, message=""):
    if states is not None:
        states.flush()
    record.save(run.directory / "samples.npz")
    metrics = summarize(run.scenario, record, run.name, status)
    _write_json(run.directory / "metrics.json", metrics)
    _write_status(run, status, record.done, message)
    run.log.info("checkpoint: %d of %d samples, status %s", record.done, run.scenario.run.samples, status)
    return metrics
