"""A spiking network built from a scenario: synapse graph, per-source projection, LIF parameters, initial state."""

from dataclasses import dataclass

import numpy as np

from eventhorizon.spiking.lif import LIFParameters
from topology.generators import populations
from topology.store import SynapseGraph

__all__ = ["PoissonDrive", "SpikingNetwork", "build_spiking_network"]

MV, MS = 1e-3, 1e-3


@dataclass(frozen=True)
class PoissonDrive:
    """``synapses`` independent Poisson sources of ``rate`` Hz onto every neuron, each adding ``weight`` volts."""

    synapses: int
    rate: float
    weight: float
    receptor: int  # 0 → ge, 1 → gi (cuba)

    @property
    def rate_per_neuron(self):
        """Total external rate onto one neuron (Hz): the sources' superposition is one Poisson process."""
        return self.synapses * self.rate


@dataclass
class SpikingNetwork:
    """What a simulation needs besides its state.

    Attributes
    ----------
    graph : SynapseGraph
        Out-synapses, weights in volts.
    receptor : ndarray of int8
        Per neuron: 0 if its spikes drive ``ge`` (excitatory), 1 for ``gi``.
    delay : ndarray of float64
        Per neuron: transmission delay of its spikes, seconds.
    params : LIFParameters
    dt : float
        Clock step, seconds.
    population_names, population_sizes : list
    drive : PoissonDrive or None
    """

    graph: SynapseGraph
    receptor: np.ndarray
    delay: np.ndarray
    params: LIFParameters
    dt: float
    population_names: list
    population_sizes: list
    drive: PoissonDrive | None = None

    @property
    def n(self):
        return self.graph.n

    def population_of(self):
        """Population index of every neuron (int64)."""
        return np.repeat(np.arange(len(self.population_sizes)), self.population_sizes)

    def delay_steps(self):
        """Delays rounded to whole clock steps (int32), as Brian2 rounds them."""
        return np.round(self.delay / self.dt).astype(np.int32)


def _params(neuron):
    return LIFParameters(
        synapse=neuron.synapse, tau_m=neuron.tau_m_ms * MS, v_rest=neuron.v_rest_mv * MV,
        v_threshold=neuron.v_threshold_mv * MV, v_reset=neuron.v_reset_mv * MV, refractory=neuron.refractory_ms * MS,
        tau_e=None if neuron.tau_e_ms is None else neuron.tau_e_ms * MS,
        tau_i=None if neuron.tau_i_ms is None else neuron.tau_i_ms * MS)


def build_spiking_network(scenario):
    """The :class:`SpikingNetwork` of a validated spiking scenario (deterministic for its seeds).

    Examples
    --------
    >>> from eventhorizon.scenario import load_scenario, resolve_scenario
    >>> sc = load_scenario(resolve_scenario("cuba"), ["network.sizes=[80, 20]", "network.probability=0.1",
    ...                                                  "monitors.state_neurons=[0]"])
    >>> net = build_spiking_network(sc)
    >>> net.n, net.population_names, int(net.receptor.sum())
    (100, ['excitatory', 'inhibitory'], 20)
    """
    section = scenario.network
    sizes = list(section.sizes)
    graph = populations(sizes, section.probability, [w * MV for w in section.weights_mv], seed=section.seed,
                        self_loops=section.self_loops)
    receptor = np.repeat([0 if r == "excitatory" else 1 for r in section.receptors], sizes).astype(np.int8)
    delays = section.delays_ms or [0.0] * len(sizes)
    delay = np.repeat(np.asarray(delays, dtype=np.float64) * MS, sizes)
    names = list(section.names) if section.names is not None else [f"pop{k}" for k in range(len(sizes))]
    drive = None
    if scenario.input is not None:
        drive = PoissonDrive(synapses=scenario.input.synapses, rate=scenario.input.rate_hz,
                             weight=scenario.input.weight_mv * MV,
                             receptor=0 if scenario.input.receptor == "excitatory" else 1)
    return SpikingNetwork(graph=graph, receptor=receptor, delay=delay, params=_params(scenario.neuron),
                          dt=scenario.dynamics.dt_ms * MS, population_names=names, population_sizes=sizes, drive=drive)


def initial_potentials(scenario, n):
    """Initial membrane potentials (volts) from ``neuron.v_init_mv``, drawn from the network's seed stream."""
    low_high = scenario.neuron.v_init_mv
    if len(low_high) == 1:
        return np.full(n, low_high[0] * MV)
    rng = np.random.default_rng([scenario.network.seed, 1])
    return (low_high[0] + rng.random(n) * (low_high[1] - low_high[0])) * MV
