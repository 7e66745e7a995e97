"""Streaming settle (:mod:`eventhorizon.streaming`) and the moving-image stream.

The streaming kernel must give, stimulus for stimulus, exactly what a loop of
:func:`~eventhorizon.settle.settle` calls warm-started from the previous
state gives (which the settle tests check against the numpy reference), and
well-conditioned runs are also checked against :func:`naive.naive_settle`
warm-started the same way.
"""

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from naive import naive_settle
from test_settle import dense, make_case

from eventhorizon.dense import DenseReference
from eventhorizon.moving_digits import MovingDigits, MovingDigitsConfig, _shift, _triangle
from eventhorizon.network import RateNetwork
from eventhorizon.settle import RateState, settle
from eventhorizon.streaming import Changes, StreamSettler, frame_changes
from topology.generators import input_recurrent

SETTINGS = settings(max_examples=60, deadline=None,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
MARGIN = 1e-5


def random_frames(rng, n_frames, n_inputs, p_change):
    """Frames where each input changes with probability ``p_change`` per frame (often not at all)."""
    frames = np.empty((n_frames, n_inputs), np.float32)
    current = rng.uniform(-1, 1, n_inputs).astype(np.float32)
    for k in range(n_frames):
        change = rng.random(n_inputs) < p_change
        current = np.where(change, rng.uniform(-1, 1, n_inputs), current).astype(np.float32)
        frames[k] = current
    return frames


def settle_chain(net, frames, eps, scheduler="tournament"):
    """The slow way: one settle() per frame, warm-started from the previous result."""
    state, results = None, []
    for frame in frames:
        res = settle(net, frame, eps=eps, state=state, scheduler=scheduler, on_budget="return")
        results.append(res)
        state = res.state
    return results


@st.composite
def streams(draw):
    n = draw(st.integers(2, 40))
    case = make_case(seed=draw(st.integers(0, 2**32 - 1)), n=n, density=draw(st.floats(0.05, 1.0)),
                     n_inputs=draw(st.integers(1, max(1, n // 2))), act=draw(st.sampled_from(
                         ["tanh", "hard_sigmoid", "clipped_relu"])), contraction=draw(st.floats(0.0, 0.9)),
                     eps=draw(st.floats(1e-4, 1e-1)), block=draw(st.booleans()))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    frames = random_frames(rng, draw(st.integers(1, 12)), case.net.n_inputs, draw(st.sampled_from([0.0, 0.2, 1.0])))
    return case.net, frames, case.eps


@SETTINGS
@given(stream=streams(), scheduler=st.sampled_from(["tournament", "heap"]), chunk=st.integers(1, 5))
def test_stream_equals_settle_chain(stream, scheduler, chunk):
    net, frames, eps = stream
    chain = settle_chain(net, frames, eps, scheduler)
    settler = StreamSettler(net, eps, output_ids=net.free_ids, scheduler=scheduler)
    parts = [settler.settle_frames(frames[a:a + chunk]) for a in range(0, len(frames), chunk)]
    stats = np.concatenate([p.stats for p in parts])
    outputs = np.concatenate([p.outputs for p in parts])
    for k, res in enumerate(chain):
        assert stats[k].tolist() == list(res.stats.as_dict().values())
        np.testing.assert_array_equal(outputs[k], res.x[net.free_ids])
    np.testing.assert_array_equal(settler.state.x, chain[-1].state.x)
    np.testing.assert_array_equal(settler.state.u, chain[-1].state.u)
    np.testing.assert_array_equal(settler.broadcast_counts, np.sum([r.broadcast_counts for r in chain], axis=0))


@SETTINGS
@given(stream=streams())
def test_stream_matches_naive_reference(stream):
    """Each frame against the numpy reference warm-started from the reference's previous state."""
    net, frames, eps = stream
    A, mask = dense(net.graph)
    res = StreamSettler(net, eps, output_ids=np.arange(net.n)).settle_frames(frames)
    state = RateState.cold(net)
    for k, frame in enumerate(frames):
        nv = naive_settle(A, net.bias, net.input_ids, frame, net.model.name, net.model.lipschitz, eps,
                          1000 * net.n, edge_mask=mask, state=(state.u, state.x))
        if nv.min_margin <= MARGIN:
            return  # an ulp may flip a decision from here on; the chain test covers exactness
        assert res.stats[k].tolist() == list(nv.stats.values())
        np.testing.assert_allclose(res.outputs[k], nv.x, rtol=0, atol=1e-6)
        state = RateState(nv.u, nv.x)


def test_unchanged_frames_cost_nothing():
    net = RateNetwork(input_recurrent(4, 6, 0.5, seed=1), "tanh", inputs=range(4))
    frame = np.array([0.3, -0.2, 0.9, 0.0], np.float32)
    res = StreamSettler(net, 1e-4).settle_frames(np.stack([frame] * 5))
    assert res.column("synaptic_ops")[0] > 0
    assert res.stats[1:].sum() == 0
    assert res.changed_inputs.tolist() == [3, 0, 0, 0, 0]  # the zero input never changed from rest
    assert res.settled.all()


def test_budget_carries_over_to_the_next_frame():
    """A frame that runs out of budget is not settled; an unchanged next frame still continues settling."""
    net = RateNetwork(input_recurrent(3, 30, 0.8, seed=2), "tanh", inputs=range(3))
    frame = np.ones(3, np.float32)
    settler = StreamSettler(net, 1e-6, max_updates=20)
    first = settler.settle_frames(frame[None])
    assert not first.settled[0]
    again = settler.settle_frames(np.stack([frame] * 200))
    assert again.column("neuron_updates")[0] > 0  # no changed input, but work was pending
    assert again.settled[-1]
    full = settle(net, frame, eps=1e-6)
    np.testing.assert_allclose(settler.state.x, full.x, atol=2 * np.sqrt(net.n) * 1e-6 / (1 - net.contraction))


def test_settle_changes_equals_settle_frames():
    net = RateNetwork(input_recurrent(5, 8, 0.6, seed=3), "hard_sigmoid", inputs=range(5))
    rng = np.random.default_rng(0)
    frames = random_frames(rng, 10, 5, 0.3)
    by_frames = StreamSettler(net, 1e-4, output_ids=[6, 9]).settle_frames(frames)
    changes = frame_changes(frames, np.zeros(5, np.float32), net.input_ids)
    by_changes = StreamSettler(net, 1e-4, output_ids=[6, 9]).settle_changes(changes)
    np.testing.assert_array_equal(by_frames.stats, by_changes.stats)
    np.testing.assert_array_equal(by_frames.outputs, by_changes.outputs)


@given(frames=st.integers(1, 8).flatmap(lambda k: st.lists(st.lists(st.sampled_from([0.0, 0.5, 1.0]), min_size=3,
                                                                     max_size=3), min_size=k, max_size=k)))
def test_frame_changes_against_loop(frames):
    frames = np.array(frames, np.float32)
    ids = np.array([7, 3, 9], np.int32)
    ch = frame_changes(frames, np.zeros(3, np.float32), ids)
    previous = np.zeros(3, np.float32)
    for k, frame in enumerate(frames):
        expect = [(int(ids[i]), float(frame[i])) for i in range(3) if frame[i] != previous[i]]
        got = list(zip(ch.ids[ch.ptr[k]:ch.ptr[k + 1]].tolist(), ch.values[ch.ptr[k]:ch.ptr[k + 1]].tolist()))
        assert got == expect
        previous = frame


@pytest.fixture
def net3():
    return RateNetwork(input_recurrent(3, 4, 0.5, seed=0), "tanh", inputs=range(3))


@pytest.mark.parametrize("frames, match", [
    (np.zeros((2, 4)), r"frames must have shape \(k, 3\)"),
    (np.zeros(3), r"frames must have shape"),
    (np.array([[0, np.nan, 0]]), "finite"),
])
def test_bad_frames(net3, frames, match):
    with pytest.raises(ValueError, match=match):
        StreamSettler(net3, 1e-3).settle_frames(frames)


@pytest.mark.parametrize("changes, match", [
    (Changes([0, 1], [5], [0.5]), "input neurons"),
    (Changes([0, 2], [0], [0.5]), "must rise from 0"),
    (Changes([0, 1], [0], [np.inf]), "finite"),
    (Changes([0, 1], [0, 1], [0.5]), "must rise from 0 to len"),
])
def test_bad_changes(net3, changes, match):
    with pytest.raises(ValueError, match=match):
        StreamSettler(net3, 1e-3).settle_changes(changes)


def test_bad_settler_arguments(net3):
    with pytest.raises(ValueError, match="eps"):
        StreamSettler(net3, 0.0)
    with pytest.raises(ValueError, match=r"output_ids must lie in \[0, 7\)"):
        StreamSettler(net3, 1e-3, output_ids=[7])
    with pytest.raises(TypeError, match="RateNetwork"):
        StreamSettler("net", 1e-3)


# ------------------------------------------------------------ moving digits


def test_triangle_wave():
    assert [int(_triangle(np.int64(s), 2)) for s in range(9)] == [0, 1, 2, 1, 0, -1, -2, -1, 0]
    assert int(_triangle(np.int64(5), 0)) == 0


@given(dy=st.integers(-3, 3), dx=st.integers(-3, 3))
def test_shift_matches_padded_roll(dy, dx):
    img = np.arange(1, 26, dtype=np.float32).reshape(5, 5)
    padded = np.pad(img, 3)
    expect = np.roll(padded, (dy, dx), axis=(0, 1))[3:8, 3:8]
    np.testing.assert_array_equal(_shift(img, dy, dx), expect)


def small_stream(frames=40, **kw):
    rng = np.random.default_rng(0)
    images = rng.random((5, 8, 8)).astype(np.float32)
    config = MovingDigitsConfig(**{"switch_every": 10, "drift_every": 2, "drift_pixels": 1, "occluder_width": 2,
                                   "occluder_every": 1, **kw})
    return MovingDigits(images, np.arange(5), frames, config, seed=3)


def test_stream_is_a_function_of_the_frame_index():
    stream = small_stream()
    whole, labels = stream.frames(0, 40)
    parts = [stream.frames(a, min(a + 7, 40)) for a in range(0, 40, 7)]
    np.testing.assert_array_equal(np.concatenate([p[0] for p in parts]), whole)
    np.testing.assert_array_equal(np.concatenate([p[1] for p in parts]), labels)
    np.testing.assert_array_equal(small_stream().frames(0, 40)[0], whole)


def test_stream_segments_and_motion():
    stream = small_stream(occluder_width=0)
    frames, labels = stream.frames(0, 40)
    assert stream.cuts().tolist() == [0, 10, 20, 30]
    assert all(len(set(labels[a:a + 10].tolist())) == 1 for a in range(0, 40, 10))
    changed = (np.diff(frames, axis=0) != 0).any(axis=1)
    # within a segment the image moves only every drift_every frames
    assert not changed[0] and changed[1] and not changed[2]
    static = small_stream(drift_pixels=0, occluder_width=0).frames(0, 10)[0]
    assert (static == static[0]).all()


def test_occluder_slides_across():
    stream = small_stream(drift_pixels=0, occluder_width=2, occluder_value=1.0)
    frames = stream.frames(0, 10)[0].reshape(10, 8, 8)
    img = stream.images[stream.order[0]]
    assert np.array_equal(frames[0], img)  # the bar starts just left of the frame
    for k in (1, 3, 9):  # its left edge is at column k − width, one column further every frame
        covered = np.zeros(8, bool)
        covered[max(k - 2, 0):k] = True
        assert (frames[k][:, covered] == 1.0).all()
        np.testing.assert_array_equal(frames[k][:, ~covered], img[:, ~covered])


@pytest.mark.parametrize("kw, match", [({"switch_every": 0}, "switch_every"), ({"drift_pixels": -1}, "drift_pixels"),
                                       ({"occluder_value": 2.0}, "occluder_value")])
def test_bad_stream_config(kw, match):
    with pytest.raises(ValueError, match=match):
        MovingDigitsConfig(**kw)


def test_bad_stream_arguments():
    with pytest.raises(ValueError, match="images must have shape"):
        MovingDigits(np.zeros((4, 4)), np.zeros(4), 3)
    with pytest.raises(ValueError, match="frame range"):
        small_stream().frames(0, 41)


def test_looped_batch_equals_looped_per_row():
    net = RateNetwork(input_recurrent(4, 9, 0.7, seed=5), "tanh", inputs=range(4))
    ref = DenseReference(net)
    X = np.random.default_rng(1).uniform(-1, 1, (6, 4)).astype(np.float32)
    x, ops = ref.looped_batch(X, 30)
    for row, inputs in enumerate(X):
        one = ref.looped(inputs, 30)
        np.testing.assert_allclose(x[row], one.x[net.free_ids], atol=1e-6)
        assert ops == one.synaptic_ops
    with pytest.raises(ValueError, match="hoist_inputs=False"):
        DenseReference(net, hoist_inputs=True).looped_batch(X)


def test_snapshot_restore_continues_exactly():
    net = RateNetwork(input_recurrent(5, 12, 0.6, seed=7), "hard_sigmoid", inputs=range(5))
    frames = random_frames(np.random.default_rng(2), 20, 5, 0.4)
    whole = StreamSettler(net, 1e-4, output_ids=range(5, 17)).settle_frames(frames)
    first = StreamSettler(net, 1e-4, output_ids=range(5, 17))
    first.settle_frames(frames[:9])
    second = StreamSettler(net, 1e-4, output_ids=range(5, 17))
    second.restore(first.snapshot())
    rest = second.settle_frames(frames[9:])
    np.testing.assert_array_equal(rest.stats, whole.stats[9:])
    np.testing.assert_array_equal(rest.outputs, whole.outputs[9:])
    with pytest.raises(ValueError, match="counts must have shape"):
        second.restore({**first.snapshot(), "counts": np.zeros(3)})
