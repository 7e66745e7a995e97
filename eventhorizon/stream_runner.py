"""``eventhorizon run`` of a streaming scenario: a classifier watching a video-like stream.

The frames come from :class:`~eventhorizon.moving_digits.MovingDigits` as a
source of the asynchronous runtime (:mod:`scheduler.runtime`, on uvloop);
the runtime hands the frames waiting in its inbox, up to
``run.chunk_frames``, to one call of the streaming kernel in a worker thread
(:class:`~eventhorizon.streaming.StreamSettler`, which releases the GIL),
and a recording sink stores each frame's counts, prediction and timing.
With ``realtime`` the source is paced to the frame rate and every frame's
lag behind the wall clock is recorded.

Then the dense baselines run on the same frames: warm-started dense settling
to the same ε (plain, and with the input drive hoisted out of the sweeps and the sweeps compiled)
and LoopedMLP-30 from rest.

A run directory holds, besides ``scenario.toml``, ``status.json`` and ``run.log``:

=====================  ==================================================================
``classifier.npz``     the model, when the scenario trains one (a model file, see modelfile)
``frames.npz``         per-frame records and the stream's state — the checkpoint
``metrics.json``       MACs event vs warm dense vs LoopedMLP-30, time per frame, accuracy,
                       lag percentiles (real time)
``figures/*.png``      MACs per frame over time, accuracy over time
=====================  ==================================================================

A resumed run continues the event pass from its last checkpointed frame
with the exact state it had (the counts equal an uninterrupted run's; the
test suite checks it), then the dense pass likewise.
"""

import time

import numpy as np

from eventhorizon.streaming import StreamSettler

__all__ = ["execute_stream", "stream_metrics", "load_classifier", "build_stream", "FrameRecord"]

_EVENT = ("ops", "input_ops", "broadcasts", "updates", "changed")
_DENSE = ("dense_ops", "dense_sweeps", "hoisted_ops", "looped_ops")


def load_classifier(sc, directory=None, log=None):
    """The scenario's classifier: its model file, or a quick EqProp training run saved in ``directory``."""
    from eventhorizon.modelfile import load_model, save_model

    if sc.model.path is not None:
        return load_model(sc.model.path, expect_sizes=None)[0]
    path = None if directory is None else directory / "classifier.npz"
    if path is not None and path.exists():
        return load_model(path)[0]
    model = _train_classifier(sc, log)
    if path is not None:
        save_model(path, model, info={"trained_by": "stream scenario", "train_samples": sc.model.train_samples,
                                      "epochs": sc.model.epochs})
    return model


def _train_classifier(sc, log):
    from eventhorizon import datasets
    from eventhorizon.eqprop import EqPropConfig, EqPropModel
    from eventhorizon.scenario import ScenarioError

    try:
        train = datasets.load_fashion_mnist("train", sc.input.data_dir, limit=sc.model.train_samples)
    except datasets.DatasetError as exc:
        raise ScenarioError(f"input: {exc}") from None
    eps = sc.dynamics.epsilon or 1e-3
    model = EqPropModel(EqPropConfig(sizes=(784, sc.model.hidden, 10), epsilon=eps, seed=sc.run.seed))
    X, y = np.ascontiguousarray(train.images), train.labels.astype(np.int64)
    bs = model.config.batch_size
    for epoch in range(sc.model.epochs):
        order = np.random.default_rng([sc.run.seed, epoch]).permutation(X.shape[0])
        for start in range(0, X.shape[0], bs):
            rows = order[start:start + bs]
            model.train_batch(X[rows], y[rows])
        if log is not None:
            log.info("classifier: epoch %d of %d trained on %d images", epoch + 1, sc.model.epochs, X.shape[0])
    return model


def build_stream(sc):
    """The scenario's :class:`~eventhorizon.moving_digits.MovingDigits` over the Fashion-MNIST test images."""
    from eventhorizon import datasets
    from eventhorizon.moving_digits import MovingDigits, MovingDigitsConfig
    from eventhorizon.scenario import ScenarioError

    try:
        test = datasets.load_fashion_mnist("test", sc.input.data_dir)
    except datasets.DatasetError as exc:
        raise ScenarioError(f"input: {exc}") from None
    st = sc.stream
    config = MovingDigitsConfig(st.switch_every, st.drift_every, st.drift_pixels, st.occluder_width,
                                st.occluder_every, st.occluder_value)
    images = test.images.reshape(-1, 28, 28)
    return MovingDigits(images, test.labels.astype(np.int64), st.frames, config, seed=st.seed)


class FrameRecord:
    """Per-frame records of a stream run and the state needed to continue it (saved as ``frames.npz``)."""

    def __init__(self, n_frames):
        self.n_frames = n_frames
        ints = {k: np.zeros(n_frames, np.int64) for k in _EVENT + _DENSE}
        self.arrays = {**ints, "label": np.zeros(n_frames, np.int16),
                       "event_pred": np.full(n_frames, -1, np.int16), "dense_pred": np.full(n_frames, -1, np.int16),
                       "looped_pred": np.full(n_frames, -1, np.int16),
                       "event_seconds": np.zeros(n_frames), "dense_seconds": np.zeros(n_frames),
                       "hoisted_seconds": np.zeros(n_frames), "lag": np.full(n_frames, np.nan),
                       "chunk": np.zeros(n_frames, np.int32)}
        self.done_event = self.done_dense = 0
        self.event_state = {"u": None, "x": None, "counts": None, "settled": False}
        self.dense_x = self.hoisted_x = None

    def __getitem__(self, key):
        return self.arrays[key]

    def save(self, fh):
        extra = {"done_event": self.done_event, "done_dense": self.done_dense,
                 "event_settled": self.event_state["settled"]}
        states = {f"event_{k}": v for k, v in self.event_state.items() if k != "settled" and v is not None}
        if self.dense_x is not None:
            states.update(dense_x=self.dense_x, hoisted_x=self.hoisted_x)
        np.savez(fh, **self.arrays, **states, **{k: np.int64(v) for k, v in extra.items()})

    def load(self, path):
        with np.load(path) as data:
            for key in self.arrays:
                self.arrays[key][:] = data[key]
            self.done_event, self.done_dense = int(data["done_event"]), int(data["done_dense"])
            self.event_state["settled"] = bool(data["event_settled"])
            for key in ("u", "x", "counts"):
                if f"event_{key}" in data:
                    self.event_state[key] = data[f"event_{key}"]
            if "dense_x" in data:
                self.dense_x, self.hoisted_x = data["dense_x"], data["hoisted_x"]


def _settler(sc, model, record):
    eps = sc.dynamics.epsilon or model.config.epsilon
    settler = StreamSettler(model.network, eps, output_ids=model.output_ids, scheduler=sc.dynamics.scheduler)
    if record.event_state["u"] is not None:
        settler.restore(record.event_state)
    return settler


def _warm_up(model, eps, scheduler, frames):
    """Compile (or load from Numba's cache) the kernels on a throwaway settler."""
    StreamSettler(model.network, eps, output_ids=model.output_ids, scheduler=scheduler).settle_frames(frames[:2])


def _event_pass(run, sc, stream, model, record, stop, progress, realtime):
    """Settle every remaining frame through the async runtime; returns the runtime's report."""
    from scheduler import runtime as rt

    settler = _settler(sc, model, record)
    _warm_up(model, settler.eps, sc.dynamics.scheduler, stream.frames(0, min(2, stream.n_frames))[0])
    period = 1.0 / sc.stream.frame_rate_hz
    last_save = [time.monotonic()]

    def frames_wanted():
        for k in range(record.done_event, stream.n_frames):
            if stop.get("stop"):
                return
            yield k

    def process(chunk):
        first, last = chunk[0].data, chunk[-1].data + 1
        frames, labels = stream.frames(first, last)
        start = time.perf_counter()
        res = settler.settle_frames(frames)
        seconds = (time.perf_counter() - start) / len(chunk)
        snapshot = settler.snapshot()
        return [(res, row, labels[row], seconds, len(chunk), snapshot if row == len(chunk) - 1 else None)
                for row in range(len(chunk))]

    def record_frame(delivery):
        res, row, label, seconds, size, snapshot = delivery.result
        k = delivery.stimulus.data
        for key, column in zip(_EVENT[:4], ("synaptic_ops", "input_synaptic_ops", "broadcasts", "neuron_updates")):
            record[key][k] = res.column(column)[row]
        record["changed"][k] = res.changed_inputs[row]
        record["event_pred"][k] = res.predictions[row]
        record["label"][k], record["event_seconds"][k], record["chunk"][k] = label, seconds, size
        if delivery.lag is not None:
            record["lag"][k] = delivery.lag
        if snapshot is not None:
            record.done_event = k + 1
            record.event_state = snapshot
            if progress is not None:
                progress(record.done_event, stream.n_frames, "event-driven frames")
            if time.monotonic() - last_save[0] >= sc.run.checkpoint_seconds:
                _save(run, sc, record, "running")
                last_save[0] = time.monotonic()

    source = rt.iterate(frames_wanted(), period=period, start=record.done_event * period)
    if realtime is not None:
        source = rt.paced(source, speed=realtime)
    runtime = rt.Runtime(process, [rt.CallbackSink(record_frame)], max_chunk=sc.run.chunk_frames)
    report = rt.run(runtime.run(source))
    if report.sink_errors:
        raise RuntimeError(f"recording frames failed: {report.sink_errors[0]}")
    return report


def _dense_pass(run, sc, stream, model, record, stop, progress):
    """Warm-started dense settling (plain and hoisted) and LoopedMLP-30 on the frames the event pass did.

    The hoisted one is :class:`~eventhorizon.dense_compiled.CompiledDense` (the same sweeps and
    multiply-adds as ``DenseReference(hoist_inputs=True)``, compiled and fed whole chunks like the event
    kernel), so the speed-up is against the fastest dense variant.
    """
    from eventhorizon.dense import DenseReference
    from eventhorizon.dense_compiled import CompiledDense

    eps = sc.dynamics.epsilon or model.config.epsilon
    net, out_pos = model.network, model.output_ids - model.network.n_inputs
    plain, hoisted = DenseReference(net), CompiledDense(net)
    first = stream.frames(0, 1)[0][0]
    for ref in (plain, hoisted):  # warm BLAS and caches
        ref.settle(first, eps)
    last_save = time.monotonic()
    while record.done_dense < record.done_event and not stop.get("stop"):
        k0 = record.done_dense
        k1 = min(k0 + sc.run.chunk_frames, record.done_event)
        frames, _ = stream.frames(k0, k1)
        for row, frame in enumerate(frames):
            k = k0 + row
            start = time.perf_counter()
            de = plain.settle(frame, eps, state_x=record.dense_x)
            record["dense_seconds"][k] = time.perf_counter() - start
            record.dense_x = de.x
            record["dense_ops"][k], record["dense_sweeps"][k] = de.synaptic_ops, de.sweeps
            record["dense_pred"][k] = int(np.argmax(de.x[model.output_ids]))
        start = time.perf_counter()  # the whole chunk in one call, as the event pass does
        ho = hoisted.settle_frames(frames, eps, state_x=record.hoisted_x)
        record["hoisted_seconds"][k0:k1] = (time.perf_counter() - start) / len(frames)
        record.hoisted_x, record["hoisted_ops"][k0:k1] = ho.x, ho.synaptic_ops
        if sc.run.compare_looped:
            x_free, ops = plain.looped_batch(frames, 30)
            record["looped_ops"][k0:k1] = ops
            record["looped_pred"][k0:k1] = np.argmax(x_free[:, out_pos], axis=1)
        record.done_dense = k1
        if progress is not None:
            progress(record.done_dense, record.done_event, "dense baselines")
        if time.monotonic() - last_save >= sc.run.checkpoint_seconds:
            _save(run, sc, record, "running")
            last_save = time.monotonic()


def _save(run, sc, record, status, message="", report=None):
    from eventhorizon.runner import _atomic_write, _write_json, _write_status

    _atomic_write(run.directory / "frames.npz", record.save)
    metrics = stream_metrics(sc, record, run.name, status, report)
    _write_json(run.directory / "metrics.json", metrics)
    _write_status(run, status, record.done_event, message)
    return metrics


def _percentiles(values):
    values = values[np.isfinite(values)]
    if values.size == 0:
        return None
    return {f"p{q}": float(np.percentile(values, q)) for q in (50, 90, 99)} | {"max": float(values.max())}


def _saving(part, whole):
    return None if whole == 0 else 1.0 - part / whole


def stream_metrics(sc, record, name, status, report=None):
    """Totals, savings, time per frame, accuracy and lag of the frames done so far (a JSON-able dict)."""
    n_ev, n_de = record.done_event, record.done_dense
    r = {k: v[:n_ev] for k, v in record.arrays.items()}
    d = {k: v[:n_de] for k, v in record.arrays.items()}
    ev_ops_same = int(r["ops"][:n_de].sum())
    metrics = {"scenario": name, "status": status, "frames": sc.stream.frames, "frames_done": n_ev,
               "dense_frames_done": n_de, "frame_rate_hz": sc.stream.frame_rate_hz,
               "event_synaptic_ops": int(r["ops"].sum()), "event_input_synaptic_ops": int(r["input_ops"].sum()),
               "event_ops_per_frame": float(r["ops"].mean()) if n_ev else None,
               "changed_inputs_per_frame": float(r["changed"].mean()) if n_ev else None,
               "frames_without_change": int((r["changed"] == 0).sum()),
               "event_seconds_per_frame": float(r["event_seconds"].mean()) if n_ev else None,
               "event_accuracy": float((r["event_pred"] == r["label"]).mean()) if n_ev else None,
               "lag_seconds": _percentiles(r["lag"]), "realtime": bool(np.isfinite(r["lag"]).any())}
    if n_de:
        dense, hoisted, looped = int(d["dense_ops"].sum()), int(d["hoisted_ops"].sum()), int(d["looped_ops"].sum())
        metrics.update({
            "dense_synaptic_ops": dense, "dense_hoisted_synaptic_ops": hoisted,
            "saving_vs_dense": _saving(ev_ops_same, dense), "saving_vs_dense_hoisted": _saving(ev_ops_same, hoisted),
            "dense_sweeps_per_frame": float(d["dense_sweeps"].mean()),
            "dense_seconds_per_frame": float(d["dense_seconds"].mean()),
            "dense_hoisted_seconds_per_frame": float(d["hoisted_seconds"].mean()),
            "speedup_vs_dense": float(d["dense_seconds"].sum() / max(r["event_seconds"][:n_de].sum(), 1e-12)),
            "speedup_vs_dense_hoisted": float(d["hoisted_seconds"].sum() / max(r["event_seconds"][:n_de].sum(),
                                                                                1e-12)),
            "dense_accuracy": float((d["dense_pred"] == d["label"]).mean()),
            "event_dense_agreement": float((d["dense_pred"] == d["event_pred"]).mean())})
        if sc.run.compare_looped:
            metrics.update({"looped30_synaptic_ops": looped, "saving_vs_looped30": _saving(ev_ops_same, looped),
                            "looped30_accuracy": float((d["looped_pred"] == d["label"]).mean())})
    if report is not None:
        from scheduler.runtime import loop_name

        metrics["runtime"] = {"loop": loop_name(), "chunks": report.chunks, "wall_seconds": report.wall_seconds}
    metrics["in_words"] = in_words(metrics)
    return metrics


def in_words(m):
    """One paragraph summarising a stream run's metrics."""
    if not m["frames_done"]:
        return "No frames done yet."
    text = (f"{m['frames_done']} frames, {m['changed_inputs_per_frame']:.1f} changed pixels and "
            f"{m['event_ops_per_frame']:.0f} multiply-adds per frame event-driven, "
            f"{m['event_seconds_per_frame'] * 1e6:.1f} µs per frame, accuracy {m['event_accuracy']:.2%}")
    if m.get("dense_synaptic_ops") is not None:
        text += (f"; warm dense to the same ε: {m['saving_vs_dense']:.2%} fewer MACs than plain, "
                 f"{m['saving_vs_dense_hoisted']:.2%} fewer than input-hoisted, "
                 f"{m['speedup_vs_dense_hoisted']:.1f}× faster per frame than hoisted, accuracy "
                 f"{m['dense_accuracy']:.2%}")
    if m.get("looped30_synaptic_ops") is not None:
        text += f"; {m['saving_vs_looped30']:.2%} fewer MACs than LoopedMLP-30"
    if m["lag_seconds"]:
        text += f"; real-time lag p50 {m['lag_seconds']['p50'] * 1e3:.2f} ms, max {m['lag_seconds']['max'] * 1e3:.2f} ms"
    return text + "."


def execute_stream(run, progress=None, stop=None, realtime=None):
    """Run (or continue) a streaming scenario; returns the metrics.

    Parameters
    ----------
    run : eventhorizon.runner.Run
    progress : callable, optional
        ``progress(done, total, what)``.
    stop : dict, optional
        ``stop["stop"]`` set (by a signal handler) ends the run after the current chunk, with a checkpoint.
    realtime : float, optional
        Pace the stream to ``realtime`` × the frame rate and record each frame's lag.
    """
    from eventhorizon.runner import RunInterrupted

    sc = run.scenario
    stop = {} if stop is None else stop
    model = load_classifier(sc, run.directory, run.log)
    stream = build_stream(sc)
    record = FrameRecord(stream.n_frames)
    checkpoint = run.directory / "frames.npz"
    if checkpoint.exists():
        record.load(checkpoint)
        run.log.info("resuming: %d event frames and %d dense frames of %d done", record.done_event,
                     record.done_dense, stream.n_frames)
    report = None
    try:
        if record.done_event < stream.n_frames:
            report = _event_pass(run, sc, stream, model, record, stop, progress, realtime)
        if sc.run.compare_dense:
            _dense_pass(run, sc, stream, model, record, stop, progress)
    except BaseException as exc:
        _save(run, sc, record, "failed", f"{type(exc).__name__}: {exc}")
        raise
    if stop.get("stop"):
        _save(run, sc, record, "interrupted", f"stopped by {stop['stop']}")
        raise RunInterrupted(f"interrupted by {stop['stop']} after {record.done_event} of {stream.n_frames} frames; "
                             f"checkpoint saved — continue with: eventhorizon run --resume {run.directory}")
    metrics = _save(run, sc, record, "complete", report=report)
    run.log.info("complete: %s", metrics["in_words"])
    return metrics
