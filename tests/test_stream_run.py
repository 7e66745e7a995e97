"""Streaming scenarios end to end: schema, `eventhorizon run` (chunked, real-time, interrupted and resumed),
and `eventhorizon serve` with a real asyncio client on 127.0.0.1.

Runs use small IDX files written by the test (``fake_fashion``) and a tiny
classifier trained by the scenario itself.
"""

import asyncio
import json
import os
import signal
import subprocess
import sys

import numpy as np
import pytest
from test_training import fake_fashion

from eventhorizon import cli, runner
from eventhorizon.scenario import ScenarioError, load_scenario, parse_scenario, read_document, resolve_scenario
from eventhorizon.serve import StimulusProtocol, make_server
from eventhorizon.stream_runner import build_stream, load_classifier
from eventhorizon.streaming import StreamSettler
from scheduler import runtime as rt


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory):
    return fake_fashion(tmp_path_factory.mktemp("idx"), n_train=200, n_test=30)


def small(data_dir, frames=150, **extra):
    sets = {"input.data_dir": f'"{data_dir}"', "stream.frames": frames, "stream.switch_every": 30,
            "model.hidden": 40, "model.train_samples": 200, "model.epochs": 1, "run.chunk_frames": 16,
            "run.checkpoint_seconds": 0.01, **extra}
    return [f"{k}={v}" for k, v in sets.items()]


def scenario(data_dir, frames=150, **extra):
    return load_scenario(resolve_scenario("moving_digits"), small(data_dir, frames, **extra))


# ------------------------------------------------------------------ schema


def test_bundled_scenario_is_a_stream_scenario():
    sc = load_scenario(resolve_scenario("moving_digits"))
    assert sc.dynamics.mode == "stream" and sc.stream.frames == 6000 and sc.stream.seed == sc.run.seed


@pytest.mark.parametrize("change, message", [
    ({"stream": {"frames": 0}}, "stream.frames"),
    ({"stream": {"frames": 10, "drift_every": 0}}, "stream.drift_every"),
    ({"stream": {"frames": 10, "colour": 1}}, "stream.colour: unknown key"),
    ({"model": {"path": "no/such/model.npz"}}, "model.path: no such model file"),
    ({"input": {"source": "fashion_mnist", "split": "train"}}, "input.split"),
    ({"dynamics": {"mode": "stream", "epsilon": -1.0}}, "dynamics.epsilon"),
])
def test_schema_errors_name_the_key(change, message):
    doc = read_document(resolve_scenario("moving_digits"))
    for section, values in change.items():
        doc[section] = {**doc.get(section, {}), **values} if section != "stream" else values | (
            {} if "frames" in values else {"frames": 10})
    with pytest.raises(ScenarioError, match=message):
        parse_scenario(doc, "moving.toml")


def test_flops_and_realtime_refuse_the_wrong_mode(capsys, tmp_path):
    assert cli.main(["flops", "moving_digits"]) == 2
    assert "streaming run counts its MACs per frame" in capsys.readouterr().err
    out = tmp_path / "run"
    assert cli.main(["run", "quickstart", "--realtime", "--quiet", "--out", str(out)]) == 2
    assert "--realtime paces a stream" in capsys.readouterr().err
    assert not out.exists()  # refused before a run directory is made
    assert cli.main(["run", "moving_digits", "--realtime", "0", "--quiet", "--out", str(out)]) == 2
    assert "--realtime SPEED must be > 0" in capsys.readouterr().err and not out.exists()


# --------------------------------------------------------------------- run


def test_run_counts_and_baselines(tmp_path, data_dir, capsys):
    out = tmp_path / "run"
    assert cli.main(["run", "moving_digits", "--out", str(out), "--quiet",
                     *sum([["--set", s] for s in small(data_dir)], [])]) == 0
    m = json.loads((out / "metrics.json").read_text())
    with np.load(out / "frames.npz") as f:
        ops, dense, hoisted, changed = f["ops"], f["dense_ops"], f["hoisted_ops"], f["changed"]
        chunks = f["chunk"]
    assert m["status"] == "complete" and m["frames_done"] == m["dense_frames_done"] == 150
    assert m["event_synaptic_ops"] == ops.sum() and m["dense_synaptic_ops"] == dense.sum()
    assert m["saving_vs_dense_hoisted"] == pytest.approx(1 - ops.sum() / hoisted.sum())
    assert (ops[changed == 0] == 0).all() and (changed == 0).any()  # unchanged frames cost nothing
    assert chunks.max() <= 16 and chunks.max() > 1  # the runtime took several frames per kernel call
    assert m["runtime"]["loop"] == "uvloop" and m["lag_seconds"] is None
    # the counts are those of a plain StreamSettler over the same frames
    sc = scenario(data_dir)
    model = load_classifier(sc, out)
    frames, labels = build_stream(sc).frames(0, 150)
    res = StreamSettler(model.network, model.config.epsilon, output_ids=model.output_ids).settle_frames(frames)
    np.testing.assert_array_equal(res.column("synaptic_ops"), ops)
    assert m["event_accuracy"] == pytest.approx(np.mean(res.predictions == labels))
    names = sorted(p.name for p in (out / "figures").iterdir())
    assert names == ["accuracy_over_time.png", "macs_per_frame.png", "time_per_frame.png"]
    assert "fewer MACs than plain" in capsys.readouterr().out


def test_interrupted_run_resumes_to_the_same_counts(tmp_path, data_dir):
    from eventhorizon.stream_runner import execute_stream

    sc = scenario(data_dir, frames=120)
    whole = runner.create_run(sc, "moving_digits", tmp_path / "whole")
    runner.execute(whole)
    run = runner.create_run(sc, "moving_digits", tmp_path / "part")
    (tmp_path / "part" / "classifier.npz").write_bytes((tmp_path / "whole" / "classifier.npz").read_bytes())
    flag = {}

    def stop_early(done, total, what):
        if what.startswith("event") and done >= 40:
            flag["stop"] = "SIGINT"
    with pytest.raises(runner.RunInterrupted, match="--resume"):
        execute_stream(run, progress=stop_early, stop=flag)
    status = json.loads((tmp_path / "part" / "status.json").read_text())
    assert status["status"] == "interrupted" and 40 <= status["frames_done"] < 120
    assert cli.main(["run", "--resume", str(tmp_path / "part"), "--quiet"]) == 0
    with np.load(tmp_path / "whole" / "frames.npz") as a, np.load(tmp_path / "part" / "frames.npz") as b:
        for key in ("ops", "input_ops", "updates", "event_pred", "dense_ops", "dense_pred", "looped_pred"):
            np.testing.assert_array_equal(a[key], b[key], err_msg=key)


def test_realtime_run_reports_lag(tmp_path, data_dir):
    out = tmp_path / "rt"
    sets = small(data_dir, frames=60, **{"run.compare_dense": "false", "stream.frame_rate_hz": 200.0})
    assert cli.main(["run", "moving_digits", "--out", str(out), "--quiet", "--realtime", "2",
                     *sum([["--set", s] for s in sets], [])]) == 0
    m = json.loads((out / "metrics.json").read_text())
    lag = m["lag_seconds"]
    assert m["realtime"] and 0 <= lag["p50"] <= lag["p99"] <= lag["max"] < 1.0
    assert m["runtime"]["wall_seconds"] >= 59 / 400  # 60 frames at 2 × 200 fps cannot finish sooner
    assert (out / "figures" / "realtime_lag.png").exists()


# ------------------------------------------------------------------- serve


@pytest.fixture(scope="module")
def classifier(data_dir, tmp_path_factory):
    directory = tmp_path_factory.mktemp("clf")
    return load_classifier(scenario(data_dir), directory)


def _lines(messages):
    return b"".join(json.dumps(m).encode() + b"\n" for m in messages)


def test_serve_answers_rejects_and_matches_offline(tmp_path, classifier, data_dir):
    sc = scenario(data_dir)
    frames = build_stream(sc).frames(0, 12)[0]
    good = [{"t": 0.1 * k, "frame": frames[k].tolist()} for k in range(6)]
    good += [{"t": 0.6 + 0.1 * k, "ids": [int(i)], "values": [0.5]} for k, i in enumerate(range(300, 306))]
    bad = [b"{not json\n", b'{"t": 0.0, "ids": [1], "values": [0.5]}\n', b'{"t": 2.0, "frame": [1, 2]}\n',
           b'{"t": 2.0, "ids": [1], "values": [0.5], "x": 1}\n', b'{"t": 2.0, "ids": [1], "values": [0.5]}' + b" " * 30000
           + b"\n"]

    async def session():
        server = make_server(classifier, 1e-3, sc.serve.model_copy(update={"port": 0, "max_line_bytes": 20000}),
                             tmp_path / "outputs.ndjson", chunk=4)
        host, port = await server.start()
        stop = asyncio.Event()
        serving = asyncio.create_task(server.serve_until(stop))
        reader, writer = await asyncio.open_connection(host, port)
        writer.write(_lines(good) + b"".join(bad) + _lines([{"t": 5.0, "ids": [], "values": []}]))
        await writer.drain()
        answers = [json.loads(await reader.readline()) for _ in range(len(good) + len(bad) + 1)]
        writer.close()
        stop.set()
        await serving
        return answers

    answers = rt.run(session())
    assert [a["seq"] for a in answers] == list(range(len(answers)))
    errors = {a["seq"]: a["error"] for a in answers if "error" in a}
    first_bad = len(good)
    assert sorted(errors) == list(range(first_bad, first_bad + len(bad)))
    assert "JSON" in errors[first_bad] or "json" in errors[first_bad]
    assert "earlier" in errors[first_bad + 1] or "order" in errors[first_bad + 1]
    assert "784 pixel values" in errors[first_bad + 2]
    assert "keys" in errors[first_bad + 3]
    assert "20000" in errors[first_bad + 4] or "long" in errors[first_bad + 4]
    # the answers are what the settler gives offline for the same events
    settler = StreamSettler(classifier.network, 1e-3, output_ids=classifier.output_ids)
    offline = settler.settle_frames(frames[:6])
    for k in range(6):
        assert answers[k]["class"] == offline.predictions[k]
        assert answers[k]["synaptic_ops"] == offline.column("synaptic_ops")[k]
    proto = StimulusProtocol(settler)
    sparse = proto.changes([proto.parse(m)[1] for m in good[6:]])
    after = settler.settle_changes(sparse)
    assert [a["synaptic_ops"] for a in answers[6:12]] == after.column("synaptic_ops").tolist()
    log = [json.loads(line) for line in (tmp_path / "outputs.ndjson").read_text().splitlines()]
    assert len(log) == len(good) + 1


def test_serve_disconnect_loses_nothing_accepted(tmp_path, classifier, data_dir):
    """A client that vanishes without reading: everything the server accepted is still settled and logged, in order."""
    sc = scenario(data_dir)
    n = 300

    async def session():
        server = make_server(classifier, 1e-3, sc.serve.model_copy(update={"port": 0}),
                             tmp_path / "outputs.ndjson", chunk=8)
        host, port = await server.start()
        stop = asyncio.Event()
        serving = asyncio.create_task(server.serve_until(stop))
        reader, writer = await asyncio.open_connection(host, port)
        writer.write(_lines({"t": k * 1e-3, "ids": [k % 784], "values": [1.0]} for k in range(n)))
        await writer.drain()
        await reader.readline()  # the server is answering
        writer.close()  # gone without reading the rest
        seen = -1
        while server.accepted != seen:  # until the server has stopped taking this client's lines
            seen = server.accepted
            await asyncio.sleep(0.2)
        stop.set()
        await serving
        return server.accepted

    accepted = rt.run(session())
    assert accepted >= 1
    log = [json.loads(line) for line in (tmp_path / "outputs.ndjson").read_text().splitlines()]
    assert [round(entry["t"], 6) for entry in log] == [round(k * 1e-3, 6) for k in range(accepted)]


def test_serve_cli_listens_answers_and_stops_on_sigint(tmp_path, data_dir):
    out = tmp_path / "served"
    cmd = [sys.executable, "-m", "eventhorizon", "serve", "moving_digits", "--port", "0", "--out", str(out),
           *sum([["--set", s] for s in small(data_dir)], [])]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env={**os.environ, "PYTHONUNBUFFERED": "1"})
    try:
        banner = proc.stderr.readline()
        assert "listening on 127.0.0.1:" in banner, banner + proc.stderr.read()
        port = int(banner.split("127.0.0.1:")[1].split()[0])

        async def client():
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            writer.write(_lines([{"t": 0.0, "ids": [10, 11], "values": [1.0, 1.0]}]) + b"oops\n")
            await writer.drain()
            answers = [json.loads(await reader.readline()) for _ in range(2)]
            writer.close()
            return answers

        answers = rt.run(client())
        assert "class" in answers[0] and answers[0]["changed_inputs"] == 2 and "error" in answers[1]
        proc.send_signal(signal.SIGINT)
        stdout, stderr = proc.communicate(timeout=60)
    finally:
        proc.kill() if proc.poll() is None else None
    assert proc.returncode == 0, stderr
    assert "served 1 events (1 rejected)" in stdout
    assert len((out / "outputs.ndjson").read_text().splitlines()) == 1


@pytest.mark.parametrize("message, error", [
    ({"ids": [1], "values": [0.5]}, "t: expected a finite number"),
    ({"t": True, "ids": [1], "values": [0.5]}, "t: expected a finite number"),
    ({"t": 0.0, "ids": [1.5], "values": [0.5]}, "ids: expected a list of integer"),
    ({"t": 0.0, "ids": [True], "values": [0.5]}, "ids: expected a list of integer"),
    ({"t": 0.0, "ids": [1], "values": [True]}, "values: expected a list of numbers"),
    ({"t": 0.0, "ids": [1, 2], "values": [0.5]}, "one length, got 2 and 1"),
    ({"t": 0.0, "ids": [-1], "values": [0.5]}, r"\[0, 784\), got -1"),
    ({"t": 0.0, "ids": [1], "values": [float("nan")]}, "values: values must be finite"),
    ({"t": 0.0, "frame": [0.0] * 783}, "784 pixel values, got 783"),
    ({"t": 0.0, "frame": [0.0] * 784, "ids": []}, "keys t and frame only"),
])
def test_serve_parse_rejects_with_a_reason(classifier, message, error):
    proto = StimulusProtocol(StreamSettler(classifier.network, 1e-3, output_ids=classifier.output_ids))
    with pytest.raises(ValueError, match=error):
        proto.parse(message)
