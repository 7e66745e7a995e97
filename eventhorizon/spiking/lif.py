"""Leaky integrate-and-fire neurons: parameters and exact propagators.

Two synapse models share one membrane equation (all voltages in volts, times
in seconds, as Brian2 stores them):

* **current-based exponential synapses** (``"cuba"``, Vogels & Abbott 2005)::

      dv/dt  = (ge + gi − (v − v_rest)) / tau_m      (unless refractory)
      dge/dt = −ge / tau_e        a spike from an excitatory source adds w to ge
      dgi/dt = −gi / tau_i        a spike from an inhibitory source adds w to gi

* **delta synapses** (``"delta"``, Brunel 2000): ``dv/dt = −(v − v_rest) /
  tau_m`` and a spike adds its weight to ``v`` directly.

A neuron fires when ``v > v_threshold`` outside its refractory period; ``v``
is then set to ``v_reset`` and held there for ``refractory`` seconds.

The subthreshold dynamics are linear, so a step of any length ``h`` is
integrated exactly (the propagator matrix of Rotter & Diesmann 1999, and
Brian2's ``method='exact'``)::

      v(t+h) − v_rest = (v − v_rest)·e^{−h/τm}
                        + ge · τe/(τe − τm) · (e^{−h/τe} − e^{−h/τm})   (same for gi)

:func:`propagator` returns those coefficients for the clock-driven kernel.
"""

import math
from dataclasses import dataclass
from typing import NamedTuple

__all__ = ["LIFParameters", "Propagator", "propagator"]


@dataclass(frozen=True)
class LIFParameters:
    """Parameters of a LIF population (SI units: seconds and volts).

    Examples
    --------
    >>> cuba = LIFParameters(synapse="cuba", tau_m=20e-3, tau_e=5e-3, tau_i=10e-3, v_rest=-49e-3,
    ...                      v_threshold=-50e-3, v_reset=-60e-3, refractory=5e-3)
    >>> cuba.drifts_to_threshold
    True
    """

    synapse: str
    tau_m: float
    v_rest: float
    v_threshold: float
    v_reset: float
    refractory: float
    tau_e: float | None = None
    tau_i: float | None = None

    def __post_init__(self):
        if self.synapse not in ("cuba", "delta"):
            raise ValueError(f"synapse must be 'cuba' or 'delta', got {self.synapse!r}")
        for name in ("tau_m",) + (("tau_e", "tau_i") if self.synapse == "cuba" else ()):
            value = getattr(self, name)
            if value is None or not value > 0:
                raise ValueError(f"{name} must be a positive time in seconds, got {value!r}")
        if not self.refractory >= 0:
            raise ValueError(f"refractory must be >= 0 seconds, got {self.refractory!r}")
        if not self.v_reset < self.v_threshold:
            raise ValueError(f"v_reset ({self.v_reset}) must lie below v_threshold ({self.v_threshold})")

    @property
    def drifts_to_threshold(self):
        """True when a neuron reaches threshold with no input at all (``v_rest > v_threshold``)."""
        return self.v_rest > self.v_threshold


class Propagator(NamedTuple):
    """Exact one-step coefficients for a clock of step ``dt`` (what the kernel reads)."""

    v_rest: float
    v_threshold: float
    v_reset: float
    decay_m: float  # e^{−dt/τm}
    decay_e: float  # e^{−dt/τe}
    decay_i: float  # e^{−dt/τi}
    gain_e: float  # contribution of ge to v over one step
    gain_i: float  # contribution of gi to v over one step
    refractory_steps: int


def _synaptic_gain(tau_syn, tau_m, dt):
    """∫ of an exponential current decaying with τs through the membrane filter τm over ``dt``."""
    if math.isclose(tau_syn, tau_m, rel_tol=1e-9):
        return dt / tau_m * math.exp(-dt / tau_m)  # the limit τs → τm
    return tau_syn / (tau_syn - tau_m) * (math.exp(-dt / tau_syn) - math.exp(-dt / tau_m))


def propagator(params, dt):
    """Exact propagator of ``params`` (``synapse="cuba"``) for a clock step ``dt`` seconds.

    The refractory period becomes whole steps as Brian2's
    ``timestep(refractory, dt)`` makes it: ``int(refractory / dt + 1e-3)``.

    Examples
    --------
    >>> p = LIFParameters(synapse="cuba", tau_m=20e-3, tau_e=5e-3, tau_i=10e-3, v_rest=-49e-3,
    ...                   v_threshold=-50e-3, v_reset=-60e-3, refractory=5e-3)
    >>> prop = propagator(p, 1e-4)
    >>> prop.refractory_steps, round(prop.decay_m, 6), round(prop.gain_e, 8)
    (50, 0.995012, 0.00493794)
    """
    if params.synapse != "cuba":
        raise ValueError(f"the clock-driven propagator is for synapse='cuba', got {params.synapse!r}")
    if not dt > 0:
        raise ValueError(f"dt must be a positive time in seconds, got {dt!r}")
    return Propagator(
        v_rest=float(params.v_rest), v_threshold=float(params.v_threshold), v_reset=float(params.v_reset),
        decay_m=math.exp(-dt / params.tau_m), decay_e=math.exp(-dt / params.tau_e),
        decay_i=math.exp(-dt / params.tau_i),
        gain_e=_synaptic_gain(params.tau_e, params.tau_m, dt), gain_i=_synaptic_gain(params.tau_i, params.tau_m, dt),
        refractory_steps=int(params.refractory / dt + 1e-3),
    )
