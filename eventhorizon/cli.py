"""Command line: ``eventhorizon flops SCENARIO [--json]``.

argparse (standard library) rather than click/typer: one dependency fewer,
and subcommands with typed options are all the CLI needs.

Exit codes: 0 success, 2 usage or scenario error, 1 run failure.
"""

import argparse
import json
import sys

from eventhorizon import __version__

__all__ = ["main", "UsageError"]


class UsageError(ValueError):
    """A command-line argument is invalid (exit code 2)."""


def _progress(total, quiet):
    if quiet or not sys.stderr.isatty():
        return None, None
    from tqdm import tqdm

    bar = tqdm(total=total, unit="sample", file=sys.stderr, leave=False)
    return bar.update, bar


def _print_table(report, scenario_name):
    r = report
    rows = [
        ("samples", f"{r.samples}"),
        ("epsilon", f"{r.epsilon:g}"),
        ("multiply-adds, event-driven", f"{r.event_synaptic_ops:,}"),
        ("multiply-adds, dense to ε", f"{r.dense_synaptic_ops:,}  ({r.dense_sweeps_mean:.1f} sweeps/sample)"),
        ("multiply-adds, dense to ε, input hoisted", f"{r.dense_hoisted_synaptic_ops:,}"),
        ("multiply-adds, LoopedMLP-30", f"{r.looped30_synaptic_ops:,}"),
        ("multiply-adds, lower bound", f"{r.lower_bound_ops:,}"),
        ("saving vs dense / hoisted / LoopedMLP-30",
         f"{r.saving_vs_dense:.1%} / {r.saving_vs_dense_hoisted:.1%} / {r.saving_vs_looped30:.1%}"),
        ("event ops / lower bound", f"{r.ratio_to_lower_bound:.3f}"),
        ("broadcasts per free neuron", f"{r.broadcasts_per_free_neuron:.2f}"),
        ("time per sample: event / dense / hoisted (median)",
         f"{r.event_seconds_per_sample * 1e3:.3f} / {r.dense_seconds_per_sample * 1e3:.3f} / "
         f"{r.dense_hoisted_seconds_per_sample * 1e3:.3f} ms"),
        ("wall ratio event/dense, event/hoisted",
         f"{r.wall_ratio_event_over_dense:.2f}, {r.wall_ratio_event_over_dense_hoisted:.2f}"),
        ("dense per sample at batch 128", f"{r.dense_batch128_seconds_per_sample * 1e3:.3f} ms"),
        ("max |x_event − x_dense|", f"{r.max_state_deviation:.2e}  ({r.max_state_deviation / r.epsilon:.2f} ε)"),
    ]
    width = max(len(k) for k, _ in rows)
    print(f"eventhorizon {__version__} — event-driven vs dense settling on {scenario_name}")
    for key, value in rows:
        print(f"  {key:<{width}}  {value}")
    print(f"In words: the event-driven run executed {1 - r.saving_vs_dense:.1%} of the dense multiply-adds "
          f"({r.ratio_to_lower_bound:.2f}× the minimum possible) and took {r.wall_ratio_event_over_dense:.2f}× "
          f"the dense wall time per sample.")


def _cmd_flops(args):
    from eventhorizon.flops import compare
    from eventhorizon.scenario import build_inputs, build_network, load_scenario

    scenario = load_scenario(args.scenario)
    network = build_network(scenario.network)
    inputs = build_inputs(scenario.input, network.n_inputs)
    if args.repeats is not None and args.repeats < 1:
        raise UsageError(f"--repeats must be >= 1, got {args.repeats}")
    repeats = scenario.flops.repeats if args.repeats is None else args.repeats
    update, bar = _progress(inputs.shape[0] * repeats, args.quiet or args.json)
    try:
        report = compare(network, inputs, scenario.dynamics.epsilon, repeats=repeats,
                         scheduler=scenario.dynamics.scheduler, progress=update)
    finally:
        if bar is not None:
            bar.close()
    if args.json:
        print(json.dumps(report.as_dict(), indent=2))
    else:
        _print_table(report, args.scenario)
    return 0


def _parser():
    parser = argparse.ArgumentParser(prog="eventhorizon", description="Event-driven neuron simulation.")
    parser.add_argument("--version", action="version", version=f"eventhorizon {__version__}")
    parser.add_argument("--debug", action="store_true", help="show tracebacks on errors")
    sub = parser.add_subparsers(dest="command", required=True)
    flops = sub.add_parser("flops", help="count multiply-adds and time event-driven vs dense settling")
    flops.add_argument("scenario", help="scenario TOML file")
    flops.add_argument("--json", action="store_true", help="print one JSON object instead of a table")
    flops.add_argument("--repeats", type=int, default=None, help="timing repeats (default: the scenario's)")
    flops.add_argument("--quiet", action="store_true", help="no progress bar")
    flops.set_defaults(func=_cmd_flops)
    return parser


def main(argv=None):
    """Run the CLI; returns the exit code."""
    from eventhorizon.scenario import ScenarioError

    parser = _parser()
    args = parser.parse_args(argv)
    try:
        return args.func(args)
    except (ScenarioError, UsageError) as exc:
        if args.debug:
            raise
        print(f"eventhorizon: error: {exc}", file=sys.stderr)
        return 2
    except (ValueError, RuntimeError, OSError, MemoryError) as exc:
        if args.debug:
            raise
        print(f"eventhorizon: run failed: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
