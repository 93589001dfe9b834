"""The plugin API, exercised the way integrators use it: separate installed distributions."""

from __future__ import annotations

import inspect
import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from chronology import hookspecs
from chronology.plugins import load_plugins
from tests.conftest import EVENTS, ROOT


def make_distribution(folder: Path, name: str, module: str, entry: str, code: str) -> Path:
    """Build and install a tiny plugin distribution with pip into folder/site; return that path."""
    source = folder / name
    (source / module).mkdir(parents=True)
    (source / "pyproject.toml").write_text(
        textwrap.dedent(f"""\
        [build-system]
        requires = ["hatchling"]
        build-backend = "hatchling.build"

        [project]
        name = "{name}"
        version = "1.2.3"

        [project.entry-points.chronology]
        {entry} = "{module}"

        [tool.hatch.build.targets.wheel]
        packages = ["{module}"]
        """),
        encoding="utf-8",
    )
    (source / module / "__init__.py").write_text(textwrap.dedent(code), encoding="utf-8")
    site = folder / "site"
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "install",
            "--quiet",
            "--no-deps",
            "--no-build-isolation",
            "--no-index",
            "--target",
            str(site),
            str(source),
        ],
        check=True,
        capture_output=True,
    )
    return site


UPPER = """\
    from chronology.hookspecs import hookimpl
    from chronology.timeline import Exporter


    def render(timeline, options):
        return "".join(f"{i.slug}: {i.title.upper()}\\n" for i in timeline.incidents).encode()


    @hookimpl
    def chronology_exporters():
        return [Exporter(name="upper", description="titles in capitals", media_type="text/plain",
                         file_extension="txt", render=render)]


    @hookimpl
    def chronology_commands(cli):
        import click

        @cli.command(name="shout")
        def shout():
            click.echo("HELLO FROM A PLUGIN")
"""
BROKEN = "raise RuntimeError('this plugin cannot start')\n"
MISSPELLED = """\
    from chronology.hookspecs import hookimpl


    @hookimpl
    def chronology_exporterz():
        return []
"""
RAISING = """\
    from chronology.hookspecs import hookimpl
    from chronology.timeline import Exporter


    def render(timeline, options):
        raise ValueError("disk full")


    @hookimpl
    def chronology_exporters():
        return [Exporter(name="flaky", description="fails", media_type="text/plain",
                         file_extension="txt", render=render)]
"""


def chron_process(site: Path | None, store: str, *args: str, plugins: str | None = None):
    env = {k: v for k, v in os.environ.items() if k != "CHRON_PLUGINS"}
    if plugins is not None:
        env["CHRON_PLUGINS"] = plugins
    if site is not None:
        env["PYTHONPATH"] = os.pathsep.join([str(site), str(ROOT)])
    return subprocess.run(
        [sys.executable, "-m", "cli", "--store", store, *args],
        capture_output=True,
        text=True,
        env=env,
        cwd=ROOT,
    )


@pytest.fixture(scope="module")
def plugin_site(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("plugins")
    make_distribution(folder, "chron-upper-exporter", "chron_upper_exporter", "upper", UPPER)
    make_distribution(folder, "chron-broken-plugin", "chron_broken_plugin", "broken", BROKEN)
    make_distribution(folder, "chron-misspelled-plugin", "chron_misspelled_plugin", "misspelled", MISSPELLED)
    return make_distribution(folder, "chron-flaky-exporter", "chron_flaky_exporter", "flaky", RAISING)


@pytest.fixture
def store_with_events(sqlite_store):
    result = chron_process(None, sqlite_store, "ingest", str(EVENTS), plugins="")
    assert result.returncode == 0, result.stderr
    return sqlite_store


def test_an_installed_exporter_distribution_is_picked_up(plugin_site, store_with_events):
    listed = json.loads(chron_process(plugin_site, store_with_events, "plugins").stdout)
    upper = next(p for p in listed if p["name"] == "upper")
    assert upper == {
        "name": "upper",
        "distribution": "chron-upper-exporter",
        "version": "1.2.3",
        "hooks": ["chronology_commands", "chronology_exporters"],
    }
    exported = chron_process(plugin_site, store_with_events, "export", "upper")
    assert exported.returncode == 0, exported.stderr
    assert "2020-03-11-camp-taji-rocket-attack: ROCKET ATTACK ON CAMP TAJI" in exported.stdout


def test_a_plugin_can_add_a_command(plugin_site, store_with_events):
    result = chron_process(plugin_site, store_with_events, "shout")
    assert result.returncode == 0 and result.stdout == "HELLO FROM A PLUGIN\n"


def test_a_broken_plugin_is_named_and_the_rest_keeps_working(plugin_site, store_with_events):
    listed = {p["name"]: p for p in json.loads(chron_process(plugin_site, store_with_events, "plugins").stdout)}
    assert "cannot start" in listed["broken"]["error"]
    assert listed["broken"]["distribution"] == "chron-broken-plugin"
    replay = chron_process(plugin_site, store_with_events, "replay")
    assert replay.returncode == 0 and "12 incidents" in replay.stdout
    exported = chron_process(plugin_site, store_with_events, "export", "ical")
    assert exported.returncode == 0 and exported.stdout.startswith("BEGIN:VCALENDAR")
    assert "warning: plugin 'broken' was not loaded: RuntimeError: this plugin cannot start" in exported.stderr


def test_a_misspelled_hook_fails_loudly(plugin_site, store_with_events):
    listed = {p["name"]: p for p in json.loads(chron_process(plugin_site, store_with_events, "plugins").stdout)}
    assert "unknown hook" in listed["misspelled"]["error"]
    assert "chronology_exporterz" in listed["misspelled"]["error"]


def test_an_exporter_that_raises_is_named_in_one_clear_error(plugin_site, store_with_events):
    result = chron_process(plugin_site, store_with_events, "export", "flaky")
    assert result.returncode == 1
    assert result.stderr.strip().splitlines()[-1] == (
        "error: plugin 'flaky' failed to export 'flaky': ValueError: disk full"
    )


def test_chron_plugins_env_var_chooses_what_loads(plugin_site, store_with_events):
    listed = json.loads(chron_process(plugin_site, store_with_events, "plugins", plugins="upper").stdout)
    assert {p["name"] for p in listed} == {"chronology.default_policies", "upper"}


def test_built_in_exporters_load_through_entry_points(monkeypatch):
    monkeypatch.setenv("CHRON_PLUGINS", "ical,jsonld,csv")
    plugins = load_plugins()
    assert set(plugins.exporters()) == {"ical", "jsonld", "csv"}
    assert {p["name"] for p in plugins.describe()} >= {"ical", "jsonld", "csv"}
    assert not plugins.failures


def test_a_plugin_can_add_a_resolution_policy(monkeypatch, sqlite_store):
    from click.testing import CliRunner

    import cli

    class MedianPolicy:
        @hookspecs.hookimpl
        def chronology_resolution_policies(self):
            def median(field_name, candidates, active, sources):
                ordered = sorted(candidates, key=lambda c: str(c[0]))
                return ordered[len(ordered) // 2]

            return {"median": median}

    plugins = load_plugins()
    plugins.pm.register(MedianPolicy(), name="median-policy")
    monkeypatch.setattr(cli, "load_plugins", lambda: plugins)
    runner = CliRunner()
    runner.invoke(cli.cli, ["--store", sqlite_store, "ingest", str(EVENTS)], catch_exceptions=False)
    result = runner.invoke(cli.cli, ["--store", sqlite_store, "replay", "--policy", "median"], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    assert "12 incidents" in result.stdout


def test_every_hook_is_documented():
    specs = [obj for name, obj in inspect.getmembers(hookspecs, inspect.isfunction) if name.startswith("chronology_")]
    assert specs
    guide = (ROOT / "docs" / "plugins.md").read_text(encoding="utf-8")
    plugins = load_plugins()
    for caller_name in plugins.pm.hook.__dict__:
        if caller_name.startswith("chronology_"):
            spec = getattr(hookspecs, caller_name)
            assert (spec.__doc__ or "").strip(), f"hook {caller_name} has no docstring"
            assert f"`{caller_name}" in guide, f"hook {caller_name} is not in docs/plugins.md"
