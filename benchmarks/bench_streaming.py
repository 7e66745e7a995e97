"""Streaming benchmark: event-driven re-settling per frame vs warm-started dense, on moving_digits.

For each motion speed (``--drift-every``: frames between one-pixel moves of
the image; the occluder moves twice as often), the same stream of frames
from the Fashion-MNIST test images is classified by

* **event**: :class:`eventhorizon.streaming.StreamSettler`, warm-started from
  the previous equilibrium, only changed pixels broadcasting; timed in chunks
  of ``--chunk`` frames (as ``eventhorizon run`` feeds it) and frame by frame
  (one kernel call per frame, as a live stream at real-time pace does);
* **dense**: :class:`eventhorizon.dense.DenseReference` warm-started from the
  previous frame's state, sweeping to the same ε — plain (every sweep
  multiplies all weights) and input-hoisted (the input drive once per frame);
  and :class:`eventhorizon.dense_compiled.CompiledDense`, the hoisted one
  compiled and fed ``--chunk`` frames per call like the event kernel (no
  interpreter overhead: the fastest dense variant, which the headline
  speed-up is against);
* **LoopedMLP-30**: 30 sweeps from rest per frame (MACs and accuracy).

Multiply-adds are counted inside the kernels (event) and as touched per
sweep (dense). Times are medians over ``--repeats`` runs of the whole
stream, in one process, after a warm-up; ratios are of those medians.

Needs the Fashion-MNIST IDX files (``apt-get install -y
dataset-fashion-mnist``) and a trained model, e.g. from ``eventhorizon run
eqprop_fashion`` (its ``model.npz``)::

    python3 benchmarks/bench_streaming.py --model RUN_DIR/model.npz --frames 6000 \\
        --drift-every 3 6 12 24 48 --json streaming.json
"""

import argparse
import json
import sys
import time

import numpy as np

from eventhorizon.datasets import load_fashion_mnist
from eventhorizon.dense import DenseReference
from eventhorizon.dense_compiled import CompiledDense
from eventhorizon.modelfile import load_model
from eventhorizon.moving_digits import MovingDigits, MovingDigitsConfig
from eventhorizon.streaming import StreamSettler


def _event(model, eps, frames, chunk):
    settler = StreamSettler(model.network, eps, output_ids=model.output_ids)
    parts = []
    start = time.perf_counter()
    for a in range(0, len(frames), chunk):
        parts.append(settler.settle_frames(frames[a:a + chunk]))
    seconds = time.perf_counter() - start
    ops = np.concatenate([p.column("synaptic_ops") for p in parts])
    preds = np.concatenate([p.predictions for p in parts])
    return seconds, ops, preds


def _dense(ref, model, eps, frames):
    x, ops, preds = None, np.zeros(len(frames), np.int64), np.zeros(len(frames), np.int64)
    start = time.perf_counter()
    for k, frame in enumerate(frames):
        res = ref.settle(frame, eps, state_x=x)
        x = res.x
        ops[k] = res.synaptic_ops
        preds[k] = np.argmax(res.x[model.output_ids])
    return time.perf_counter() - start, ops, preds


def _dense_chunked(compiled, model, eps, frames, chunk):
    """CompiledDense fed ``chunk`` frames per call, each frame warm-started from the one before."""
    x, ops, preds = None, [], []
    start = time.perf_counter()
    for a in range(0, len(frames), chunk):
        res = compiled.settle_frames(frames[a:a + chunk], eps, state_x=x, output_ids=model.output_ids)
        x = res.x
        ops.append(res.synaptic_ops)
        preds.append(np.argmax(res.outputs, axis=1))
    return time.perf_counter() - start, np.concatenate(ops), np.concatenate(preds)


def measure(model, images, labels, args, drift_every):
    """One motion speed: MACs, median seconds per frame and accuracy of every method."""
    config = MovingDigitsConfig(switch_every=args.switch_every, drift_every=drift_every,
                                occluder_every=max(1, drift_every // 2))
    frames, y = MovingDigits(images, labels, args.frames, config, seed=args.seed).frames(0, args.frames)
    eps = model.config.epsilon
    net = model.network
    plain, hoisted, compiled = DenseReference(net), DenseReference(net, hoist_inputs=True), CompiledDense(net)
    _event(model, eps, frames[:8], 4)  # warm-up: kernels compiled or loaded, BLAS and caches warm
    for ref in (plain, hoisted):
        _dense(ref, model, eps, frames[:8])
    _dense_chunked(compiled, model, eps, frames[:8], 4)
    runs = {"event_chunked": [], "event_per_frame": [], "dense": [], "dense_hoisted": [], "dense_compiled": []}
    for _ in range(args.repeats):
        t, ev_ops, ev_pred = _event(model, eps, frames, args.chunk)
        runs["event_chunked"].append(t)
        runs["event_per_frame"].append(_event(model, eps, frames, 1)[0])
        t, de_ops, de_pred = _dense(plain, model, eps, frames)
        runs["dense"].append(t)
        t, ho_ops, _ = _dense(hoisted, model, eps, frames)
        runs["dense_hoisted"].append(t)
        t, co_ops, co_pred = _dense_chunked(compiled, model, eps, frames, args.chunk)
        runs["dense_compiled"].append(t)
    x_free, looped_ops = plain.looped_batch(frames, 30)
    looped_pred = np.argmax(x_free[:, model.output_ids - net.n_inputs], axis=1)
    per_frame = {k: float(np.median(v)) / args.frames for k, v in runs.items()}
    changed = np.concatenate([[np.count_nonzero(frames[0])], (np.diff(frames, axis=0) != 0).sum(axis=1)])
    return {
        "drift_every": drift_every, "occluder_every": config.occluder_every, "frames": args.frames,
        "changed_pixels_per_frame": float(changed.mean()),
        "event_ops": int(ev_ops.sum()), "dense_ops": int(de_ops.sum()), "dense_hoisted_ops": int(ho_ops.sum()),
        "looped30_ops": int(looped_ops) * args.frames,
        "saving_vs_dense": 1 - ev_ops.sum() / de_ops.sum(),
        "saving_vs_dense_hoisted": 1 - ev_ops.sum() / ho_ops.sum(),
        "saving_vs_looped30": 1 - ev_ops.sum() / (looped_ops * args.frames),
        "dense_compiled_ops": int(co_ops.sum()), "dense_compiled_agreement": float(np.mean(co_pred == de_pred)),
        "seconds_per_frame": per_frame,
        "speedup_chunked_vs_fastest_dense": min(per_frame["dense"], per_frame["dense_hoisted"],
                                                per_frame["dense_compiled"]) / per_frame["event_chunked"],
        "speedup_chunked_vs_dense_hoisted": per_frame["dense_hoisted"] / per_frame["event_chunked"],
        "speedup_per_frame_vs_dense_hoisted": per_frame["dense_hoisted"] / per_frame["event_per_frame"],
        "speedup_chunked_vs_dense": per_frame["dense"] / per_frame["event_chunked"],
        "accuracy": {"event": float(np.mean(ev_pred == y)), "dense": float(np.mean(de_pred == y)),
                     "looped30": float(np.mean(looped_pred == y))},
        "event_dense_agreement": float(np.mean(ev_pred == de_pred)),
    }


def _print(rows, out):
    print(f"{'drift':>5} {'px/frame':>8} {'saving vs dense':>15} {'vs hoisted':>10} {'vs looped30':>11} "
          f"{'event µs':>9} {'(1/call)':>9} {'dense µs':>9} {'hoisted µs':>10} {'compiled µs':>11} {'speedup':>8} "
          f"{'(hoisted)':>9} {'(1/call)':>8} {'acc ev':>7} {'dense':>6} {'loop30':>6}", file=out)
    for r in rows:
        s = {k: v * 1e6 for k, v in r["seconds_per_frame"].items()}
        a = r["accuracy"]
        print(f"{r['drift_every']:>5} {r['changed_pixels_per_frame']:>8.1f} {r['saving_vs_dense']:>15.2%} "
              f"{r['saving_vs_dense_hoisted']:>10.2%} {r['saving_vs_looped30']:>11.2%} {s['event_chunked']:>9.1f} "
              f"{s['event_per_frame']:>9.1f} {s['dense']:>9.1f} {s['dense_hoisted']:>10.1f} {s['dense_compiled']:>11.1f} "
              f"{r['speedup_chunked_vs_fastest_dense']:>7.1f}× {r['speedup_chunked_vs_dense_hoisted']:>8.1f}× "
              f"{r['speedup_per_frame_vs_dense_hoisted']:>7.1f}× "
              f"{a['event']:>7.2%} {a['dense']:>6.2%} {a['looped30']:>6.2%}", file=out)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", required=True, help="trained model file (model.npz of a [learning] run)")
    parser.add_argument("--data", help="Fashion-MNIST IDX directory (default: $EVENTHORIZON_FASHION_MNIST or Debian's)")
    parser.add_argument("--frames", type=int, default=6000)
    parser.add_argument("--switch-every", type=int, default=60, help="frames per image (moving_digits: 60)")
    parser.add_argument("--drift-every", type=int, nargs="+", default=[6], help="frames per one-pixel move")
    parser.add_argument("--chunk", type=int, default=256, help="frames per kernel call in the chunked timing")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", help="also write the results to this JSON file")
    args = parser.parse_args(argv)
    model, _ = load_model(args.model, expect_sizes=None)
    test = load_fashion_mnist("test", args.data)
    images = test.images.reshape(-1, 28, 28)
    rows = []
    for d in args.drift_every:
        rows.append(measure(model, images, test.labels, args, d))
        print(f"drift_every={d} done", file=sys.stderr, flush=True)
    print(f"moving_digits, {args.frames} frames, image switch every {args.switch_every} frames, "
          f"median of {args.repeats} repeats; model {args.model}")
    _print(rows, sys.stdout)
    if args.json:
        with open(args.json, "w") as fh:
            json.dump({"model": args.model, "repeats": args.repeats, "rows": rows}, fh, indent=2)


if __name__ == "__main__":
    main()
