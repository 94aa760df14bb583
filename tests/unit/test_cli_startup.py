"""``zgw-identificatie --help`` stays fast: the CLI and the package do not import the web app."""

from __future__ import annotations

import subprocess
import sys

HEAVY = (
    "zgw_identificatie.settings",
    "flask",
    "sqlalchemy",
    "onelogin",
    "xmlsec",
    "lxml",
    "reportlab",
    "requests",
    "limits",
    "alembic",
)


def test_help_imports_none_of_the_heavy_libraries():
    """Counted in modules, not milliseconds: --help used to import the whole app (Flask, SQLAlchemy,
    the SAML and PDF libraries) through the package's __init__; now not even the settings."""
    code = (
        "import sys\n"
        "from zgw_identificatie.cli import main\n"
        "try:\n"
        "    main(['--help'])\n"
        "except SystemExit:\n"
        "    pass\n"
        f"print(sorted(m for m in {HEAVY!r} if m in sys.modules))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert "usage: zgw-identificatie" in out
    assert out.strip().splitlines()[-1] == "[]"


def test_the_package_still_offers_create_app():
    import zgw_identificatie

    assert zgw_identificatie.create_app.__module__ == "zgw_identificatie.app"
