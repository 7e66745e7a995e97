"""Scenario files (TOML): schema, loading and validation.

A scenario describes one experiment. Sections:

``[network]``   the synapse graph (a generator and its parameters) and the neuron model;
``[input]``     where input vectors come from (Fashion-MNIST IDX files or generated);
``[dynamics]``  event-driven settling: ε, scheduler queue, event budget;
``[flops]``     settings of the event-vs-dense comparison.

Validation uses pydantic; every error is re-raised as :class:`ScenarioError`
naming the file, the key path, what was given and what was expected.
"""

import difflib
import tomllib
from pathlib import Path
from typing import Annotated, Literal, Union

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from eventhorizon.models import RATE_MODELS

__all__ = ["ScenarioError", "Scenario", "load_scenario", "parse_scenario", "build_network", "build_inputs"]


class ScenarioError(ValueError):
    """A scenario file is missing, unreadable or invalid."""


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


Activation = Literal[tuple(RATE_MODELS)]  # type: ignore[valid-type]


class InputRecurrentNetwork(_Section):
    """Inputs projecting (Glorot-uniform) onto a symmetric recurrent hidden layer."""

    generator: Literal["input_recurrent"]
    inputs: int = Field(gt=0, description="number of clamped input neurons")
    hidden: int = Field(gt=0, description="number of hidden (free) neurons")
    spectral_norm: float = Field(ge=0, lt=1, description="spectral norm of the hidden-to-hidden weights")
    recurrent_density: float = Field(1.0, gt=0, le=1, description="fraction of hidden pairs connected")
    activation: Activation = "tanh"
    seed: int = Field(0, ge=0, description="random seed")


class LayeredNetwork(_Section):
    """Layers front to back (Glorot-uniform), optionally with symmetric feedback."""

    generator: Literal["layered"]
    sizes: list[Annotated[int, Field(gt=0)]] = Field(min_length=2, description="layer sizes; the first is clamped")
    feedback: bool = False
    density: float = Field(1.0, gt=0, le=1)
    activation: Activation = "tanh"
    seed: int = Field(0, ge=0, description="random seed")


class RandomSparseNetwork(_Section):
    """Random directed graph; the first ``inputs`` neurons are clamped."""

    generator: Literal["random_sparse"]
    neurons: int = Field(gt=0)
    inputs: int = Field(ge=0)
    density: float = Field(gt=0, le=1)
    weight_scale: float = Field(0.4, gt=0, description="spread of a neuron's summed input per unit input spread")
    activation: Activation = "tanh"
    seed: int = Field(0, ge=0, description="random seed")

    @model_validator(mode="after")
    def _inputs_fit(self):
        if self.inputs >= self.neurons:
            raise ValueError(f"inputs ({self.inputs}) must be fewer than neurons ({self.neurons})")
        return self


NetworkSection = Annotated[
    Union[InputRecurrentNetwork, LayeredNetwork, RandomSparseNetwork], Field(discriminator="generator")
]


class FashionMnistInput(_Section):
    """Fashion-MNIST images (IDX files; see eventhorizon.datasets)."""

    source: Literal["fashion_mnist"]
    split: Literal["train", "test"] = "test"
    samples: int = Field(gt=0, le=70000)
    data_dir: str | None = Field(None, description="directory of the IDX files; default: $EVENTHORIZON_FASHION_MNIST "
                                                   "or /usr/share/datasets/fashion-mnist")


class GeneratedInput(_Section):
    """Random stimuli in [0, 1], each entry nonzero with probability ``density``."""

    source: Literal["generated"]
    samples: int = Field(gt=0)
    density: float = Field(0.5, gt=0, le=1)
    seed: int = Field(0, ge=0, description="random seed")


InputSection = Annotated[Union[FashionMnistInput, GeneratedInput], Field(discriminator="source")]


class DynamicsSection(_Section):
    mode: Literal["rate"] = "rate"
    epsilon: float = Field(gt=0, description="broadcast threshold ε (output units)")
    scheduler: Literal["tournament", "heap"] = "tournament"
    max_updates: int | None = Field(None, gt=0, description="event budget per settle (neuron updates)")


class FlopsSection(_Section):
    repeats: int = Field(3, gt=0, description="timing repeats; medians are reported")


class Scenario(_Section):
    """A validated scenario."""

    description: str = ""
    network: NetworkSection
    input: InputSection
    dynamics: DynamicsSection
    flops: FlopsSection = FlopsSection()

    @model_validator(mode="after")
    def _input_width(self):
        width = _input_count(self.network)
        if isinstance(self.input, FashionMnistInput) and width != 784:
            raise ValueError(f"Fashion-MNIST images have 784 pixels but the network has {width} inputs")
        return self


def _input_count(network):
    if isinstance(network, LayeredNetwork):
        return network.sizes[0]
    return network.inputs


def _union_members(model, field):
    annotation = model.model_fields[field].annotation
    return [c for c in getattr(annotation, "__args__", (annotation,))
            if isinstance(c, type) and issubclass(c, BaseModel)]


def _tag_of(member):
    for name in ("generator", "source"):
        if name in member.model_fields:
            return member.model_fields[name].annotation.__args__[0]
    return None


def _walk(loc):
    """Key path shown to the user, and the section model that holds its last key.

    pydantic puts a discriminated union's tag into the location right after
    the field (``network.random_sparse.weight_scal``); it is dropped from the
    path and selects the union member.
    """
    model, parent, parts, i = Scenario, None, [], 0
    while i < len(loc):
        part, i = loc[i], i + 1
        parts.append(str(part))
        parent = model
        if model is None or not isinstance(part, str) or part not in model.model_fields:
            model = None
            continue
        members = _union_members(model, part)
        if len(members) > 1 and i < len(loc):
            tag, i = loc[i], i + 1
            model = next((m for m in members if _tag_of(m) == tag), None)
        else:
            model = members[0] if members else None
    return parts, parent


def _format_error(error):
    parts, parent = _walk(error["loc"])
    path = ".".join(parts) or "(top level)"
    if error["type"] == "extra_forbidden":
        known = sorted(parent.model_fields) if parent is not None else []
        hint = difflib.get_close_matches(parts[-1], known, n=1)
        suggestion = f"; did you mean {hint[0]!r}?" if hint else (f"; known keys: {', '.join(known)}" if known else "")
        return f"{path}: unknown key{suggestion}"
    given = error.get("input")
    shown = "" if isinstance(given, dict) else f" (given: {given!r})"
    return f"{path}: {error['msg']}{shown}"


def parse_scenario(document, source="<string>"):
    """Validate a parsed TOML document (a dict) as a scenario.

    Examples
    --------
    >>> doc = {"network": {"generator": "input_recurrent", "inputs": 4, "hidden": 8, "spectral_norm": 0.5},
    ...        "input": {"source": "generated", "samples": 2}, "dynamics": {"epsilon": 1e-3}}
    >>> parse_scenario(doc).network.hidden
    8
    >>> doc["dynamics"]["epsilom"] = 1
    >>> parse_scenario(doc)
    Traceback (most recent call last):
    ...
    eventhorizon.scenario.ScenarioError: <string>: dynamics.epsilom: unknown key; did you mean 'epsilon'?
    """
    if not isinstance(document, dict):
        raise ScenarioError(f"{source}: a scenario must be a TOML table, got {type(document).__name__}")
    try:
        return Scenario.model_validate(document)
    except ValidationError as exc:
        lines = [_format_error(e) for e in exc.errors()]
        raise ScenarioError(f"{source}: " + f"\n{source}: ".join(lines)) from None


def load_scenario(path):
    """Read and validate a scenario file.

    Raises
    ------
    ScenarioError
        Missing or unreadable file, invalid TOML (with line and column), or
        invalid content (with the key path).
    """
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ScenarioError(f"{path}: no such scenario file") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ScenarioError(f"{path}: cannot read scenario file: {exc}") from None
    try:
        document = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ScenarioError(f"{path}: invalid TOML: {exc}") from None
    return parse_scenario(document, source=str(path))


def build_network(section):
    """The :class:`~eventhorizon.network.RateNetwork` a ``[network]`` section describes."""
    from eventhorizon.network import RateNetwork
    from topology import generators

    if isinstance(section, InputRecurrentNetwork):
        graph = generators.input_recurrent(section.inputs, section.hidden, section.spectral_norm, section.seed,
                                           recurrent_density=section.recurrent_density)
        inputs = range(section.inputs)
    elif isinstance(section, LayeredNetwork):
        graph = generators.layered(section.sizes, section.seed, feedback=section.feedback, density=section.density)
        inputs = range(section.sizes[0])
    else:
        graph = generators.random_sparse(section.neurons, section.density, section.seed,
                                         weight_scale=section.weight_scale)
        inputs = range(section.inputs)
    try:
        return RateNetwork(graph, section.activation, inputs=inputs)
    except ValueError as exc:
        raise ScenarioError(f"network: {exc}") from None


def build_inputs(section, n_inputs):
    """Input vectors ``(samples, n_inputs)`` an ``[input]`` section describes."""
    from eventhorizon import datasets

    if isinstance(section, GeneratedInput):
        return datasets.generated_inputs(section.samples, n_inputs, section.seed, density=section.density)
    try:
        data = datasets.load_fashion_mnist(section.split, section.data_dir, limit=section.samples)
    except datasets.DatasetError as exc:
        raise ScenarioError(f"input: {exc}") from None
    return np.ascontiguousarray(data.images)
