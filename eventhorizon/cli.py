"""Command line: ``eventhorizon run | validate | flops | plot | list``.

argparse (standard library) rather than click/typer: one dependency fewer,
and subcommands with typed options are all the CLI needs.

Exit codes: 0 success, 2 usage or scenario error, 1 run failure,
130 interrupted (Ctrl-C) with a checkpoint written.
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
        ("epsilon, relaxation ω", f"{r.epsilon:g}, {r.relaxation:g}"),
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
        (f"all cores: event ({r.event_threads} threads) / dense loop",
         f"{r.event_all_cores_seconds_per_sample * 1e3:.3f} / {r.dense_loop_seconds_per_sample * 1e3:.3f} ms "
         f"per sample, ratio {r.wall_ratio_event_all_cores_over_dense:.2f}"),
        ("one core: event / dense (BLAS on 1 thread)",
         f"{r.event_seconds_per_sample * 1e3:.3f} / {r.dense_1thread_seconds_per_sample * 1e3:.3f} ms, "
         f"ratio {r.wall_ratio_event_over_dense_1thread:.2f}"),
        ("dense per sample at batch 128", f"{r.dense_batch128_seconds_per_sample * 1e3:.3f} ms"),
        ("max |x_event − x_dense|", f"{r.max_state_deviation:.2e}  ({r.max_state_deviation / r.epsilon:.2f} ε)"),
    ]
    width = max(len(k) for k, _ in rows)
    print(f"eventhorizon {__version__} — event-driven vs dense settling on {scenario_name}")
    for key, value in rows:
        print(f"  {key:<{width}}  {value}")
    print(f"In words: the event-driven run executed {1 - r.saving_vs_dense:.1%} of the dense multiply-adds "
          f"({r.ratio_to_lower_bound:.2f}× the minimum possible) and took {r.wall_ratio_event_over_dense:.2f}× "
          f"the dense wall time per sample at batch 1 ({r.wall_ratio_event_all_cores_over_dense:.2f}× with "
          f"samples in parallel on all cores, {r.wall_ratio_event_over_dense_1thread:.2f}× on one core each).")


def _load(args):
    from eventhorizon.scenario import load_scenario, resolve_scenario

    path = resolve_scenario(args.scenario)
    return path, load_scenario(path, getattr(args, "set", None) or ())


def _cmd_flops(args):
    from eventhorizon.flops import compare
    from eventhorizon.scenario import build_inputs, build_network

    _, scenario = _load(args)
    if scenario.dynamics.mode == "spiking":
        raise UsageError(f"{args.scenario}: flops compares rate-mode settling; a spiking run reports its synaptic "
                         f"events and neuron updates against a clock-driven dense step in `eventhorizon run` "
                         f"(metrics.json), and benchmarks/bench_cuba.py times it against Brian2")
    if scenario.dynamics.mode == "stream":
        raise UsageError(f"{args.scenario}: flops compares settling from rest; a streaming run counts its MACs per "
                         f"frame against warm-started dense and LoopedMLP-30 in `eventhorizon run` (metrics.json), "
                         f"and benchmarks/bench_streaming.py times it")
    if scenario.learning is not None:
        raise UsageError(f"{args.scenario}: flops compares settling runs; a [learning] scenario reports its MACs "
                         f"per phase with `eventhorizon run`")
    network = build_network(scenario.network)
    inputs = build_inputs(scenario.input, network.n_inputs, scenario.run.samples)
    if args.repeats is not None and args.repeats < 1:
        raise UsageError(f"--repeats must be >= 1, got {args.repeats}")
    repeats = scenario.flops.repeats if args.repeats is None else args.repeats
    update, bar = _progress(inputs.shape[0] * repeats, args.quiet or args.json)
    try:
        report = compare(network, inputs, scenario.dynamics.epsilon, repeats=repeats,
                         scheduler=scenario.dynamics.scheduler, progress=update,
                         relaxation=scenario.dynamics.relaxation)
    finally:
        if bar is not None:
            bar.close()
    if args.json:
        print(json.dumps(report.as_dict(), indent=2))
    else:
        _print_table(report, args.scenario)
    return 0


def _cmd_validate(args):
    from eventhorizon.scenario import ScenarioError, load_scenario, resolve_scenario

    failed = 0
    for name in args.scenarios:
        try:
            scenario = load_scenario(resolve_scenario(name))
        except ScenarioError as exc:
            failed += 1
            print(f"invalid: {exc}", file=sys.stderr)
        else:
            print(f"valid: {name}: {scenario.description or '(no description)'}")
    return 2 if failed else 0


def _cmd_list(args):
    from eventhorizon.scenario import ScenarioError, bundled_scenarios, load_scenario

    rows = []
    for name, path in bundled_scenarios().items():
        try:
            text = load_scenario(path).description or "(no description)"
        except ScenarioError as exc:
            text = f"(invalid: {str(exc).splitlines()[0]})"
        rows.append((name, text))
    width = max((len(n) for n, _ in rows), default=0)
    for name, text in rows:
        print(f"{name:<{width}}  {text}")
    return 0


def _run_progress(quiet):
    if quiet or not sys.stderr.isatty():
        return None, None
    from tqdm import tqdm

    bar = tqdm(unit="sample", file=sys.stderr, leave=False)

    def update(done, total, desc=None):
        if desc is not None and desc != bar.desc:
            bar.set_description(desc, refresh=False)
        bar.total = total
        bar.n = done
        bar.refresh()
    return update, bar


def _check_realtime(speed, scenario):
    if speed is None:
        return
    if scenario.dynamics.mode != "stream":
        raise UsageError("--realtime paces a stream to its frame rate; it applies to streaming scenarios "
                         "([dynamics] mode = 'stream', e.g. moving_digits) only")
    if not speed > 0:
        raise UsageError(f"--realtime SPEED must be > 0, got {speed}")


def _cmd_run(args):
    from eventhorizon import runner

    if args.resume is not None:
        if args.scenario is not None or args.set or args.seed is not None or args.out is not None:
            raise UsageError("--resume RUN_DIR takes no SCENARIO, --set, --seed or --out: the run directory "
                             "holds its scenario")
        run = runner.open_run(args.resume)
        _check_realtime(args.realtime, run.scenario)
    else:
        if args.scenario is None:
            raise UsageError("run needs a SCENARIO (a file or a bundled name; see `eventhorizon list`) "
                             "or --resume RUN_DIR")
        if args.seed is not None and args.seed < 0:
            raise UsageError(f"--seed must be >= 0, got {args.seed}")
        overrides = list(args.set or []) + ([f"run.seed={args.seed}"] if args.seed is not None else [])
        args.set = overrides
        path, scenario = _load(args)
        _check_realtime(args.realtime, scenario)  # before the run directory is made
        run = runner.create_run(scenario, path.stem, args.out, source=path, overrides=overrides)
    if not args.quiet:
        print(f"eventhorizon {__version__}: running {run.name} into {run.directory}", file=sys.stderr)
    update, bar = _run_progress(args.quiet)
    try:
        echo = None if args.quiet else (lambda line: print(line, file=sys.stderr, flush=True))
        metrics = runner.execute(run, progress=update, echo=echo, realtime=args.realtime)
    finally:
        if bar is not None:
            bar.close()
    figures = []
    if run.scenario.output.figures:
        from eventhorizon.plots import write_run_figures

        figures = write_run_figures(run.directory)
    print(metrics["in_words"])
    if run.scenario.dynamics.mode == "spiking":
        files = "monitors.npz, checkpoint.npz"
    elif run.scenario.dynamics.mode == "stream":
        files = "frames.npz"
    else:
        files = "model.npz, history.json" if run.scenario.learning is not None else "samples.npz"
    print(f"Run directory: {run.directory} (metrics.json, {files}, scenario.toml, run.log"
          f"{', ' + str(len(figures)) + ' figures' if figures else ''})")
    return 0


def _cmd_serve(args):
    from eventhorizon import runner
    from eventhorizon.serve import serve_scenario

    path, scenario = _load(args)
    if scenario.dynamics.mode != "stream":
        raise UsageError(f"{args.scenario}: serve needs a streaming scenario ([dynamics] mode = 'stream', e.g. "
                         f"moving_digits): its classifier answers the events")
    if args.port is not None and not 0 <= args.port <= 65535:
        raise UsageError(f"--port must lie in [0, 65535], got {args.port}")
    run = runner.create_run(scenario, f"{path.stem}-serve", args.out, source=path, overrides=args.set or ())
    say = (lambda line: None) if args.quiet else (lambda line: print(line, file=sys.stderr, flush=True))
    summary = serve_scenario(run, host=args.host, port=args.port, ready=say)
    print(summary)
    return 0


def _cmd_evaluate(args):
    from eventhorizon import datasets
    from eventhorizon.modelfile import load_model

    model, info = load_model(args.model)
    if args.samples is not None and args.samples < 1:
        raise UsageError(f"--samples must be >= 1, got {args.samples}")
    try:
        data = datasets.load_fashion_mnist(args.split, args.data, limit=args.samples)
    except datasets.DatasetError as exc:
        raise UsageError(str(exc)) from None
    if data.images.shape[1] != model.n_inputs:
        raise UsageError(f"{args.model}: the model has {model.n_inputs} inputs, the data {data.images.shape[1]}")
    result = model.evaluate(data.images, data.labels.astype("int64"))
    print(f"{args.model}: {result['accuracy']:.2%} accuracy, loss {result['loss']:.4f} on {result['samples']} "
          f"Fashion-MNIST {args.split} images (event-driven free phase, ε = {model.config.epsilon:g}; "
          f"{result['free_ops'] / max(1, result['samples']):,.0f} multiply-adds per image; "
          f"trained for {info.get('epoch', '?')} epochs)")
    return 0


def _cmd_plot(args):
    from eventhorizon.plots import write_run_figures

    for path in write_run_figures(args.run_dir):
        print(path)
    return 0


def _cmd_export(args):
    import json

    from topology.export import write_graph
    from topology.snapshots import index_path, load_snapshot

    index_file = index_path(args.run_dir)
    if not index_file.exists():
        raise UsageError(f"{index_file}: no topology snapshots (the run had no [plasticity] section, or has not "
                         f"started)")
    index = json.loads(index_file.read_text(encoding="utf-8"))
    steps = [e["info"]["step"] for e in index]
    if args.all:
        chosen = index
    elif args.step is None:
        chosen = index[-1:]
    elif args.step in steps:
        chosen = [index[steps.index(args.step)]]
    else:
        raise UsageError(f"--step {args.step}: no snapshot at that plasticity step; {index_file} has steps {steps}")
    for entry in chosen:
        source = index_file.parent / entry["file"]
        graph, sizes, _ = load_snapshot(source)
        print(write_graph(graph, source.with_suffix("." + args.format), layer_sizes=sizes))
    return 0


def _parser():
    parser = argparse.ArgumentParser(prog="eventhorizon", description="Event-driven neuron simulation.")
    parser.add_argument("--version", action="version", version=f"eventhorizon {__version__}")
    parser.add_argument("--debug", action="store_true", help="show tracebacks on errors")
    sub = parser.add_subparsers(dest="command", required=True)
    run = sub.add_parser("run", help="run a scenario into a run directory (metrics, checkpoint, log, figures)")
    run.add_argument("scenario", nargs="?", help="scenario TOML file or bundled scenario name")
    run.add_argument("--out", help="run directory to create (default: runs/<name>-<time>)")
    run.add_argument("--seed", type=int, help="master seed (sets run.seed)")
    run.add_argument("--set", action="append", metavar="KEY.PATH=VALUE",
                     help="override a scenario value, e.g. --set run.samples=10 (repeatable)")
    run.add_argument("--resume", metavar="RUN_DIR", help="continue an interrupted run from its last checkpoint")
    run.add_argument("--quiet", action="store_true", help="no progress bar or banner")
    run.add_argument("--realtime", nargs="?", type=float, const=1.0, metavar="SPEED",
                     help="streaming scenarios: pace frames to the wall clock (SPEED × the frame rate, default 1) "
                          "and report the lag")
    run.set_defaults(func=_cmd_run)
    validate = sub.add_parser("validate", help="check scenario files; exit 0 if all are valid, 2 otherwise")
    validate.add_argument("scenarios", nargs="+", metavar="SCENARIO", help="scenario files or bundled names")
    validate.set_defaults(func=_cmd_validate)
    flops = sub.add_parser("flops", help="count multiply-adds and time event-driven vs dense settling")
    flops.add_argument("scenario", help="scenario TOML file or bundled scenario name")
    flops.add_argument("--set", action="append", metavar="KEY.PATH=VALUE", help="override a scenario value")
    flops.add_argument("--json", action="store_true", help="print one JSON object instead of a table")
    flops.add_argument("--repeats", type=int, default=None, help="timing repeats (default: the scenario's)")
    flops.add_argument("--quiet", action="store_true", help="no progress bar")
    flops.set_defaults(func=_cmd_flops)
    serve = sub.add_parser("serve", help="classify stimulus events sent as newline-delimited JSON over TCP "
                                         "(streaming scenarios); Ctrl-C stops")
    serve.add_argument("scenario", help="streaming scenario TOML file or bundled name (e.g. moving_digits)")
    serve.add_argument("--host", help="address to listen on (default: the scenario's serve.host, 127.0.0.1)")
    serve.add_argument("--port", type=int, help="TCP port (default: the scenario's serve.port; 0 picks a free one)")
    serve.add_argument("--out", help="directory for outputs.ndjson and the log (default: runs/<name>-serve-<time>)")
    serve.add_argument("--set", action="append", metavar="KEY.PATH=VALUE", help="override a scenario value")
    serve.add_argument("--quiet", action="store_true", help="no banner")
    serve.set_defaults(func=_cmd_serve)
    evaluate = sub.add_parser("evaluate", help="test accuracy of a trained model file (model.npz of a run)")
    evaluate.add_argument("model", help="model file written by a [learning] run")
    evaluate.add_argument("--data", help="directory of the Fashion-MNIST IDX files (default: "
                                         "$EVENTHORIZON_FASHION_MNIST or /usr/share/datasets/fashion-mnist)")
    evaluate.add_argument("--split", choices=("test", "train"), default="test", help="which images (default: test)")
    evaluate.add_argument("--samples", type=int, help="evaluate only the first N images")
    evaluate.set_defaults(func=_cmd_evaluate)
    plot = sub.add_parser("plot", help="redraw a run directory's figures without re-running")
    plot.add_argument("run_dir", help="run directory written by `eventhorizon run`")
    plot.set_defaults(func=_cmd_plot)
    export = sub.add_parser("export", help="write a run's topology snapshots as GraphML or GEXF (Gephi, networkx)")
    export.add_argument("run_dir", help="run directory of a [plasticity] run")
    export.add_argument("--format", choices=("graphml", "gexf"), default="graphml", help="file format (default graphml)")
    which = export.add_mutually_exclusive_group()
    which.add_argument("--step", type=int, help="the snapshot of this plasticity step (default: the last)")
    which.add_argument("--all", action="store_true", help="every snapshot")
    export.set_defaults(func=_cmd_export)
    listing = sub.add_parser("list", help="list the bundled scenarios")
    listing.set_defaults(func=_cmd_list)
    return parser


def main(argv=None):
    """Run the CLI; returns the exit code."""
    from eventhorizon.scenario import ScenarioError

    from eventhorizon.modelfile import ModelFileError
    from eventhorizon.runner import RunInterrupted
    from topology.snapshots import SnapshotError

    parser = _parser()
    args = parser.parse_args(argv)
    try:
        return args.func(args)
    except RunInterrupted as exc:
        print(f"eventhorizon: {exc}", file=sys.stderr)
        return 130
    except KeyboardInterrupt:
        print("eventhorizon: interrupted", file=sys.stderr)
        return 130
    except (ScenarioError, UsageError, ModelFileError, SnapshotError) as exc:
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
