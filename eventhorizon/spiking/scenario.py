"""Schema of spiking scenarios (``[dynamics] mode = "spiking"``).

Units are in the key names (``_ms``, ``_mv``, ``_hz``, ``_s``), as Brian2
users write them; the simulator works in seconds and volts. Sections:

``[network]``   populations wired at random (Bernoulli per pair), one weight, receptor and delay per source population;
``[neuron]``    the LIF model (CUBA exponential or delta synapses) and its parameters;
``[input]``     optional Poisson input: independent external synapses per neuron (delivered as events);
``[dynamics]``  ``mode = "spiking"`` and the clock step;
``[run]``       simulated duration, master seed, checkpoint interval;
``[monitors]``  sampled neurons, and the window the statistics cover;
``[output]``    figures.

:func:`eventhorizon.scenario.parse_scenario` picks this schema when
``dynamics.mode`` is ``"spiking"``.
"""

from typing import Literal

from pydantic import Field, model_validator

from eventhorizon.scenario import INT64_MAX, _Section, seed_from_run

__all__ = ["SpikingScenario"]

Receptor = Literal["excitatory", "inhibitory"]


class PopulationsNetwork(_Section):
    """Populations numbered in order; each ordered pair is connected with probability ``probability``."""

    generator: Literal["populations"] = Field(description="E/I populations wired pair by pair at random")
    sizes: list[int] = Field(min_length=1, description="neurons per population (numbered in this order)")
    names: list[str] | None = Field(None, description="a name per population (default pop0, pop1, …)")
    probability: float = Field(gt=0, le=1, description="connection probability of every ordered pair "
                                                        "(Brian2's connect(p=…))")
    weights_mv: list[float] = Field(description="weight of every synapse from each population, mV (added to the "
                                                "target's ge/gi for CUBA synapses, to v for delta synapses)")
    receptors: list[Receptor] = Field(description="per source population: which synaptic variable its spikes drive "
                                                  "(excitatory → ge, inhibitory → gi; delta synapses ignore it)")
    delays_ms: list[float] | None = Field(None, description="per source population, transmission delay in ms "
                                                            "(default 0; the clock rounds to whole steps)")
    self_loops: bool = Field(True, description="allow a neuron to connect to itself (Brian2's default)")
    seed: int | None = Field(None, ge=0, lt=INT64_MAX, description="wiring and initial state (default run.seed)")

    @model_validator(mode="after")
    def _one_per_population(self):
        count = len(self.sizes)
        if any(s < 1 for s in self.sizes):
            raise ValueError(f"network.sizes: every population needs at least 1 neuron, got {self.sizes}")
        for key in ("names", "weights_mv", "receptors", "delays_ms"):
            value = getattr(self, key)
            if value is not None and len(value) != count:
                raise ValueError(f"network.{key}: needs one entry per population ({count}, as network.sizes), "
                                 f"got {len(value)}")
        if self.delays_ms is not None and any(d < 0 for d in self.delays_ms):
            raise ValueError(f"network.delays_ms: delays must be >= 0 ms, got {self.delays_ms}")
        return self


class NeuronSection(_Section):
    """Leaky integrate-and-fire neurons: membrane equation, threshold, reset, refractory period."""

    model: Literal["lif"] = Field("lif", description="neuron model")
    synapse: Literal["cuba", "delta"] = Field(description="cuba: exponential current synapses ge/gi (Vogels & "
                                                          "Abbott 2005); delta: a spike jumps v (Brunel 2000)")
    tau_m_ms: float = Field(gt=0, description="membrane time constant, ms")
    tau_e_ms: float | None = Field(None, gt=0, description="excitatory synaptic time constant, ms (cuba only)")
    tau_i_ms: float | None = Field(None, gt=0, description="inhibitory synaptic time constant, ms (cuba only)")
    v_rest_mv: float = Field(description="resting potential El, mV")
    v_threshold_mv: float = Field(description="threshold Vt, mV (a spike when v > Vt)")
    v_reset_mv: float = Field(description="reset Vr, mV")
    refractory_ms: float = Field(0.0, ge=0, description="v is held at v_reset for this long after a spike, ms")
    v_init_mv: list[float] = Field(description="initial v: [low, high] draws uniformly in between (Brian2's "
                                               "'Vr + rand() * (Vt - Vr)'), [value] sets it", min_length=1,
                                   max_length=2)

    @model_validator(mode="after")
    def _consistent(self):
        cuba = self.synapse == "cuba"
        for key in ("tau_e_ms", "tau_i_ms"):
            if cuba and getattr(self, key) is None:
                raise ValueError(f"neuron.{key}: required with synapse = 'cuba'")
            if not cuba and getattr(self, key) is not None:
                raise ValueError(f"neuron.{key}: only applies to synapse = 'cuba'; remove it")
        if not self.v_reset_mv < self.v_threshold_mv:
            raise ValueError(f"neuron.v_reset_mv: must lie below v_threshold_mv ({self.v_threshold_mv}), got "
                             f"{self.v_reset_mv}")
        if len(self.v_init_mv) == 2 and not self.v_init_mv[0] <= self.v_init_mv[1]:
            raise ValueError(f"neuron.v_init_mv: [low, high] needs low <= high, got {self.v_init_mv}")
        return self


class PoissonInput(_Section):
    """External Poisson input: every neuron has ``synapses`` independent sources firing at ``rate_hz``."""

    source: Literal["poisson"]
    synapses: int = Field(gt=0, description="external synapses per neuron (C_ext)")
    rate_hz: float = Field(gt=0, description="rate of each external source, Hz")
    weight_mv: float = Field(description="weight of an external synapse, mV")
    receptor: Receptor = Field("excitatory", description="which synaptic variable it drives (cuba only)")


class SpikingDynamics(_Section):
    """Simulated time."""

    mode: Literal["spiking"]
    dt_ms: float = Field(0.1, gt=0, description="clock step, ms: spike times of cuba neurons lie on it; delta "
                                                "neurons run in continuous time and use it only for monitors")


class SpikingRun(_Section):
    """How long to simulate, with which seed, and how often to checkpoint."""

    duration_s: float = Field(gt=0, description="simulated time, seconds")
    seed: int = Field(0, ge=0, lt=INT64_MAX, description="master seed; network.seed defaults to it, the Poisson "
                                                          "input to it + 1")
    checkpoint_seconds: float = Field(5.0, gt=0, description="wall-clock seconds between checkpoints")


class MonitorsSection(_Section):
    """What is recorded besides every spike and the population rate."""

    state_neurons: list[int] = Field([], description="neurons whose v, ge, gi are sampled (traces figure)")
    state_every_ms: float = Field(0.1, gt=0, description="sampling interval of the traces, ms")
    statistics_from_s: float = Field(0.0, ge=0, description="rates and ISI CVs in metrics.json count spikes "
                                                            "from this time on (drop the initial transient)")


class SpikingOutput(_Section):
    """What a run writes besides metrics.json, monitors.npz and the checkpoint."""

    figures: bool = Field(True, description="draw raster, rate, ISI-CV and voltage figures at the end")


class SpikingScenario(_Section):
    """A validated spiking scenario."""

    description: str = Field("", description="one line saying what the scenario shows")
    network: PopulationsNetwork
    neuron: NeuronSection
    input: PoissonInput | None = Field(None, description="external Poisson input (optional)")
    dynamics: SpikingDynamics
    run: SpikingRun
    monitors: MonitorsSection = MonitorsSection()
    output: SpikingOutput = SpikingOutput()

    @model_validator(mode="before")
    @classmethod
    def _default_seed(cls, data):
        return seed_from_run(data, "network")

    @model_validator(mode="after")
    def _fits(self):
        n = sum(self.network.sizes)
        bad = [k for k in self.monitors.state_neurons if not 0 <= k < n]
        if bad:
            raise ValueError(f"monitors.state_neurons: neuron ids must lie in [0, {n}), got {bad}")
        if self.monitors.statistics_from_s >= self.run.duration_s:
            raise ValueError(f"monitors.statistics_from_s: {self.monitors.statistics_from_s} s leaves nothing of "
                             f"run.duration_s = {self.run.duration_s} s")
        return self
