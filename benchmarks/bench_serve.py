"""Load test of ``eventhorizon serve`` on loopback: event rate, latency, nothing lost or reordered.

Starts ``eventhorizon serve SCENARIO --port 0`` as a separate process, then
one local asyncio client streams ``--events`` stimulus events to it as fast
as a bounded window allows (at most ``--window`` events unanswered), and
reads every answer. Each event sets up to ``--pixels`` pixels: the changed
pixels of a moving_digits stream, frame after frame, cut into events of that
size (DVS-camera style). The client checks that answers come back one per
event, in order (``seq``), without errors, and reports the sustained rate
and the latency from writing an event to reading its answer.

Needs the Fashion-MNIST IDX files (``apt-get install -y dataset-fashion-mnist``)::

    python3 benchmarks/bench_serve.py --events 100000 --set model.path=RUN_DIR/model.npz
"""

import argparse
import asyncio
import json
import subprocess
import sys
import time

import numpy as np

from eventhorizon.scenario import load_scenario, resolve_scenario
from eventhorizon.stream_runner import build_stream
from scheduler.runtime import run as run_loop


def events(sc, n_events, pixels):
    """``n_events`` messages: the stream's pixel changes, frame by frame, ``pixels`` at a time."""
    stream = build_stream(sc)
    previous = np.zeros(stream.frame_size, np.float32)
    out, frame, period = [], 0, 1.0 / sc.stream.frame_rate_hz
    while len(out) < n_events:
        current = stream.frames(frame % stream.n_frames, frame % stream.n_frames + 1)[0][0]
        changed = np.flatnonzero(current != previous)
        for a in range(0, changed.size, pixels):
            ids = changed[a:a + pixels]
            out.append(json.dumps({"t": frame * period, "ids": ids.tolist(),
                                   "values": [round(float(v), 4) for v in current[ids]]}).encode() + b"\n")
        previous, frame = current, frame + 1
    return out[:n_events]


async def load(port, lines, window):
    reader, writer = await asyncio.open_connection("127.0.0.1", port, limit=2**22)
    sent = np.zeros(len(lines))
    received = np.zeros(len(lines))
    slots = asyncio.Semaphore(window)
    problems = []

    async def send():
        for k, line in enumerate(lines):
            await slots.acquire()
            sent[k] = time.perf_counter()
            writer.write(line)
            if k % 64 == 0:
                await writer.drain()
        await writer.drain()

    async def receive():
        for k in range(len(lines)):
            answer = json.loads(await reader.readline())
            received[k] = time.perf_counter()
            slots.release()
            if answer.get("seq") != k or "error" in answer:
                problems.append(answer)

    start = time.perf_counter()
    await asyncio.gather(send(), receive())
    wall = time.perf_counter() - start
    writer.close()
    return wall, received - sent, problems


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--scenario", default="moving_digits")
    parser.add_argument("--set", action="append", default=[], metavar="KEY.PATH=VALUE")
    parser.add_argument("--events", type=int, default=100_000)
    parser.add_argument("--pixels", type=int, default=4, help="most pixels set by one event")
    parser.add_argument("--window", type=int, default=1000, help="most events in flight (unanswered)")
    parser.add_argument("--json", help="also write the results here")
    args = parser.parse_args(argv)
    sc = load_scenario(resolve_scenario(args.scenario), args.set)
    warm_up = 2000
    lines = events(sc, args.events + warm_up, args.pixels)
    sets = sum((["--set", s] for s in args.set), [])
    server = subprocess.Popen([sys.executable, "-m", "eventhorizon", "serve", args.scenario, "--port", "0", *sets],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        banner = server.stderr.readline()
        if "listening on" not in banner:
            raise SystemExit(f"serve did not start: {banner}{server.stderr.read()}")
        port = int(banner.split("listening on ")[1].split()[0].rsplit(":", 1)[1])
        # warm-up (kernels compiled or loaded, caches filled) on the first events; the timeline continues after it
        run_loop(load(port, lines[:warm_up], args.window))
        wall, latency, problems = run_loop(load(port, lines[warm_up:], args.window))
    finally:
        server.terminate()
        server.communicate(timeout=60)
    ms = latency * 1e3
    result = {"events": args.events, "pixels_per_event": args.pixels, "window": args.window, "wall_seconds": wall,
              "events_per_second": args.events / wall, "lost_or_reordered_or_rejected": len(problems),
              "latency_ms": {f"p{q}": float(np.percentile(ms, q)) for q in (50, 90, 99)} | {"max": float(ms.max())}}
    print(f"{args.events} events ({args.pixels} pixels each at most), window {args.window}: "
          f"{result['events_per_second']:.0f} events/s; latency p50 {result['latency_ms']['p50']:.2f} ms, "
          f"p90 {result['latency_ms']['p90']:.2f} ms, p99 {result['latency_ms']['p99']:.2f} ms, "
          f"max {result['latency_ms']['max']:.2f} ms; {len(problems)} answers missing, out of order or errors")
    if args.json:
        with open(args.json, "w") as fh:
            json.dump(result, fh, indent=2)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
