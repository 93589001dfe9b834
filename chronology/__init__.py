"""Chronology: an event-sourced chronology engine.

Sourced facts enter as immutable events in an append-only log (`chronology.archive`); the best
view of every incident is rebuilt from them (`chronology.bestview`); exporter plugins turn the
view into timelines (`chronology.hookspecs`, `plugins/`).
"""

__version__ = "0.1.0"
