"""Spiking mode: LIF neurons, exact clock-driven (CUBA) and event-driven (delta synapses) engines, monitors.

Use it from a scenario (``[dynamics] mode = "spiking"``, e.g. ``eventhorizon
run cuba``) or directly::

    from eventhorizon.spiking.network import build_spiking_network, initial_potentials
    from eventhorizon.spiking.simulation import Simulation
"""
