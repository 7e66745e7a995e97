"""Spiking kernels against slow references: clock (CUBA), event (delta synapses), random stream, generator."""

import itertools
import math

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from eventhorizon.spiking import clock, event
from eventhorizon.spiking.lif import LIFParameters, propagator
from eventhorizon.spiking.network import PoissonDrive, SpikingNetwork
from eventhorizon.spiking.rng import new_stream, uniforms
from eventhorizon.spiking.simulation import Simulation
from naive_spiking import clock_reference, event_reference, splitmix_uniforms
from topology.generators import populations
from topology.store import SynapseGraph

CUBA = LIFParameters("cuba", tau_m=20e-3, v_rest=-49e-3, v_threshold=-50e-3, v_reset=-60e-3, refractory=5e-3,
                     tau_e=5e-3, tau_i=10e-3)
DT = 1e-4


def _record(n, steps, ids=(), every=1, capacity=None):
    ids = np.asarray(ids, dtype=np.int64)
    rows = (steps + every - 1) // every
    capacity = capacity or n * steps + n
    return clock.StepRecord(np.zeros(capacity, np.int32), np.zeros(capacity, np.int64), np.zeros(1, np.int64),
                            np.zeros(steps, np.int32), ids, every, np.zeros((rows, 3, ids.size)))


def _random_cuba(draw_seed, n, p, refractory):
    rng = np.random.default_rng(draw_seed)
    ne = max(1, int(0.8 * n))
    sizes = [ne, n - ne] if n - ne else [ne]
    weights = [rng.uniform(0.5, 4.0) * 1e-3, -rng.uniform(2, 12) * 1e-3][:len(sizes)]
    graph = populations(sizes, p, weights, seed=draw_seed)
    receptor = np.repeat(np.arange(len(sizes)), sizes).astype(np.int8)
    delay_steps = rng.integers(0, 4, size=n).astype(np.int32)
    params = LIFParameters("cuba", tau_m=20e-3, v_rest=-49e-3, v_threshold=-50e-3, v_reset=-60e-3,
                           refractory=refractory, tau_e=5e-3, tau_i=10e-3)
    v0 = -60e-3 + rng.random(n) * 10e-3
    return graph, receptor, delay_steps, params, v0


@settings(max_examples=25, deadline=None)
@given(seed=st.integers(0, 2**31), n=st.integers(1, 40), p=st.floats(0.05, 0.6),
       refractory=st.sampled_from([0.0, 3e-4, 5e-3]), steps=st.integers(1, 400))
def test_clock_kernel_matches_the_numpy_reference(seed, n, p, refractory, steps):
    graph, receptor, delay_steps, params, v0 = _random_cuba(seed, n, p, refractory)
    prop = propagator(params, DT)
    state = clock.new_clock_state(v0, int(delay_steps.max()))
    record = _record(n, steps, ids=range(n))
    done, events = clock.advance(graph.arrays(), clock.Projection(receptor, delay_steps), prop, state, record, steps)
    spikes, v, ge, gi, trace = clock_reference(graph.to_scipy().toarray().astype(np.float64), receptor, delay_steps,
                                               prop, v0, steps)
    got = list(zip(record.spike_step[:record.spike_count[0]].tolist(),
                   record.spike_neuron[:record.spike_count[0]].tolist()))
    assert done == steps
    assert got == spikes
    assert events == sum(int(graph.fan_out()[i]) for _, i in spikes)
    np.testing.assert_allclose(state.v, v, rtol=0, atol=1e-12)
    np.testing.assert_allclose(state.ge, ge, rtol=0, atol=1e-12)
    np.testing.assert_allclose(state.gi, gi, rtol=0, atol=1e-12)
    np.testing.assert_allclose(record.trace[:, 0, :], trace, rtol=0, atol=1e-12)
    assert record.population_count[:steps].sum() == len(spikes)


def test_clock_kernel_stops_between_steps_when_the_spike_buffer_could_overflow():
    graph, receptor, delay_steps, params, v0 = _random_cuba(3, 30, 0.2, 5e-3)
    prop, proj = propagator(params, DT), clock.Projection(receptor, delay_steps)
    whole = clock.new_clock_state(v0, 3)
    full = _record(30, 300)
    clock.advance(graph.arrays(), proj, prop, whole, full, 300)
    parts = clock.new_clock_state(v0, 3)
    spikes, steps = [], 0
    while steps < 300:
        small = _record(30, 300 - steps, capacity=40)  # room for one step of 30 neurons at a time
        done, _ = clock.advance(graph.arrays(), proj, prop, parts, small, 300 - steps)
        assert done >= 1
        spikes += list(zip(small.spike_step[:small.spike_count[0]], small.spike_neuron[:small.spike_count[0]]))
        steps += done
    assert spikes == list(zip(full.spike_step[:full.spike_count[0]], full.spike_neuron[:full.spike_count[0]]))
    np.testing.assert_array_equal(parts.v, whole.v)


def test_single_neuron_follows_the_exact_membrane_solution_and_fires_on_the_first_step_above_threshold():
    """No input: v(t) = El + (v0 − El)·e^{−t/τm}; the spike is at the first grid step with v > Vt."""
    v0, steps = -60e-3, 2000
    state = clock.new_clock_state([v0], 0)
    record = _record(1, steps, ids=[0])
    graph = SynapseGraph.from_edges(1, [], [], [])
    clock.advance(graph.arrays(), clock.Projection(np.zeros(1, np.int8), np.zeros(1, np.int32)),
                  propagator(CUBA, DT), state, record, steps)
    t = np.arange(steps) * DT
    exact = CUBA.v_rest + (v0 - CUBA.v_rest) * np.exp(-t / CUBA.tau_m)
    first = int(np.argmax(exact[1:] > CUBA.v_threshold)) + 1  # v after step s is exact[s + 1]
    assert record.spike_step[0] == first - 1
    np.testing.assert_allclose(record.trace[:first, 0, 0], exact[:first], rtol=0, atol=1e-13)
    # refractory: held at v_reset for 50 steps, then the same exact curve from v_reset
    after = record.trace[first: first + 50, 0, 0]
    np.testing.assert_array_equal(after, np.full(50, CUBA.v_reset))


def test_synaptic_input_matches_the_closed_form_over_many_steps():
    """k exact steps with ge(0) = g equal the closed-form solution at k·dt (no integration error)."""
    g, k = 3e-3, 300
    params = LIFParameters("cuba", tau_m=20e-3, v_rest=-70e-3, v_threshold=-50e-3, v_reset=-75e-3, refractory=0.0,
                           tau_e=5e-3, tau_i=10e-3)
    state = clock.new_clock_state([-70e-3], 0)
    state.ge[0] = g
    record = _record(1, k, ids=[0])
    clock.advance(SynapseGraph.from_edges(1, [], [], []).arrays(),
                  clock.Projection(np.zeros(1, np.int8), np.zeros(1, np.int32)), propagator(params, DT), state,
                  record, k)
    t = k * DT
    tm, te = params.tau_m, params.tau_e
    closed = params.v_rest + g * te / (te - tm) * (math.exp(-t / te) - math.exp(-t / tm))
    assert state.v[0] == pytest.approx(closed, abs=1e-14)
    assert state.ge[0] == pytest.approx(g * math.exp(-t / te), rel=1e-12)


def test_propagator_limit_when_synaptic_and_membrane_time_constants_are_equal():
    same = LIFParameters("cuba", 10e-3, -70e-3, -50e-3, -75e-3, 0.0, tau_e=10e-3, tau_i=10e-3 * (1 + 1e-7))
    prop = propagator(same, DT)
    assert prop.gain_e == pytest.approx(prop.gain_i, rel=1e-5)


def _delta_network(seed, n, p, delay_ms, drive_hz):
    rng = np.random.default_rng(seed)
    ne = max(1, int(0.8 * n))
    sizes = [ne, n - ne] if n - ne else [ne]
    graph = populations(sizes, p, [0.8e-3, -4e-3][:len(sizes)], seed=seed, self_loops=False)
    params = LIFParameters("delta", tau_m=20e-3, v_rest=0.0, v_threshold=20e-3, v_reset=10e-3, refractory=2e-3)
    drive = PoissonDrive(synapses=100, rate=drive_hz, weight=0.5e-3, receptor=0) if drive_hz else None
    net = SpikingNetwork(graph=graph, receptor=np.zeros(n, np.int8), delay=np.full(n, delay_ms * 1e-3), params=params,
                         dt=DT, population_names=[f"p{k}" for k in range(len(sizes))], population_sizes=sizes,
                         drive=drive)
    return net, rng.random(n) * 20e-3


@settings(max_examples=20, deadline=None)
@given(seed=st.integers(0, 2**31), n=st.integers(1, 30), p=st.floats(0.0, 0.5),
       delay_ms=st.sampled_from([0.0, 0.1, 1.5]), drive_hz=st.sampled_from([0.0, 50.0, 400.0]),
       duration=st.floats(0.001, 0.05))
def test_event_engine_matches_the_heapq_reference(seed, n, p, delay_ms, drive_hz, duration):
    net, v0 = _delta_network(seed, n, p, delay_ms, drive_hz)
    sim = Simulation(net, v0, seed=seed)
    sim.run(duration)
    ends = sim.t
    out_edges = [list(zip(net.graph.indices[net.graph.indptr[i]:net.graph.indptr[i + 1]].tolist(),
                          net.graph.weights[net.graph.indptr[i]:net.graph.indptr[i + 1]].astype(float).tolist()))
                 for i in range(n)]
    spikes, v, counts = event_reference(out_edges, net.delay, event._model(net), v0, seed, ends)
    assert sim.spikes.i.tolist() == [j for _, j in spikes]
    np.testing.assert_allclose(sim.spikes.t, [t for t, _ in spikes], rtol=0, atol=1e-12)
    np.testing.assert_allclose(sim._state.v, v, rtol=0, atol=1e-12)
    for key, value in counts.items():
        assert sim.counts[key] == value, key


def test_event_engine_chunks_and_queue_growth_do_not_change_the_result():
    net, v0 = _delta_network(7, 60, 0.3, 1.5, 400.0)
    one = Simulation(net, v0, record=[0, 5], seed=1)
    one.run(0.08, chunk=1.0)
    many = Simulation(net, v0, record=[0, 5], seed=1)
    many._state = many._state._replace(heap=event.new_event_heap(1))  # forces the queue to grow mid-run
    many.run(0.08, chunk=0.0037)
    np.testing.assert_array_equal(one.spikes.t, many.spikes.t)
    np.testing.assert_array_equal(one.spikes.i, many.spikes.i)
    np.testing.assert_array_equal(one.state.v, many.state.v)
    np.testing.assert_array_equal(one.rate.counts, many.rate.counts)
    assert one.spikes.num_spikes > 10


def test_event_engine_samples_the_exact_decay_between_events():
    net, _ = _delta_network(0, 1, 0.0, 1.5, 0.0)
    sim = Simulation(net, np.array([15e-3]), record=[0], record_every=10)
    sim.run(0.01)
    t = sim.state.t
    np.testing.assert_allclose(sim.state.v[0], 15e-3 * np.exp(-t / 20e-3), rtol=1e-12)


@pytest.mark.parametrize("engine_net", ["clock", "event"])
def test_resume_from_state_arrays_is_bit_exact(engine_net):
    if engine_net == "clock":
        graph, receptor, delay_steps, params, v0 = _random_cuba(5, 50, 0.2, 5e-3)
        net = SpikingNetwork(graph, receptor, delay_steps * DT, params, DT, ["e", "i"], [40, 10])
    else:
        net, v0 = _delta_network(5, 50, 0.2, 1.5, 400.0)
    whole = Simulation(net, v0, record=[1, 2], record_every=3, seed=9)
    whole.run(0.06)
    first = Simulation(net, v0, record=[1, 2], record_every=3, seed=9)
    first.run(0.0231)
    resumed = Simulation(net, v0, record=[1, 2], record_every=3, seed=9)
    resumed.restore(first.state_arrays())
    resumed.run(0.06 - resumed.t)
    np.testing.assert_array_equal(whole.spikes.t, resumed.spikes.t)
    np.testing.assert_array_equal(whole.spikes.i, resumed.spikes.i)
    np.testing.assert_array_equal(whole.state.samples, resumed.state.samples)
    assert whole.counts == resumed.counts


def test_restore_names_the_array_that_does_not_fit():
    net, v0 = _delta_network(5, 20, 0.2, 1.5, 0.0)
    arrays = Simulation(net, v0).state_arrays()
    arrays["state.v"] = np.zeros(3)
    with pytest.raises(ValueError, match=r"state\.v: expected float64\[20\], got float64\[3\]"):
        Simulation(net, v0).restore(arrays)


def test_splitmix_stream_matches_the_python_reference():
    expected = list(itertools.islice(splitmix_uniforms(12345), 1000))
    np.testing.assert_array_equal(uniforms(new_stream(12345), 1000), expected)
    u = uniforms(new_stream(1), 200_000)
    assert abs(u.mean() - 0.5) < 0.005 and abs(u.var() - 1 / 12) < 0.002


def test_populations_generator_wires_blocks_with_their_probability():
    g = populations([300, 100], [[0.1, 0.0], [0.0, 0.5]], [2.0, -1.0], seed=0)
    dense = g.to_scipy().toarray()
    assert not dense[:300, 300:].any() and not dense[300:, :300].any()
    for block, p, pairs in ((dense[:300, :300], 0.1, 300 * 300), (dense[300:, 300:], 0.5, 100 * 100)):
        count = np.count_nonzero(block)
        assert abs(count - p * pairs) < 5 * math.sqrt(pairs * p * (1 - p))
    assert set(np.unique(dense[:300, :300])) == {0.0, 2.0}
    again = populations([300, 100], [[0.1, 0.0], [0.0, 0.5]], [2.0, -1.0], seed=0)
    np.testing.assert_array_equal(again.indices, g.indices)
    no_loops = populations([50], 1.0, [1.0], seed=0, self_loops=False)
    assert no_loops.nnz == 50 * 49


@pytest.mark.parametrize("kwargs, message", [
    (dict(sizes=[10, 0], probability=0.1, weights=[1, 1]), r"sizes\[1\] must be an int >= 1"),
    (dict(sizes=[10], probability=1.5, weights=[1]), "probability must lie in"),
    (dict(sizes=[10, 5], probability=0.1, weights=[1]), "one weight per population"),
])
def test_populations_generator_rejects_bad_arguments(kwargs, message):
    with pytest.raises(ValueError, match=message):
        populations(seed=0, **kwargs)


def test_clock_advance_checks_shapes_and_dtypes():
    state = clock.new_clock_state(np.zeros(3) - 0.06, 0)
    graph = SynapseGraph.from_edges(3, [], [], [])
    good = clock.Projection(np.zeros(3, np.int8), np.zeros(3, np.int32))
    prop = propagator(CUBA, DT)
    with pytest.raises(ValueError, match=r"projection.receptor must be int8\[3\]"):
        clock.advance(graph.arrays(), good._replace(receptor=np.zeros(3)), prop, state, _record(3, 5), 5)
    with pytest.raises(ValueError, match=r"delay_steps must lie in \[0, 0\]"):
        clock.advance(graph.arrays(), good._replace(delay_steps=np.ones(3, np.int32)), prop, state, _record(3, 5), 5)
    with pytest.raises(ValueError, match="population_count has 5 entries; 6 steps"):
        clock.advance(graph.arrays(), good, prop, state, _record(3, 5), 6)


def test_lif_parameters_name_what_is_wrong():
    with pytest.raises(ValueError, match="tau_e must be a positive time"):
        LIFParameters("cuba", 20e-3, -49e-3, -50e-3, -60e-3, 5e-3, tau_i=1e-3)
    with pytest.raises(ValueError, match="v_reset .* must lie below v_threshold"):
        LIFParameters("delta", 20e-3, 0.0, 10e-3, 20e-3, 0.0)
    with pytest.raises(ValueError, match="the event engine needs v_rest <= v_threshold"):
        net, v0 = _delta_network(0, 3, 0.0, 1.5, 0.0)
        net.params = LIFParameters("delta", 20e-3, 30e-3, 20e-3, 10e-3, 0.0)
        Simulation(net, v0)
