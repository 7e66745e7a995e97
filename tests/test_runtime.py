"""Tests for :mod:`scheduler.runtime`: sources, sinks, and the streaming runtime.

Every test drives a real event loop through :func:`scheduler.runtime.run`
(uvloop), with a timeout so that a deadlock fails instead of hanging.
"""

import asyncio
import doctest
import itertools
import json
import re
import threading
import time

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import scheduler.runtime as runtime_module
from scheduler.runtime import (
    WORKER_THREAD_PREFIX,
    CallbackSink,
    Delivery,
    ListSink,
    NDJSONFileSink,
    OutOfOrderError,
    QueueSource,
    RunReport,
    Runtime,
    Stimulus,
    iterate,
    loop_name,
    merge,
    paced,
    poisson_spikes,
    replay_ndjson,
    run,
)

TIMEOUT = 10.0  # seconds; every scenario is far quicker


def run_scenario(coro):
    """Run `coro` on the runtime's loop, failing after TIMEOUT seconds."""

    async def bounded():
        async with asyncio.timeout(TIMEOUT):
            return await coro

    return run(bounded())


async def collect(source):
    return [s async for s in source]


def collect_all(source):
    return run_scenario(collect(source))


def echo(chunk):
    return [s.data for s in chunk]


def worker_threads():
    return [t for t in threading.enumerate() if t.name.startswith(WORKER_THREAD_PREFIX)]


def assert_nothing_left_running():
    assert asyncio.all_tasks() == {asyncio.current_task()}
    assert worker_threads() == []


class SlowSink(ListSink):
    """Takes `delay` seconds per delivery (an asyncio.sleep), then records it."""

    def __init__(self, delay):
        super().__init__()
        self.delay = delay

    async def send(self, delivery):
        await asyncio.sleep(self.delay)
        self.items.append(delivery)


class ExplodingSink(ListSink):
    """Raises on delivery number `at` (0-based), after `delay` seconds."""

    def __init__(self, at, delay=0.0):
        super().__init__()
        self.at = at
        self.delay = delay

    async def send(self, delivery):
        if len(self.items) == self.at:
            await asyncio.sleep(self.delay)
            raise RuntimeError("boom")
        self.items.append(delivery)


# -- event loop ---------------------------------------------------------------


def test_loop_is_uvloop():
    import uvloop

    assert loop_name() == "uvloop"

    async def loop_type():
        return type(asyncio.get_running_loop())

    assert run(loop_type()) is uvloop.Loop


def test_doctests():
    result = doctest.testmod(runtime_module, optionflags=doctest.ELLIPSIS)
    assert result.attempted > 0
    assert result.failed == 0


# -- Stimulus -------------------------------------------------------------------


def test_stimulus_converts_and_checks_time():
    s = Stimulus(np.float32(0.5), "x")
    assert type(s.time) is float and s.time == 0.5
    assert Stimulus(3, None).time == 3.0
    with pytest.raises(TypeError, match="Stimulus.time must be a real number, got str"):
        Stimulus("1", None)
    with pytest.raises(ValueError, match="Stimulus.time must be a finite number, got inf"):
        Stimulus(float("inf"), None)
    with pytest.raises(TypeError, match="Stimulus.due must be a real number"):
        Stimulus(0.0, None, due="soon")


# -- iterate --------------------------------------------------------------------


def test_iterate_with_period():
    got = collect_all(iterate(["a", "b", "c"], period=0.5, start=2.0))
    assert [(s.time, s.data, s.origin, s.due) for s in got] == [
        (2.0, "a", None, None),
        (2.5, "b", None, None),
        (3.0, "c", None, None),
    ]


def test_iterate_with_period_takes_an_endless_iterator():
    source = iterate(itertools.count(), period=0.1)

    async def first_three():
        return [await anext(source) for _ in range(3)]

    got = run_scenario(first_three())
    assert [s.data for s in got] == [0, 1, 2]
    assert [s.time for s in got] == pytest.approx([0.0, 0.1, 0.2])


def test_iterate_with_times():
    got = collect_all(iterate(range(3), times=[0.0, 0.0, 1.5]))
    assert [(s.time, s.data) for s in got] == [(0.0, 0), (0.0, 1), (1.5, 2)]


@pytest.mark.parametrize(
    "kwargs, error, message",
    [
        ({}, TypeError, "exactly one of period= and times="),
        ({"period": 1.0, "times": [0.0]}, TypeError, "exactly one of period= and times="),
        ({"period": 0.0}, ValueError, "period must be > 0 seconds, got 0.0"),
        ({"period": -1}, ValueError, "period must be > 0 seconds, got -1.0"),
        ({"period": float("nan")}, ValueError, "period must be a finite number, got nan"),
        ({"period": "1"}, TypeError, "period must be a real number, got str"),
        ({"period": 1.0, "start": float("inf")}, ValueError, "start must be a finite number"),
        ({"times": [0.0, 1.0], "start": 1.0}, TypeError, "start= only applies with period="),
        ({"times": [0.0, 2.0, 1.0]}, ValueError, r"non-decreasing: times\[2\] = 1.0 < times\[1\] = 2.0"),
        ({"times": [0.0, float("nan"), 1.0]}, ValueError, "times must be finite numbers, got nan"),
        ({"times": [[0.0, 1.0, 2.0]]}, ValueError, r"times must be 1-D, got shape \(1, 3\)"),
        ({"times": [0.0, 1.0]}, ValueError, "times has 2 entries but payloads has 3"),
    ],
)
def test_iterate_argument_errors(kwargs, error, message):
    with pytest.raises(error, match=message):
        iterate([1, 2, 3], **kwargs)


def test_iterate_rejects_non_iterable_payloads():
    with pytest.raises(TypeError):
        iterate(42, period=1.0)


def test_iterate_with_times_checks_an_iterator_of_payloads_at_its_end():
    source = iterate(iter([1, 2, 3]), times=[0.0, 1.0])
    with pytest.raises(ValueError):
        collect_all(source)


# -- poisson_spikes -----------------------------------------------------------------


def test_poisson_spikes_statistics():
    rate, n_targets, duration = 50.0, 100, 2.0
    spikes = collect_all(poisson_spikes(rate, n_targets, duration, seed=7))
    times = np.array([s.time for s in spikes])
    targets = np.array([s.data for s in spikes])
    expected = rate * n_targets * duration  # 10 000, Poisson: sd 100
    assert abs(len(spikes) - expected) < 5 * np.sqrt(expected)
    assert np.all(np.diff(times) > 0)  # strictly increasing
    assert times[0] > 0 and times[-1] < duration
    assert targets.min() >= 0 and targets.max() < n_targets
    per_target = np.bincount(targets, minlength=n_targets)
    mean = expected / n_targets  # 100 per target, sd 10
    assert np.all(np.abs(per_target - mean) < 6 * np.sqrt(mean))
    gaps = np.diff(times)
    assert gaps.mean() == pytest.approx(1 / (rate * n_targets), rel=0.05)
    assert all(isinstance(s.data, int) for s in spikes[:10])


def test_poisson_spikes_reproducible_per_seed():
    def stream(seed):
        return [(s.time, s.data) for s in collect_all(poisson_spikes(10.0, 20, 1.0, seed=seed))]

    assert stream(3) == stream(3)
    assert stream(3) != stream(4)


def test_poisson_spikes_edge_cases_and_errors():
    assert collect_all(poisson_spikes(0.0, 10, 5.0, seed=0)) == []
    assert collect_all(poisson_spikes(10.0, 10, 0.0, seed=0)) == []
    with pytest.raises(ValueError, match="rate_hz must be >= 0, got -1.0"):
        poisson_spikes(-1.0, 10, 1.0, seed=0)
    with pytest.raises(ValueError, match="n_targets must be >= 1, got 0"):
        poisson_spikes(1.0, 0, 1.0, seed=0)
    with pytest.raises(TypeError, match="n_targets must be a non-negative int, got float"):
        poisson_spikes(1.0, 2.5, 1.0, seed=0)
    with pytest.raises(ValueError, match="duration must be a finite number, got inf"):
        poisson_spikes(1.0, 1, float("inf"), seed=0)


# -- merge ------------------------------------------------------------------------


def test_merge_orders_by_time_then_source_index_then_arrival():
    a = iterate(["a0", "a1", "a2"], times=[0.0, 1.0, 1.0])
    b = iterate(["b0", "b1"], times=[1.0, 1.0])
    c = iterate(["c0"], times=[0.5])
    got = collect_all(merge(a, b, c))
    assert [s.data for s in got] == ["a0", "c0", "a1", "a2", "b0", "b1"]


def test_merge_of_nothing_and_of_empty_sources():
    assert collect_all(merge()) == []
    assert [s.data for s in collect_all(merge(iterate([], period=1.0), iterate("x", period=1.0)))] == ["x"]


def test_merge_out_of_order_names_the_source_and_both_times():
    async def backwards():
        for t in (1.0, 3.0, 2.0):
            yield Stimulus(t, None)

    good = iterate("ab", times=[0.0, 5.0])
    bad = backwards()
    message = r"merge\(\) source 1 went back in time: a stimulus at 2.0 came after one at 3.0"
    with pytest.raises(OutOfOrderError, match=message):
        collect_all(merge(good, bad))


def test_merge_rejects_non_async_sources():
    with pytest.raises(TypeError, match=r"merge\(\) source 1 must be an async iterable of Stimulus, got list"):
        merge(iterate("a", period=1.0), [Stimulus(0.0, None)])


def test_merge_closes_its_sources_when_closed_early():
    closed = []

    async def source(name):
        try:
            for t in range(100):
                yield Stimulus(t, name)
        finally:
            closed.append(name)

    async def take_two():
        merged = merge(source("a"), source("b"))
        got = [await anext(merged), await anext(merged)]
        await merged.aclose()
        return got

    got = run_scenario(take_two())
    assert [s.data for s in got] == ["a", "b"]
    assert sorted(closed) == ["a", "b"]


# -- replay_ndjson ------------------------------------------------------------------


def parse_event(obj):
    return Stimulus(obj["t"], obj["x"])


def test_replay_ndjson(tmp_path):
    path = tmp_path / "in.ndjson"
    path.write_text('{"t": 0.0, "x": "a"}\n\n   \n{"t": 0.5, "x": [1, 2]}\n')
    got = collect_all(replay_ndjson(path, parse_event))
    assert [(s.time, s.data) for s in got] == [(0.0, "a"), (0.5, [1, 2])]


def test_replay_ndjson_bad_line_names_file_and_line(tmp_path):
    path = tmp_path / "in.ndjson"
    path.write_text('{"t": 0.0, "x": 1}\n\n{"t": 1.0, "x": \n')
    with pytest.raises(ValueError, match=rf"{re.escape(str(path))}, line 3: invalid JSON"):
        collect_all(replay_ndjson(path, parse_event))


def test_replay_ndjson_parse_errors_name_file_and_line(tmp_path):
    path = tmp_path / "in.ndjson"
    path.write_text('{"t": 0.0, "x": 1}\n{"t": "nan", "x": 1}\n')

    def strict(obj):
        if not isinstance(obj["t"], float):
            raise ValueError("t must be a number")
        return Stimulus(obj["t"], obj["x"])

    with pytest.raises(ValueError, match=rf"{re.escape(str(path))}, line 2: t must be a number"):
        collect_all(replay_ndjson(path, strict))
    with pytest.raises(TypeError, match=rf"{re.escape(str(path))}, line 1: parse\(\) must return a Stimulus, got dict"):
        collect_all(replay_ndjson(path, lambda obj: obj))
    with pytest.raises(TypeError, match="parse must be callable, got NoneType"):
        replay_ndjson(path, None)


# -- QueueSource ---------------------------------------------------------------------


def test_queue_source_ends_after_close_once_drained():
    async def scenario():
        source = QueueSource(maxsize=1)

        async def feed():
            for t in range(5):
                await source.put(Stimulus(t, t))
            source.close()

        feeding = asyncio.create_task(feed())
        got = [s.data async for s in source]
        await feeding
        with pytest.raises(RuntimeError, match=r"put\(\) after close\(\)"):
            await source.put(Stimulus(9, 9))
        return got

    assert run_scenario(scenario()) == [0, 1, 2, 3, 4]


def test_queue_source_keeps_a_put_that_was_waiting_when_closed():
    async def scenario():
        source = QueueSource(maxsize=1)
        await source.put(Stimulus(0, "first"))
        waiting = asyncio.create_task(source.put(Stimulus(1, "waiting")))
        await asyncio.sleep(0)
        source.close()
        got = [s.data async for s in source]
        await waiting
        return got

    assert run_scenario(scenario()) == ["first", "waiting"]


def test_queue_source_argument_errors():
    with pytest.raises(ValueError, match="maxsize must be >= 1"):
        QueueSource(maxsize=0)

    async def put_wrong():
        await QueueSource().put((0.0, "x"))

    with pytest.raises(TypeError, match=r"QueueSource.put\(\) takes Stimulus objects, got tuple"):
        run_scenario(put_wrong())


# -- paced ---------------------------------------------------------------------------


def test_paced_runs_in_real_time_with_small_lags():
    sink = ListSink()
    runtime = Runtime(echo, [sink])
    started = time.perf_counter()
    report = run_scenario(runtime.run(paced(iterate(range(21), period=0.01), speed=1.0)))
    elapsed = time.perf_counter() - started
    assert elapsed >= 0.2 - 1e-3  # the loop clock has 1 ms resolution
    assert [d.stimulus.data for d in sink.items] == list(range(21))
    assert all(d.stimulus.due is not None for d in sink.items)
    dues = np.array([d.stimulus.due for d in sink.items])
    assert np.diff(dues) == pytest.approx(np.full(20, 0.01))
    assert report.lags.dtype == np.float64 and report.lags.shape == (21,)
    assert report.lags.min() >= 0.0
    assert report.lags.max() < 0.1
    assert [d.lag for d in sink.items] == report.lags.tolist()
    percentiles = report.lag_percentiles()
    assert set(percentiles) == {"p50", "p90", "p99", "max"}
    assert 0.0 <= percentiles["p50"] <= percentiles["p90"] <= percentiles["p99"] <= percentiles["max"]


def test_paced_speed():
    started = time.perf_counter()
    got = collect_all(paced(iterate(range(3), period=0.1), speed=4.0))
    elapsed = time.perf_counter() - started
    assert 0.05 - 1e-3 <= elapsed < 0.5
    assert got[2].due - got[0].due == pytest.approx(0.05)
    with pytest.raises(ValueError, match="speed must be > 0, got 0.0"):
        paced(iterate([], period=1.0), speed=0)


def test_unpaced_runs_report_no_lags():
    sink = ListSink()
    report = run_scenario(Runtime(echo, [sink]).run(iterate(range(5), period=1.0)))
    assert report.lags.size == 0 and report.lag_percentiles() == {}
    assert all(d.lag is None for d in sink.items)


# -- Runtime: delivery, chunking, backpressure ---------------------------------------------


def test_every_stimulus_delivered_once_in_order_to_every_sink():
    n = 1000
    monitor = ListSink()
    seen_sync, seen_async = [], []

    async def record_async(delivery):
        await asyncio.sleep(0)
        seen_async.append(delivery)

    sinks = [monitor, CallbackSink(seen_sync.append), CallbackSink(record_async)]
    runtime = Runtime(lambda chunk: [s.data * 3 for s in chunk], sinks, max_chunk=32, sink_queue_size=8)
    report = run_scenario(runtime.run(iterate(range(n), period=1e-3)))
    for items in (monitor.items, seen_sync, seen_async):
        assert [d.stimulus.data for d in items] == list(range(n))
        assert [d.result for d in items] == [3 * k for k in range(n)]
        assert all(isinstance(d, Delivery) and d.lag is None for d in items)
    assert monitor.items == seen_sync == seen_async
    assert monitor.closed
    assert (report.stimuli, report.deliveries, report.sink_errors) == (n, 3 * n, [])
    assert report.wall_seconds > 0


def test_chunks_respect_max_chunk_and_batch_a_fast_source():
    sizes = []

    def process(chunk):
        sizes.append(len(chunk))
        return echo(chunk)

    report = run_scenario(Runtime(process, max_chunk=16).run(iterate(range(500), period=1.0)))
    assert sum(sizes) == 500 and report.stimuli == 500
    assert max(sizes) <= 16
    assert max(sizes) > 1
    assert report.chunks == len(sizes) < 500


def test_chunks_are_single_stimuli_when_the_source_is_slow():
    sizes = []

    async def trickle():
        for t in range(5):
            await asyncio.sleep(0.01)
            yield Stimulus(t, t)

    def process(chunk):
        sizes.append(len(chunk))
        return echo(chunk)

    run_scenario(Runtime(process, max_chunk=16).run(trickle()))
    assert sizes == [1] * 5


def test_slow_sink_throttles_the_simulation_and_gets_everything_in_order():
    n, max_chunk, sink_queue_size = 40, 4, 2
    slow = SlowSink(delay=0.002)
    fast = ListSink()
    processed = 0
    outstanding = []  # deliveries produced but not yet received by the slow sink, at each process() call

    def process(chunk):
        nonlocal processed
        outstanding.append(processed - len(slow.items))
        processed += len(chunk)
        return echo(chunk)

    runtime = Runtime(process, [fast, slow], max_chunk=max_chunk, sink_queue_size=sink_queue_size)
    report = run_scenario(runtime.run(iterate(range(n), period=1.0)))
    assert [d.result for d in slow.items] == list(range(n))
    assert [d.result for d in fast.items] == list(range(n))
    assert max(outstanding) <= sink_queue_size + max_chunk
    assert report.wall_seconds >= n * slow.delay * 0.9
    assert report.sink_errors == []


def test_bounded_inbox_throttles_the_source():
    max_chunk = 4
    pulled = 0
    processed = 0
    ahead = []  # stimuli pulled from the source and not yet processed, at each process() call

    async def counting_source():
        nonlocal pulled
        for t in range(200):
            pulled += 1
            yield Stimulus(t, t)

    def process(chunk):
        nonlocal processed
        ahead.append(pulled - processed)
        processed += len(chunk)
        return echo(chunk)

    sink = SlowSink(delay=0.0005)
    run_scenario(Runtime(process, [sink], max_chunk=max_chunk, sink_queue_size=1).run(counting_source()))
    assert len(sink.items) == 200
    # the chunk + a full inbox (4 * max_chunk) + the one stimulus the reader is holding
    assert max(ahead) <= max_chunk + 4 * max_chunk + 1


# -- Runtime: failures ------------------------------------------------------------------


def test_raising_sink_is_detached_and_reported_while_others_get_everything():
    n = 50
    good = ListSink()
    bad = ExplodingSink(at=5, delay=0.01)  # the simulation is waiting on its full queue when it raises
    runtime = Runtime(echo, [good, bad], max_chunk=2, sink_queue_size=1)
    report = run_scenario(runtime.run(iterate(range(n), period=1.0)))
    assert [d.result for d in good.items] == list(range(n))
    assert [d.result for d in bad.items] == list(range(5))
    assert bad.closed and good.closed
    assert len(report.sink_errors) == 1
    assert "sink 1 (ExplodingSink) raised RuntimeError: boom" in report.sink_errors[0]
    assert "detached after 5 deliveries" in report.sink_errors[0]
    assert report.deliveries == n + 5


def test_sink_close_errors_are_reported():
    class BadClose(ListSink):
        async def close(self):
            raise OSError("disk full")

    report = run_scenario(Runtime(echo, [BadClose()]).run(iterate([1], period=1.0)))
    assert report.sink_errors == ["sink 0 (BadClose) close() raised OSError: disk full"]


def test_process_returning_the_wrong_count_is_a_value_error():
    def drop_one(chunk):
        return echo(chunk)[:-1]

    sink = ListSink()
    with pytest.raises(ValueError, match=r"process .*drop_one returned 2 results for a chunk of 3 stimuli"):
        run_scenario(Runtime(drop_one, [sink], max_chunk=8).run(iterate(range(3), period=1.0)))
    assert sink.closed and sink.items == []
    assert worker_threads() == []


def test_process_returning_a_non_sequence_is_a_type_error():
    with pytest.raises(TypeError, match="must return a sequence of results, got NoneType"):
        run_scenario(Runtime(lambda chunk: None).run(iterate([1], period=1.0)))


def test_process_error_is_reraised_and_nothing_is_left_running():
    error = ZeroDivisionError("kernel failed")
    calls = 0

    def process(chunk):
        nonlocal calls
        calls += 1
        if calls == 3:
            raise error
        return echo(chunk)

    async def scenario():
        sink = SlowSink(delay=0.001)
        with pytest.raises(ZeroDivisionError) as raised:
            await Runtime(process, [sink], max_chunk=4).run(iterate(itertools.count(), period=1.0))
        assert raised.value is error
        assert sink.closed
        assert_nothing_left_running()

    run_scenario(scenario())


def test_source_error_is_reraised_after_the_stimuli_before_it():
    error = KeyError("sensor unplugged")

    async def failing_source():
        for t in range(3):
            yield Stimulus(t, t)
        raise error

    async def scenario():
        processed = []

        def process(chunk):
            processed.extend(echo(chunk))
            return echo(chunk)

        with pytest.raises(KeyError) as raised:
            await Runtime(process, [ListSink()]).run(failing_source())
        assert raised.value is error
        assert processed == [0, 1, 2]
        assert_nothing_left_running()

    run_scenario(scenario())


def test_runtime_never_reorders():
    async def backwards():
        yield Stimulus(1.0, "a")
        yield Stimulus(2.0, "b")
        yield Stimulus(1.5, "c")

    message = r"Runtime.run\(\) source went back in time: stimulus 2 is at 1.5, after one at 2.0"
    with pytest.raises(OutOfOrderError, match=message):
        run_scenario(Runtime(echo).run(backwards()))


def test_runtime_rejects_non_stimuli_from_the_source():
    async def wrong():
        yield (0.0, "not a stimulus")

    with pytest.raises(TypeError, match=r"Runtime.run\(\) source must yield Stimulus objects, got tuple"):
        run_scenario(Runtime(echo).run(wrong()))


def test_cancelled_run_leaves_no_task_or_thread():
    started = threading.Event()

    def process(chunk):
        started.set()
        time.sleep(0.05)
        return echo(chunk)

    async def scenario():
        sink = ListSink()
        task = asyncio.create_task(Runtime(process, [sink]).run(iterate(itertools.count(), period=1.0)))
        while not started.is_set():
            await asyncio.sleep(0.001)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        assert sink.closed
        assert_nothing_left_running()

    run_scenario(scenario())


def test_event_loop_stays_responsive_while_process_blocks():
    ticks = 0
    ticks_during = []

    async def heartbeat():
        nonlocal ticks
        while True:
            await asyncio.sleep(0.005)
            ticks += 1

    def process(chunk):
        before = ticks
        time.sleep(0.2)  # stands in for a nogil kernel
        ticks_during.append(ticks - before)
        return echo(chunk)

    async def scenario():
        beating = asyncio.create_task(heartbeat())
        report = await Runtime(process, max_chunk=1000).run(iterate(range(10), period=1.0))
        beating.cancel()
        return report

    report = run_scenario(scenario())
    assert report.chunks == len(ticks_during) == 1
    assert ticks_during[0] >= 10  # ~40 expected


def test_runtime_runs_one_run_at_a_time():
    async def scenario():
        gate = asyncio.Event()

        async def held():
            await gate.wait()
            yield Stimulus(0.0, None)

        runtime = Runtime(echo)
        first = asyncio.create_task(runtime.run(held()))
        await asyncio.sleep(0)
        with pytest.raises(RuntimeError, match="already running"):
            await runtime.run(iterate([], period=1.0))
        gate.set()
        return (await first).stimuli

    assert run_scenario(scenario()) == 1


def test_runtime_argument_errors():
    with pytest.raises(TypeError, match="process must be callable, got int"):
        Runtime(3)
    with pytest.raises(TypeError, match=r"sinks\[1\] must have async send\(delivery\) and close\(\) methods, got list"):
        Runtime(echo, [ListSink(), []])
    with pytest.raises(ValueError, match="max_chunk must be >= 1, got 0"):
        Runtime(echo, max_chunk=0)
    with pytest.raises(TypeError, match="sink_queue_size must be a non-negative int, got float"):
        Runtime(echo, sink_queue_size=2.0)
    with pytest.raises(TypeError, match=r"Runtime.run\(\) source must be an async iterable of Stimulus, got list"):
        run_scenario(Runtime(echo).run([Stimulus(0.0, None)]))


# -- sinks -------------------------------------------------------------------------------


def test_ndjson_file_sink_writes_parseable_lines_and_appends(tmp_path):
    path = tmp_path / "out.ndjson"

    def encode(delivery):
        return {"t": delivery.stimulus.time, "x": delivery.stimulus.data, "y": delivery.result}

    def one_run(start):
        sink = NDJSONFileSink(path, encode)
        runtime = Runtime(lambda chunk: [2 * s.data for s in chunk], [sink])
        run_scenario(runtime.run(iterate(range(start, start + 5), period=0.5, start=start)))

    one_run(0)
    one_run(5)  # a resumed run continues the file
    lines = path.read_text().splitlines()
    assert len(lines) == 10
    records = [json.loads(line) for line in lines]
    assert [r["x"] for r in records] == list(range(10))
    assert [r["y"] for r in records] == [2 * k for k in range(10)]


def test_ndjson_file_sink_refuses_nan_and_is_detached(tmp_path):
    path = tmp_path / "out.ndjson"
    sink = NDJSONFileSink(path, lambda d: {"y": d.result})
    report = run_scenario(Runtime(lambda chunk: [float("nan")] * len(chunk), [sink]).run(iterate([1], period=1.0)))
    assert len(report.sink_errors) == 1 and "ValueError" in report.sink_errors[0]
    assert path.read_text() == ""


def test_callback_sink_requires_a_callable():
    with pytest.raises(TypeError, match="fn must be callable, got str"):
        CallbackSink("print")


def test_run_report_percentiles():
    report = RunReport(3, 3, 1, 0.1, np.array([0.003, 0.001, 0.002]), [])
    assert report.lag_percentiles() == pytest.approx({"p50": 0.002, "p90": 0.0028, "p99": 0.00298, "max": 0.003})


# -- property: the runtime is a faithful, order-preserving pipe ---------------------------------

steps = st.lists(
    st.tuples(st.sampled_from([0.0, 0.0, 0.001, 0.5]), st.booleans()),  # (time increment, yield to the loop first)
    max_size=60,
)


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    steps=steps,
    max_chunk=st.integers(1, 8),
    queue_sizes=st.lists(st.integers(1, 4), min_size=1, max_size=3),
    slow_sink=st.booleans(),
)
def test_deliveries_equal_the_input_in_order(steps, max_chunk, queue_sizes, slow_sink):
    times = np.cumsum([dt for dt, _ in steps]).tolist()

    async def source():
        for k, (t, (_, pause)) in enumerate(zip(times, steps)):
            if pause:
                await asyncio.sleep(0)
            yield Stimulus(t, k)

    sizes = []

    def process(chunk):
        sizes.append(len(chunk))
        return [(s.time, s.data) for s in chunk]

    for sink_queue_size in queue_sizes:
        sinks = [ListSink(), SlowSink(0.0) if slow_sink else ListSink()]
        runtime = Runtime(process, sinks, max_chunk=max_chunk, sink_queue_size=sink_queue_size)
        report = run_scenario(runtime.run(source()))
        expected = list(zip(times, range(len(times))))
        for sink in sinks:
            assert [d.result for d in sink.items] == expected
            assert [(d.stimulus.time, d.stimulus.data) for d in sink.items] == expected
        assert report.stimuli == len(times) and report.deliveries == 2 * len(times)
    assert all(1 <= size <= max_chunk for size in sizes)
