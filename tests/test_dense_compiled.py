"""CompiledDense (Numba) against the numpy DenseReference it speeds up, on random networks and streams."""

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from test_settle import cases, make_case

from eventhorizon.dense import DenseReference
from eventhorizon.dense_compiled import CompiledDense

SETTINGS = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def close_to_reference(got_x, got_sweeps, ref, eps):
    """Float32 sums in another order may move the last sweep across ε: one sweep either way is allowed, and
    the states then differ by at most about that sweep's change."""
    assert abs(got_sweeps - ref.sweeps) <= 1
    np.testing.assert_allclose(got_x, ref.x, atol=1e-5 if got_sweeps == ref.sweeps else 2 * eps + 1e-5)


@SETTINGS
@given(case=cases(), warm=st.booleans(), seed=st.integers(0, 2**32 - 1))
def test_one_frame_matches_the_numpy_reference(case, warm, seed):
    net = case.net
    state = np.random.default_rng(seed).uniform(-1, 1, net.n).astype(np.float32) if warm else None
    ref = DenseReference(net, hoist_inputs=True).settle(case.inputs, case.eps, state_x=state)
    fast = CompiledDense(net)
    got = fast.settle(case.inputs, case.eps, state_x=state)
    close_to_reference(got.x, got.sweeps, ref, case.eps)
    assert got.converged == ref.converged
    assert got.synaptic_ops == fast.input_ops + got.sweeps * fast.ops_per_sweep
    assert (fast.input_ops, fast.ops_per_sweep) == (ref.synaptic_ops - ref.sweeps * fast.ops_per_sweep,
                                                    DenseReference(net, hoist_inputs=True).ops_per_sweep)
    np.testing.assert_array_equal(got.x[net.input_ids], np.asarray(case.inputs, np.float32))


@SETTINGS
@given(case=cases(max_n=40), seed=st.integers(0, 2**32 - 1), n_frames=st.integers(1, 6))
def test_a_chunk_of_frames_is_the_warm_started_chain(case, seed, n_frames):
    """settle_frames = one DenseReference.settle per frame, each from the previous state (the stream baseline)."""
    net = case.net
    rng = np.random.default_rng(seed)
    frames = rng.uniform(-1, 1, (n_frames, net.n_inputs)).astype(np.float32)
    for k in range(1, n_frames):  # most inputs stay as they were, as in a video
        keep = rng.random(net.n_inputs) < 0.7
        frames[k, keep] = frames[k - 1, keep]
    ref, state, sweeps = DenseReference(net, hoist_inputs=True), None, []
    for frame in frames:
        res = ref.settle(frame, case.eps, state_x=state)
        state = res.x
        sweeps.append(res.sweeps)
    fast = CompiledDense(net)
    outputs = net.free_ids[: min(3, net.free_ids.size)]
    got = fast.settle_frames(frames, case.eps, output_ids=outputs)
    assert got.sweeps.shape == (n_frames,) and got.outputs.shape == (n_frames, outputs.size)
    np.testing.assert_array_equal(got.synaptic_ops, fast.input_ops + got.sweeps * fast.ops_per_sweep)
    if got.sweeps.tolist() == sweeps:
        np.testing.assert_allclose(got.x, state, atol=1e-5)
    else:  # both are ε-fixed points of a contraction (L·‖W‖ <= 0.9): each within ε/(1 − 0.9) of the true one
        assert np.abs(got.sweeps - np.array(sweeps)).max() <= 1
        np.testing.assert_allclose(got.x, state, atol=20 * case.eps + 1e-5)
    np.testing.assert_allclose(got.outputs[-1], got.x[outputs])
    np.testing.assert_array_equal(got.x[net.input_ids], frames[-1])


def test_budget_and_bad_arguments():
    case = make_case(seed=3, n=30, density=0.5, n_inputs=5, act="tanh", contraction=0.9, eps=1e-6)
    fast = CompiledDense(case.net)
    res = fast.settle(case.inputs, 1e-7, max_sweeps=2)
    assert res.sweeps == 2 and not res.converged
    with pytest.raises(ValueError, match="eps"):
        fast.settle(case.inputs, -1.0)
    with pytest.raises(ValueError, match="state_x must have shape"):
        fast.settle(case.inputs, 1e-3, state_x=np.zeros(3))
    with pytest.raises(ValueError, match=r"frames must have shape \(k, 5\)"):
        fast.settle_frames(np.zeros((2, 4)), 1e-3)
    with pytest.raises(ValueError, match="finite"):
        fast.settle_frames(np.full((1, 5), np.nan), 1e-3)
    with pytest.raises(ValueError, match="output_ids must be ids of free neurons"):
        fast.settle_frames(np.zeros((1, 5)), 1e-3, output_ids=case.net.input_ids[:1])
    with pytest.raises(TypeError, match="RateNetwork"):
        CompiledDense("not a network")
