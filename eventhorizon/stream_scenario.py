"""Schema of streaming scenarios (``[dynamics] mode = "stream"``).

A trained EqProp classifier watches a video-like stream built from
Fashion-MNIST test images (:mod:`eventhorizon.moving_digits`) and re-settles
by events after every frame, warm-started from the previous equilibrium
(:mod:`eventhorizon.streaming`). Sections:

``[model]``     the classifier: a model file, or a quick EqProp training run first;
``[input]``     where the Fashion-MNIST IDX files are;
``[stream]``    frames, frame rate, and the stream's motion (drift, occluder, cuts);
``[dynamics]``  ``mode = "stream"``, ε and the scheduler queue;
``[run]``       seed, baselines, chunking, checkpoints;
``[serve]``     ``eventhorizon serve``: address and message limits;
``[output]``    figures.

:func:`eventhorizon.scenario.parse_scenario` picks this schema when
``dynamics.mode`` is ``"stream"``.
"""

from typing import Literal

from pydantic import Field, model_validator

from eventhorizon.moving_digits import MovingDigitsConfig
from eventhorizon.scenario import INT64_MAX, FashionMnistInput, _Section, seed_from_run

__all__ = ["StreamScenario"]

_DEFAULT = MovingDigitsConfig()  # one set of stream defaults, for the schema and the Python API


class StreamModel(_Section):
    """The classifier: ``path`` to a model file, or trained first (784-hidden-10 EqProp) in the run directory."""

    path: str | None = Field(None, description="model file written by a [learning] run (model.npz); relative "
                                               "paths are relative to the scenario file. Absent: train one first")
    hidden: int = Field(500, gt=0, description="hidden neurons of a model trained first")
    train_samples: int = Field(3000, gt=0, le=60000, description="training images of a model trained first")
    epochs: int = Field(3, gt=0, description="epochs of a model trained first")


class StreamSection(_Section):
    """The moving-image stream (see eventhorizon.moving_digits)."""

    kind: Literal["moving_digits"] = Field("moving_digits", description="stream generator")
    frames: int = Field(gt=0, description="length of the stream, frames")
    frame_rate_hz: float = Field(30.0, gt=0, description="frames per simulated second (--realtime paces to it)")
    switch_every: int = Field(_DEFAULT.switch_every, gt=0,
                              description="frames per image before a cut to the next test image")
    drift_every: int = Field(_DEFAULT.drift_every, gt=0, description="frames between one-pixel moves of the image")
    drift_pixels: int = Field(_DEFAULT.drift_pixels, ge=0, le=8,
                              description="amplitude of the back-and-forth drift, pixels")
    occluder_width: int = Field(_DEFAULT.occluder_width, ge=0, le=28,
                                description="width of the occluding bar sliding across, pixels (0: none)")
    occluder_every: int = Field(_DEFAULT.occluder_every, gt=0,
                                description="frames between one-pixel moves of the occluder")
    occluder_value: float = Field(_DEFAULT.occluder_value, ge=0, le=1,
                                  description="pixel value of the occluder (0: background)")
    seed: int | None = Field(None, ge=0, lt=INT64_MAX, description="order of the images (default run.seed)")


class StreamDynamics(_Section):
    """Event-driven re-settling after every frame."""

    mode: Literal["stream"]
    epsilon: float | None = Field(None, gt=0, description="broadcast threshold ε (default: the model's)")
    scheduler: Literal["tournament", "heap"] = Field("tournament", description="priority queue ordering the neurons")


class StreamRun(_Section):
    """Seed, baselines, chunking and checkpoints."""

    seed: int = Field(0, ge=0, lt=INT64_MAX, description="master seed (image order, model training)")
    compare_dense: bool = Field(True, description="also settle every frame densely, warm-started, to the same ε "
                                                  "(plain and input-hoisted), counting multiply-adds and time")
    compare_looped: bool = Field(True, description="also run LoopedMLP-30 (30 dense sweeps from rest) on every frame")
    chunk_frames: int = Field(256, gt=0, le=65536, description="most frames settled per kernel call (frames "
                                                               "waiting when the kernel is free are taken together)")
    checkpoint_seconds: float = Field(5.0, gt=0, description="wall-clock seconds between checkpoints")


class ServeSection(_Section):
    """``eventhorizon serve``: newline-delimited JSON over TCP."""

    host: str = Field("127.0.0.1", description="address to listen on (loopback by default)")
    port: int = Field(8765, ge=0, le=65535, description="TCP port (0: any free port)")
    max_line_bytes: int = Field(65536, gt=0, description="longer messages are rejected")


class StreamOutput(_Section):
    """What a run writes besides metrics.json, frames.npz and the checkpoint."""

    figures: bool = Field(True, description="draw MACs per frame and accuracy over time at the end")


class StreamScenario(_Section):
    """A validated streaming scenario."""

    description: str = Field("", description="one line saying what the scenario shows")
    model: StreamModel = StreamModel()
    input: FashionMnistInput
    stream: StreamSection
    dynamics: StreamDynamics
    run: StreamRun = StreamRun()
    serve: ServeSection = ServeSection()
    output: StreamOutput = StreamOutput()

    @model_validator(mode="before")
    @classmethod
    def _default_seed(cls, data):
        return seed_from_run(data, "stream")

    @model_validator(mode="after")
    def _test_split(self):
        if self.input.split not in (None, "test"):
            raise ValueError("input.split: streams are built from the test split; remove it or set 'test'")
        return self
