"""The built-in resolution policies, registered as an ordinary plugin (DESIGN.md §4)."""

from __future__ import annotations

from typing import Any

from chronology.hookspecs import hookimpl
from chronology.resolution import BUILT_IN_POLICIES


@hookimpl
def chronology_resolution_policies() -> dict[str, Any]:
    return dict(BUILT_IN_POLICIES)
