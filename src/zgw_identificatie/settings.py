"""Typed settings: the only reader of config files and ``ZGWID_*`` environment variables.

Every setting is declared once below with its default and a one-line help text. The loader reads,
in order (later wins): the defaults, a TOML file (``ZGWID_CONFIG`` or ``config/zgw-identificatie.toml``
when present), and the environment. A setting ``foo`` in section ``digid`` is ``[digid] foo`` in
TOML and ``ZGWID_DIGID_FOO`` in the environment.

``ZGWID_ENV=production`` refuses to start with a development default (placeholder secrets, the
DigiD simulator, the ZGW sandbox, SQLite) and names the setting that is wrong.
"""

from __future__ import annotations

import dataclasses
import json
import os
import tomllib
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, get_type_hints

PLACEHOLDER = "dev-only-change-me"
ENV_PREFIX = "ZGWID_"


class ConfigError(Exception):
    """A setting is missing or wrong; the message names the setting and says what to do."""


def setting(default: Any, help: str, *, secret: bool = False, dev_only: Any = dataclasses.MISSING) -> Any:
    """Declare a setting. ``dev_only`` is a value that is refused when ``env`` is production."""
    meta = {"help": help, "secret": secret, "dev_only": dev_only}
    if isinstance(default, list | dict):
        frozen = json.dumps(default)
        return field(default_factory=lambda: json.loads(frozen), metadata=meta)
    return field(default=default, metadata=meta)


@dataclass
class DigidSettings:
    simulator: bool = setting(True, "Use the built-in DigiD simulator (demo and tests only)", dev_only=True)
    sp_entity_id: str = setting("", "Our SAML entityID; empty: <base_url>/digid/metadata")
    idp_entity_id: str = setting(
        "", "DigiD's entityID, e.g. https://was-preprod1.digid.nl/saml/idp/metadata; empty with the simulator"
    )
    idp_metadata_url: str = setting(
        "", "Where DigiD publishes its metadata (for digid-metadata-check); empty: the entityID"
    )
    idp_sso_url: str = setting("", "DigiD's SingleSignOnService URL (HTTP-POST binding)")
    idp_ars_url: str = setting("", "DigiD's ArtifactResolutionService URL (SOAP, index 0)")
    idp_cert_files: list[str] = setting([], "PEM files of DigiD's pinned signing certificate(s); two during a rollover")
    sp_key_file: str = setting("", "PEM private key that signs our AuthnRequests and ArtifactResolves")
    sp_cert_file: str = setting("", "PEM certificate published in our SP metadata (PKIoverheid)")
    tls_client_cert_file: str = setting(
        "", "PEM client certificate for mutual TLS on the artifact back channel; empty: sp_cert_file"
    )
    tls_client_key_file: str = setting("", "PEM key of the TLS client certificate; empty: sp_key_file")
    ca_bundle_file: str = setting(
        "",
        "CA bundle that verifies DigiD's server (with the PKIoverheid private G1 root); empty: system store or "
        "REQUESTS_CA_BUNDLE (like HTTPS_PROXY and NO_PROXY read from the environment once, at start-up)",
    )
    soap_content_type: str = setting("text/xml", "Content-Type of the ArtifactResolve (SOAP 1.1)")
    connect_timeout: float = setting(5.0, "Seconds to connect to the artifact resolution service")
    read_timeout: float = setting(10.0, "Seconds to wait for the ArtifactResponse")
    clock_drift_seconds: int = setting(120, "Allowed clock difference on assertion time windows")
    max_assertion_age_seconds: int = setting(300, "Assertions issued longer ago than this are refused")
    service_name: str = setting("Identificatie tijdens videogesprek", "ServiceName in the SP metadata")
    organization_name: str = setting("", "Organization in the SP metadata; empty: gemeente_naam")
    organization_url: str = setting("", "OrganizationURL in the SP metadata; empty: base_url")
    contact_email: str = setting("", "Technical contact e-mail in the SP metadata")
    exchange_timeout: float = setting(
        15.0,
        "Overall deadline in seconds for the whole ArtifactResolve exchange (connect, send, read all); "
        "keep it well below the web worker time-out (gunicorn: 30)",
    )


@dataclass
class ZgwSettings:
    sandbox: bool = setting(
        True, "Use the built-in ZGW sandbox (demo only) instead of a real zaaksysteem", dev_only=True
    )
    zaken_url: str = setting("", "Root of the Zaken API, e.g. https://zaken.example.nl/zaken/api/v1/")
    documenten_url: str = setting("", "Root of the Documenten API")
    catalogi_url: str = setting("", "Root of the Catalogi API")
    client_id: str = setting("zgw-identificatie", "ZGW JWT client_id (the Applicatie in the Autorisaties API)")
    secret: str = setting(PLACEHOLDER, "ZGW JWT secret (HS256)", secret=True, dev_only=PLACEHOLDER)
    timeout: float = setting(10.0, "Seconds per ZGW request (connect and read)")
    catalogus_url: str = setting("", "URL of the catalogus holding the zaaktype; empty: look it up by rsin")
    zaaktype_identificatie: str = setting("VIDEO-ID", "identificatie of the zaaktype (the version valid today is used)")
    roltype_omschrijving_generiek: str = setting("initiator", "omschrijvingGeneriek of the citizen's roltype")
    roltype_existing_zaak: str = setting(
        "belanghebbende", "omschrijvingGeneriek of the citizen's rol when the proof joins an existing zaak"
    )
    informatieobjecttype_omschrijving: str = setting(
        "Bewijs identificatie", "omschrijving of the proof's informatieobjecttype"
    )
    vertrouwelijkheidaanduiding: str = setting("vertrouwelijk", "vertrouwelijkheidaanduiding of the proof document")
    taal: str = setting("nld", "taal of the proof document (ISO 639-2)")
    zaak_omschrijving: str = setting("Identificatie met DigiD tijdens videogesprek", "omschrijving of new zaken")
    check_on_start: bool = setting(True, "Resolve the catalogue at start-up and refuse to start when it fails")
    # Demo (issue 9): the sandbox's data across restarts and processes.
    sandbox_state_file: str = setting(
        "",
        "Sandbox only: JSON file keeping the sandbox's zaken and documents across restarts and worker processes "
        "(set it for 'serve' with the sandbox and several workers); empty: in memory ('demo' uses "
        "<instance>/zgw-sandbox.json)",
    )
    notificaties_url: str = setting(
        "", "Root of a Notificaties API 1.0.0 (e.g. Open Notificaties .../api/v1/); empty: no notificaties"
    )
    notificaties_kanaal: str = setting("identificaties", "Kanaal this service publishes session changes on")
    statustype_code_klopt: str = setting(
        "Identiteit vastgesteld",
        "omschrijving of the statustype set when the behandelaar confirms the §2.1 code; empty: no status",
    )
    statustype_code_klopt_niet: str = setting(
        "Identiteit niet vastgesteld",
        "omschrijving of the statustype set when the §2.1 code does not match; empty: no status",
    )


@dataclass
class OidcSettings:
    issuer: str = setting("", "OpenID Connect issuer of the municipality's staff login; empty: local accounts only")
    client_id: str = setting("", "OIDC client id")
    client_secret: str = setting("", "OIDC client secret", secret=True)
    name_claim: str = setting("name", "Claim with the behandelaar's display name")
    id_claim: str = setting("sub", "Claim with the behandelaar's unique id")
    required_group: str = setting("", "When set, only users with this value in groups_claim may log in")
    groups_claim: str = setting("groups", "Claim listing the user's groups or roles")
    scopes: str = setting("openid profile email", "Scopes asked for")
    verify_tls: bool = setting(True, "Verify the provider's TLS certificate")


@dataclass
class BrpSettings:
    url: str = setting("", "Haal Centraal BRP Personen bevragen v2 endpoint (.../personen); empty: no BRP lookup")
    api_key: str = setting("", "X-API-KEY for the BRP API", secret=True)
    doelbinding: str = setting("", "x-doelbinding header value (purpose)")
    verwerking: str = setting("", "x-verwerking header value (processing activity)")
    gebruiker: str = setting("", "x-gebruiker header default; the behandelaar's id is used when logged in")
    timeout: float = setting(5.0, "Seconds per BRP request")


@dataclass
class SealSettings:
    cert_file: str = setting(
        "", "PEM certificate that seals the proof PDF (PKIoverheid organisation seal; chain after it); empty: demo"
    )
    key_file: str = setting("", "PEM private key of the seal certificate")
    key_password: str = setting("", "Password of the seal key, when it is encrypted", secret=True)
    tsa_url: str = setting("", "RFC 3161 timestamp authority URL for the seal's trusted timestamp; empty: none")
    tsa_timeout: float = setting(10.0, "Seconds to wait for the timestamp authority")


@dataclass
class Settings:
    env: str = setting("development", "development or production; production refuses development defaults")
    base_url: str = setting("http://127.0.0.1:8000", "Public URL of this service as the citizen's browser sees it")
    secret_key: str = setting(PLACEHOLDER, "Signs browser sessions and CSRF tokens", secret=True, dev_only=PLACEHOLDER)
    database_url: str = setting(
        "", "SQLAlchemy URL; empty: SQLite in the instance folder. Production: postgresql+psycopg://…"
    )
    instance_path: str = setting("instance", "Folder for the SQLite file and the simulator's generated keys")
    log_level: str = setting("INFO", "Log level (DEBUG, INFO, WARNING, ERROR)")
    gemeente_naam: str = setting("Gemeente Voorbeeld", "The municipality's name as registered (shown next to DigiD)")
    gemeentecode: str = setting("9999", "CBS gemeentecode, part of the §2.2 code derivation")
    rsin: str = setting("002220647", "RSIN of the municipality: bronorganisatie of zaken and documents")
    code_key: str = setting(
        PLACEHOLDER, "Secret key for §2.2 controlecodes (32+ random bytes)", secret=True, dev_only=PLACEHOLDER
    )
    encryption_keys: list[str] = setting(
        [],
        "Fernet keys for BSNs at rest, newest first (rotation: add a new key in front); empty: a dev key",
        secret=True,
        dev_only=[],
    )
    audit_hash_key: str = setting(
        PLACEHOLDER, "Key of the keyed BSN hash in audit events", secret=True, dev_only=PLACEHOLDER
    )
    session_minutes: int = setting(15, "Lifetime of an identification session and its link")
    staff_idle_minutes: int = setting(30, "Staff browser session idle time-out")
    staff_max_hours: int = setting(10, "Staff browser session absolute lifetime, however active (a working day)")
    citizen_idle_minutes: int = setting(15, "Citizen browser session idle time-out (DigiD: at most 15)")
    purge_interval_seconds: int = setting(60, "How often the running service erases expired records")
    level_new_citizen: str = setting("midden", "Minimum DigiD level for §2.1 (basis, midden, substantieel, hoog)")
    level_known_citizen: str = setting("midden", "Minimum DigiD level for §2.2")
    level_mutual: str = setting("midden", "Minimum DigiD level for §2.3")
    purpose: str = setting(
        "uw identiteit te bevestigen tijdens het videogesprek", "Purpose shown to the citizen: 'om …'"
    )
    staff_users: dict[str, dict[str, str]] = setting(
        {}, "Local staff accounts: {username: {name, password_hash}} (hash from 'zgw-identificatie hash-password')"
    )
    api_keys: dict[str, dict[str, Any]] = setting(
        {},
        "API clients: {client_id: {key_hash, behandelaar, name, acts_for_staff, team, webhook_url, webhook_secret}}"
        " (hash from 'zgw-identificatie hash-api-key'; see README 'API')",
    )
    registration_max_attempts: int = setting(12, "Give up a registration after this many transient failures")
    worker_in_process: bool = setting(True, "Process registrations in a thread of the web process")
    rate_limit_storage: str = setting("memory://", "Rate limit storage: memory:// or redis://host:6379")
    rate_limit_start: str = setting("30/minute", "Limit on starting sessions, per client")
    rate_limit_citizen: str = setting("20/minute", "Limit on opening links and starting DigiD logins, per client")
    rate_limit_api_auth_failures: str = setting(
        "10/minute", "Limit on API requests with a missing or wrong key, per client address"
    )
    rate_limit_api: str = setting("120/minute", "Limit on API calls, per API client")
    trusted_proxies: int = setting(0, "Number of reverse proxies whose X-Forwarded-* headers are trusted")
    logo_url: str = setting("", "URL of the municipality's logo shown in the page header")
    theme_css_url: str = setting("", "URL of a CSS file with the municipality's NL Design System tokens")
    favicon_url: str = setting("", "URL of the municipality's favicon (browser tab icon); empty: a neutral one")
    demo_port: int = setting(8000, "Port of 'zgw-identificatie demo' (or --port)")
    demo_password: str = setting(
        "", "Demo only: password of the demo's staff accounts; empty: random per start", secret=True
    )
    api_key: str = setting(
        "", "Demo only: the API key the demo accepts and prints; empty: random per start", secret=True
    )
    # Observability (issue 13): logs, request ids, metrics.
    log_format: str = setting("text", "Log format: text (one line per record) or json (one JSON object per line)")
    replica_name: str = setting(
        "", "Name of this replica in log lines and the X-Served-By response header; empty: host:pid, no header"
    )
    metrics_token: str = setting(
        "", "Bearer token that opens /metrics on the service's port; empty: /metrics answers 404 there", secret=True
    )
    metrics_port: int = setting(
        0, "Serve Prometheus metrics without a token on this separate port (gunicorn master, worker); 0: off"
    )
    metrics_bind: str = setting("127.0.0.1", "Address the separate metrics port listens on (0.0.0.0 in a container)")
    staff_frame_ancestors: list[str] = setting(
        [], "Origins allowed to frame the staff session page (CSP frame-ancestors), e.g. https://zaken.gemeente.nl"
    )
    event_max_attempts: int = setting(50, "Give up delivering one event (notificatie or webhook) after this many tries")
    digid: DigidSettings = field(default_factory=DigidSettings)
    zgw: ZgwSettings = field(default_factory=ZgwSettings)
    oidc: OidcSettings = field(default_factory=OidcSettings)
    brp: BrpSettings = field(default_factory=BrpSettings)
    seal: SealSettings = field(default_factory=SealSettings)

    @property
    def production(self) -> bool:
        return self.env == "production"

    @property
    def effective_database_url(self) -> str:
        return self.database_url or f"sqlite:///{Path(self.instance_path).resolve() / 'zgw-identificatie.sqlite'}"

    @property
    def sp_entity_id(self) -> str:
        return self.digid.sp_entity_id or self.base_url.rstrip("/") + "/digid/metadata"

    def validate(self) -> None:
        """Raise ConfigError naming the first wrong setting."""
        if self.env not in ("development", "production"):
            raise ConfigError(f"ZGWID_ENV must be 'development' or 'production', not {self.env!r}")
        for name, value, section in _walk(self):
            meta = _meta(section, name)
            env_name = _env_name(section, name)
            if self.production and meta["dev_only"] is not dataclasses.MISSING and value == meta["dev_only"]:
                raise ConfigError(f"{env_name} has its development default; set a real value for production")
        if self.production:
            if not self.database_url or self.database_url.startswith("sqlite"):
                raise ConfigError("ZGWID_DATABASE_URL must point to PostgreSQL in production (SQLite is for the demo)")
            if not self.base_url.startswith("https://"):
                raise ConfigError("ZGWID_BASE_URL must be an https:// URL in production")
            for key in ("secret_key", "code_key", "audit_hash_key"):
                if len(getattr(self, key)) < 32:
                    raise ConfigError(f"ZGWID_{key.upper()} must be at least 32 characters in production")
            if not self.digid.simulator:
                for name in ("idp_entity_id", "idp_sso_url", "idp_ars_url", "sp_key_file", "sp_cert_file"):
                    if not getattr(self.digid, name):
                        raise ConfigError(f"ZGWID_DIGID_{name.upper()} is required with the real DigiD")
                if not self.digid.idp_cert_files:
                    raise ConfigError("ZGWID_DIGID_IDP_CERT_FILES is required: pin DigiD's signing certificate")
            if not (self.seal.cert_file and self.seal.key_file):
                raise ConfigError("ZGWID_SEAL_CERT_FILE and ZGWID_SEAL_KEY_FILE are required: the proof PDF is sealed")
        if self.oidc.issuer and not (self.oidc.client_id and self.oidc.client_secret):
            raise ConfigError(
                "ZGWID_OIDC_CLIENT_ID and ZGWID_OIDC_CLIENT_SECRET are required when ZGWID_OIDC_ISSUER is set"
            )
        if self.production:
            for env_name, url in (
                ("ZGWID_OIDC_ISSUER", self.oidc.issuer),
                ("ZGWID_BRP_URL", self.brp.url),
                ("ZGWID_DIGID_IDP_METADATA_URL", self.digid.idp_metadata_url),
            ):
                if url and not url.startswith("https://"):
                    raise ConfigError(f"{env_name} must be an https:// URL in production")
        if not self.zgw.sandbox:
            for name in ("zaken_url", "documenten_url", "catalogi_url"):
                if not getattr(self.zgw, name):
                    raise ConfigError(f"ZGWID_ZGW_{name.upper()} is required when ZGWID_ZGW_SANDBOX is false")
        for name in ("level_new_citizen", "level_known_citizen", "level_mutual"):
            if getattr(self, name).strip().lower() not in ("basis", "midden", "substantieel", "hoog"):
                raise ConfigError(f"ZGWID_{name.upper()} must be basis, midden, substantieel or hoog")
        if not (self.gemeentecode.isdigit() and len(self.gemeentecode) == 4):
            raise ConfigError("ZGWID_GEMEENTECODE must be the four-digit CBS gemeentecode")
        if not (self.rsin.isdigit() and len(self.rsin) == 9):
            raise ConfigError("ZGWID_RSIN must be nine digits")
        if not 1 <= self.citizen_idle_minutes <= 15:
            raise ConfigError("ZGWID_CITIZEN_IDLE_MINUTES must be between 1 and 15 (DigiD norm)")
        if self.session_minutes < 1:
            raise ConfigError("ZGWID_SESSION_MINUTES must be at least 1")
        if self.log_format not in ("text", "json"):
            raise ConfigError("ZGWID_LOG_FORMAT must be text or json")
        if self.production and self.metrics_token and len(self.metrics_token) < 32:
            raise ConfigError("ZGWID_METRICS_TOKEN must be at least 32 characters in production")


def _walk(obj: Any, section: str = "") -> Iterator[tuple[str, Any, str]]:
    for f in dataclasses.fields(obj):
        value = getattr(obj, f.name)
        if dataclasses.is_dataclass(value):
            yield from _walk(value, f.name)
        else:
            yield f.name, value, section


def _section_class(section: str) -> type:
    return type(getattr(Settings(), section)) if section else Settings


def _meta(section: str, name: str) -> Mapping[str, Any]:
    for f in dataclasses.fields(_section_class(section)):
        if f.name == name:
            return f.metadata
    raise KeyError(name)


def _env_name(section: str, name: str) -> str:
    return ENV_PREFIX + (f"{section}_{name}" if section else name).upper()


def _coerce(value: Any, typ: Any, env_name: str) -> Any:
    text_input = isinstance(value, str)
    try:
        if typ is bool:
            if isinstance(value, bool):
                return value
            if text_input and value.strip().lower() in ("1", "true", "yes", "on"):
                return True
            if text_input and value.strip().lower() in ("0", "false", "no", "off", ""):
                return False
            raise ValueError("expected true or false")
        if typ is int:
            if isinstance(value, bool):
                raise ValueError("expected a whole number")
            return int(value)
        if typ is float:
            return float(value)
        if typ is str:
            if not text_input:
                raise ValueError("expected text")
            return value
        origin = getattr(typ, "__origin__", None)
        if origin is list:
            if text_input:
                value = (
                    json.loads(value)
                    if value.strip().startswith("[")
                    else [v.strip() for v in value.split(",") if v.strip()]
                )
            if not isinstance(value, list):
                raise ValueError("expected a list")
            return [str(v) for v in value]
        if origin is dict:
            if text_input:
                value = json.loads(value)
            if not isinstance(value, dict):
                raise ValueError("expected a table / JSON object")
            return value
    except (ValueError, TypeError) as exc:
        raise ConfigError(f"{env_name}: {exc}") from None
    raise ConfigError(f"{env_name}: unsupported type")


def _apply(target: Any, values: Mapping[str, Any], section: str, source: str) -> None:
    hints = get_type_hints(type(target))
    known = {f.name for f in dataclasses.fields(target)}
    for key, value in values.items():
        if key not in known:
            where = f"[{section}] {key}" if section else key
            raise ConfigError(f"unknown setting {where} in {source}")
        current = getattr(target, key)
        if dataclasses.is_dataclass(current):
            if not isinstance(value, Mapping):
                raise ConfigError(f"[{key}] in {source} must be a table")
            _apply(current, value, key, source)
        else:
            setattr(target, key, _coerce(value, hints[key], _env_name(section, key)))


def load_settings(
    environ: Mapping[str, str] | None = None, *, config_file: str | None = None, validate: bool = True, **overrides: Any
) -> Settings:
    """Defaults → TOML file → environment → keyword overrides (tests); then validate."""
    environ = os.environ if environ is None else environ
    settings = Settings()
    path = config_file or environ.get(ENV_PREFIX + "CONFIG")
    if path is None and Path("config/zgw-identificatie.toml").is_file():
        path = "config/zgw-identificatie.toml"
    if path:
        try:
            with open(path, "rb") as fh:
                data = tomllib.load(fh)
        except FileNotFoundError:
            raise ConfigError(f"ZGWID_CONFIG points to {path}, which does not exist") from None
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"{path} is not valid TOML: {exc}") from None
        _apply(settings, data, "", path)
    for name, _value, section in list(_walk(settings)):
        env_name = _env_name(section, name)
        if env_name in environ:
            target = getattr(settings, section) if section else settings
            setattr(target, name, _coerce(environ[env_name], get_type_hints(type(target))[name], env_name))
    for key, value in overrides.items():
        if "__" in key:
            section, name = key.split("__", 1)
            setattr(getattr(settings, section), name, value)
        else:
            setattr(settings, key, value)
    if validate:
        settings.validate()
    return settings


def describe() -> list[tuple[str, str, str, str]]:
    """(environment variable, TOML key, default, help) for every setting: the README table."""
    rows = []
    for name, value, section in _walk(Settings()):
        meta = _meta(section, name)
        default = "(secret)" if meta["secret"] and value else json.dumps(value) if not isinstance(value, str) else value
        rows.append((_env_name(section, name), f"{section}.{name}" if section else name, default, meta["help"]))
    return rows


def example_toml() -> str:
    """config/zgw-identificatie.example.toml: every setting with its help text and default, commented out."""

    def value(v: Any) -> str:
        if isinstance(v, bool):
            return "true" if v else "false"
        return json.dumps(v) if not isinstance(v, dict) else "{}"

    lines = [
        "# zgw-identificatie example configuration (generated by `zgw-identificatie settings --toml`).",
        "# Copy to config/zgw-identificatie.toml (read automatically) or point ZGWID_CONFIG at it.",
        "# Every key is also an environment variable: `key` → ZGWID_KEY, `[digid] key` → ZGWID_DIGID_KEY.",
        "# Keep secrets in the environment, not in this file. Values shown are the defaults.",
    ]
    section = ""
    for name, default, sect in _walk(Settings()):
        if sect != section:
            lines += ["", f"[{sect}]"]
            section = sect
        meta = _meta(sect, name)
        lines.append(f"# {meta['help']}")
        if meta["secret"]:
            lines.append(f"# {name}: set {_env_name(sect, name)} in the environment")
        else:
            lines.append(f"# {name} = {value(default)}")
    return "\n".join(lines) + "\n"
