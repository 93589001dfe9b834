"""The C copies of the fold's hottest steps, when they were built, and the switch that turns
them off.

`chronology/_resolution.c` resolves a field as `resolution.resolve_distinct` does;
`chronology/_transcoder.c` decodes the log's rows as `transcoder.decode_state` and
`Archive.read` do; `chronology/_fold.c` folds them into the projection's table state as
`projection.fold` does, and gathers what each incident's view is built from as
`projection.view_inputs` does; `chronology/_bestview.c` writes an incident's stored view as
`bestview.view_body` does; `chronology/_records.c` encodes and decodes an incident's stored
claims as `records.encode_claims` and `decode_claims` do. The Python functions are the
reference: each C module does the same steps with the same Python objects, and
tests/test_native_*.py hold the two to each other. They are
built at install when a C compiler is present; without one, or with `CHRON_PURE_PYTHON=1`,
everything runs in Python, with the same results.
"""

from __future__ import annotations

import importlib
import os
from types import ModuleType
from typing import Any


def pure_python() -> bool:
    """Whether `CHRON_PURE_PYTHON` asks for the Python reference alone."""
    return os.environ.get("CHRON_PURE_PYTHON", "0") not in ("", "0")


def load(name: str, configuration: dict[str, Any]) -> ModuleType | None:
    """`chronology.<name>` (a C module) configured with the classes and constants it takes
    from its Python reference, or None when it was not built or is turned off."""
    if pure_python():
        return None
    try:
        module = importlib.import_module(f"chronology.{name}")
    except ImportError:
        return None
    module.configure(configuration)
    return module
