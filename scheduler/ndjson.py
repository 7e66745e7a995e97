"""Newline-delimited JSON over TCP in front of a :class:`~scheduler.runtime.Runtime`.

Protocol
--------
A client sends one JSON object per line; each is one stimulus event.  The
server answers every line with exactly one JSON line carrying ``"seq"``, the
client's 0-based line number:

* an accepted event: ``encode(delivery)`` plus ``"seq"``, once the simulation
  has processed it;
* a rejected line: ``{"error": "<message>", "seq": k}``.  A line is rejected
  when it is not valid JSON or not an object, when ``parse`` raises
  ValueError (any other exception from ``parse`` is reported the same way,
  with its type in the message), when it is longer than ``max_line_bytes``
  (the rest of it is skipped up to the next newline without being
  buffered), or when its time is earlier than the last accepted time of any
  client -- all clients share one timeline.  The connection and the run go on.

Answers to one client come in ``seq`` order: a rejection waits behind the
answers still owed for earlier accepted lines.

Design
------
All connections feed one :class:`~scheduler.runtime.QueueSource`, so the
global order of acceptance is the processing order; the time check and the
``put`` happen under one lock, so that order is also non-decreasing in time.
The stimulus's ``origin`` is the connection id.  The runtime's first sink
routes each delivery back to its connection, writing to the socket and
awaiting ``drain()``; the ``log_sinks`` follow it and receive every delivery.
A client that disconnects loses nothing already accepted: its stimuli are
still processed and reach the log sinks; only the socket write is skipped.

Backpressure policy
-------------------
As in :mod:`scheduler.runtime`: nothing is dropped or reordered.  A client
that does not read its answers fills its socket buffer; the routing sink
waits for it, then the simulation, then the shared queue, and the server
stops reading from every client (TCP backpressure) until it reads again.  A
client that disconnects stops costing anything.  Shutting down
(:meth:`NDJSONServer.serve_until`) waits until every accepted event is
answered.

Examples
--------
>>> import asyncio, json
>>> from scheduler.ndjson import NDJSONServer
>>> from scheduler.runtime import run
>>> async def demo():
...     server = NDJSONServer(
...         parse=lambda obj: (obj["t"], obj["x"]),
...         process=lambda chunk: [2 * s.data for s in chunk],
...         encode=lambda delivery: {"t": delivery.stimulus.time, "y": delivery.result},
...     )
...     host, port = await server.start()
...     stop = asyncio.Event()
...     serving = asyncio.create_task(server.serve_until(stop))
...     reader, writer = await asyncio.open_connection(host, port)
...     writer.write(b'{"t": 0.5, "x": 21}\\n[1, 2]\\n{"t": 1.0, "x": 5}\\n')
...     answers = [json.loads(await reader.readline()) for _ in range(3)]
...     writer.close()
...     stop.set()
...     report = await serving
...     return answers, report.stimuli, server.accepted, server.rejected
>>> answers, stimuli, accepted, rejected = run(demo())
>>> for answer in answers:
...     print(answer)
{'t': 0.5, 'y': 42, 'seq': 0}
{'error': 'expected a JSON object, got array', 'seq': 1}
{'t': 1.0, 'y': 10, 'seq': 2}
>>> stimuli, accepted, rejected
(2, 2, 1)
"""

import asyncio
import itertools
import json
import math
from collections import deque

from scheduler.runtime import (
    QueueSource,
    Runtime,
    Stimulus,
    _check_callable,
    _check_count,
    _check_sink,
    _json_line,
    _positive,
)

__all__ = ["NDJSONServer"]

_TOO_LONG = object()  # a line longer than max_line_bytes, skipped

_JSON_TYPES = {dict: "object", list: "array", str: "string", int: "number", float: "number", bool: "boolean"}


class NDJSONServer:
    """A TCP server turning NDJSON lines from many clients into one simulation run.

    Parameters
    ----------
    parse : callable
        ``parse(obj) -> (time, data)`` for each line's JSON object; raises
        ValueError with a message for invalid content.  ``time`` must be a
        finite number (simulated seconds).
    process : callable
        As for :class:`~scheduler.runtime.Runtime`: a chunk of stimuli in,
        one result per stimulus out, run in a worker thread.
    encode : callable
        ``encode(delivery) -> dict`` of JSON-serialisable values: the answer
        to the client that sent the stimulus (``"seq"`` is added).  If it
        raises, the client gets an error line for that ``seq`` instead.
    host : str
        Interface to listen on; loopback by default.
    port : int
        0 picks a free port (see :meth:`start`).
    max_line_bytes : int
        Longest accepted line, newline excluded.
    max_chunk : int
        Most stimuli per ``process`` call.
    log_sinks : iterable of sinks
        Sinks (``async send(delivery)``, ``async close()``) that receive every
        :class:`~scheduler.runtime.Delivery`, from connected and disconnected
        clients alike; closed at the end of the run.  To log what clients
        are sent, give them the same `encode`, e.g.
        ``NDJSONFileSink(path, encode)``.

    Notes
    -----
    One server serves one run: :meth:`serve_until` may be called once.

    Examples
    --------
    >>> from scheduler.ndjson import NDJSONServer
    >>> server = NDJSONServer(lambda o: (o["t"], None), lambda chunk: chunk, lambda d: {})
    >>> server.accepted, server.rejected
    (0, 0)
    """

    def __init__(
        self,
        parse,
        process,
        encode,
        *,
        host="127.0.0.1",
        port=0,
        max_line_bytes=65536,
        max_chunk=256,
        log_sinks=(),
    ):
        _check_callable("parse", parse)
        _check_callable("encode", encode)
        log_sinks = tuple(log_sinks)
        for i, sink in enumerate(log_sinks):
            _check_sink(f"log_sinks[{i}]", sink)
        self._parse = parse
        self._encode = encode
        self._host = host
        self._port = _check_count("port", port)
        if self._port > 65535:
            raise ValueError(f"port must be in [0, 65535], got {self._port}")
        self._max_line_bytes = _positive("max_line_bytes", max_line_bytes)
        max_chunk = _positive("max_chunk", max_chunk)
        self._source = QueueSource(maxsize=4 * max_chunk)
        self._runtime = Runtime(process, (_Replies(self), *log_sinks), max_chunk=max_chunk)
        self._server = None
        self._served = False
        self._stopping = False
        self._ids = itertools.count()
        self._connections = {}  # id -> _Connection still owed answers or still reading
        self._readers = set()  # tasks reading a connection
        self._closings = set()  # tasks closing a finished connection
        self._accept_lock = asyncio.Lock()
        self._last_time = -math.inf
        self._accepted = 0
        self._rejected = 0

    @property
    def accepted(self):
        """int: lines accepted as stimuli so far."""
        return self._accepted

    @property
    def rejected(self):
        """int: lines answered with an error so far."""
        return self._rejected

    async def start(self):
        """Start listening; return the bound ``(host, port)``.

        Clients may connect and send from now on; their events wait (bounded)
        until :meth:`serve_until` runs the simulation.

        Raises
        ------
        RuntimeError
            If called twice.

        Examples
        --------
        >>> from scheduler.ndjson import NDJSONServer
        >>> from scheduler.runtime import run
        >>> async def bound():
        ...     server = NDJSONServer(lambda o: (0.0, o), lambda c: c, lambda d: {})
        ...     host, port = await server.start()
        ...     server._server.close()
        ...     return host, port > 0
        >>> run(bound())
        ('127.0.0.1', True)
        """
        if self._server is not None:
            raise RuntimeError("NDJSONServer.start() was already called")
        self._server = await asyncio.start_server(
            self._accept_connection, self._host, self._port, limit=self._max_line_bytes
        )
        host, port = self._server.sockets[0].getsockname()[:2]
        return host, port

    async def serve_until(self, stop):
        """Run the simulation until `stop` is set, then finish everything accepted.

        Starts listening first if :meth:`start` was not called.  Once `stop`
        is set: stop listening and reading, process every accepted event,
        answer it (to clients still connected) and hand it to the log sinks,
        close the connections and the sinks.

        Parameters
        ----------
        stop : asyncio.Event

        Returns
        -------
        scheduler.runtime.RunReport
            Of the runtime; sink 0 is the router that answers clients, the
            log sinks follow.

        Raises
        ------
        RuntimeError
            If called a second time.
        Exception
            Whatever ``process`` raised, after the connections were closed.

        Examples
        --------
        >>> import asyncio
        >>> from scheduler.ndjson import NDJSONServer
        >>> from scheduler.runtime import run
        >>> async def idle():
        ...     stop = asyncio.Event()
        ...     stop.set()
        ...     server = NDJSONServer(lambda o: (0.0, o), lambda c: c, lambda d: {})
        ...     return (await server.serve_until(stop)).stimuli
        >>> run(idle())
        0
        """
        if self._served:
            raise RuntimeError("NDJSONServer.serve_until() serves one run; make a new server")
        self._served = True
        if self._server is None:
            await self.start()
        running = asyncio.create_task(self._runtime.run(self._source))
        stopping = asyncio.create_task(stop.wait())
        try:
            await asyncio.wait({running, stopping}, return_when=asyncio.FIRST_COMPLETED)
            await self._stop_reading()
            self._source.close()
            report = await running
            await asyncio.gather(*self._closings)
            await self._server.wait_closed()
        except BaseException:
            running.cancel()
            await asyncio.gather(running, return_exceptions=True)
            await self._drop_connections()
            raise
        finally:
            stopping.cancel()
        return report

    # -- connections ---------------------------------------------------------

    def _accept_connection(self, reader, writer):
        if self._stopping:
            writer.close()
            return
        connection = _Connection(next(self._ids), writer)
        self._connections[connection.id] = connection
        task = asyncio.create_task(self._read_connection(reader, connection))
        self._readers.add(task)
        task.add_done_callback(self._readers.discard)

    async def _read_connection(self, reader, connection):
        try:
            for seq in itertools.count():
                line = await _read_line(reader)
                if line is None:
                    return
                await self._take_line(connection, seq, line)
        except OSError:  # reset by the peer: nothing more to read or write
            connection.alive = False
        finally:
            connection.reading = False
            self._close_if_done(connection)

    async def _take_line(self, connection, seq, line):
        try:
            stimulus = self._decode(line, connection.id)
        except ValueError as exc:
            await self._reject(connection, seq, str(exc))
            return
        async with self._accept_lock:  # check and enqueue atomically: acceptance order is time order
            if stimulus.time < self._last_time:
                error = f"time {stimulus.time!r} is earlier than the last accepted time {self._last_time!r}"
            else:
                await self._source.put(stimulus)
                self._last_time = stimulus.time
                connection.owed.append(seq)
                self._accepted += 1
                return
        await self._reject(connection, seq, error)

    def _decode(self, line, origin):
        """The stimulus of one line; ValueError with the message for the client."""
        if line is _TOO_LONG:
            raise ValueError(f"line longer than {self._max_line_bytes} bytes")
        try:
            obj = json.loads(line)
        except ValueError as exc:
            raise ValueError(f"invalid JSON: {exc}") from None
        if not isinstance(obj, dict):
            raise ValueError(f"expected a JSON object, got {_JSON_TYPES.get(type(obj), 'null')}")
        try:
            parsed = self._parse(obj)
        except ValueError:
            raise
        except Exception as exc:  # a parse() that indexes a missing key, say: still the line's fault
            raise ValueError(f"parse() raised {type(exc).__name__}: {exc}") from None
        if not (isinstance(parsed, tuple) and len(parsed) == 2):
            raise ValueError(f"parse() must return a (time, data) pair, got {type(parsed).__name__}")
        try:
            return Stimulus(parsed[0], parsed[1], origin=origin)
        except TypeError as exc:
            raise ValueError(str(exc)) from None

    async def _reject(self, connection, seq, message):
        self._rejected += 1
        await connection.reject(_json_line({"error": message, "seq": seq}))

    async def _route(self, delivery):
        """Answer the client a delivery came from (the runtime's first sink)."""
        connection = self._connections[delivery.stimulus.origin]
        seq = connection.owed.popleft()
        await connection.answer(self._answer_line(delivery, seq))
        self._close_if_done(connection)

    def _answer_line(self, delivery, seq):
        try:
            return _json_line({**self._encode(delivery), "seq": seq})
        except Exception as exc:
            return _json_line({"error": f"encode() failed: {type(exc).__name__}: {exc}", "seq": seq})

    def _close_if_done(self, connection):
        if connection.reading or connection.owed or connection.id not in self._connections:
            return
        del self._connections[connection.id]
        task = asyncio.create_task(connection.close())
        self._closings.add(task)
        task.add_done_callback(self._closings.discard)

    async def _stop_reading(self):
        self._stopping = True
        self._server.close()
        readers = list(self._readers)
        for task in readers:
            task.cancel()
        await asyncio.gather(*readers, return_exceptions=True)
        for connection in list(self._connections.values()):  # including any whose reader never started
            connection.reading = False
            self._close_if_done(connection)

    async def _drop_connections(self):
        self._stopping = True
        self._server.close()
        for task in list(self._readers):
            task.cancel()
        for connection in list(self._connections.values()):
            connection.abort()
        await asyncio.gather(*self._readers, *self._closings, return_exceptions=True)


class _Replies:
    """The runtime sink that answers each delivery's client."""

    def __init__(self, server):
        self._server = server

    async def send(self, delivery):
        await self._server._route(delivery)

    async def close(self):
        pass


class _Connection:
    """One client: its socket writer and the answers it is still owed, in seq order."""

    def __init__(self, ident, writer):
        self.id = ident
        self.owed = deque()  # seqs accepted and not answered yet, then rejection lines queued behind them
        self.reading = True
        self.alive = True  # False once the peer is gone: answers are skipped
        self._writer = writer
        self._lock = asyncio.Lock()  # one write at a time, in the order they were asked for

    async def reject(self, line):
        if self.owed:  # wait behind the answers owed for earlier lines
            self.owed.append(line)
        else:
            await self._send(line)

    async def answer(self, line):
        """Send the answer for the seq just taken from :attr:`owed`, then the rejections behind it."""
        lines = [line]
        while self.owed and isinstance(self.owed[0], bytes):
            lines.append(self.owed.popleft())
        await self._send(b"".join(lines))

    async def _send(self, data):
        async with self._lock:
            if not self.alive:
                return
            if self._writer.is_closing():
                self.alive = False
                return
            try:
                self._writer.write(data)
                await self._writer.drain()
            except OSError:  # ConnectionResetError, BrokenPipeError: the client left
                self.alive = False

    async def close(self):
        async with self._lock:
            self._writer.close()
            try:
                await self._writer.wait_closed()
            except OSError:
                pass

    def abort(self):
        self.alive = False
        self._writer.transport.abort()


async def _read_line(reader):
    """The next line (bytes), ``_TOO_LONG`` for a skipped over-long line, ``None`` at the end."""
    try:
        return await reader.readuntil(b"\n")
    except asyncio.IncompleteReadError as eof:
        return eof.partial if eof.partial.strip() else None
    except asyncio.LimitOverrunError as overrun:
        await _skip_line(reader, overrun.consumed)
        return _TOO_LONG


async def _skip_line(reader, consumed):
    """Discard the rest of an over-long line, through its newline, a buffer at a time."""
    while True:
        await reader.readexactly(consumed)  # bytes already buffered, newline-free
        try:
            await reader.readuntil(b"\n")
            return
        except asyncio.LimitOverrunError as overrun:
            consumed = overrun.consumed
        except asyncio.IncompleteReadError:
            return
