"""Synapse graphs: storage, generators and conversion (never imports ``eventhorizon``)."""
