"""``eventhorizon run`` for scenarios with ``[learning]``: EqProp training by epochs, checkpointed.

The run directory of a training run holds, besides ``scenario.toml``,
``status.json`` and ``run.log``:

=========================  =====================================================
``model.npz``              the event-driven model after the last finished epoch
                           (:mod:`eventhorizon.modelfile`; the trained model at the end)
``dense_model.npz``        the dense baseline's parameters and momentum buffers
``history.json``           one entry per finished epoch (accuracy, loss, MACs per
                           phase and seconds, event and dense)
``metrics.json``           the last epoch's figures and the run's summary
``figures/*.png``          learning curves; MACs per phase, event vs dense; with
                           ``[plasticity]`` the topology's evolution (and a GIF)
``topology/``              with ``[plasticity]``: topology snapshots and their
                           networkx metrics (:class:`~eventhorizon.plasticity.SnapshotRecorder`)
=========================  =====================================================

A checkpoint is written after every epoch (model files first, then history,
then status, each by rename). An interrupted run stops at the next
mini-batch boundary and resumes from the start of the unfinished epoch: the
data order of an epoch comes from ``(seed, epoch)`` and the random nudging
signs from a generator whose state is saved, so a resumed run produces the
weights an uninterrupted one would.
"""

import json
import time
from functools import partial
from typing import NamedTuple

import numpy as np

from eventhorizon import __version__
from eventhorizon.eqprop import BatchStats, EqPropConfig, EqPropModel, StateWindow
from eventhorizon.learning import schedule_factor
from eventhorizon.modelfile import load_model, save_model
from eventhorizon.plasticity import SnapshotRecorder, plasticity_step, rewire_fraction_at

__all__ = ["execute_training", "config_from_scenario", "load_training_data", "TrainingData"]


def config_from_scenario(sc):
    """The :class:`~eventhorizon.eqprop.EqPropConfig` a learning scenario describes."""
    lr = sc.learning
    return EqPropConfig(sizes=tuple(sc.network.sizes), activation=sc.network.activation, beta=lr.beta,
                        nudging=lr.nudging, learning_rates=tuple(lr.learning_rates), momentum=lr.momentum,
                        batch_size=lr.batch_size, epsilon=sc.dynamics.epsilon, seed=sc.network.seed or 0,
                        init_scale=lr.init_scale, threads=lr.threads,
                        straight_through=lr.straight_through)


def initial_graph(sc, config):
    """The starting weights: ``layered(sizes, seed, feedback=True)`` at the block densities, × init_scale/√density.

    A sparse block keeps each Glorot weight with probability ``density``
    (its own, see ``[network] density_distribution``); dividing its weights
    by √density restores the input variance a neuron would get densely
    connected (a neuron's fan-in shrinks by that factor), so sparse and dense
    networks start at the same operating point. On 2000 training images, 3
    epochs at 10% density: 73.4% test accuracy with the rescaling, 59.2%
    without.
    """
    from topology.generators import layered

    densities = sc.network.block_densities()
    graph = layered(config.sizes, config.seed, feedback=True, density=densities)
    layer_of = np.repeat(np.arange(len(config.sizes)), config.sizes)
    block = np.minimum(layer_of[graph.pre_ids()], layer_of[graph.indices])  # the lower layer of each synapse
    scale = config.init_scale / np.sqrt(np.asarray(densities))
    graph.weights *= scale[block].astype(np.float32)
    return graph


class TrainingData(NamedTuple):
    """Images (float32, one row each) and labels (int64) of a learning run; the validation set may be empty."""

    X: np.ndarray
    y: np.ndarray
    X_test: np.ndarray
    y_test: np.ndarray
    X_val: np.ndarray
    y_val: np.ndarray


def load_training_data(sc):
    """The :class:`TrainingData` of a learning scenario.

    The first ``learning.train_samples`` training images, of which the last
    ``learning.validation_samples`` are held out as the validation set, and
    the first ``learning.test_samples`` test images.
    """
    from eventhorizon import datasets
    from eventhorizon.scenario import ScenarioError

    try:
        train = datasets.load_fashion_mnist("train", sc.input.data_dir, limit=sc.learning.train_samples)
        test = datasets.load_fashion_mnist("test", sc.input.data_dir, limit=sc.learning.test_samples)
    except datasets.DatasetError as exc:
        raise ScenarioError(f"input: {exc}") from None
    X, y = np.ascontiguousarray(train.images), train.labels.astype(np.int64)
    split = X.shape[0] - sc.learning.validation_samples
    return TrainingData(X[:split], y[:split], np.ascontiguousarray(test.images), test.labels.astype(np.int64),
                        X[split:], y[split:])


def _dense_baseline(model):
    from eventhorizon.dense_eqprop import DenseEqProp

    weights, biases = model.dense_parameters()
    cfg = model.config
    return DenseEqProp(weights, biases, activation=cfg.activation, beta=cfg.beta, nudging=cfg.nudging,
                       straight_through=cfg.straight_through,
                       learning_rates=list(cfg.learning_rates), momentum=cfg.momentum, epsilon=cfg.epsilon,
                       seed=cfg.seed)


def _save_dense(path, dense):
    from eventhorizon.runner import _atomic_write

    arrays = {f"W{l}": w for l, w in enumerate(dense._W)}
    arrays.update({f"b{l}": b for l, b in enumerate(dense._b)})
    arrays.update({f"vW{l}": v for l, v in enumerate(dense._vW)})
    arrays.update({f"vb{l}": v for l, v in enumerate(dense._vb)})
    state = json.dumps(dense.rng.bit_generator.state)
    _atomic_write(path, lambda fh: np.savez(fh, rng_state=np.array(state), **arrays))


def _load_dense(path, dense):
    with np.load(path, allow_pickle=False) as data:
        for l in range(dense.n_layers):
            dense._W[l][...] = data[f"W{l}"]
            dense._b[l][...] = data[f"b{l}"]
            dense._vW[l][...] = data[f"vW{l}"]
            dense._vb[l][...] = data[f"vb{l}"]
        dense.rng.bit_generator.state = json.loads(str(data["rng_state"]))


def _epoch_order(seed, epoch, n):
    return np.random.default_rng([seed, epoch]).permutation(n)


def _per_sample(stats, n):
    n = max(1, n)
    return {
        "loss": stats.loss / n, "train_accuracy": stats.correct / n,
        "free_ops_per_sample": stats.free_ops / n, "nudged_ops_per_sample": stats.nudged_ops / n,
        "learning_ops_per_sample": stats.learning_ops / n,
        "free_updates_per_sample": stats.free_updates / n, "nudged_updates_per_sample": stats.nudged_updates / n,
        "phases_seconds": stats.phases_seconds, "update_seconds": stats.update_seconds,
        "not_settled": stats.not_settled,
    }


def _dense_totals(results, n):
    keys = ("correct", "free_macs", "nudged_macs", "free_macs_unhoisted", "nudged_macs_unhoisted")
    tot = {k: sum(float(r[k]) for r in results) for k in keys}
    tot["loss"] = sum(float(r["loss"]) * r["batch_size"] for r in results)  # a batch's loss is its mean
    n = max(1, n)
    return {
        "loss": tot["loss"] / n, "train_accuracy": tot["correct"] / n,
        "free_ops_per_sample": tot["free_macs"] / n, "nudged_ops_per_sample": tot["nudged_macs"] / n,
        "free_ops_unhoisted_per_sample": tot["free_macs_unhoisted"] / n,
        "nudged_ops_unhoisted_per_sample": tot["nudged_macs_unhoisted"] / n,
    }


def _run_batches(train_batch, X, y, order, bs, flag, progress, label, after_batch=None):
    """Train one model over an epoch's batches; ``(results, seconds)``, or None when stopped.

    ``after_batch(batch_number, start)`` runs after each batch, outside the timing.
    """
    results, seconds, n = [], 0.0, X.shape[0]
    for number, start in enumerate(range(0, n, bs), start=1):
        if flag["stop"] is not None:
            return None
        idx = order[start:start + bs]
        t0 = time.perf_counter()
        results.append(train_batch(X[idx], y[idx]))
        seconds += time.perf_counter() - t0
        if after_batch is not None:
            after_batch(number, start + bs)
        if progress is not None:
            progress(min(start + bs, n), n, label)
    return results, seconds


def _train_epoch(run, model, dense, data, epoch, flag, progress, recorder=None, steps_before=0):
    """One epoch of the event model, then the same batches for the dense baseline.

    With ``[plasticity]``, a plasticity step follows every ``every_batches``
    batches (outside the epoch timing; its own time is reported) and
    ``recorder`` snapshots the topology at the steps it is due
    (``steps_before`` steps were taken in earlier epochs).

    The models are independent, so training them one after the other gives the
    same weights as interleaving batches, and each is timed without the other's
    threads (OpenBLAS workers spin after a call) competing for the cores.
    """
    X, y = data.X, data.y
    bs, n = model.config.batch_size, X.shape[0]
    order = _epoch_order(model.config.seed, epoch, n)
    label = f"epoch {epoch + 1}"
    steps = []
    plasticity = run.scenario.plasticity

    window = _state_window(plasticity)  # the equilibria training settles, kept for the growth score

    def rewire(number, next_start):
        if plasticity is None or number % plasticity.every_batches != 0:
            return
        fraction = rewire_fraction_at(plasticity, (epoch + min(next_start, n) / n) / run.scenario.run.epochs)
        if fraction > 0:
            idx = order[np.arange(next_start, next_start + plasticity.score_samples) % n]
            score = window.score() if window is not None else None
            steps.append(plasticity_step(model, plasticity, X[idx], y[idx], [model.config.seed, epoch, number],
                                         fraction=fraction, score=score))
            step = steps_before + len(steps)
            if recorder is not None and recorder.due(step):
                seen = min(next_start, n)
                recorder.record(model.graph, step, epoch + seen / n, epoch * n + seen)

    train_batch = model.train_batch if window is None else partial(model.train_batch, keep=window)
    event_run = _run_batches(train_batch, X, y, order, bs, flag, progress, label + " event", rewire)
    if event_run is None:
        return None
    event = BatchStats()
    for stats in event_run[0]:
        event.add(stats)
    entry = {"epoch": epoch + 1, "event": _per_sample(event, n), "event_epoch_seconds": event_run[1]}
    if plasticity is not None:
        entry["plasticity"] = {"steps": len(steps), "pruned": sum(s["pruned"] for s in steps),
                               "grown": sum(s["grown"] for s in steps),
                               "density": steps[-1]["density"] if steps else None,
                               "seconds": sum(s["seconds"] for s in steps),
                               "synapses": int(model.graph.nnz)}
    if dense is not None:
        dense_run = _run_batches(dense.train_batch, X, y, order, bs, flag, progress, label + " dense")
        if dense_run is None:
            return None
        entry["dense"] = _dense_totals(dense_run[0], n)
        entry["dense_epoch_seconds"] = dense_run[1]
        entry["wall_ratio_event_over_dense"] = event_run[1] / max(dense_run[1], 1e-12)
    return entry


def _state_window(plasticity):
    """An empty :class:`~eventhorizon.eqprop.StateWindow` where gradient growth scores what training settled.

    A new one each epoch, so a run resumed at an epoch scores the same samples.
    """
    if plasticity is None or plasticity.grow != "gradient" or plasticity.score_from != "training":
        return None
    return StateWindow(plasticity.score_samples)


def _evaluate(entry, model, dense, data):
    t0 = time.perf_counter()
    ev = model.evaluate(data.X_test, data.y_test)
    entry["event"].update(test_accuracy=ev["accuracy"], test_loss=ev["loss"],
                          test_seconds=time.perf_counter() - t0)
    if dense is not None:
        de = dense.evaluate(data.X_test, data.y_test)
        entry["dense"].update(test_accuracy=de["accuracy"], test_loss=de["loss"])
    if data.y_val.size:
        ev = model.evaluate(data.X_val, data.y_val)
        entry["event"].update(validation_accuracy=ev["accuracy"], validation_loss=ev["loss"])
        if dense is not None:
            de = dense.evaluate(data.X_val, data.y_val)
            entry["dense"].update(validation_accuracy=de["accuracy"], validation_loss=de["loss"])
    if dense is not None:
        e, d = entry["event"], entry["dense"]
        entry["nudged_saving_vs_dense"] = 1 - e["nudged_ops_per_sample"] / max(d["nudged_ops_unhoisted_per_sample"], 1)
        entry["nudged_saving_vs_dense_hoisted"] = 1 - e["nudged_ops_per_sample"] / max(d["nudged_ops_per_sample"], 1)
        entry["free_saving_vs_dense"] = 1 - e["free_ops_per_sample"] / max(d["free_ops_unhoisted_per_sample"], 1)
    return entry


def epoch_line(entry, epochs):
    """A one-line epoch summary for the terminal."""
    e = entry["event"]
    line = (f"epoch {entry['epoch']}/{epochs}: loss {e['loss']:.4f}, train {e['train_accuracy']:.2%}, "
            f"{_validation(e)}test {e['test_accuracy']:.2%}; MACs/sample free {e['free_ops_per_sample']:,.0f}, "
            f"nudged {e['nudged_ops_per_sample']:,.0f}; updates/sample free {e['free_updates_per_sample']:,.0f}, "
            f"nudged {e['nudged_updates_per_sample']:,.0f}")
    if "plasticity" in entry:
        p = entry["plasticity"]
        line += (f" | plasticity: {p['steps']} steps, {p['pruned']:,} pruned, {p['grown']:,} grown, "
                 f"density {p['density'] if p['density'] is not None else float('nan'):.3f}, {p['seconds']:.2f} s")
    if "dense" in entry:
        d = entry["dense"]
        line += (f" | dense: {_validation(d)}test {d['test_accuracy']:.2%}, MACs/sample free {d['free_ops_unhoisted_per_sample']:,.0f}, "
                 f"nudged {d['nudged_ops_unhoisted_per_sample']:,.0f}; epoch time event/dense "
                 f"{entry['event_epoch_seconds']:.1f}/{entry['dense_epoch_seconds']:.1f} s")
    return line


def _validation(figures):
    """``"validation 88.12%, "`` when the epoch has a validation accuracy, else ``""``."""
    return f"validation {figures['validation_accuracy']:.2%}, " if "validation_accuracy" in figures else ""


def in_words(metrics):
    """One plain sentence for a training run."""
    last = metrics["history"][-1] if metrics["history"] else None
    if last is None:
        return "No epoch finished yet."
    e = last["event"]
    text = (f"After {last['epoch']} of {metrics['epochs_planned']} epochs, event-driven EqProp reaches "
            f"{e['test_accuracy']:.2%} test accuracy (loss {e['test_loss']:.4f}); per training sample the free phase "
            f"executed {e['free_ops_per_sample']:,.0f} multiply-adds and the nudged phases "
            f"{e['nudged_ops_per_sample']:,.0f}")
    if "dense" in last:
        d = last["dense"]
        text += (f"; the dense baseline reaches {d['test_accuracy']:.2%} and its nudged phases executed "
                 f"{d['nudged_ops_unhoisted_per_sample']:,.0f} ({d['nudged_ops_per_sample']:,.0f} with the input drive "
                 f"hoisted): {last['nudged_saving_vs_dense']:.1%} saved by events. Epoch wall time event/dense: "
                 f"{last['wall_ratio_event_over_dense']:.2f}")
    return text + "."


def execute_training(run, progress=None, echo=None):
    """Train (or continue training) the scenario of ``run``; see the module docstring.

    Raises
    ------
    eventhorizon.runner.RunInterrupted
    """
    from eventhorizon.runner import RunInterrupted, _stop_on_signals, _write_json, _write_status

    sc, d = run.scenario, run.directory
    data = load_training_data(sc)
    config = config_from_scenario(sc)
    history = json.loads((d / "history.json").read_text()) if (d / "history.json").exists() else []
    if history and (d / "model.npz").exists():
        model, _ = load_model(d / "model.npz", expect_sizes=config.sizes)
        run.log.info("resuming after epoch %d", len(history))
    else:
        model, history = EqPropModel(config, graph=initial_graph(sc, config)), []
    dense = _dense_baseline(model) if sc.learning.compare_dense else None
    if dense is not None and history:
        _load_dense(d / "dense_model.npz", dense)
    recorder = _snapshot_recorder(run, config, history)
    if recorder is not None and recorder.last_step is None:
        recorder.record(model.graph, 0, 0.0, 0)
    flag = {"stop": None}
    _write_status(run, "running", len(history))
    with _stop_on_signals(flag):
        for epoch in range(len(history), sc.run.epochs):
            factor = schedule_factor(sc.learning.schedule, epoch, sc.run.epochs)
            model.scale_learning_rates(factor)
            if dense is not None:
                dense.learning_rates = [r * factor for r in model.config.learning_rates]
            entry = _train_epoch(run, model, dense, data, epoch, flag, progress, recorder, _plasticity_steps(history))
            if entry is None:
                break
            history.append(_evaluate(entry, model, dense, data))
            info = {"epoch": epoch + 1, "learning_rate_factor": factor, "test_accuracy": entry["event"]["test_accuracy"]}
            save_model(d / "model.npz", model, info=info)
            if dense is not None:
                _save_dense(d / "dense_model.npz", dense)
            _write_json(d / "history.json", history)
            metrics = _summary(sc, run, history, "running")
            _write_json(d / "metrics.json", metrics)
            _write_status(run, "running", len(history))
            run.log.info("epoch %d: %s", epoch + 1, in_words(metrics))
            if echo is not None:
                echo(epoch_line(entry, sc.run.epochs))
    if flag["stop"] is not None:
        _write_json(d / "metrics.json", _summary(sc, run, history, "interrupted"))
        _write_status(run, "interrupted", len(history), f"stopped by {flag['stop']}")
        run.log.warning("interrupted by %s after %d epochs", flag["stop"], len(history))
        raise RunInterrupted(f"interrupted by {flag['stop']} after {len(history)} of {sc.run.epochs} epochs; the "
                             f"unfinished epoch is redone on resume — continue with: "
                             f"eventhorizon run --resume {d}")
    if recorder is not None and recorder.last_step != _plasticity_steps(history):
        recorder.record(model.graph, _plasticity_steps(history), float(len(history)), len(history) * data.X.shape[0])
    metrics = _summary(sc, run, history, "complete")
    _write_json(d / "metrics.json", metrics)
    _write_status(run, "complete", len(history))
    run.log.info("complete: %s", metrics["in_words"])
    return metrics


def _plasticity_steps(history):
    """Plasticity steps taken in the finished epochs of ``history``."""
    return sum(h.get("plasticity", {}).get("steps", 0) for h in history)


def _snapshot_recorder(run, config, history):
    """The run's :class:`SnapshotRecorder`, or None without ``[plasticity]``.

    On resume, snapshots taken during the unfinished epoch are forgotten
    (the epoch is redone, and so are they).
    """
    plasticity = run.scenario.plasticity
    if plasticity is None:
        return None
    recorder = SnapshotRecorder(run.directory, config.sizes, plasticity.snapshot_every, seed=config.seed)
    recorder.resume(_plasticity_steps(history))
    return recorder


def _summary(sc, run, history, status):
    out = {"eventhorizon_version": __version__, "kind": "training", "scenario_name": run.name, "status": status,
           "epochs_done": len(history), "epochs_planned": sc.run.epochs, "epsilon": sc.dynamics.epsilon,
           "compare_dense": sc.learning.compare_dense, "model": "model.npz", "history": history}
    if history:
        out["final"] = history[-1]
    out["in_words"] = in_words(out)
    return out
