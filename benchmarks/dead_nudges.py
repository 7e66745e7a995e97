"""How many misclassified training images give an EqProp model no gradient at all.

A hard-sigmoid output clipped at 1 whose pre-activation ``u`` lies more than
``β`` past the bound does not move when nudged by ``β·(target − x)``; if every
wrong output of a sample is like that, neither nudged phase changes anything
and the sample teaches nothing. ``learning.straight_through`` removes the
dead zone (:func:`eventhorizon.eqprop_rows._nudge_current`). For each model
file this prints its accuracy on the first ``--samples`` training images and,
among the misclassified ones, the share where the ``+β`` nudge moves no
output with the plain current and with the straight-through one.

    python benchmarks/dead_nudges.py RUN_DIR/model.npz [MORE.npz ...] --samples 5000

Needs the data: ``apt-get install -y dataset-fashion-mnist``.
"""

import argparse

import numpy as np

from eventhorizon.batch_settle import settle_batch
from eventhorizon.datasets import load_fashion_mnist
from eventhorizon.eqprop_rows import _nudge_current
from eventhorizon.modelfile import load_model


def free_outputs(model, images):
    """Free-phase outputs ``x`` and drives ``u`` of the output neurons, one row per image."""
    res = settle_batch(model.network, images, eps=model.config.epsilon, threads=2,
                       max_updates=model._max_updates, on_budget="return")
    out = model.output_ids
    return res.x[:, out], res.u[:, out]


def dead_share(model, x, u, labels, straight_through):
    """Share of the misclassified rows where the +β nudge moves no output (0 if none is misclassified)."""
    rho = model.network.model
    target = np.eye(x.shape[1], dtype=np.float32)[labels]
    current = np.array([_nudge_current(model.config.beta, t, xx, uu, rho.code, straight_through)
                        for t, xx, uu in zip(target.ravel(), x.ravel(), u.ravel())], np.float32).reshape(x.shape)
    moved = np.abs(rho(u + current) - x) > model.config.epsilon  # what the kernel would broadcast
    wrong = x.argmax(1) != labels
    return float((~moved[wrong].any(1)).mean()) if wrong.any() else 0.0


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("models", nargs="+", help="model.npz files")
    parser.add_argument("--samples", type=int, default=5000, help="first N training images")
    args = parser.parse_args(argv)
    train = load_fashion_mnist("train", limit=args.samples)
    print(f"{'model':60s} {'train acc':>9s} {'dead, plain':>12s} {'dead, straight-through':>23s}")
    for path in args.models:
        model, _ = load_model(path)
        x, u = free_outputs(model, train.images)  # settled once, scored both ways
        acc = np.mean(x.argmax(1) == train.labels)
        plain, through = (dead_share(model, x, u, train.labels, flag) for flag in (False, True))
        print(f"{path:60s} {acc:9.2%} {plain:12.1%} {through:23.1%}")


if __name__ == "__main__":
    main()
