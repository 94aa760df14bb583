"""compose.yaml and the Dockerfile speak the settings' language: every ZGWID_* name exists, and the
service and worker get everything production mode demands."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import yaml

from zgw_identificatie.adapters.crypto import generate_key
from zgw_identificatie.settings import describe, load_settings

REPO = Path(__file__).resolve().parents[2]
COMPOSE_TEXT = (REPO / "compose.yaml").read_text(encoding="utf-8")
COMPOSE = yaml.safe_load(COMPOSE_TEXT)
DOCKERFILE = (REPO / "Dockerfile").read_text(encoding="utf-8")
ENV_EXAMPLE = (REPO / "config" / "compose.env.example").read_text(encoding="utf-8")
SETTINGS = {env for env, *_ in describe()} | {"ZGWID_CONFIG"}  # ZGWID_CONFIG: the TOML file load_settings reads
# Variables compose itself uses, not passed to the service (documented in compose.yaml's header).
COMPOSE_ONLY = {"ZGWID_IMAGE", "ZGWID_PUBLISH", "ZGWID_WEB_WORKERS", "ZGWID_SECRETS_DIR"}
# What an operator puts in .env for the ${NAME:?…} placeholders (values of the right shape).
OPERATOR_VALUES = {
    "ZGWID_BASE_URL": "https://identificatie.gemeente.example",
    "POSTGRES_PASSWORD": "pg-" + "p" * 20,
    "ZGWID_SECRET_KEY": "s" * 40,
    "ZGWID_CODE_KEY": "c" * 40,
    "ZGWID_AUDIT_HASH_KEY": "a" * 40,
    "ZGWID_ENCRYPTION_KEYS": generate_key(),
    "ZGWID_GEMEENTE_NAAM": "Gemeente Voorbeeld",
    "ZGWID_GEMEENTECODE": "0363",
    "ZGWID_RSIN": "002220647",
    "ZGWID_DIGID_IDP_ARS_URL": "https://was-preprod1.digid.nl/saml/idp/resolve_artifact",
    "ZGWID_ZGW_SECRET": "z" * 40,
}
PLACEHOLDER = re.compile(r"\$\{(?P<name>[A-Z0-9_]+)(?::(?P<op>[?-])(?P<arg>[^}]*))?\}")


def interpolate(value: str, given: dict[str, str]) -> str:
    """Compose's ${NAME}, ${NAME:-default} and ${NAME:?message}, with ``given`` as the .env file."""

    def one(match: re.Match[str]) -> str:
        name, op, arg = match["name"], match["op"], match["arg"]
        if name in given:
            return given[name]
        assert op != "?", f"{name} is required ({arg}) but the test has no value for it: add it to OPERATOR_VALUES"
        return arg if op == "-" else ""

    return PLACEHOLDER.sub(one, value)


def environment(service: str, given: dict[str, str]) -> dict[str, str]:
    env: dict[str, Any] = COMPOSE["services"][service]["environment"]
    return {name: interpolate(str(value), given) for name, value in env.items()}


def test_every_zgwid_name_in_compose_and_dockerfile_is_a_setting() -> None:
    """A misspelt ZGWID_ name would be ignored silently by the service."""
    names = set(re.findall(r"\bZGWID_[A-Z0-9_]+", COMPOSE_TEXT + DOCKERFILE + ENV_EXAMPLE))
    assert names, "no ZGWID_ names found"
    unknown = names - SETTINGS - COMPOSE_ONLY
    assert not unknown, f"not settings: {sorted(unknown)}"
    assert not COMPOSE_ONLY & SETTINGS, "a compose-only variable shadows a setting"
    for name in COMPOSE_ONLY:
        assert name in COMPOSE_TEXT.split("\nname:")[0] or f"${{{name}" in COMPOSE_TEXT


def test_the_service_and_the_worker_get_a_complete_production_configuration() -> None:
    """With the operator's required values, the settings validate in production mode (the image's)."""
    assert re.search(r"\bZGWID_ENV=production\b", DOCKERFILE)
    for service in ("zgw-identificatie", "worker"):
        env = {"ZGWID_ENV": "production", **environment(service, OPERATOR_VALUES)}
        settings = load_settings(environ=env)  # raises ConfigError naming a missing or dev-default setting
        assert settings.production and not settings.digid.simulator and not settings.zgw.sandbox
        assert settings.database_url.startswith("postgresql+psycopg://zgwid:pg-")
        assert settings.rate_limit_storage.startswith("redis://redis:")
        assert settings.worker_in_process is False


def strings(node: Any) -> list[str]:
    if isinstance(node, dict):
        return [s for key, value in node.items() for s in strings(key) + strings(value)]
    if isinstance(node, list):
        return [s for item in node for s in strings(item)]
    return [node] if isinstance(node, str) else []


def test_every_required_placeholder_is_needed() -> None:
    """Leaving out any ${NAME:?} value stops compose; each one the test supplies is actually asked for."""
    required = {m["name"] for text in strings(COMPOSE) for m in PLACEHOLDER.finditer(text) if m["op"] == "?"}
    assert required == set(OPERATOR_VALUES)
    in_example = set(re.findall(r"^([A-Z0-9_]+)=", ENV_EXAMPLE, re.M))
    assert required <= in_example, f"config/compose.env.example lacks {sorted(required - in_example)}"


def test_the_digid_key_files_are_the_mounted_secrets() -> None:
    for service in ("zgw-identificatie", "worker"):
        definition = COMPOSE["services"][service]
        env = environment(service, OPERATOR_VALUES)
        mounted = {f"/run/secrets/{name}" for name in definition["secrets"]}
        files = {v for k, v in env.items() if k.endswith(("_FILE", "_FILES"))}
        assert files and files <= mounted, files - mounted
        assert set(definition["secrets"]) <= set(COMPOSE["secrets"])


def test_the_web_service_publishes_the_port_it_binds_and_the_worker_runs_the_worker() -> None:
    web = COMPOSE["services"]["zgw-identificatie"]
    bind = web["command"][web["command"].index("--bind") + 1]
    assert bind.rsplit(":", 1)[1] == "8000"
    assert all(str(port).endswith(":8000") for port in web["ports"])
    assert COMPOSE["services"]["worker"]["command"] == ["zgw-identificatie", "worker"]
    for service in ("zgw-identificatie", "worker"):
        definition = COMPOSE["services"][service]
        assert definition["read_only"] is True and "/tmp" in definition["tmpfs"]
        assert definition["user"] == "10001:10001"
    assert "USER 10001:10001" in DOCKERFILE


def test_the_zaaksysteem_profile_is_where_the_default_zgw_urls_point() -> None:
    services = COMPOSE["services"]
    assert services["openzaak"]["profiles"] == ["zaaksysteem"]
    assert services["openzaak-db"]["profiles"] == ["zaaksysteem"]
    assert "profiles" not in services["zgw-identificatie"] and "profiles" not in services["postgres"]
    aliases = services["openzaak"]["networks"]["default"]["aliases"]
    env = environment("zgw-identificatie", OPERATOR_VALUES)
    for name in ("ZGWID_ZGW_ZAKEN_URL", "ZGWID_ZGW_DOCUMENTEN_URL", "ZGWID_ZGW_CATALOGI_URL"):
        host = env[name].split("/")[2].split(":")[0]
        assert host in aliases and host in services["openzaak"]["environment"]["ALLOWED_HOSTS"]
