"""Queues and events for event-driven simulation (never imports ``eventhorizon``)."""
