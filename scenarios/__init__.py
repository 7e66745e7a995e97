"""Bundled scenario files (installed as the package data ``eventhorizon.bundled``; see ``eventhorizon list``)."""
