"""Scenario files (TOML): schema, loading and validation.

A scenario describes one experiment. Sections:

``[network]``     the synapse graph (a generator and its parameters, or a weight file) and the neuron model;
``[input]``       where input vectors come from (Fashion-MNIST IDX files or generated);
``[dynamics]``    mode and event-driven settling: ε, scheduler queue, event budget;
``[run]``         how much to run (samples), the master seed, checkpointing;
``[output]``      what a run writes besides its metrics;
``[flops]``       settings of the event-vs-dense comparison;
``[learning]``    EqProp training; ``[plasticity]`` structural plasticity during it;
``[dynamics] mode = "spiking"`` selects the spiking schema instead
(:mod:`eventhorizon.spiking.scenario`).

Seeds: ``run.seed`` is the master seed. ``network.seed`` and ``input.seed``
may pin their own; where they are absent they are the master seed (network)
and the master seed + 1 (generated input), so ``eventhorizon run --seed N``
changes everything that is not pinned.

Validation uses pydantic; every error is re-raised as :class:`ScenarioError`
naming the file, the key path, what was given and what was expected.
"""

import difflib
import json
import re
import tomllib
import zipfile
from pathlib import Path
from typing import Annotated, Literal, Union

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from eventhorizon.models import RATE_MODELS, check_straight_through

__all__ = ["ScenarioError", "Scenario", "load_scenario", "parse_scenario", "read_document", "apply_overrides",
           "dump_scenario", "bundled_scenarios", "resolve_scenario", "build_network", "build_inputs"]


class ScenarioError(ValueError):
    """A scenario file is missing, unreadable or invalid."""


def seed_from_run(data, section):
    """``data`` (a raw scenario document) with ``[section] seed`` set to ``run.seed`` where it is absent.

    ``run.seed`` defaults to 0 when ``[run]`` has none (or is absent); nothing
    changes unless both tables are well-formed, so validation reports any error.

    Examples
    --------
    >>> seed_from_run({"run": {"seed": 7}, "stream": {}}, "stream")["stream"]
    {'seed': 7}
    """
    if not isinstance(data, dict):
        return data
    run, table = data.get("run", {}), data.get(section)
    seed = run.get("seed", 0) if isinstance(run, dict) else None
    if type(seed) is int and 0 <= seed < INT64_MAX and isinstance(table, dict) and table.get("seed") is None:
        data = {**data, section: {**table, "seed": seed}}
    return data


class _Section(BaseModel):
    # strict: TOML values are typed, so ``samples = true`` or ``epsilon = "1e-3"`` is an error, not 1 or 0.001;
    # finite floats only: no setting means anything at ±inf, and NaN/inf would not survive dump_scenario.
    model_config = ConfigDict(extra="forbid", frozen=True, strict=True, allow_inf_nan=False)


Activation = Literal[tuple(RATE_MODELS)]  # type: ignore[valid-type]


INT64_MAX = 2**63 - 1  # TOML integers are 64-bit signed


class InputRecurrentNetwork(_Section):
    """Inputs projecting (Glorot-uniform) onto a symmetric recurrent hidden layer."""

    generator: Literal["input_recurrent"]
    inputs: int = Field(gt=0, description="number of clamped input neurons")
    hidden: int = Field(gt=0, description="number of hidden (free) neurons")
    spectral_norm: float = Field(ge=0, lt=1, description="spectral norm of the hidden-to-hidden weights (dimensionless)")
    recurrent_density: float = Field(1.0, gt=0, le=1, description="fraction of hidden pairs connected")
    activation: Activation = Field("tanh", description="neuron model ρ")
    seed: int | None = Field(None, ge=0, description="random seed of the weights; default: run.seed")


class LayeredNetwork(_Section):
    """Layers front to back (Glorot-uniform), optionally with symmetric feedback."""

    generator: Literal["layered"]
    sizes: list[Annotated[int, Field(gt=0)]] = Field(min_length=2, description="layer sizes; the first is clamped")
    feedback: bool = Field(False, description="add symmetric feedback (W_back = W_forwardᵀ)")
    density: Annotated[float, Field(gt=0, le=1)] | list[Annotated[float, Field(gt=0, le=1)]] = Field(
        1.0, description="fraction of layer-to-layer pairs connected: one number, shared among the blocks as "
                         "density_distribution says, or one per layer-to-next-layer block, front to back ([learning] "
                         "runs scale each block's initial weights by 1/√(its density))")
    density_distribution: Literal["uniform", "erdos_renyi"] = Field(
        "uniform", description="how a single density is shared among the layer-to-layer blocks: the same in each, "
                               "or Erdős–Rényi (SET/RigL: block density ∝ (n_in + n_out)/(n_in·n_out), small blocks "
                               "denser, capped at 1), keeping the overall density")
    activation: Activation = Field("tanh", description="neuron model ρ")
    seed: int | None = Field(None, ge=0, description="random seed of the weights; default: run.seed")

    @model_validator(mode="after")
    def _one_density_per_block(self):
        if isinstance(self.density, list):
            blocks = len(self.sizes) - 1
            if len(self.density) != blocks:
                raise ValueError(f"density: a list needs one fraction per layer-to-next-layer block ({blocks} for "
                                 f"sizes {self.sizes}), got {len(self.density)}")
            if self.density_distribution != "uniform":
                raise ValueError(f"density_distribution = {self.density_distribution!r} shares a single density; "
                                 f"with a list of per-block densities leave it out")
        return self

    def block_densities(self):
        """The density of each layer-to-next-layer block (:func:`topology.generators.block_densities`)."""
        from topology.generators import block_densities

        return block_densities(self.sizes, self.density, self.density_distribution)


class RandomSparseNetwork(_Section):
    """Random directed graph; the first ``inputs`` neurons are clamped."""

    generator: Literal["random_sparse"]
    neurons: int = Field(gt=0, description="number of neurons, inputs included")
    inputs: int = Field(ge=0, description="number of clamped input neurons (ids 0 … inputs−1)")
    density: float = Field(gt=0, le=1, description="probability of each directed pair being connected")
    weight_scale: float = Field(0.4, gt=0, description="spread of a neuron's summed input per unit input spread")
    activation: Activation = Field("tanh", description="neuron model ρ")
    seed: int | None = Field(None, ge=0, description="random seed of the graph and weights; default: run.seed")

    @model_validator(mode="after")
    def _inputs_fit(self):
        if self.inputs >= self.neurons:
            raise ValueError(f"inputs ({self.inputs}) must be fewer than neurons ({self.neurons})")
        return self


class FileNetwork(_Section):
    """Weights read from a file: ``A[pre, post]`` as a scipy.sparse ``.npz`` (``save_npz``) or a dense ``.npy``."""

    generator: Literal["file"]
    path: str = Field(description="weight file, relative to the scenario file")
    inputs: int = Field(ge=0, description="number of clamped input neurons (ids 0 … inputs−1)")
    activation: Activation = Field("tanh", description="neuron model ρ")

    @field_validator("path")
    @classmethod
    def _known_suffix(cls, value):
        if not value.endswith((".npz", ".npy")):
            raise ValueError(f"expected a .npz (scipy.sparse) or .npy (dense) weight file, got {value!r}")
        return value


NetworkSection = Annotated[
    Union[InputRecurrentNetwork, LayeredNetwork, RandomSparseNetwork, FileNetwork], Field(discriminator="generator")
]


class FashionMnistInput(_Section):
    """Fashion-MNIST images, pixels scaled to [0, 1] (IDX files; see eventhorizon.datasets)."""

    source: Literal["fashion_mnist"]
    split: Literal["train", "test"] | None = Field(None, description="settling runs: which IDX files, 60 000 train or "
                                                                     "10 000 test images (default test); [learning] "
                                                                     "runs train on train and test on test, and "
                                                                     "refuse this key")
    data_dir: str | None = Field(None, description="directory of the IDX files; default: $EVENTHORIZON_FASHION_MNIST "
                                                   "or /usr/share/datasets/fashion-mnist")


class GeneratedInput(_Section):
    """Random stimuli in [0, 1], each entry nonzero with probability ``density``."""

    source: Literal["generated"]
    density: float = Field(0.5, gt=0, le=1, description="probability of each input being nonzero")
    seed: int | None = Field(None, ge=0, description="random seed of the stimuli; default: run.seed + 1")


InputSection = Annotated[Union[FashionMnistInput, GeneratedInput], Field(discriminator="source")]


class DynamicsSection(_Section):
    """How the network evolves."""

    mode: Literal["rate"] = Field("rate", description="rate: event-driven settling to a fixed point (spiking "
                                                      "and stream scenarios have their own schemas)")
    epsilon: float = Field(gt=0, description="broadcast threshold ε, in output units (ρ's range)")
    scheduler: Literal["tournament", "heap"] = Field("tournament", description="priority queue ordering the neurons")
    max_updates: int | None = Field(None, gt=0, description="event budget per sample, in neuron updates; "
                                                            "default 1000 × neurons")
    relaxation: float = Field(1.0, gt=0, lt=2, description="over-relaxation ω: a neuron whose change d exceeds ε "
                                                           "broadcasts ω·d (1: plain updates; the stopping test "
                                                           "is the same for any ω)")


class RunSection(_Section):
    """How much to run, with which seed, and how often to checkpoint."""

    samples: int | None = Field(None, gt=0, description="settling runs (must be set there): input samples, each "
                                                        "settled from rest (Fashion-MNIST: at most the split's "
                                                        "size); [learning] runs use learning.train_samples")
    seed: int = Field(0, ge=0, lt=INT64_MAX, description="master seed; network.seed defaults to it, "
                                                          "input.seed to it + 1")
    compare_dense: bool = Field(True, description="also settle every sample densely and count its multiply-adds")
    checkpoint_seconds: float = Field(5.0, gt=0, description="wall-clock seconds between checkpoints")
    epochs: int | None = Field(None, gt=0, description="[learning] runs (must be set there): passes over the "
                                                       "training samples; a checkpoint is written after each")


class OutputSection(_Section):
    """What a run writes besides metrics.json, samples.npz, scenario.toml and run.log."""

    figures: bool = Field(True, description="draw the PNG figures at the end of the run")
    save_states: bool = Field(False, description="save every sample's final outputs x (samples × neurons, float32) "
                                                 "to states.npy")


class FlopsSection(_Section):
    """``eventhorizon flops``: timing repeats."""

    repeats: int = Field(3, gt=0, description="timing repeats; medians are reported")


class EqPropLearning(_Section):
    """Equilibrium Propagation: event-driven free and nudged phases, local weight updates (GUIDE §3)."""

    rule: Literal["eqprop"] = Field("eqprop", description="learning rule")
    beta: float = Field(0.5, gt=0, description="nudging strength β (current β·(y − x_out) on the outputs)")
    nudging: Literal["symmetric", "positive", "random_sign"] = Field(
        "symmetric", description="±β from the free state (Laborieux 2021), +β vs free, or a random sign per batch")
    learning_rates: list[Annotated[float, Field(ge=0)]] = Field(
        description="one per weight layer (len(network.sizes) − 1); a layer's biases use the rate of its inputs")
    momentum: float = Field(0.0, ge=0, lt=1, description="SGD momentum")
    batch_size: int = Field(20, gt=0, description="samples per weight update")
    init_scale: float = Field(0.5, gt=0, description="initial weights are Glorot-uniform times this factor")
    threads: int = Field(1, ge=1, le=256, description="threads settling the samples of a mini-batch "
                                                       "concurrently (results are reproducible per thread count)")
    schedule: Literal["constant", "cosine"] = Field(
        "constant", description="learning rates per epoch: constant, or cosine-annealed from the given rates to 0 "
                                "over run.epochs (epoch e of E uses ½(1 + cos(π e / E)) × the rates)")
    train_samples: int = Field(60000, gt=0, le=60000, description="training images (the first N of the train split)")
    test_samples: int = Field(10000, gt=0, le=10000, description="test images evaluated after every epoch")
    validation_samples: int = Field(0, ge=0, description="the last N of the training images are held out of training "
                                                         "and evaluated after every epoch: choose hyperparameters on "
                                                         "them, not on the test images (0: no validation set)")
    compare_dense: bool = Field(True, description="train the dense numpy EqProp baseline side by side "
                                                  "(same initial weights, batches and hyperparameters)")
    straight_through: bool = Field(
        False, description="let the nudge reach saturated outputs: a clipped output whose target differs starts "
                           "the nudged phases at the edge of ρ's range (straight-through estimate). Without it a "
                           "confidently wrong sample gives no gradient, and long runs lose accuracy (needs a "
                           "clipped network.activation)")


class PlasticitySection(_Section):
    """Structural plasticity during [learning]: prune and regrow synapses at constant density (SET / RigL style)."""

    every_batches: int = Field(gt=0, description="a plasticity step after every N mini-batches")
    rewire_fraction: float = Field(0.1, gt=0, le=1, description="fraction of the synapses pruned, and as many "
                                                                "grown, per step")
    rewire_schedule: Literal["constant", "cosine"] = Field(
        "constant", description="the fraction over training: constant, or decayed from rewire_fraction to 0 at "
                                "stop_after as ½(1 + cos(π t / stop_after)), t the fraction of training done (RigL, "
                                "Evci et al. 2020)")
    stop_after: float = Field(1.0, gt=0, le=1, description="no plasticity steps after this fraction of the training "
                                                           "(RigL: 0.75), so the last epochs fine-tune a fixed topology")
    budget: Literal["global", "per_block"] = Field(
        "global", description="global: the smallest |W| of the whole network go and new synapses may land in any "
                              "layer-to-layer block; per_block (RigL): each block not dense rewires its own fraction "
                              "and keeps its density")
    prune: Literal["magnitude"] = Field("magnitude", description="which synapses go: smallest |W|")
    grow: Literal["gradient", "random"] = Field(
        "gradient", description="which missing synapses come: largest local EqProp gradient "
                                "(a_i a_j − b_i b_j)/Δβ on score_samples samples, or uniformly at random (SET)")
    score_samples: int = Field(20, gt=0, description="training samples used for the gradient growth score")
    regrow_pruned: bool = Field(True, description="a synapse pruned at a step may be grown again in the same step "
                                                  "(its weight restarting at 0); false grows only pairs missing "
                                                  "before the step, so every step rewires its whole budget")
    score_from: Literal["fresh", "training"] = Field(
        "fresh", description="the gradient score's equilibria: fresh, the next score_samples training samples "
                             "settled again with the current weights; training, those the last score_samples "
                             "samples of this epoch were trained with (kept, not settled again: a step costs "
                             "only the scoring product)")
    snapshot_every: int = Field(10, gt=0, description="save the topology (topology/snapshot_NNNNN.npz, with networkx "
                                                      "metrics) before training, every N plasticity steps and at the "
                                                      "end")


class Scenario(_Section):
    """A validated scenario."""

    description: str = Field("", description="one line saying what the scenario shows")
    network: NetworkSection
    input: InputSection
    dynamics: DynamicsSection
    run: RunSection
    output: OutputSection = OutputSection()
    flops: FlopsSection = FlopsSection()
    learning: EqPropLearning | None = Field(None, description="train the network (see below)")
    plasticity: PlasticitySection | None = Field(None, description="prune and grow synapses while learning")


    @model_validator(mode="before")
    @classmethod
    def _default_seeds(cls, data):
        """Fill absent network/input seeds from ``run.seed`` (only when all three are well-formed)."""
        if not isinstance(data, dict):
            return data
        run, network, inputs = (data.get(k) for k in ("run", "network", "input"))
        seed = run.get("seed", 0) if isinstance(run, dict) else None
        if type(seed) is not int or not 0 <= seed < INT64_MAX:
            return data
        data = dict(data)
        if isinstance(network, dict) and network.get("generator") != "file" and network.get("seed") is None:
            data["network"] = {**network, "seed": seed}
        if isinstance(inputs, dict) and inputs.get("source") == "generated" and inputs.get("seed") is None:
            data["input"] = {**inputs, "seed": seed + 1}
        return data

    @model_validator(mode="after")
    def _input_width(self):
        if isinstance(self.input, FashionMnistInput):
            width = _input_count(self.network)
            if width is not None and width != 784:
                raise ValueError(f"network: Fashion-MNIST images have 784 pixels but the network has {width} inputs")
            limit = 60000 if self.input.split == "train" else 10000
            if self.run.samples is not None and self.run.samples > limit:
                raise ValueError(f"run.samples: {self.run.samples} but the Fashion-MNIST {self.input.split or 'test'} "
                                 f"split has {limit} images")
        return self

    @model_validator(mode="after")
    def _run_matches_mode(self):
        if self.plasticity is not None and self.learning is None:
            raise ValueError("plasticity: needs a [learning] section (synapses are pruned and grown while training)")
        if self.learning is None:
            if self.run.samples is None:
                raise ValueError("run.samples: required (how many inputs to settle)")
            if self.run.epochs is not None:
                raise ValueError("run.epochs: only applies to runs with a [learning] section")
            return self
        if self.run.samples is not None:
            raise ValueError("run.samples: does not apply to [learning] runs; use learning.train_samples")
        if self.run.epochs is None:
            raise ValueError("run.epochs: required with [learning]")
        network = self.network
        if not isinstance(network, LayeredNetwork) or not network.feedback:
            raise ValueError("network: [learning] (EqProp) needs network.generator = 'layered' with feedback = true "
                             "(a symmetric energy network)")
        if len(self.learning.learning_rates) != len(network.sizes) - 1:
            raise ValueError(f"learning.learning_rates: needs one rate per weight layer "
                             f"({len(network.sizes) - 1} for sizes {network.sizes}), got "
                             f"{len(self.learning.learning_rates)}")
        try:
            check_straight_through(network.activation, self.learning.straight_through)
        except ValueError as exc:
            raise ValueError(f"learning.straight_through: {exc} (network.activation)") from None
        if not isinstance(self.input, FashionMnistInput):
            raise ValueError("input.source: [learning] needs labelled data: input.source = 'fashion_mnist'")
        if self.learning.validation_samples >= self.learning.train_samples:
            raise ValueError(f"learning.validation_samples: must be below learning.train_samples "
                             f"({self.learning.train_samples}), or no image is left to train on; got "
                             f"{self.learning.validation_samples}")
        if self.input.split is not None:
            raise ValueError("input.split: does not apply to [learning] runs (they train on the train split and "
                             "test on the test split); remove it")
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


_BARE_KEY = re.compile(r"[A-Za-z0-9_-]+")


def _key_text(part):
    """A key as it appears in a key path: bare if TOML allows, else quoted (so a path stays one line)."""
    if isinstance(part, int) or (isinstance(part, str) and _BARE_KEY.fullmatch(part)):
        return str(part)
    return json.dumps(str(part), ensure_ascii=False)


def _shown(value, limit=80):
    """``repr(value)`` cut to ``limit`` characters; never raises (huge ints, deep nesting)."""
    try:
        text = repr(value)
    except (ValueError, RecursionError):  # int too long for str(), or nested too deeply
        text = f"<{type(value).__name__}>"
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _walk(loc, root):
    """Key path shown to the user, and the section model that holds its last key.

    pydantic puts a discriminated union's tag into the location right after
    the field (``network.random_sparse.weight_scal``); it is dropped from the
    path and selects the union member.
    """
    model, parent, parts, i = root, None, [], 0
    while i < len(loc):
        part, i = loc[i], i + 1
        parts.append(part)
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


def _format_error(error, root):
    parts, parent = _walk(error["loc"], root)
    path = ".".join(_key_text(p) for p in parts) or "(top level)"
    if error["type"] == "extra_forbidden":
        known = sorted(parent.model_fields) if parent is not None else []
        hint = difflib.get_close_matches(str(parts[-1]), known, n=1)
        suggestion = f"; did you mean {hint[0]!r}?" if hint else (f"; known keys: {', '.join(known)}" if known else "")
        return f"{path}: unknown key{suggestion}"
    if not parts and error["type"] == "value_error":
        # a check across sections: its message names the keys it is about
        return error["msg"].removeprefix("Value error, ")
    given = error.get("input")
    shown = "" if isinstance(given, dict) else f" (given: {_shown(given)})"
    return f"{path}: {error['msg']}{shown}"


def _out_of_range_ints(document):
    """Key paths of integers outside the 64-bit range TOML allows (iterative: no recursion limit)."""
    found, stack = [], [((), document)]
    while stack:
        path, value = stack.pop()
        if isinstance(value, dict):
            stack.extend((path + (k,), v) for k, v in value.items())
        elif isinstance(value, (list, tuple)):
            stack.extend((path + (i,), v) for i, v in enumerate(value))
        elif isinstance(value, int) and not isinstance(value, bool) and not -INT64_MAX - 1 <= value <= INT64_MAX:
            found.append(".".join(_key_text(p) for p in path) or "(top level)")
    return sorted(found)


def _weight_file(value, base_dir):
    """The weight file ``network.path`` names, resolved against ``base_dir``, and whether it exists."""
    path = Path(value)
    try:
        path = path.expanduser()
    except RuntimeError:  # ~user whose home directory is unknown
        pass
    if not path.is_absolute():
        path = Path(base_dir or ".") / path
    try:
        return path.resolve(), path.is_file()
    except (OSError, ValueError):  # name too long, NUL byte
        return path, False


def parse_scenario(document, source="<string>", base_dir=None):
    """Validate a parsed TOML document (a dict) as a scenario.

    A weight file's relative ``network.path`` is resolved against
    ``base_dir`` (the scenario file's directory) and must exist. Integers
    must fit in 64 bits, as the TOML specification requires.

    Examples
    --------
    >>> doc = {"network": {"generator": "input_recurrent", "inputs": 4, "hidden": 8, "spectral_norm": 0.5},
    ...        "input": {"source": "generated"}, "dynamics": {"epsilon": 1e-3}, "run": {"samples": 2}}
    >>> sc = parse_scenario(doc)
    >>> sc.network.hidden, sc.network.seed, sc.input.seed
    (8, 0, 1)
    >>> doc["dynamics"]["epsilom"] = 1
    >>> parse_scenario(doc)
    Traceback (most recent call last):
    ...
    eventhorizon.scenario.ScenarioError: <string>: dynamics.epsilom: unknown key; did you mean 'epsilon'?
    """
    if not isinstance(document, dict):
        raise ScenarioError(f"{source}: a scenario must be a TOML table, got {type(document).__name__}")
    big = _out_of_range_ints(document)
    if big:
        raise ScenarioError(f"{source}: " + f"\n{source}: ".join(
            f"{p}: integer outside the 64-bit range TOML allows (-2**63 … 2**63-1)" for p in big))
    root = _schema_of(document)
    try:
        scenario = root.model_validate(document)
    except ValidationError as exc:
        lines = [_format_error(e, root) for e in exc.errors()]
        raise ScenarioError(f"{source}: " + f"\n{source}: ".join(lines)) from None
    except RecursionError:
        raise ScenarioError(f"{source}: document nested too deeply") from None
    if isinstance(getattr(scenario, "network", None), FileNetwork):
        path, exists = _weight_file(scenario.network.path, base_dir)
        if not exists:
            raise ScenarioError(f"{source}: network.path: no such weight file: {_shown(str(path))}")
        network = scenario.network.model_copy(update={"path": str(path)})
        scenario = scenario.model_copy(update={"network": network})
    model = getattr(scenario, "model", None)
    if model is not None and model.path is not None:
        path, exists = _weight_file(model.path, base_dir)
        if not exists:
            raise ScenarioError(f"{source}: model.path: no such model file: {_shown(str(path))}")
        scenario = scenario.model_copy(update={"model": model.model_copy(update={"path": str(path)})})
    return scenario


def _schema_of(document):
    """:class:`Scenario`, or the spiking or streaming schema when ``dynamics.mode`` says so."""
    dynamics = document.get("dynamics")
    mode = dynamics.get("mode") if isinstance(dynamics, dict) else None
    if mode == "spiking":
        from eventhorizon.spiking.scenario import SpikingScenario

        return SpikingScenario
    if mode == "stream":
        from eventhorizon.stream_scenario import StreamScenario

        return StreamScenario
    return Scenario


def read_document(path):
    """The TOML document of a scenario file, as a dict.

    Raises
    ------
    ScenarioError
        Missing or unreadable file, or invalid TOML (with line and column).
    """
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ScenarioError(f"{path}: no such scenario file") from None
    except (OSError, UnicodeDecodeError, ValueError) as exc:  # ValueError: NUL byte in the name
        raise ScenarioError(f"{path}: cannot read scenario file: {exc}") from None
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ScenarioError(f"{path}: invalid TOML: {exc}") from None
    except ValueError:  # tomllib lets int() refuse a decimal integer of more than 4300 digits
        raise ScenarioError(f"{path}: invalid TOML: an integer is too long (TOML integers are 64-bit)") from None
    except RecursionError:
        raise ScenarioError(f"{path}: invalid TOML: arrays or inline tables nested too deeply") from None


def load_scenario(path, overrides=()):
    """Read and validate a scenario file, after applying ``--set`` style overrides.

    Parameters
    ----------
    path : str or Path
    overrides : sequence of str
        ``"key.path=value"`` items; see :func:`apply_overrides`.

    Raises
    ------
    ScenarioError
        Missing or unreadable file, invalid TOML (with line and column), a
        malformed override, or invalid content (with the key path).

    Examples
    --------
    >>> sc = load_scenario(bundled_scenarios()["quickstart"], ["run.samples=5"])
    >>> sc.run.samples
    5
    """
    path = Path(path)
    document = apply_overrides(read_document(path), overrides)
    return parse_scenario(document, source=str(path), base_dir=path.parent)


def _parse_value(text):
    try:
        parsed = tomllib.loads(f"v = {text}")
    except (ValueError, RecursionError):  # TOMLDecodeError, a too long integer, too deep nesting
        return text  # a bare word is a string: --set network.activation=tanh
    # "1\nx = 2" parses as two keys: the text is not one TOML value, so it is a string
    return parsed["v"] if list(parsed) == ["v"] else text


def apply_overrides(document, overrides):
    """A copy of ``document`` with ``key.path=value`` overrides applied.

    Values are parsed as TOML values (``1e-3``, ``true``, ``[784, 10]``,
    ``"text"``); anything that is not one valid TOML value is taken as a
    string. A single string is one override.

    Examples
    --------
    >>> apply_overrides({"run": {"samples": 3}}, ["run.samples=10", "network.activation=tanh"])
    {'run': {'samples': 10}, 'network': {'activation': 'tanh'}}
    """
    import copy

    document = copy.deepcopy(document)
    if isinstance(overrides, str):  # one override, not a sequence of one-character ones
        overrides = [overrides]
    for item in overrides:
        key, sep, text = item.partition("=")
        parts = key.strip().split(".")
        if not sep or not all(p.strip() for p in parts):
            raise ScenarioError(f"--set {item!r}: expected key.path=value, e.g. run.samples=10")
        table = document
        for depth, part in enumerate(parts[:-1]):
            table = table.setdefault(part.strip(), {})
            if not isinstance(table, dict):
                raise ScenarioError(f"--set {item!r}: {'.'.join(parts[:depth + 1])} is not a table")
        table[parts[-1].strip()] = _parse_value(text.strip())
    return document


def dump_scenario(scenario, header=""):
    """The scenario as TOML text with every default filled in (``None`` values omitted).

    Examples
    --------
    >>> sc = load_scenario(bundled_scenarios()["quickstart"])
    >>> parse_scenario(tomllib.loads(dump_scenario(sc))) == sc
    True
    """
    import tomli_w

    def drop_none(value):
        if isinstance(value, dict):
            return {k: drop_none(v) for k, v in value.items() if v is not None}
        return value

    comment = "".join(f"# {line}\n" for line in header.splitlines())
    return comment + tomli_w.dumps(drop_none(scenario.model_dump(mode="json")))


def bundled_scenarios():
    """Bundled scenario files by name (file stem), e.g. ``{"quickstart": Path(...)}``.

    They are the repository's ``scenarios/`` directory, installed as the
    package data ``eventhorizon.bundled``.
    """
    from importlib.resources import files

    root = files("eventhorizon.bundled")
    return {Path(p.name).stem: Path(str(p)) for p in sorted(root.iterdir(), key=lambda p: p.name)
            if p.name.endswith(".toml")}


def resolve_scenario(name_or_path):
    """A scenario file path from a path or a bundled scenario's name.

    Examples
    --------
    >>> resolve_scenario("quickstart").name
    'quickstart.toml'
    """
    path = Path(name_or_path)
    try:
        is_file = path.is_file()
    except (OSError, ValueError):  # name too long for the file system
        is_file = False
    if is_file or path.suffix == ".toml" or len(path.parts) > 1:
        return path
    bundled = bundled_scenarios()
    if str(name_or_path) in bundled:
        return bundled[str(name_or_path)]
    hint = difflib.get_close_matches(str(name_or_path), list(bundled), n=1)
    suggestion = f"; did you mean {hint[0]!r}?" if hint else ""
    raise ScenarioError(f"{name_or_path}: no such scenario file or bundled scenario "
                        f"(bundled: {', '.join(bundled)}){suggestion}")


def _load_weights(path):
    import scipy.sparse as sp

    try:
        if path.endswith(".npz"):
            if not zipfile.is_zipfile(path):
                raise ValueError("not a .npz (zip) file")
            return sp.load_npz(path)
        with open(path, "rb") as fh:
            if fh.read(6) != b"\x93NUMPY":  # else np.load would try, and refuse, to unpickle it
                raise ValueError("not a .npy file")
        return np.load(path, allow_pickle=False)
    except (OSError, ValueError, KeyError) as exc:
        raise ScenarioError(f"network.path: cannot read weight file {path}: {exc}") from None


def build_network(section):
    """The :class:`~eventhorizon.network.RateNetwork` a ``[network]`` section describes."""
    from eventhorizon.network import RateNetwork
    from topology import generators
    from topology.store import SynapseGraph

    try:
        if isinstance(section, InputRecurrentNetwork):
            graph = generators.input_recurrent(section.inputs, section.hidden, section.spectral_norm,
                                               _seed(section), recurrent_density=section.recurrent_density)
        elif isinstance(section, LayeredNetwork):
            graph = generators.layered(section.sizes, _seed(section), feedback=section.feedback,
                                       density=section.block_densities())
        elif isinstance(section, RandomSparseNetwork):
            graph = generators.random_sparse(section.neurons, section.density, _seed(section),
                                             weight_scale=section.weight_scale)
        else:
            weights = _load_weights(section.path)
            graph = (SynapseGraph.from_dense(weights) if isinstance(weights, np.ndarray)
                     else SynapseGraph.from_adjacency(weights))
        return RateNetwork(graph, section.activation, inputs=range(_input_count(section)))
    except ScenarioError:
        raise  # already says what is wrong (a ScenarioError is a ValueError too)
    except (ValueError, TypeError) as exc:
        raise ScenarioError(f"network: {exc}") from None


def _seed(section):
    return 0 if section.seed is None else section.seed


def build_inputs(section, n_inputs, samples):
    """Input vectors ``(samples, n_inputs)`` an ``[input]`` section describes."""
    from eventhorizon import datasets

    if isinstance(section, GeneratedInput):
        return datasets.generated_inputs(samples, n_inputs, _seed(section), density=section.density)
    try:
        data = datasets.load_fashion_mnist(section.split or "test", section.data_dir, limit=samples)
    except datasets.DatasetError as exc:
        raise ScenarioError(f"input: {exc}") from None
    return np.ascontiguousarray(data.images)
