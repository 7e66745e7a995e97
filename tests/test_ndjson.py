"""Tests for :mod:`scheduler.ndjson`: real asyncio clients on 127.0.0.1, on uvloop."""

import asyncio
import doctest
import json

import pytest

import scheduler.ndjson as ndjson_module
from scheduler.ndjson import NDJSONServer
from scheduler.runtime import ListSink, run

TIMEOUT = 20.0  # seconds; a deadlock fails instead of hanging


def run_scenario(coro):
    async def bounded():
        async with asyncio.timeout(TIMEOUT):
            return await coro

    return run(bounded())


def parse(obj):
    if "t" not in obj:
        raise ValueError("missing field 't'")
    return obj["t"], obj.get("x", 0)


def double(chunk):
    return [2 * s.data for s in chunk]


def encode(delivery):
    return {"t": delivery.stimulus.time, "y": delivery.result}


def event(t, x=0):
    return (json.dumps({"t": t, "x": x}) + "\n").encode()


class Harness:
    """A server running serve_until() in a task, with a ListSink as its log."""

    def __init__(self, **options):
        self.log = ListSink()
        options.setdefault("log_sinks", [self.log])
        self.server = NDJSONServer(parse, options.pop("process", double), options.pop("encode", encode), **options)
        self.stop_event = asyncio.Event()

    async def __aenter__(self):
        self.address = await self.server.start()
        self.serving = asyncio.create_task(self.server.serve_until(self.stop_event))
        return self

    async def __aexit__(self, *exc):
        if not self.serving.done():
            self.serving.cancel()
            await asyncio.gather(self.serving, return_exceptions=True)

    async def connect(self):
        return await asyncio.open_connection(*self.address)

    async def stop(self):
        self.stop_event.set()
        return await self.serving

    async def until_accepted(self, count):
        while self.server.accepted + self.server.rejected < count:
            await asyncio.sleep(0.001)


async def read_answers(reader, count):
    return [json.loads(await reader.readline()) for _ in range(count)]


async def exchange(harness, data, count):
    """Send `data`, read `count` answers, close."""
    reader, writer = await harness.connect()
    writer.write(data)
    await writer.drain()
    answers = await read_answers(reader, count)
    writer.close()
    await writer.wait_closed()
    return answers


def test_doctests():
    result = doctest.testmod(ndjson_module, optionflags=doctest.ELLIPSIS)
    assert result.attempted > 0
    assert result.failed == 0


def test_round_trip():
    async def scenario():
        async with Harness() as h:
            answers = await exchange(h, event(0.0, 1) + event(0.5, 2) + event(0.5, 3), 3)
            report = await h.stop()
            return answers, report, h

    answers, report, h = run_scenario(scenario())
    assert answers == [
        {"t": 0.0, "y": 2, "seq": 0},
        {"t": 0.5, "y": 4, "seq": 1},
        {"t": 0.5, "y": 6, "seq": 2},
    ]
    assert (report.stimuli, report.sink_errors) == (3, [])
    assert [d.result for d in h.log.items] == [2, 4, 6]
    assert h.log.closed
    assert (h.server.accepted, h.server.rejected) == (3, 0)


def test_rejections_answer_with_seq_and_the_connection_goes_on():
    lines = [
        event(0.0, 1),  # 0 ok
        b'{"t": 1.0,\n',  # 1 malformed JSON
        b"[1, 2, 3]\n",  # 2 not an object
        b'{"x": 5}\n',  # 3 parse() ValueError
        b'{"t": 0.5, "x": "' + b"a" * 200_000 + b'"}\n',  # 4 longer than max_line_bytes
        event(-1.0, 1),  # 5 earlier than the last accepted time
        event(1.0, 2),  # 6 ok
        b"\n",  # 7 empty
        b'{"t": "soon"}\n',  # 8 time not a number
        b'{"t": NaN}\n',  # 9 time not finite
        event(1.0, 3),  # 10 ok: equal times are allowed
    ]

    async def scenario():
        async with Harness(max_line_bytes=1024) as h:
            answers = await exchange(h, b"".join(lines), len(lines))
            report = await h.stop()
            return answers, report, h.server

    answers, report, server = run_scenario(scenario())
    assert [a["seq"] for a in answers] == list(range(len(lines)))  # one answer per line, in seq order
    ok = {0: 2, 6: 4, 10: 6}
    for seq, answer in enumerate(answers):
        if seq in ok:
            assert answer == {"t": answer["t"], "y": ok[seq], "seq": seq}
        else:
            assert set(answer) == {"error", "seq"}
    errors = {seq: answers[seq]["error"] for seq in range(len(lines)) if seq not in ok}
    assert errors[1].startswith("invalid JSON: ")
    assert errors[2] == "expected a JSON object, got array"
    assert errors[3] == "missing field 't'"
    assert errors[4] == "line longer than 1024 bytes"
    assert errors[5] == "time -1.0 is earlier than the last accepted time 0.0"
    assert errors[7].startswith("invalid JSON: ")
    assert errors[8] == "Stimulus.time must be a real number, got str"
    assert errors[9] == "Stimulus.time must be a finite number, got nan"
    assert (server.accepted, server.rejected) == (3, 8)
    assert report.stimuli == 3


def test_line_length_limit_is_exact():
    def padded(total):
        body = b'{"t": 0.0}'
        return body + b" " * (total - len(body)) + b"\n"

    async def scenario():
        async with Harness(max_line_bytes=100) as h:
            answers = await exchange(h, padded(100) + padded(101) + padded(100), 3)
            await h.stop()
            return answers

    answers = run_scenario(scenario())
    assert "error" not in answers[0] and "error" not in answers[2]
    assert answers[1] == {"error": "line longer than 100 bytes", "seq": 1}


def test_oversized_line_at_the_end_of_the_stream():
    async def scenario():
        async with Harness(max_line_bytes=64) as h:
            reader, writer = await h.connect()
            writer.write(event(0.0) + b"x" * 10_000)  # no newline: the client half-closes
            writer.write_eof()
            answers = await read_answers(reader, 2)
            assert await reader.read() == b""  # the server closes once it has answered
            writer.close()
            await h.stop()
            return answers

    answers = run_scenario(scenario())
    assert answers[0]["seq"] == 0 and "y" in answers[0]
    assert answers[1] == {"error": "line longer than 64 bytes", "seq": 1}


def test_last_line_without_newline_is_taken():
    async def scenario():
        async with Harness() as h:
            reader, writer = await h.connect()
            writer.write(event(0.0, 1) + b'{"t": 1.0, "x": 2}')
            writer.write_eof()
            answers = await read_answers(reader, 2)
            writer.close()
            await h.stop()
            return answers

    assert [a.get("y") for a in run_scenario(scenario())] == [2, 4]


def test_two_clients_share_one_timeline_and_get_their_own_answers():
    async def scenario():
        async with Harness() as h:
            (ra, wa), (rb, wb) = await h.connect(), await h.connect()
            wa.write(b"".join(event(t, 1) for t in range(5)))
            first_a = await read_answers(ra, 5)
            wb.write(b"".join(event(t, 100) for t in range(100, 105)))
            first_b = await read_answers(rb, 5)
            wa.write(event(5.0, 1) + event(200.0, 1))  # 5.0 is now in the past
            second_a = await read_answers(ra, 2)
            for w in (wa, wb):
                w.close()
            report = await h.stop()
            return first_a, first_b, second_a, report, h

    first_a, first_b, second_a, report, h = run_scenario(scenario())
    assert first_a == [{"t": float(t), "y": 2, "seq": t} for t in range(5)]
    assert first_b == [{"t": float(t), "y": 200, "seq": t - 100} for t in range(100, 105)]
    assert second_a == [
        {"error": "time 5.0 is earlier than the last accepted time 104.0", "seq": 5},
        {"t": 200.0, "y": 2, "seq": 6},
    ]
    assert report.stimuli == 11
    assert [d.stimulus.time for d in h.log.items] == [*range(5), *range(100, 105), 200.0]
    origins = [d.stimulus.origin for d in h.log.items]
    assert len(set(origins)) == 2 and origins[0] == origins[-1] != origins[5]


def test_disconnected_client_loses_nothing_accepted():
    n = 300

    async def scenario():
        async with Harness() as h:
            _, writer = await h.connect()
            writer.write(b"".join(event(t / 100, t) for t in range(n)))
            await writer.drain()
            writer.close()  # gone before any answer
            await writer.wait_closed()
            await h.until_accepted(n)
            report = await h.stop()
            return report, h

    report, h = run_scenario(scenario())
    assert h.server.accepted == n
    assert [d.result for d in h.log.items] == [2 * t for t in range(n)]
    assert report.stimuli == n
    assert report.sink_errors == []


def test_client_reset_while_answers_are_written():
    n = 2000

    async def scenario():
        async with Harness() as h:
            reader, writer = await h.connect()
            writer.write(b"".join(event(t / 100, t) for t in range(n)))
            await writer.drain()
            await read_answers(reader, 10)
            writer.transport.abort()  # RST
            await h.until_accepted(n)
            other = await exchange(h, event(1e6, 1), 1)  # the server still serves others
            report = await h.stop()
            return other, report, h

    other, report, h = run_scenario(scenario())
    assert other == [{"t": 1e6, "y": 2, "seq": 0}]
    assert [d.result for d in h.log.items] == [2 * t for t in range(n)] + [2]
    assert report.sink_errors == []


def test_stop_closes_idle_connections_and_finishes_pending_work():
    async def scenario():
        async with Harness() as h:
            idle_reader, idle_writer = await h.connect()
            reader, writer = await h.connect()
            writer.write(event(0.0, 21))
            await h.until_accepted(1)
            report = await h.stop()
            answer = await read_answers(reader, 1)
            assert await idle_reader.read() == b""
            assert await reader.read() == b""
            for w in (idle_writer, writer):
                w.close()
            with pytest.raises(OSError):
                await asyncio.open_connection(*h.address)
            return answer, report

    answer, report = run_scenario(scenario())
    assert answer == [{"t": 0.0, "y": 42, "seq": 0}]
    assert report.stimuli == 1


def test_encode_errors_are_answered_per_event():
    def fussy(delivery):
        if delivery.result == 4:
            raise KeyError("y")
        return {"y": delivery.result}

    async def scenario():
        async with Harness(encode=fussy, log_sinks=()) as h:
            answers = await exchange(h, event(0, 1) + event(1, 2) + event(2, 3), 3)
            await h.stop()
            return answers

    assert run_scenario(scenario()) == [
        {"y": 2, "seq": 0},
        {"error": "encode() failed: KeyError: 'y'", "seq": 1},
        {"y": 6, "seq": 2},
    ]


def test_process_error_propagates_from_serve_until():
    def broken(chunk):
        raise ArithmeticError("kernel blew up")

    async def scenario():
        async with Harness(process=broken) as h:
            reader, writer = await h.connect()
            writer.write(event(0.0))
            with pytest.raises(ArithmeticError, match="kernel blew up"):
                await h.serving
            assert await reader.read() == b""  # the connection was closed
            writer.close()
            assert asyncio.all_tasks() == {asyncio.current_task()}

    run_scenario(scenario())


def test_serve_until_runs_once_and_start_binds_once():
    async def scenario():
        async with Harness() as h:
            with pytest.raises(RuntimeError, match="already called"):
                await h.server.start()
            await h.stop()
            with pytest.raises(RuntimeError, match="serves one run"):
                await h.server.serve_until(asyncio.Event())

    run_scenario(scenario())


def test_constructor_argument_errors():
    with pytest.raises(TypeError, match="parse must be callable"):
        NDJSONServer(None, double, encode)
    with pytest.raises(TypeError, match="encode must be callable"):
        NDJSONServer(parse, double, "json")
    with pytest.raises(TypeError, match="process must be callable"):
        NDJSONServer(parse, 1, encode)
    with pytest.raises(ValueError, match=r"port must be in \[0, 65535\], got 70000"):
        NDJSONServer(parse, double, encode, port=70000)
    with pytest.raises(ValueError, match="max_line_bytes must be >= 1, got 0"):
        NDJSONServer(parse, double, encode, max_line_bytes=0)
    with pytest.raises(TypeError, match=r"log_sinks\[0\] must have async send"):
        NDJSONServer(parse, double, encode, log_sinks=[print])


def test_load_20k_events_none_lost_or_reordered():
    """Correctness under load (not timed): 20 000 events, answers and log complete and in order."""
    n, batch = 20_000, 500

    async def scenario():
        async with Harness(max_chunk=128) as h:
            reader, writer = await h.connect()

            async def send():
                for start in range(0, n, batch):
                    writer.write(b"".join(event(t * 1e-3, t) for t in range(start, start + batch)))
                    await writer.drain()

            sending = asyncio.create_task(send())
            answers = await read_answers(reader, n)
            await sending
            writer.close()
            report = await h.stop()
            return answers, report, h

    answers, report, h = run_scenario(scenario())
    assert [a["seq"] for a in answers] == list(range(n))
    assert [a["y"] for a in answers] == [2 * t for t in range(n)]
    assert [d.stimulus.data for d in h.log.items] == list(range(n))
    assert report.stimuli == n and report.deliveries == 2 * n
    assert report.chunks < n  # chunked under load
    assert (h.server.accepted, h.server.rejected) == (n, 0)
