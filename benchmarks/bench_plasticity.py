"""Structural plasticity on Fashion-MNIST: gradient growth vs random regrowth (SET), 90% and 98% sparse.

Runs (or summarises) ``eventhorizon run`` of the bundled darwin scenarios over
several seeds and prints one row per run and the mean ± standard deviation
of the final test accuracy per variant, with the free-phase multiply-adds per
sample (which fall with the density) and the plasticity steps' share of the
training time.

    python benchmarks/bench_plasticity.py --out runs/plasticity --epochs 5 --seeds 0 1 2 [--run]

Without ``--run`` it only summarises run directories already in ``--out``
(named ``<variant>_s<seed>_e<epochs>``); with ``--run`` it first runs the
missing ones, one after the other (``--resume`` continues interrupted ones).
Variants: ``grad90`` (darwin_sparse), ``set90`` (darwin_sparse_set),
``grad98`` (darwin_sparse_98) and ``set98`` (darwin_sparse_98 with
``plasticity.grow = "random"``), each with ``learning.straight_through = false``,
and the same four with it ``true`` (``grad90st`` …). The dense reference is eqprop_fashion's
dense baseline (``eventhorizon run eqprop_fashion``). Needs the data:
``apt-get install -y dataset-fashion-mnist``. About 4 minutes per 5-epoch run
on a 2-core machine.
"""

import argparse
import json
import statistics
import subprocess
import sys
from pathlib import Path

VARIANTS = {
    "grad90": ("darwin_sparse", []),
    "set90": ("darwin_sparse_set", []),
    "grad98": ("darwin_sparse_98", []),
    "set98": ("darwin_sparse_98", ["--set", "plasticity.grow=random"]),
}
# Each runs with learning.straight_through off, and with it on (the nudge reaches saturated wrong outputs) as
# "<name>st", whatever the scenario's own setting.
VARIANTS = {f"{name}{suffix}": (scenario, [*extra, "--set", f"learning.straight_through={flag}"])
            for name, (scenario, extra) in VARIANTS.items() for suffix, flag in (("", "false"), ("st", "true"))}


def run_dir(out, variant, seed, epochs):
    return Path(out) / f"{variant}_s{seed}_e{epochs}"


def run(out, variant, seed, epochs):
    """Run (or resume) one benchmark run; figures off to keep the timing clean."""
    path = run_dir(out, variant, seed, epochs)
    status = path / "status.json"
    if status.exists() and json.loads(status.read_text())["status"] == "complete":
        return
    scenario, extra = VARIANTS[variant]
    if path.exists():
        cmd = ["eventhorizon", "run", "--resume", str(path), "--quiet"]
    else:
        cmd = ["eventhorizon", "run", scenario, "--out", str(path), "--seed", str(seed), "--set",
               f"run.epochs={epochs}", "--set", "output.figures=false", *extra, "--quiet"]
    subprocess.run(cmd, check=True)


def summary_row(path):
    """Final-epoch figures of one run directory (None if it has no finished epoch)."""
    history = json.loads((path / "history.json").read_text()) if (path / "history.json").exists() else []
    if not history:
        return None
    last = history[-1]
    train_seconds = sum(h["event_epoch_seconds"] for h in history)
    plasticity_seconds = sum(h["plasticity"]["seconds"] for h in history)
    steps = sum(h["plasticity"]["steps"] for h in history)
    return {"epochs": len(history), "test_accuracy": last["event"]["test_accuracy"],
            "best_test_accuracy": max(h["event"]["test_accuracy"] for h in history),
            "free_macs": last["event"]["free_ops_per_sample"], "nudged_macs": last["event"]["nudged_ops_per_sample"],
            "density": last["plasticity"]["density"], "step_seconds": plasticity_seconds / max(1, steps),
            "plasticity_share": plasticity_seconds / max(train_seconds, 1e-12)}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="runs/plasticity")
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--variants", nargs="+", default=list(VARIANTS), choices=list(VARIANTS))
    parser.add_argument("--run", action="store_true", help="run the missing runs first")
    args = parser.parse_args(argv)
    if args.run:
        for seed in args.seeds:
            for variant in args.variants:
                run(args.out, variant, seed, args.epochs)
    print(f"{'run':<18} {'epochs':>6} {'test acc':>9} {'best':>7} {'density':>8} {'free MACs':>10} "
          f"{'nudged MACs':>11} {'step s':>7} {'plast/train':>11}")
    finals = {}
    for variant in args.variants:
        for seed in args.seeds:
            path = run_dir(args.out, variant, seed, args.epochs)
            row = summary_row(path)
            if row is None:
                print(f"{path.name:<18} (no finished epoch)")
                continue
            if row["epochs"] == args.epochs:
                finals.setdefault(variant, []).append(row["test_accuracy"])
            print(f"{path.name:<18} {row['epochs']:>6} {row['test_accuracy']:>9.2%} {row['best_test_accuracy']:>7.2%} "
                  f"{row['density']:>8.4f} {row['free_macs']:>10,.0f} {row['nudged_macs']:>11,.0f} "
                  f"{row['step_seconds']:>7.3f} {row['plasticity_share']:>11.1%}")
    print("\nfinal test accuracy per variant (complete runs): mean ± sd over seeds")
    for variant, accs in finals.items():
        sd = statistics.stdev(accs) if len(accs) > 1 else float("nan")
        print(f"  {variant:<7} {statistics.mean(accs):.2%} ± {sd:.2%}  (n = {len(accs)}: "
              f"{', '.join(f'{a:.2%}' for a in accs)})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
