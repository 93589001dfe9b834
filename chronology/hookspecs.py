"""Every hook a Chronology plugin can implement. Plugin authors: see docs/plugins.md.

A plugin is a module (or object) with functions named after these specs and marked with
`chronology.hookimpl`, registered through the `chronology` entry-point group.
"""

from __future__ import annotations

from typing import Any

import pluggy

hookspec = pluggy.HookspecMarker("chronology")
hookimpl = pluggy.HookimplMarker("chronology")


# --- exporters -----------------------------------------------------------------------------


@hookspec
def chronology_exporters() -> list[Any]:
    """Return the `chronology.timeline.Exporter`s this plugin provides (one per format)."""


# --- resolution ----------------------------------------------------------------------------


@hookspec
def chronology_resolution_policies() -> dict[str, Any]:
    """Return {name: policy} for extra resolution policies (see `chronology.resolution`)."""


# --- command line --------------------------------------------------------------------------


@hookspec
def chronology_commands(cli: Any) -> None:
    """Add click commands to the `chron` group passed in as `cli`."""
