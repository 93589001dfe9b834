"""The plugin manager: built-in plugins first, then the `chronology` entry-point group.

Each entry point is loaded on its own, so a plugin that fails to import, or implements a hook
that does not exist, is set aside and named (`chron plugins`, and a warning on stderr) while
everything else keeps working. $CHRON_PLUGINS, a comma-separated list of entry-point names,
limits which plugins load ("" loads none).
"""

from __future__ import annotations

import dataclasses
import importlib.metadata
import os
from collections.abc import Iterable, Iterator
from typing import Any

import pluggy

from chronology import default_policies, hookspecs
from chronology.errors import BadExportOption, PluginError
from chronology.projection import collector_paused
from chronology.timeline import Exporter, Timeline

ENTRY_POINT_GROUP = "chronology"
BUILT_IN = (default_policies,)


class Plugins:
    """The loaded plugins and what they provide."""

    def __init__(
        self, pm: pluggy.PluginManager, failures: dict[str, str], distributions: dict[str, tuple[str, str]]
    ) -> None:
        self.pm = pm
        self.failures = failures
        self.distributions = distributions
        self.exporter_plugins: dict[str, str] = {}

    def exporters(self) -> dict[str, Exporter]:
        """Every exporter by format name (the first plugin to claim a name keeps it)."""
        found: dict[str, Exporter] = {}
        for plugin_name, result in self._call("chronology_exporters"):
            for exporter in result or []:
                if not isinstance(exporter, Exporter):
                    raise PluginError(f"plugin '{plugin_name}' returned {exporter!r}, not an Exporter")
                if exporter.name not in found:
                    found[exporter.name] = exporter
                    self.exporter_plugins[exporter.name] = plugin_name
        return found

    def export(self, name: str, timeline: Any, options: dict[str, str]) -> bytes:
        """Run one exporter; a failure names the plugin that raised."""
        exporter = self._checked(name, options)
        try:
            with collector_paused():
                output = exporter.render(timeline, options)
        except (PluginError, BadExportOption):
            raise
        except Exception as error:
            raise self._failed(name, error) from error
        if not isinstance(output, bytes):
            raise self._not_bytes(name, output)
        return output

    def export_pages(self, name: str, pages: Iterable[Timeline], options: dict[str, str]) -> Iterator[bytes]:
        """Run one exporter over a timeline given in pages (`chronology.replay.timeline_pages`),
        yielding its output in pieces: through `Exporter.render_pages`, or for an exporter
        without it, through `render` on the pages joined into one timeline. A failure names the
        plugin that raised; one in reading the pages is raised as it is, not blamed on it."""
        exporter = self._checked(name, options)
        if exporter.render_pages is None:
            yield self.export(name, _joined(pages), options)
            return
        try:
            for piece in exporter.render_pages(_reading(pages), options):
                if not isinstance(piece, bytes):
                    raise self._not_bytes(name, piece)
                yield piece
        except _ReadingFailed as failed:
            raise failed.error from None
        except (PluginError, BadExportOption):
            raise
        except Exception as error:
            raise self._failed(name, error) from error

    def _checked(self, name: str, options: dict[str, str]) -> Exporter:
        exporter = self.exporter(name)
        unknown = set(options) - set(exporter.options)
        if unknown:
            raise PluginError(
                f"export format '{name}' has no option {', '.join(sorted(unknown))}"
                f" (options: {', '.join(sorted(exporter.options)) or 'none'})"
            )
        return exporter

    def _failed(self, name: str, error: Exception) -> PluginError:
        plugin = self.exporter_plugins.get(name, "?")
        return PluginError(f"plugin '{plugin}' failed to export '{name}': {type(error).__name__}: {error}")

    def _not_bytes(self, name: str, output: Any) -> PluginError:
        plugin = self.exporter_plugins.get(name, "?")
        return PluginError(f"plugin '{plugin}' returned {type(output).__name__} from '{name}', not bytes")

    def exporter(self, name: str) -> Exporter:
        exporters = self.exporters()
        if name in exporters:
            return exporters[name]
        hint = ""
        if self.failures:
            hint = "; plugins that failed to load: " + ", ".join(sorted(self.failures))
        raise PluginError(f"unknown export format '{name}': available {', '.join(sorted(exporters)) or 'none'}" + hint)

    def policies(self) -> dict[str, Any]:
        found: dict[str, Any] = {}
        for _plugin_name, result in self._call("chronology_resolution_policies"):
            for name, policy in (result or {}).items():
                found.setdefault(name, policy)
        return found

    def policy(self, name: str) -> Any:
        policies = self.policies()
        if name not in policies:
            raise PluginError(f"unknown resolution policy '{name}': available {', '.join(sorted(policies))}")
        return policies[name]

    def _call(self, hook_name: str) -> list[tuple[str, Any]]:
        """Call each implementation separately so a raising plugin is named."""
        results = []
        hook = getattr(self.pm.hook, hook_name)
        for impl in hook.get_hookimpls():
            name = self.pm.get_name(impl.plugin) or repr(impl.plugin)
            try:
                results.append((name, impl.function()))
            except Exception as error:
                raise PluginError(f"plugin '{name}' failed in {hook_name}: {error}") from error
        return results

    def describe(self) -> list[dict[str, Any]]:
        """What `chron plugins` prints: name, version, hooks, and load errors."""
        rows = []
        for plugin in self.pm.get_plugins():
            name = self.pm.get_name(plugin)
            hooks = sorted(h.name for h in self.pm.get_hookcallers(plugin) or [])
            distribution, version = self.distributions.get(name, ("chronology", _version()))
            rows.append({"name": name, "distribution": distribution, "version": version, "hooks": hooks})
        for name, error in sorted(self.failures.items()):
            distribution, version = self.distributions.get(name, ("?", "?"))
            rows.append({"name": name, "distribution": distribution, "version": version, "hooks": [], "error": error})
        return sorted(rows, key=lambda r: r["name"])


def _version() -> str:
    from chronology import __version__

    return __version__


def load_plugins() -> Plugins:
    pm = pluggy.PluginManager(ENTRY_POINT_GROUP)
    pm.add_hookspecs(hookspecs)
    for module in BUILT_IN:
        pm.register(module, name=module.__name__)
    allowed = os.environ.get("CHRON_PLUGINS")
    wanted = None if allowed is None else {n.strip() for n in allowed.split(",") if n.strip()}
    failures: dict[str, str] = {}
    distributions: dict[str, tuple[str, str]] = {}
    for entry_point in importlib.metadata.entry_points(group=ENTRY_POINT_GROUP):
        if wanted is not None and entry_point.name not in wanted:
            continue
        if pm.has_plugin(entry_point.name):
            continue
        dist = entry_point.dist
        distributions[entry_point.name] = (dist.name, dist.version) if dist else ("?", "?")
        try:
            plugin = entry_point.load()
            pm.register(plugin, name=entry_point.name)
        except Exception as error:
            failures[entry_point.name] = f"{type(error).__name__}: {error}"
            continue
        try:
            pm.check_pending()
        except pluggy.PluginValidationError as error:
            pm.unregister(name=entry_point.name)
            failures[entry_point.name] = f"unknown hook: {error}"
    return Plugins(pm, failures, distributions)


class _ReadingFailed(Exception):
    """Reading the pages failed (the store, not the exporter): carries the error through the
    exporter's code, so that it is raised as it is."""

    def __init__(self, error: BaseException) -> None:
        super().__init__(str(error))
        self.error = error


def _reading(pages: Iterable[Timeline]) -> Iterator[Timeline]:
    """The pages an exporter iterates, with any error in reading them wrapped (`_ReadingFailed`)."""
    pages = iter(pages)
    while True:
        try:
            page = next(pages)
        except StopIteration:
            return
        except Exception as error:
            raise _ReadingFailed(error) from error
        yield page


def _joined(pages: Iterable[Timeline]) -> Timeline:
    """The pages of a timeline as one, for an exporter that renders only a whole timeline."""
    pages = list(pages)
    claims = {i: c for page in pages for i, c in page.claims.items()}
    return dataclasses.replace(
        pages[0], incidents=tuple(v for page in pages for v in page.incidents), claims=claims, total=None
    )
