"""What a user installs, and docs that cannot drift from the code."""

from __future__ import annotations

import os
import subprocess
import sys
import zipfile

from click.testing import CliRunner

from tests.conftest import ROOT

CLI_REFERENCE = ROOT / "docs" / "cli.md"


def test_the_wheel_has_no_generic_top_level_names_and_ships_the_context(tmp_path):
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--quiet",
            "--no-deps",
            "--no-build-isolation",
            "--wheel-dir",
            str(tmp_path),
            str(ROOT),
        ],
        check=True,
        capture_output=True,
    )
    (wheel,) = tmp_path.glob("chronology-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    top = {name.split("/")[0] for name in names if not name.startswith("chronology-")}
    assert top == {"chronology", "chron_ical", "chron_jsonld", "chron_csv", "cli.py"}
    assert "chron_jsonld/context.jsonld" in names
    assert not any(name.startswith(("plugins/", "events/", "tests/")) for name in names)
    entry_points = zipfile.ZipFile(wheel).read(next(n for n in names if n.endswith("entry_points.txt"))).decode()
    assert "chron = cli:main" in entry_points and "ical = chron_ical" in entry_points


def cli_reference() -> str:
    """docs/cli.md: the --help text of every command, as the code prints it now."""
    from cli import cli

    runner = CliRunner()
    sections = [
        "# Command reference",
        "",
        "Generated from `chron --help`; `CHRON_WRITE_DOCS=1 pytest tests/test_packaging_and_docs.py` rewrites it.",
        "",
    ]

    def walk(command, path):
        result = runner.invoke(cli, [*path, "--help"], prog_name="chron", terminal_width=100)
        sections.extend([f"## chron {' '.join(path)}".rstrip(), "", "```", result.output.rstrip(), "```", ""])
        for name in sorted(getattr(command, "commands", {})):
            walk(command.commands[name], [*path, name])

    walk(cli, [])
    return "\n".join(sections)


def test_cli_reference_matches_the_help_text():
    expected = cli_reference()
    if os.environ.get("CHRON_WRITE_DOCS"):
        CLI_REFERENCE.write_text(expected, encoding="utf-8")
    assert CLI_REFERENCE.read_text(encoding="utf-8") == expected, (
        "docs/cli.md is out of date: run CHRON_WRITE_DOCS=1 pytest tests/test_packaging_and_docs.py"
    )


def test_readme_quick_start_is_two_commands_and_ci_runs_the_test_one():
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    block = readme.split("## Quick start", 1)[1].split("```console", 1)[1].split("```", 1)[0]
    commands = [line.split("#")[0].strip() for line in block.strip().splitlines()]
    assert commands == ["make run", "make test"]
    assert "make test" in (ROOT / ".ci" / "run").read_text(encoding="utf-8")


def test_every_command_is_documented_in_the_readme_or_reference():
    from cli import cli

    reference = CLI_REFERENCE.read_text(encoding="utf-8")
    for name in cli.commands:
        assert f"## chron {name}" in reference
