"""Event-driven, asynchronous neuron simulation."""

__version__ = "0.1.0"
