"""Settings: one reader, documented, and a production that refuses development defaults."""

from __future__ import annotations

import pytest

from zgw_identificatie.adapters.crypto import generate_key
from zgw_identificatie.settings import ConfigError, describe, load_settings

STRONG = "x" * 40


def production_env(**extra: str) -> dict[str, str]:
    env = {
        "ZGWID_ENV": "production",
        "ZGWID_BASE_URL": "https://id.gemeente.nl",
        "ZGWID_SECRET_KEY": STRONG,
        "ZGWID_CODE_KEY": STRONG + "c",
        "ZGWID_AUDIT_HASH_KEY": STRONG + "a",
        "ZGWID_ENCRYPTION_KEYS": generate_key(),
        "ZGWID_DATABASE_URL": "postgresql+psycopg://u@db/zgwid",
        "ZGWID_DIGID_SIMULATOR": "false",
        "ZGWID_DIGID_IDP_ENTITY_ID": "https://was.digid.nl/saml/idp/metadata",
        "ZGWID_DIGID_IDP_SSO_URL": "https://digid.nl/sso",
        "ZGWID_DIGID_IDP_ARS_URL": "https://was.digid.nl/ars",
        "ZGWID_DIGID_IDP_CERT_FILES": "/certs/digid.pem",
        "ZGWID_DIGID_SP_KEY_FILE": "/certs/sp.key",
        "ZGWID_DIGID_SP_CERT_FILE": "/certs/sp.crt",
        "ZGWID_ZGW_SANDBOX": "false",
        "ZGWID_ZGW_ZAKEN_URL": "https://oz/zaken/api/v1/",
        "ZGWID_ZGW_DOCUMENTEN_URL": "https://oz/documenten/api/v1/",
        "ZGWID_ZGW_CATALOGI_URL": "https://oz/catalogi/api/v1/",
        "ZGWID_ZGW_SECRET": "zgw-secret",
        "ZGWID_SEAL_CERT_FILE": "/certs/seal.crt",
        "ZGWID_SEAL_KEY_FILE": "/certs/seal.key",
    }
    env.update(extra)
    return env


def test_a_complete_production_configuration_loads():
    """Every development default replaced → valid."""
    s = load_settings(production_env())
    assert s.production and s.digid.idp_cert_files == ["/certs/digid.pem"]


@pytest.mark.parametrize(
    ("variable", "value", "named"),
    [
        ("ZGWID_SECRET_KEY", "dev-only-change-me", "ZGWID_SECRET_KEY"),
        ("ZGWID_DIGID_SIMULATOR", "true", "ZGWID_DIGID_SIMULATOR"),
        ("ZGWID_ZGW_SANDBOX", "true", "ZGWID_ZGW_SANDBOX"),
        ("ZGWID_DATABASE_URL", "sqlite:///x.db", "ZGWID_DATABASE_URL"),
        ("ZGWID_ENCRYPTION_KEYS", "", "ZGWID_ENCRYPTION_KEYS"),
        ("ZGWID_BASE_URL", "http://id.gemeente.nl", "ZGWID_BASE_URL"),
        ("ZGWID_CODE_KEY", "short", "ZGWID_CODE_KEY"),
        ("ZGWID_LEVEL_MUTUAL", "laag", "ZGWID_LEVEL_MUTUAL"),
        ("ZGWID_CITIZEN_IDLE_MINUTES", "30", "ZGWID_CITIZEN_IDLE_MINUTES"),
        ("ZGWID_SEAL_CERT_FILE", "", "ZGWID_SEAL_CERT_FILE"),
    ],
)
def test_production_refuses_a_development_default_and_names_the_setting(variable, value, named):
    """The error message names the wrong setting."""
    with pytest.raises(ConfigError, match=named):
        load_settings(production_env(**{variable: value}))


def test_a_wrong_type_names_the_variable():
    """ZGWID_SESSION_MINUTES=abc → a message naming it."""
    with pytest.raises(ConfigError, match="ZGWID_SESSION_MINUTES"):
        load_settings({"ZGWID_SESSION_MINUTES": "abc"})


def test_toml_file_and_environment_combine_with_environment_winning(tmp_path):
    """TOML sets a value; the environment overrides it; unknown keys are refused."""
    cfg = tmp_path / "c.toml"
    cfg.write_text('gemeente_naam = "Gemeente Utrecht"\nsession_minutes = 10\n[digid]\nread_timeout = 3.5\n')
    s = load_settings({"ZGWID_SESSION_MINUTES": "12"}, config_file=str(cfg))
    assert (s.gemeente_naam, s.session_minutes, s.digid.read_timeout) == ("Gemeente Utrecht", 12, 3.5)
    cfg.write_text("gemeente = 1\n")
    with pytest.raises(ConfigError, match="unknown setting gemeente"):
        load_settings({}, config_file=str(cfg))


def test_every_setting_has_a_help_text():
    """describe() is the README table: nothing undocumented."""
    rows = describe()
    assert len(rows) > 50 and all(help_text for *_, help_text in rows)
    assert len({r[0] for r in rows}) == len(rows)


def test_the_example_configuration_file_is_valid():
    """config/zgw-identificatie.example.toml loads as it is."""
    from pathlib import Path

    path = Path(__file__).resolve().parents[2] / "config" / "zgw-identificatie.example.toml"
    load_settings({}, config_file=str(path))
