"""The README stays true: its settings table is the one the code generates, and it names the two commands."""

from __future__ import annotations

import io
from contextlib import redirect_stdout
from pathlib import Path

from zgw_identificatie.cli import main

ROOT = Path(__file__).resolve().parents[2]


def test_the_readme_settings_table_matches_the_settings_in_the_code():
    """Regenerate with `zgw-identificatie settings` when a setting changes."""
    out = io.StringIO()
    with redirect_stdout(out):
        main(["settings"])
    assert out.getvalue().strip() in (ROOT / "README.md").read_text()


def test_the_readme_names_the_two_commands_and_ci_runs_the_test_command():
    """make demo and make test; .ci/run runs make test."""
    readme = (ROOT / "README.md").read_text()
    assert "make demo" in readme and "make test" in readme
    assert "make test" in (ROOT / ".ci" / "run").read_text()


def test_the_example_configuration_lists_every_setting():
    """Regenerate with `zgw-identificatie settings --toml > config/zgw-identificatie.example.toml`."""
    from zgw_identificatie.settings import example_toml

    assert (ROOT / "config" / "zgw-identificatie.example.toml").read_text() == example_toml()
