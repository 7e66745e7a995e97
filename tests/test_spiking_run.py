"""Spiking scenarios end to end: schema errors, CLI run/resume/figures, statistics, CUBA against Brian2's figures."""

import doctest
import json

import numpy as np
import pytest

from eventhorizon import cli, runner
from eventhorizon.scenario import ScenarioError, load_scenario, parse_scenario, resolve_scenario
from eventhorizon.spiking import clock, lif, monitors, network, rng, simulation, stats
from eventhorizon.spiking.monitors import SpikeMonitor
from eventhorizon.spiking.network import build_spiking_network, initial_potentials
from eventhorizon.spiking.simulation import Simulation

SMALL_CUBA = ["network.sizes=[160, 40]", "network.probability=0.4", "run.duration_s=0.2",
              "monitors.state_neurons=[0, 199]", "monitors.statistics_from_s=0.05"]


def _doc(name):
    import tomllib

    return tomllib.loads(resolve_scenario(name).read_text(encoding="utf-8"))


@pytest.mark.parametrize("edit, message", [
    (lambda d: d["network"].update(weights_mv=[1.0]), "network.weights_mv: needs one entry per population (2"),
    (lambda d: d["neuron"].pop("tau_e_ms"), "neuron.tau_e_ms: required with synapse = 'cuba'"),
    (lambda d: d["neuron"].update(v_reset_mv=-40.0), "neuron.v_reset_mv: must lie below v_threshold_mv"),
    (lambda d: d["run"].update(duration_s=0.0), "run.duration_s: Input should be greater than 0"),
    (lambda d: d["monitors"].update(state_neurons=[4000]), "monitors.state_neurons: neuron ids must lie in [0, 4000)"),
    (lambda d: d["neuron"].update(tau_m=20.0), "neuron.tau_m: unknown key; did you mean 'tau_m_ms'?"),
    (lambda d: d["monitors"].update(statistics_from_s=2.0), "monitors.statistics_from_s: 2.0 s leaves nothing"),
    (lambda d: d["network"].update(delays_ms=[1.0, -1.0]), "network.delays_ms: delays must be >= 0 ms"),
])
def test_spiking_scenario_errors_name_the_key(edit, message):
    doc = _doc("cuba")
    edit(doc)
    with pytest.raises(ScenarioError) as info:
        parse_scenario(doc, source="cuba.toml")
    assert str(info.value).startswith("cuba.toml: ") and message in str(info.value)


def test_seeds_default_to_run_seed_and_differ_by_seed():
    a = load_scenario(resolve_scenario("cuba"), ["run.seed=3"] + SMALL_CUBA)
    assert a.network.seed == 3
    b = load_scenario(resolve_scenario("cuba"), ["run.seed=4"] + SMALL_CUBA)
    assert not np.array_equal(build_spiking_network(a).graph.indices, build_spiking_network(b).graph.indices)


def test_cli_run_interrupt_resume_and_figures(tmp_path, capsys):
    out = tmp_path / "run"
    sc = load_scenario(resolve_scenario("cuba"), SMALL_CUBA)
    whole = runner.create_run(sc, "cuba", tmp_path / "whole")
    expected = runner.execute(whole)

    run = runner.create_run(sc, "cuba", out)
    from eventhorizon.spiking.runner import execute_spiking

    calls = {"n": 0}

    def stop_after_two(done, total, desc):
        calls["n"] += 1
        if calls["n"] == 2:
            flag["stop"] = "SIGINT"
    flag = {}
    with pytest.raises(runner.RunInterrupted, match="eventhorizon run --resume"):
        execute_spiking(run, progress=stop_after_two, stop=flag)
    status = json.loads((out / "status.json").read_text())
    assert status["status"] == "interrupted" and 0 < status["seconds_done"] < 0.2
    assert cli.main(["run", "--resume", str(out), "--quiet"]) == 0
    resumed = json.loads((out / "metrics.json").read_text())
    for key in ("spikes", "rate_hz", "cv_isi_mean", "counts"):
        assert resumed[key] == expected[key], key
    names = sorted(p.name for p in (out / "figures").iterdir())
    assert names == ["isi_cv.png", "raster.png", "voltage_traces.png"]
    assert "clock engine" in capsys.readouterr().out
    with np.load(out / "monitors.npz") as data:
        assert data["spike_i"].shape[0] == resumed["spikes"]


def test_metrics_count_against_the_dense_step_baseline(tmp_path):
    sc = load_scenario(resolve_scenario("brunel"), ["network.sizes=[160, 40]", "run.duration_s=0.05",
                                                    "monitors.state_neurons=[0]", "monitors.statistics_from_s=0.01"])
    metrics = runner.execute(runner.create_run(sc, "brunel", tmp_path / "b"))
    assert metrics["engine"] == "event"
    dense = metrics["dense_step_baseline"]
    assert dense["neuron_updates"] == 200 * 500 and dense["synaptic_events"] == metrics["counts"]["synaptic_events"]
    assert metrics["counts"]["neuron_updates"] + metrics["counts"]["dropped_refractory"] == (
        metrics["counts"]["external_events"] + metrics["counts"]["synaptic_events"])
    assert metrics["bytes_per_synapse"] < 12


def test_statistics_match_plain_python():
    rng_ = np.random.default_rng(0)
    n, m = 7, 300
    mon = SpikeMonitor(n, 1e-4)
    t = np.sort(rng_.random(m))
    i = rng_.integers(0, n, m)
    mon.append(i, t)
    window = (0.2, 0.9)
    cvs = []
    for k in range(n):
        own = [x for x, j in zip(t, i) if j == k and window[0] <= x < window[1]]
        if len(own) >= 3:
            isi = np.diff(own)
            cvs.append(np.std(isi) / np.mean(isi))
    np.testing.assert_allclose(stats.isi_cvs(mon, *window), cvs, rtol=1e-9)
    inside = sum(window[0] <= x < window[1] for x in t)
    assert stats.mean_rate(mon, *window) == pytest.approx(inside / (n * 0.7))


def test_cuba_statistics_match_brian2():
    """Brian2 2.9 on this model, 5 seeds, 1.5 s, statistics from 0.5 s (benchmarks/brian2_cuba.py):
    rate 5.60 ± 0.16 Hz, mean ISI CV 0.519 ± 0.006. One seed of ours must lie within ±10% of both."""
    sc = load_scenario(resolve_scenario("cuba"), ["run.duration_s=1.5", "run.seed=1"])
    net = build_spiking_network(sc)
    sim = Simulation(net, initial_potentials(sc, net.n), seed=2)
    sim.run(1.5)
    assert stats.mean_rate(sim.spikes, 0.5, 1.5) == pytest.approx(5.60, rel=0.10)
    assert stats.isi_cvs(sim.spikes, 0.5, 1.5).mean() == pytest.approx(0.519, rel=0.10)


@pytest.mark.parametrize("module", [clock, lif, monitors, network, rng, simulation, stats])
def test_docstring_examples(module):
    result = doctest.testmod(module, optionflags=doctest.ELLIPSIS)
    assert result.attempted > 0 and result.failed == 0


def test_flops_on_a_spiking_scenario_says_where_its_counts_are(capsys):
    assert cli.main(["flops", "cuba"]) == 2
    assert "eventhorizon run" in capsys.readouterr().err
