"""``eventhorizon serve``: the streaming classifier behind a newline-delimited JSON socket.

Clients connect over TCP (loopback by default) and send one JSON object per
line, each a stimulus event at simulated time ``t`` (seconds, never earlier
than the previous accepted event, across all clients — the network has one
timeline):

* ``{"t": 0.5, "frame": [784 numbers]}`` — a whole frame;
* ``{"t": 0.5, "ids": [12, 13], "values": [0.0, 0.8]}`` — set some pixels
  (positions 0…783, row-major).

The network re-settles by events after each one (only changed pixels
broadcast) and answers, on the same connection, with one line per event::

    {"seq": 0, "t": 0.5, "class": 7, "outputs": [...], "synaptic_ops": 2150, "changed_inputs": 4}

``seq`` is the event's line number on that connection. A malformed,
oversized or out-of-order line gets ``{"seq": k, "error": "..."}`` and the
connection carries on. Every answer is also appended to ``outputs.ndjson``
in the serve directory, so a client that disconnects loses nothing it had
sent (:class:`scheduler.ndjson.NDJSONServer` does the networking).
"""

import math

import numpy as np

from eventhorizon.streaming import Changes, StreamSettler

__all__ = ["StimulusProtocol", "make_server", "serve_scenario"]

_PIXELS = 784
_NUMBER_TYPES = {int, float}  # what json.loads gives for numbers


class StimulusProtocol:
    """Parses stimulus messages, settles them in chunks, and encodes the answers.

    Parameters
    ----------
    settler : StreamSettler
        The network, kept at equilibrium between events (its outputs are the classes).

    Examples
    --------
    >>> from eventhorizon.eqprop import EqPropConfig, EqPropModel
    >>> model = EqPropModel(EqPropConfig(sizes=(784, 20, 10)))
    >>> proto = StimulusProtocol(StreamSettler(model.network, 1e-3, output_ids=model.output_ids))
    >>> t, data = proto.parse({"t": 0.0, "ids": [5, 6], "values": [1.0, 0.5]})
    >>> proto.parse({"t": 0.1, "ids": [900], "values": [1.0]})
    Traceback (most recent call last):
    ...
    ValueError: ids: pixel positions must lie in [0, 784), got 900
    """

    def __init__(self, settler):
        self.settler = settler
        self.input_ids = settler.network.input_ids
        if self.input_ids.shape[0] != _PIXELS:
            raise ValueError(f"the classifier must have {_PIXELS} inputs, got {self.input_ids.shape[0]}")

    def parse(self, obj):
        """``(t, (positions, values))`` of one message; ValueError saying what is wrong."""
        t = obj.get("t")
        if isinstance(t, bool) or not isinstance(t, (int, float)) or not math.isfinite(t):
            raise ValueError(f"t: expected a finite number of seconds, got {t!r}")
        if "frame" in obj:
            if set(obj) - {"t", "frame"}:
                raise ValueError(f"a frame message has keys t and frame only, got {sorted(obj)}")
            values = _numbers(obj["frame"], "frame")
            if values.shape != (_PIXELS,):
                raise ValueError(f"frame: expected {_PIXELS} pixel values, got {values.shape[0]}")
            return float(t), (np.arange(_PIXELS), values)
        if set(obj) != {"t", "ids", "values"}:
            raise ValueError(f"expected keys t and frame, or t, ids and values; got {sorted(obj)}")
        ids, values = obj["ids"], _numbers(obj["values"], "values")
        if not isinstance(ids, list) or not {type(i) for i in ids} <= {int}:
            raise ValueError("ids: expected a list of integer pixel positions")
        if len(ids) != values.size:
            raise ValueError(f"ids and values must have one length, got {len(ids)} and {values.size}")
        if ids and (min(ids) < 0 or max(ids) >= _PIXELS):
            bad = next(i for i in ids if not 0 <= i < _PIXELS)
            raise ValueError(f"ids: pixel positions must lie in [0, {_PIXELS}), got {bad}")
        return float(t), (np.array(ids, dtype=np.int64), values)

    def changes(self, stimuli):
        """The chunk's events as :class:`~eventhorizon.streaming.Changes` (only values that change)."""
        current = self.settler.inputs
        ptr, ids, values = [0], [], []
        for positions, new in stimuli:
            moved = positions[current[positions] != new]
            current[positions] = new
            ids.append(self.input_ids[moved])
            values.append(current[moved])
            ptr.append(ptr[-1] + moved.size)
        empty = np.zeros(0)
        return Changes(np.array(ptr, np.int64), np.concatenate(ids or [empty]).astype(np.int32),
                       np.concatenate(values or [empty]).astype(np.float32))

    def process(self, chunk):
        """Settle after each stimulus of ``chunk`` (runtime stimuli); one result per stimulus."""
        res = self.settler.settle_changes(self.changes([s.data for s in chunk]))
        preds = res.predictions
        ops = res.column("synaptic_ops")
        return [(int(preds[k]), res.outputs[k], int(ops[k]), int(res.changed_inputs[k])) for k in range(len(chunk))]

    @staticmethod
    def encode(delivery):
        """The JSON answer to one settled event."""
        cls, outputs, ops, changed = delivery.result
        return {"t": delivery.stimulus.time, "class": cls, "outputs": [round(float(v), 6) for v in outputs],
                "synaptic_ops": ops, "changed_inputs": changed}


def _numbers(value, name):
    if not isinstance(value, list) or not {type(v) for v in value} <= _NUMBER_TYPES:  # bool is not a number here
        raise ValueError(f"{name}: expected a list of numbers")
    arr = np.array(value, dtype=np.float32)
    if not np.all(np.isfinite(arr)):
        raise ValueError(f"{name}: values must be finite")
    return arr


def make_server(model, eps, serve_settings, log_path, chunk=256):
    """An :class:`~scheduler.ndjson.NDJSONServer` around ``model`` that also appends every answer to ``log_path``."""
    from scheduler.ndjson import NDJSONServer
    from scheduler.runtime import NDJSONFileSink

    proto = StimulusProtocol(StreamSettler(model.network, eps, output_ids=model.output_ids))
    # parse() gives (t, data); the server wraps it into a runtime Stimulus
    log = NDJSONFileSink(log_path, lambda d: {"origin": str(d.stimulus.origin), **proto.encode(d)})
    return NDJSONServer(proto.parse, proto.process, proto.encode, host=serve_settings.host,
                        port=serve_settings.port, max_line_bytes=serve_settings.max_line_bytes,
                        max_chunk=chunk, log_sinks=[log])


def serve_scenario(run, host=None, port=None, ready=None, stop=None):
    """Serve a streaming scenario's classifier until SIGINT/SIGTERM (or ``stop`` is set); returns a summary line.

    Parameters
    ----------
    run : eventhorizon.runner.Run
        Its directory receives ``outputs.ndjson`` (every answer) and the classifier when one is trained.
    host, port : optional
        Override the scenario's ``[serve]`` address.
    ready : callable, optional
        Called with a line saying where the server listens, once it does.
    stop : asyncio.Event, optional
        Set it (from the server's loop) to stop; signals set it too.
    """
    import asyncio
    import signal

    from eventhorizon.stream_runner import load_classifier
    from scheduler import runtime as rt

    sc = run.scenario
    model = load_classifier(sc, run.directory, run.log)
    settings = sc.serve.model_copy(update={k: v for k, v in (("host", host), ("port", port)) if v is not None})
    eps = sc.dynamics.epsilon or model.config.epsilon
    server = make_server(model, eps, settings, run.directory / "outputs.ndjson", chunk=sc.run.chunk_frames)

    async def main():
        done = stop or asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, done.set)
        bound_host, bound_port = await server.start()
        run.log.info("serving on %s:%d", bound_host, bound_port)
        if ready is not None:
            ready(f"eventhorizon serve: listening on {bound_host}:{bound_port} ({rt.loop_name()}); "
                  f"answers also go to {run.directory / 'outputs.ndjson'}; Ctrl-C stops")
        return await server.serve_until(done)

    report = rt.run(main())
    summary = (f"served {server.accepted} events ({server.rejected} rejected) in {report.wall_seconds:.1f} s; "
               f"answers in {run.directory / 'outputs.ndjson'}")
    run.log.info(summary)
    return summary
