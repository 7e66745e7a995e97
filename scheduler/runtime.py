"""Asyncio streaming runtime: sources feed one simulation, sinks receive its outputs.

A simulation runs as one :meth:`Runtime.run` call on an asyncio event loop
(uvloop when it is installed; see :func:`run` and :func:`new_event_loop`).
Three kinds of piece are joined by bounded queues::

    source --reader task--> inbox --simulation loop--> process(chunk) in a worker thread
                                                           |
                          one queue + consumer task per sink <--+

* A *source* is an async iterator of :class:`Stimulus` (a simulated time in
  seconds and a payload the runtime never looks at): :func:`iterate`,
  :func:`poisson_spikes`, :func:`replay_ndjson`, or a live
  :class:`QueueSource` fed from elsewhere (a socket, see
  :mod:`scheduler.ndjson`).  :func:`merge` combines several streams into one
  time order; :func:`paced` releases a stream in real time.
* The simulation loop takes whatever is waiting in the inbox, up to
  ``max_chunk`` stimuli, and calls ``process(chunk)`` -- typically the wrapper
  of a Numba ``nogil`` kernel -- in a dedicated single-thread executor, so the
  event loop keeps serving sockets and timers while the kernel computes.
* A *sink* is any object with ``async send(delivery)`` and ``async close()``:
  :class:`ListSink`, :class:`CallbackSink`, :class:`NDJSONFileSink`,
  :class:`StreamWriterSink`.  Each receives one :class:`Delivery` per
  stimulus, in stimulus order.

The runtime never reorders: each stimulus must be no earlier than the one
before it, else :class:`OutOfOrderError`.  :func:`merge` is the one place
where several streams are put into a common order.

Backpressure policy
-------------------
Nothing is dropped and nothing is reordered; the slowest consumer sets the
pace.  Each sink has its own bounded queue (``sink_queue_size``).  When a
sink's queue is full the simulation waits for it before going on, so a slow
sink slows the simulation; the simulation then stops taking from its bounded
inbox (``4 * max_chunk`` stimuli), which stops the reader from pulling the
source, and a live source (a socket behind a :class:`QueueSource`) stops being
read -- TCP backpressure to the sender.  Every sink receives every delivery,
in stimulus order.  The one exception is a sink that raises: it is detached
(closed if possible, its error recorded in :attr:`RunReport.sink_errors`, the
deliveries queued for it discarded), and the run and the other sinks go on
without waiting for it.

Errors and cancellation
-----------------------
If the source or ``process`` raises, or the run is cancelled (Ctrl-C), the
reader and sink tasks are cancelled, the deliveries still queued for sinks are
discarded, the sinks are closed, the worker thread is joined (after the
``process`` call in flight, which cannot be interrupted, returns) and the
original exception propagates.  No task or thread is left running.

Examples
--------
>>> from scheduler.runtime import ListSink, Runtime, iterate, run
>>> sink = ListSink()
>>> runtime = Runtime(lambda chunk: [10 * s.data for s in chunk], [sink])
>>> report = run(runtime.run(iterate([1, 2, 3], period=0.5)))
>>> [(d.stimulus.time, d.result) for d in sink.items]
[(0.0, 10), (0.5, 20), (1.0, 30)]
>>> report.stimuli, report.deliveries, report.sink_errors
(3, 3, [])
"""

import asyncio
import heapq
import inspect
import json
import math
import os
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace

import numpy as np

from scheduler.timequeue import _check_count, _check_real

try:
    import uvloop
except ImportError:  # uvloop is optional: plain asyncio works the same, slower
    uvloop = None

__all__ = [
    "CallbackSink",
    "Delivery",
    "ListSink",
    "NDJSONFileSink",
    "OutOfOrderError",
    "QueueSource",
    "RunReport",
    "Runtime",
    "wall_clock",
    "Stimulus",
    "StreamWriterSink",
    "iterate",
    "loop_name",
    "merge",
    "new_event_loop",
    "paced",
    "poisson_spikes",
    "replay_ndjson",
    "run",
]

WORKER_THREAD_PREFIX = "scheduler-runtime"
"""Name prefix of the worker thread that runs ``process`` (one per run)."""


# --------------------------------------------------------------------------
# Values
# --------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Stimulus:
    """One timestamped input to the simulation.

    Attributes
    ----------
    time : float
        Simulated time in seconds; finite (ints and NumPy scalars are
        converted to float).
    data : object
        The payload, opaque to the runtime.
    origin : object
        Who sent it (e.g. a client id); outputs are routed by it.
    due : float or None
        :func:`wall_clock` time at which it is due in real-time mode (set
        by :func:`paced`), ``None`` otherwise.

    Raises
    ------
    TypeError
        If `time` or `due` is not a real number.
    ValueError
        If `time` is NaN or infinite.

    Examples
    --------
    >>> from scheduler.runtime import Stimulus
    >>> Stimulus(1, data=[3, 4], origin="client-7")
    Stimulus(time=1.0, data=[3, 4], origin='client-7', due=None)
    >>> Stimulus(float("nan"), None)
    Traceback (most recent call last):
        ...
    ValueError: Stimulus.time must be a finite number, got nan
    """

    time: float
    data: object
    origin: object = None
    due: float | None = None

    def __post_init__(self):
        object.__setattr__(self, "time", _finite("Stimulus.time", self.time))
        if self.due is not None:
            object.__setattr__(self, "due", _check_real("Stimulus.due", self.due))


@dataclass(frozen=True, slots=True)
class Delivery:
    """What sinks receive: one per stimulus, in stimulus order.

    Attributes
    ----------
    stimulus : Stimulus
    result : object
        ``process()``'s output for this stimulus.
    lag : float or None
        Seconds behind real time when its chunk was done (:func:`wall_clock`
        then, minus ``stimulus.due``); ``None`` if the stimulus was not paced.

    Examples
    --------
    >>> from scheduler.runtime import Delivery, Stimulus
    >>> Delivery(Stimulus(0.5, "x"), result=2, lag=None).result
    2
    """

    stimulus: Stimulus
    result: object
    lag: float | None


class OutOfOrderError(ValueError):
    """A stimulus earlier than the one before it in the same stream.

    The message names the stream and both times.

    Examples
    --------
    >>> from scheduler.runtime import OutOfOrderError
    >>> issubclass(OutOfOrderError, ValueError)
    True
    """


@dataclass
class RunReport:
    """What :meth:`Runtime.run` did.

    Attributes
    ----------
    stimuli : int
        Stimuli processed.
    deliveries : int
        Deliveries the sinks accepted (``send`` returned), summed over sinks:
        ``stimuli * len(sinks)`` unless a sink was detached.
    chunks : int
        Calls to ``process``.
    wall_seconds : float
        Wall-clock duration of the run.
    lags : numpy.ndarray of float64
        Lag in seconds of each paced stimulus (see :attr:`Delivery.lag`), in
        stimulus order; empty when nothing was paced.
    sink_errors : list of str
        One entry per sink that raised (it was detached) or whose ``close()``
        raised, naming the sink's index and type and the error.

    Examples
    --------
    >>> import numpy as np
    >>> from scheduler.runtime import RunReport
    >>> report = RunReport(4, 4, 1, 0.01, np.array([0.001, 0.002, 0.003, 0.010]), [])
    >>> {k: round(v, 4) for k, v in report.lag_percentiles().items()}
    {'p50': 0.0025, 'p90': 0.0079, 'p99': 0.0098, 'max': 0.01}
    """

    stimuli: int
    deliveries: int
    chunks: int
    wall_seconds: float
    lags: np.ndarray
    sink_errors: list[str]

    def lag_percentiles(self):
        """Median, 90th, 99th percentile and maximum of :attr:`lags`.

        Returns
        -------
        dict
            ``{"p50": ..., "p90": ..., "p99": ..., "max": ...}`` in seconds
            (floats, linear interpolation), or ``{}`` if nothing was paced.

        Examples
        --------
        >>> import numpy as np
        >>> from scheduler.runtime import RunReport
        >>> RunReport(0, 0, 0, 0.0, np.empty(0), []).lag_percentiles()
        {}
        """
        if self.lags.size == 0:
            return {}
        p50, p90, p99 = np.percentile(self.lags, [50, 90, 99])
        return {"p50": float(p50), "p90": float(p90), "p99": float(p99), "max": float(self.lags.max())}


# --------------------------------------------------------------------------
# Event loop
# --------------------------------------------------------------------------


def new_event_loop():
    """A new event loop: uvloop's when uvloop is installed, else asyncio's.

    Returns
    -------
    asyncio.AbstractEventLoop

    Examples
    --------
    >>> from scheduler.runtime import new_event_loop
    >>> loop = new_event_loop()
    >>> loop.run_until_complete(asyncio.sleep(0, result="done"))
    'done'
    >>> loop.close()
    """
    if uvloop is not None:
        return uvloop.new_event_loop()
    return asyncio.new_event_loop()


def loop_name():
    """``"uvloop"`` if :func:`new_event_loop` makes uvloop loops, else ``"asyncio"``.

    Examples
    --------
    >>> from scheduler.runtime import loop_name
    >>> loop_name() in ("uvloop", "asyncio")
    True
    """
    return "uvloop" if uvloop is not None else "asyncio"


def run(coro):
    """Run `coro` to completion on a new :func:`new_event_loop` loop; return its result.

    Like :func:`asyncio.run` (the loop is closed afterwards, Ctrl-C cancels
    the coroutine), but with uvloop when it is installed.

    Examples
    --------
    >>> from scheduler.runtime import run
    >>> async def answer():
    ...     await asyncio.sleep(0)
    ...     return 42
    >>> run(answer())
    42
    """
    with asyncio.Runner(loop_factory=new_event_loop) as runner:
        return runner.run(coro)


# --------------------------------------------------------------------------
# Sources
# --------------------------------------------------------------------------


def iterate(payloads, *, period=None, times=None, start=0.0):
    """A source of `payloads` at regular or given simulated times.

    Parameters
    ----------
    payloads : iterable
        The :attr:`Stimulus.data` of each stimulus, in order (may be an
        endless iterator with `period`).
    period : float, optional
        Payload ``k`` at ``start + k * period`` seconds; ``period > 0``.
    times : sequence of float, optional
        Payload ``k`` at ``times[k]`` seconds: finite, non-decreasing, one per
        payload.
    start : float
        Time of the first payload with `period`; only with `period`.

    Exactly one of `period` and `times` must be given.

    Returns
    -------
    async iterator of Stimulus

    Raises
    ------
    TypeError
        If neither or both of `period` and `times` are given, or `start` is
        given with `times`, or `payloads` is not iterable.
    ValueError
        If `period` is not positive and finite, `times` is not a finite,
        non-decreasing 1-D sequence, or (when ``len(payloads)`` is known)
        the lengths differ.  An iterator of payloads that turns out longer
        or shorter than `times` raises ValueError when it ends.

    Examples
    --------
    >>> from scheduler.runtime import iterate, run
    >>> async def collect(source):
    ...     return [(s.time, s.data) for s in [s async for s in source]]
    >>> run(collect(iterate("ab", period=0.25, start=1.0)))
    [(1.0, 'a'), (1.25, 'b')]
    >>> run(collect(iterate("ab", times=[0.0, 0.1])))
    [(0.0, 'a'), (0.1, 'b')]
    """
    if (period is None) == (times is None):
        raise TypeError("iterate() needs exactly one of period= and times=")
    if period is not None:
        return _stimuli(_periodic(payloads, period, start))
    if start != 0.0:
        raise TypeError("iterate(): start= only applies with period= (times= are absolute)")
    stamps = _timestamps(times)
    if hasattr(payloads, "__len__") and len(payloads) != len(stamps):
        raise ValueError(f"times has {len(stamps)} entries but payloads has {len(payloads)}")
    return _stimuli(zip(stamps, payloads, strict=True))


def _periodic(payloads, period, start):
    period = _finite("period", period)
    if period <= 0:
        raise ValueError(f"period must be > 0 seconds, got {period!r}")
    start = _finite("start", start)
    return ((start + k * period, payload) for k, payload in enumerate(payloads))


def _timestamps(times):
    stamps = np.asarray(times, dtype=np.float64)
    if stamps.ndim != 1:
        raise ValueError(f"times must be 1-D, got shape {stamps.shape}")
    if not np.all(np.isfinite(stamps)):
        raise ValueError(f"times must be finite numbers, got {float(stamps[~np.isfinite(stamps)][0])!r}")
    back = np.flatnonzero(np.diff(stamps) < 0)
    if back.size:
        k = int(back[0]) + 1
        later, earlier = float(stamps[k]), float(stamps[k - 1])
        raise ValueError(f"times must be non-decreasing: times[{k}] = {later!r} < times[{k - 1}] = {earlier!r}")
    return stamps.tolist()


async def _stimuli(stamped):
    for t, payload in stamped:
        yield Stimulus(t, payload)


def poisson_spikes(rate_hz, n_targets, duration, seed):
    """A merged Poisson spike stream: `n_targets` independent sources of `rate_hz` each.

    Spikes of the merged process come at exponential intervals of mean
    ``1 / (rate_hz * n_targets)``; each goes to a uniformly random target.

    Parameters
    ----------
    rate_hz : float
        Rate of each target's spike train, >= 0.
    n_targets : int
        Number of targets, >= 1.
    duration : float
        Spikes are in ``(0, duration)`` seconds.
    seed : int or numpy.random.SeedSequence
        Seed of the :func:`numpy.random.default_rng` generator: the same seed
        gives the same stream.

    Returns
    -------
    async iterator of Stimulus
        ``Stimulus(time, data=target_index)`` with strictly increasing times.

    Examples
    --------
    >>> from scheduler.runtime import poisson_spikes, run
    >>> async def collect(source):
    ...     return [s async for s in source]
    >>> spikes = run(collect(poisson_spikes(20.0, n_targets=100, duration=1.0, seed=1)))
    >>> 1800 < len(spikes) < 2200, all(0 <= s.data < 100 for s in spikes)
    (True, True)
    """
    rate = _finite("rate_hz", rate_hz)
    if rate < 0:
        raise ValueError(f"rate_hz must be >= 0, got {rate!r}")
    n = _check_count("n_targets", n_targets)
    if n == 0:
        raise ValueError("n_targets must be >= 1, got 0")
    duration = _finite("duration", duration)
    if duration < 0:
        raise ValueError(f"duration must be >= 0 seconds, got {duration!r}")
    return _poisson(np.random.default_rng(seed), rate * n, n, duration)


async def _poisson(rng, total_rate, n_targets, duration, block=1024):
    if total_rate == 0:
        return
    t = 0.0
    while True:
        gaps = rng.exponential(1.0 / total_rate, block).tolist()
        targets = rng.integers(0, n_targets, block).tolist()
        for gap, target in zip(gaps, targets):
            t = max(t + gap, math.nextafter(t, math.inf))  # strictly increasing, even for a zero gap
            if t >= duration:
                return
            yield Stimulus(t, target)


def replay_ndjson(path, parse):
    """A source replaying a newline-delimited JSON file, one stimulus per line.

    Blank lines are skipped.  The file is read from the event loop's thread
    (a local file, line by line).

    Parameters
    ----------
    path : str or os.PathLike
    parse : callable
        ``parse(obj) -> Stimulus`` for each line's decoded JSON value.

    Returns
    -------
    async iterator of Stimulus

    Raises
    ------
    ValueError
        While iterating, for a line that is not valid JSON or that `parse`
        rejects with ValueError; the message names the file and the
        (1-based) line number.
    TypeError
        While iterating, if `parse` returns something other than a Stimulus.

    Examples
    --------
    >>> import os, tempfile
    >>> from scheduler.runtime import Stimulus, replay_ndjson, run
    >>> path = os.path.join(tempfile.mkdtemp(), "input.ndjson")
    >>> with open(path, "w") as f:
    ...     _ = f.write('{"t": 0.5, "x": 1}\\n\\n{"t": 0.75, "x": 2}\\n')
    >>> async def collect(source):
    ...     return [(s.time, s.data) async for s in source]
    >>> run(collect(replay_ndjson(path, lambda o: Stimulus(o["t"], o["x"]))))
    [(0.5, 1), (0.75, 2)]
    """
    _check_callable("parse", parse)
    return _replay(os.fspath(path), parse)


async def _replay(path, parse):
    with open(path, "rb") as lines:
        for number, line in enumerate(lines, start=1):
            if line.strip():
                yield _parse_line(path, number, line, parse)


def _parse_line(path, number, line, parse):
    try:
        obj = json.loads(line)
    except ValueError as exc:
        raise ValueError(f"{path}, line {number}: invalid JSON ({exc})") from exc
    try:
        stimulus = parse(obj)
    except ValueError as exc:
        raise ValueError(f"{path}, line {number}: {exc}") from exc
    if not isinstance(stimulus, Stimulus):
        raise TypeError(f"{path}, line {number}: parse() must return a Stimulus, got {type(stimulus).__name__}")
    return stimulus


class QueueSource:
    """A bounded live source, fed with :meth:`put` from elsewhere (e.g. a socket).

    Iterating yields the stimuli in the order the :meth:`put` calls
    completed, and ends once :meth:`close` was called and everything put
    has been taken.  :meth:`put` waits while ``maxsize`` stimuli are queued
    (backpressure).  Time order is not checked here; the consumer (a
    :class:`Runtime`) checks it.

    Parameters
    ----------
    maxsize : int
        Queue bound, >= 1.

    Examples
    --------
    >>> from scheduler.runtime import QueueSource, Stimulus, run
    >>> async def demo():
    ...     source = QueueSource(maxsize=2)
    ...     async def feed():
    ...         for t in range(3):
    ...             await source.put(Stimulus(t, f"event {t}"))
    ...         source.close()
    ...     feeding = asyncio.create_task(feed())
    ...     taken = [s.data async for s in source]
    ...     await feeding
    ...     return taken
    >>> run(demo())
    ['event 0', 'event 1', 'event 2']
    """

    def __init__(self, maxsize=1024):
        maxsize = _check_count("maxsize", maxsize)
        if maxsize == 0:
            raise ValueError("maxsize must be >= 1 (the queue is bounded), got 0")
        self._queue = asyncio.Queue(maxsize)
        self._changed = asyncio.Event()  # set by put() and close(); wakes the iterator
        self._putting = 0  # put() calls waiting for room
        self._closed = False

    @property
    def closed(self):
        """bool: whether :meth:`close` was called."""
        return self._closed

    def qsize(self):
        """int: the number of stimuli queued and not yet taken."""
        return self._queue.qsize()

    async def put(self, stimulus):
        """Queue `stimulus`, waiting while the queue is full.

        Raises
        ------
        TypeError
            If `stimulus` is not a :class:`Stimulus`.
        RuntimeError
            If the source was closed.
        """
        _check_stimulus(stimulus, "QueueSource.put() takes")
        if self._closed:
            raise RuntimeError("QueueSource.put() after close()")
        self._putting += 1
        try:
            await self._queue.put(stimulus)
        finally:
            self._putting -= 1
            self._changed.set()

    def close(self):
        """End the stream once everything already put (or being put) is taken."""
        self._closed = True
        self._changed.set()

    def __aiter__(self):
        return self

    async def __anext__(self):
        while self._queue.empty():
            if self._closed and not self._putting:
                raise StopAsyncIteration
            self._changed.clear()
            await self._changed.wait()
        return self._queue.get_nowait()


def merge(*sources):
    """Merge time-ordered sources into one time-ordered stream (k-way merge).

    On equal times, the stimulus of the lower source index comes first, and
    within one source the order of arrival is kept.  The merge waits until
    every unfinished source has a next stimulus before it yields, so a live
    source with nothing to say holds the others back.

    Parameters
    ----------
    *sources : async iterables of Stimulus
        Each must be non-decreasing in time.

    Returns
    -------
    async iterator of Stimulus

    Raises
    ------
    OutOfOrderError
        While iterating, when a source goes back in time; the message names
        the source's index and both times.

    Examples
    --------
    >>> from scheduler.runtime import iterate, merge, run
    >>> async def collect(source):
    ...     return [(s.time, s.data) async for s in source]
    >>> run(collect(merge(iterate("ab", times=[0, 2]), iterate("XY", times=[1, 2]))))
    [(0.0, 'a'), (1.0, 'X'), (2.0, 'b'), (2.0, 'Y')]
    """
    return _merge([_async_iterator(source, f"merge() source {i}") for i, source in enumerate(sources)])


async def _merge(iterators):
    heads = []  # heap of (time, source index, stimulus): at most one head per source
    last = [-math.inf] * len(iterators)
    try:
        for index, iterator in enumerate(iterators):
            await _pull_head(heads, last, index, iterator)
        while heads:
            _, index, stimulus = heapq.heappop(heads)
            yield stimulus
            await _pull_head(heads, last, index, iterators[index])
    finally:
        for iterator in iterators:
            await _aclose(iterator)


async def _pull_head(heads, last, index, iterator):
    try:
        stimulus = _check_stimulus(await anext(iterator), f"merge() source {index} must yield")
    except StopAsyncIteration:
        return
    if stimulus.time < last[index]:
        raise OutOfOrderError(
            f"merge() source {index} went back in time: a stimulus at {stimulus.time!r} "
            f"came after one at {last[index]!r}"
        )
    last[index] = stimulus.time
    heapq.heappush(heads, (stimulus.time, index, stimulus))


def paced(source, speed=1.0):
    """Release `source` in real time: simulated time ``t`` at ``start + t / speed``.

    ``start`` is :func:`wall_clock` when the first stimulus is asked for.
    Each stimulus is yielded once :func:`wall_clock` has reached its due time
    (at once if that is past), with :attr:`Stimulus.due` set to it; the
    runtime then reports each one's lag behind real time.

    Parameters
    ----------
    source : async iterable of Stimulus
    speed : float
        Simulated seconds per real second, > 0 (2.0 runs twice as fast).

    Returns
    -------
    async iterator of Stimulus

    Examples
    --------
    >>> from scheduler.runtime import iterate, paced, run
    >>> async def collect(source):
    ...     return [s async for s in source]
    >>> stimuli = run(collect(paced(iterate("abc", period=0.01), speed=2.0)))
    >>> round(stimuli[2].due - stimuli[0].due, 6)
    0.01
    """
    iterator = _async_iterator(source, "paced() source")
    speed = _finite("speed", speed)
    if speed <= 0:
        raise ValueError(f"speed must be > 0, got {speed!r}")
    return _paced(iterator, speed)


def wall_clock():
    """Seconds on the clock that pacing and lags use (``time.perf_counter``).

    Not ``loop.time()``: uvloop's loop clock ticks in whole milliseconds,
    too coarse for lags of a fraction of a millisecond.
    """
    return time.perf_counter()


async def _paced(iterator, speed):
    start = wall_clock()
    try:
        async for stimulus in iterator:
            due = start + _check_stimulus(stimulus, "paced() source must yield").time / speed
            while (wait := due - wall_clock()) > 0:  # again if the timer fired early (ms resolution)
                await asyncio.sleep(wait)
            yield replace(stimulus, due=due)
    finally:
        await _aclose(iterator)


# --------------------------------------------------------------------------
# Sinks
# --------------------------------------------------------------------------


class ListSink:
    """A monitor: collects every delivery in :attr:`items`.

    Attributes
    ----------
    items : list of Delivery
    closed : bool
        Whether :meth:`close` was called.

    Examples
    --------
    >>> from scheduler.runtime import Delivery, ListSink, Stimulus, run
    >>> sink = ListSink()
    >>> run(sink.send(Delivery(Stimulus(0.0, "x"), "y", None)))
    >>> [d.result for d in sink.items]
    ['y']
    """

    def __init__(self):
        self.items = []
        self.closed = False

    async def send(self, delivery):
        """Append `delivery` to :attr:`items`."""
        self.items.append(delivery)

    async def close(self):
        """Mark the sink closed (the items stay)."""
        self.closed = True


class CallbackSink:
    """Calls ``fn(delivery)`` for each delivery; awaits the result if it is awaitable.

    Parameters
    ----------
    fn : callable
        A plain function or an ``async def`` function.

    Examples
    --------
    >>> from scheduler.runtime import CallbackSink, Delivery, Stimulus, run
    >>> seen = []
    >>> sink = CallbackSink(lambda d: seen.append(d.result))
    >>> run(sink.send(Delivery(Stimulus(0.0, "x"), 7, None)))
    >>> seen
    [7]
    """

    def __init__(self, fn):
        _check_callable("fn", fn)
        self._fn = fn

    async def send(self, delivery):
        """Call the function; await what it returns if that is awaitable."""
        outcome = self._fn(delivery)
        if inspect.isawaitable(outcome):
            await outcome

    async def close(self):
        """Nothing to release."""


class NDJSONFileSink:
    """Writes one JSON line per delivery to a file, opened in append mode.

    Append mode lets a resumed run continue the file of the run before.  The
    lines are strict JSON (NaN and infinity are refused with ValueError,
    which detaches the sink).  :meth:`close` flushes and fsyncs.

    Parameters
    ----------
    path : str or os.PathLike
        Opened (created if needed) at construction.
    encode : callable
        ``encode(delivery)`` -> a JSON-serialisable dict.

    Examples
    --------
    >>> import os, tempfile
    >>> from scheduler.runtime import Delivery, NDJSONFileSink, Stimulus, run
    >>> path = os.path.join(tempfile.mkdtemp(), "out.ndjson")
    >>> sink = NDJSONFileSink(path, lambda d: {"t": d.stimulus.time, "y": d.result})
    >>> run(sink.send(Delivery(Stimulus(0.5, None), 3, None)))
    >>> run(sink.close())
    >>> with open(path) as f:
    ...     f.read()
    '{"t":0.5,"y":3}\\n'
    """

    def __init__(self, path, encode):
        _check_callable("encode", encode)
        self.path = os.fspath(path)
        self._encode = encode
        self._file = open(self.path, "a", encoding="utf-8", newline="\n")

    async def send(self, delivery):
        """Encode `delivery` and write it as one line."""
        self._file.write(_json_text(self._encode(delivery)))

    async def close(self):
        """Flush, fsync and close the file (again: no-op)."""
        if self._file.closed:
            return
        try:
            self._file.flush()
            os.fsync(self._file.fileno())
        finally:
            self._file.close()


class StreamWriterSink:
    """Writes one JSON line per delivery to an :class:`asyncio.StreamWriter`.

    Each line is followed by ``await writer.drain()``, so a peer that reads
    slowly slows the sink (TCP backpressure).  :meth:`close` closes the
    writer.

    Parameters
    ----------
    writer : asyncio.StreamWriter
    encode : callable
        ``encode(delivery)`` -> a JSON-serialisable dict.

    Examples
    --------
    >>> from scheduler.runtime import Delivery, Stimulus, StreamWriterSink, run
    >>> async def demo():
    ...     lines = []
    ...     async def peer(reader, writer):
    ...         lines.append(await reader.readline())
    ...         writer.close()
    ...     server = await asyncio.start_server(peer, "127.0.0.1", 0)
    ...     _, writer = await asyncio.open_connection(*server.sockets[0].getsockname()[:2])
    ...     sink = StreamWriterSink(writer, lambda d: {"y": d.result})
    ...     await sink.send(Delivery(Stimulus(0.0, None), 1, None))
    ...     await sink.close()
    ...     while not lines:
    ...         await asyncio.sleep(0.001)
    ...     server.close()
    ...     await server.wait_closed()
    ...     return lines
    >>> run(demo())
    [b'{"y":1}\\n']
    """

    def __init__(self, writer, encode):
        _check_callable("encode", encode)
        self._writer = writer
        self._encode = encode

    async def send(self, delivery):
        """Encode `delivery`, write it as one line and wait for the writer to drain."""
        self._writer.write(_json_line(self._encode(delivery)))
        await self._writer.drain()

    async def close(self):
        """Close the writer (a connection already reset by the peer is not an error)."""
        self._writer.close()
        try:
            await self._writer.wait_closed()
        except ConnectionError:
            pass


def _json_text(obj):
    return json.dumps(obj, allow_nan=False, separators=(",", ":")) + "\n"


def _json_line(obj):
    return _json_text(obj).encode()


# --------------------------------------------------------------------------
# The runtime
# --------------------------------------------------------------------------


class Runtime:
    """Runs a simulation over a stream of stimuli and hands its outputs to sinks.

    Parameters
    ----------
    process : callable
        ``process(chunk)`` with ``chunk`` a list of :class:`Stimulus` in time
        order; returns a sequence of results, exactly one per stimulus, in
        the same order.  Called in a dedicated worker thread, one call at a
        time, so it may block (a Numba ``nogil`` kernel) without stalling
        the event loop; it must not touch asyncio objects.
    sinks : iterable of sinks
        Objects with ``async send(delivery)`` and ``async close()``.
    max_chunk : int
        Most stimuli per ``process`` call, >= 1.
    sink_queue_size : int
        Deliveries queued per sink before the simulation waits for it, >= 1.

    See the module docstring for the backpressure policy.

    Examples
    --------
    >>> from scheduler.runtime import ListSink, Runtime, iterate, run
    >>> monitor = ListSink()
    >>> runtime = Runtime(lambda chunk: [s.data ** 2 for s in chunk], [monitor], max_chunk=2)
    >>> report = run(runtime.run(iterate(range(5), period=1e-3)))
    >>> [d.result for d in monitor.items], report.chunks
    ([0, 1, 4, 9, 16], 3)
    """

    def __init__(self, process, sinks=(), *, max_chunk=256, sink_queue_size=1024):
        _check_callable("process", process)
        self._process = process
        self._sinks = tuple(sinks)
        for i, sink in enumerate(self._sinks):
            _check_sink(f"sinks[{i}]", sink)
        self._max_chunk = _positive("max_chunk", max_chunk)
        self._sink_queue_size = _positive("sink_queue_size", sink_queue_size)
        self._running = False

    @property
    def sinks(self):
        """tuple: the sinks, in the order they were given."""
        return self._sinks

    @property
    def max_chunk(self):
        """int: the most stimuli per ``process`` call."""
        return self._max_chunk

    async def run(self, source):
        """Feed `source` through ``process`` to the sinks until it ends; close the sinks.

        A reader task pulls `source` into a bounded inbox; the simulation
        loop waits for a stimulus, takes whatever else is already waiting (up
        to ``max_chunk``), checks the chunk's time order and runs ``process``
        on it in the worker thread, then queues one :class:`Delivery` per
        stimulus for every sink.  When the source ends, the rest is
        processed, every sink drained and closed, and the worker thread
        joined.

        Parameters
        ----------
        source : async iterable of Stimulus

        Returns
        -------
        RunReport

        Raises
        ------
        OutOfOrderError
            If a stimulus is earlier than the one before it.
        ValueError
            If ``process`` does not return exactly one result per stimulus.
        RuntimeError
            If this runtime is already running.
        Exception
            Whatever the source or ``process`` raised (the original object).

        Examples
        --------
        >>> from scheduler.runtime import Runtime, iterate, run
        >>> run(Runtime(lambda chunk: [None] * len(chunk)).run(iterate([1, 2], period=1.0))).stimuli
        2
        """
        stimuli = _async_iterator(source, "Runtime.run() source")
        if self._running:
            raise RuntimeError("Runtime.run() is already running; one run at a time")
        self._running = True
        try:
            return await _Run(self).execute(stimuli)
        finally:
            self._running = False


_END = object()  # end of a queue: the source ended, or no more deliveries


class _SourceFailed:
    """End of the inbox because the source raised `error`."""

    __slots__ = ("error",)

    def __init__(self, error):
        self.error = error


class _Run:
    """The state of one :meth:`Runtime.run` call."""

    def __init__(self, runtime):
        self.process = runtime._process
        self.max_chunk = runtime._max_chunk
        self.loop = asyncio.get_running_loop()
        self.inbox = asyncio.Queue(4 * self.max_chunk)
        self.outlets = [_Outlet(i, sink, runtime._sink_queue_size) for i, sink in enumerate(runtime._sinks)]
        self.executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix=WORKER_THREAD_PREFIX)
        self.worker_stopped = False
        self.reader = None
        self.stimuli = 0
        self.chunks = 0
        self.last_time = -math.inf
        self.lags = []
        self.close_errors = []

    async def execute(self, source):
        started = time.perf_counter()
        self.reader = asyncio.create_task(self._read(source))
        for outlet in self.outlets:
            outlet.start()
        try:
            await self._simulate()
            await self._finish()
        except BaseException:
            await self._abort()
            raise
        return RunReport(
            stimuli=self.stimuli,
            deliveries=sum(outlet.sent for outlet in self.outlets),
            chunks=self.chunks,
            wall_seconds=time.perf_counter() - started,
            lags=np.array(self.lags, dtype=np.float64),
            sink_errors=[o.error for o in self.outlets if o.error is not None] + self.close_errors,
        )

    async def _read(self, source):
        try:
            async for item in source:
                await self.inbox.put(_check_stimulus(item, "Runtime.run() source must yield"))
        except Exception as exc:  # handed to the simulation loop, which raises it in order
            await self.inbox.put(_SourceFailed(exc))
        else:
            await self.inbox.put(_END)
        finally:
            await _aclose(source)

    async def _simulate(self):
        while True:
            chunk, end = await self._next_chunk()
            if chunk:
                await self._step(chunk)
            if isinstance(end, _SourceFailed):
                raise end.error
            if end is _END:
                return

    async def _next_chunk(self):
        """(stimuli waiting in the inbox, up to max_chunk; the end marker met or None)."""
        item = await self.inbox.get()
        chunk = []
        while True:
            if item is _END or isinstance(item, _SourceFailed):
                return chunk, item
            chunk.append(item)
            if len(chunk) == self.max_chunk or self.inbox.empty():
                return chunk, None
            item = self.inbox.get_nowait()

    async def _step(self, chunk):
        self._check_order(chunk)
        results = await self.loop.run_in_executor(self.executor, self.process, chunk)
        done = wall_clock()
        self._check_results(chunk, results)
        self.chunks += 1
        self.stimuli += len(chunk)
        for stimulus, result in zip(chunk, results):
            lag = None if stimulus.due is None else done - stimulus.due
            if lag is not None:
                self.lags.append(lag)
            delivery = Delivery(stimulus, result, lag)
            for outlet in self.outlets:
                await outlet.put(delivery)  # waits while that sink's queue is full

    def _check_order(self, chunk):
        previous = self.last_time
        for offset, stimulus in enumerate(chunk):
            if stimulus.time < previous:
                raise OutOfOrderError(
                    f"Runtime.run() source went back in time: stimulus {self.stimuli + offset} is at "
                    f"{stimulus.time!r}, after one at {previous!r} (the runtime never reorders; "
                    "combine streams with merge())"
                )
            previous = stimulus.time
        self.last_time = previous

    def _check_results(self, chunk, results):
        name = getattr(self.process, "__qualname__", repr(self.process))
        try:
            count = len(results)
        except TypeError:
            raise TypeError(f"process {name} must return a sequence of results, got {type(results).__name__}") from None
        if count != len(chunk):
            raise ValueError(
                f"process {name} returned {count} results for a chunk of {len(chunk)} stimuli; "
                "it must return exactly one per stimulus, in order"
            )

    async def _finish(self):
        await self.reader
        for outlet in self.outlets:
            await outlet.put(_END)
        await asyncio.gather(*(outlet.task for outlet in self.outlets))
        for outlet in self.outlets:
            if outlet.error is None:
                error = await outlet.close()
                if error is not None:
                    self.close_errors.append(error)
        await self._stop_worker()

    async def _abort(self):
        tasks = [self.reader] + [outlet.task for outlet in self.outlets]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        for outlet in self.outlets:
            if outlet.error is None:
                await outlet.close()
        await self._stop_worker()

    async def _stop_worker(self):
        """Join the worker thread without blocking the loop while a process() call finishes."""
        if self.worker_stopped:
            return
        self.worker_stopped = True
        try:
            # The single worker runs calls in order, so this returns once the call in flight has.
            await self.loop.run_in_executor(self.executor, _idle)
        finally:
            self.executor.shutdown(wait=True)


def _idle():
    return None


class _Outlet:
    """One sink, its bounded queue and the task that feeds it."""

    def __init__(self, index, sink, queue_size):
        self.index = index
        self.sink = sink
        self.queue = asyncio.Queue(queue_size)
        self.task = None
        self.sent = 0
        self.error = None  # str once the sink raised and was detached

    def start(self):
        self.task = asyncio.create_task(self._consume(), name=f"runtime sink {self.index}")

    async def put(self, delivery):
        if self.error is None:  # a detached sink takes nothing more
            await self.queue.put(delivery)

    async def _consume(self):
        while (delivery := await self.queue.get()) is not _END:
            try:
                await self.sink.send(delivery)
            except Exception as exc:
                await self._detach(exc)
                return
            self.sent += 1

    async def _detach(self, exc):
        self.error = f"{self._name()} raised {type(exc).__name__}: {exc} (detached after {self.sent} deliveries)"
        while not self.queue.empty():  # wakes a simulation loop waiting for room
            self.queue.get_nowait()
        close_error = await self.close()
        if close_error is not None:
            self.error += f"; then {close_error}"

    async def close(self):
        """Close the sink; return a description of the error if close() raised, else None."""
        try:
            await self.sink.close()
        except Exception as exc:
            return f"{self._name()} close() raised {type(exc).__name__}: {exc}"
        return None

    def _name(self):
        return f"sink {self.index} ({type(self.sink).__name__})"


# --------------------------------------------------------------------------
# Checks and helpers
# --------------------------------------------------------------------------


def _finite(name, x):
    x = _check_real(name, x)
    if not math.isfinite(x):
        raise ValueError(f"{name} must be a finite number, got {x!r}")
    return x


def _positive(name, x):
    x = _check_count(name, x)
    if x == 0:
        raise ValueError(f"{name} must be >= 1, got 0")
    return x


def _check_callable(name, fn):
    if not callable(fn):
        raise TypeError(f"{name} must be callable, got {type(fn).__name__}")


def _check_sink(name, sink):
    if not (callable(getattr(sink, "send", None)) and callable(getattr(sink, "close", None))):
        raise TypeError(f"{name} must have async send(delivery) and close() methods, got {type(sink).__name__}")


def _check_stimulus(item, what):
    if not isinstance(item, Stimulus):
        raise TypeError(f"{what} Stimulus objects, got {type(item).__name__}")
    return item


def _async_iterator(source, name):
    if not hasattr(source, "__aiter__"):
        raise TypeError(f"{name} must be an async iterable of Stimulus, got {type(source).__name__}")
    return aiter(source)


async def _aclose(iterator):
    close = getattr(iterator, "aclose", None)
    if close is not None:
        await close()
