"""Staff single sign-on: behandelaars log in with the municipality's identity provider (OpenID Connect).

Authorization code flow with PKCE (S256) through Authlib's Flask client. Authlib creates and checks
``state`` (RFC 6749 §10.12, login CSRF) and ``nonce`` (OIDC Core §3.1.2.1, §3.1.3.7 point 11), sends the
PKCE verifier (RFC 7636 §4), and verifies the ID token's signature against the provider's JWKS and its
``iss``, ``aud``, ``exp`` and ``iat`` claims (OIDC Core §3.1.3.7). On top of that this module checks
that discovery names the configured issuer (OIDC Discovery §4.3), the ``iss`` parameter of the
authorization response when sent (RFC 9207, mix-up defence), that userinfo belongs to the same ``sub``
(OIDC Core §5.3.2), and the optional required group. Every failure is a Dutch page, never a 500.

Local accounts (``/staff/login``) stay for the demo and small set-ups.
"""

from __future__ import annotations

import logging
from typing import Any

import requests
from authlib.integrations.base_client.errors import MismatchingStateError, OAuthError
from authlib.integrations.flask_client import OAuth
from flask import Blueprint, Flask, abort, current_app, redirect, render_template, request, session, url_for
from flask.blueprints import BlueprintSetupState
from joserfc.errors import JoseError

from ..settings import OidcSettings
from .i18n import gettext as _
from .security import login_staff, services

log = logging.getLogger(__name__)

bp = Blueprint("oidc", __name__, url_prefix="/staff/oidc")

CLIENT_NAME = "staff"
_NEXT_KEY = "oidc_next"
_HTTP_TIMEOUT = 10.0


class LoginRefused(Exception):
    """The provider answered, but this person may not log in here; ``status`` and a Dutch text."""

    def __init__(self, status: int, title: str, text: str, reason: str) -> None:
        super().__init__(reason)
        self.status, self.title, self.text, self.reason = status, title, text, reason


def _setup(state: BlueprintSetupState) -> None:
    """Register the Authlib client when an issuer is configured (at blueprint registration, not import)."""
    oidc: OidcSettings = state.app.extensions["zgwid"].settings.oidc
    if not oidc.issuer:
        return
    oauth = OAuth(state.app)
    oauth.register(
        CLIENT_NAME,
        client_id=oidc.client_id,
        client_secret=oidc.client_secret,
        server_metadata_url=oidc.issuer.rstrip("/") + "/.well-known/openid-configuration",
        client_kwargs={
            "scope": oidc.scopes,
            "code_challenge_method": "S256",
            "verify": oidc.verify_tls,
            "default_timeout": _HTTP_TIMEOUT,
        },
    )
    state.app.extensions["zgwid_oidc"] = oauth


bp.record_once(_setup)


def _client(app: Flask) -> Any:
    oauth = app.extensions.get("zgwid_oidc")
    if oauth is None:
        abort(404)
    return oauth.create_client(CLIENT_NAME)


def _settings() -> OidcSettings:
    return services().settings.oidc


def _safe_next(target: str | None) -> str:
    if target and target.startswith("/") and not target.startswith("//") and "\\" not in target:
        return target
    return url_for("staff.index")


def _refused(status: int, title: str, text: str) -> tuple[str, int]:
    return render_template("message.html", title=title, text=text, status=status, back=url_for("staff.login")), status


def _unavailable() -> tuple[str, int]:
    return _refused(
        502,
        _("Inloggen lukt nu niet"),
        _(
            "De inlogdienst van de organisatie is nu niet bereikbaar. Probeer het later opnieuw of "
            "log in met een lokaal account."
        ),
    )


def _check_issuer(metadata: dict[str, Any]) -> None:
    """OIDC Discovery §4.3: the issuer in the metadata must be exactly the configured issuer."""
    configured = _settings().issuer.rstrip("/")
    if str(metadata.get("issuer", "")).rstrip("/") != configured:
        raise LoginRefused(
            502,
            _("Inloggen lukt nu niet"),
            _("De inlogdienst is verkeerd ingesteld. Neem contact op met de beheerder."),
            "discovery issuer differs from the configured issuer",
        )


@bp.get("/login")
def login() -> Any:
    client = _client(current_app)
    try:
        _check_issuer(client.load_server_metadata())
        redirect_uri = services().settings.base_url.rstrip("/") + url_for("oidc.callback")
        next_target = _safe_next(request.args.get("next"))
        response = client.authorize_redirect(redirect_uri)
    except LoginRefused as exc:
        log.warning("staff OIDC login not started: %s", exc.reason)
        return _refused(exc.status, exc.title, exc.text)
    except (requests.RequestException, ValueError) as exc:
        log.warning("staff OIDC provider unreachable: %s", type(exc).__name__)
        return _unavailable()
    session[_NEXT_KEY] = next_target
    return response


@bp.get("/callback")
def callback() -> Any:
    client = _client(current_app)
    oidc = _settings()
    try:
        metadata = client.load_server_metadata()
        _check_issuer(metadata)
        sent_iss = request.args.get("iss")
        if sent_iss is not None and sent_iss.rstrip("/") != oidc.issuer.rstrip("/"):
            raise LoginRefused(
                400,
                _("Inloggen is mislukt"),
                _("Het antwoord van de inlogdienst klopt niet. Probeer het opnieuw."),
                "iss parameter differs from the issuer (RFC 9207)",
            )
        token = client.authorize_access_token()
        claims = _claims(client, token, metadata, oidc)
        user_id, name = _identity(claims, oidc)
    except MismatchingStateError:
        log.warning("staff OIDC callback refused: state missing or wrong")
        return _refused(
            400,
            _("Inloggen is mislukt"),
            _("Deze inlogpoging is verlopen of niet in deze browser gestart. Probeer het opnieuw."),
        )
    except OAuthError as exc:
        log.warning("staff OIDC callback refused: %s", exc.error)
        if exc.error == "access_denied":
            return _refused(
                403,
                _("Inloggen afgebroken"),
                _("U heeft het inloggen afgebroken of de inlogdienst gaf geen toestemming."),
            )
        return _refused(400, _("Inloggen is mislukt"), _("De inlogdienst meldde een fout. Probeer het opnieuw."))
    except JoseError as exc:
        log.warning("staff OIDC ID token refused: %s", exc.error)
        return _refused(
            400,
            _("Inloggen is mislukt"),
            _("Het bewijs van de inlogdienst kon niet worden gecontroleerd. Probeer het opnieuw."),
        )
    except LoginRefused as exc:
        log.warning("staff OIDC login refused: %s", exc.reason)
        return _refused(exc.status, exc.title, exc.text)
    except (requests.RequestException, ValueError, KeyError, TypeError, RuntimeError) as exc:
        log.warning("staff OIDC callback failed: %s", type(exc).__name__)
        return _unavailable()
    target = _safe_next(session.get(_NEXT_KEY))
    login_staff(f"oidc:{user_id}", name)
    log.info("staff login over OIDC: oidc:%s", user_id)
    return redirect(target)


def _claims(client: Any, token: dict[str, Any], metadata: dict[str, Any], oidc: OidcSettings) -> dict[str, Any]:
    """The verified ID token claims, completed from userinfo when a needed claim is not in the ID token."""
    id_claims = token.get("userinfo")
    if not id_claims:
        raise LoginRefused(
            400,
            _("Inloggen is mislukt"),
            _("De inlogdienst stuurde geen ID-token. Neem contact op met de beheerder."),
            "token response without id_token",
        )
    claims = dict(id_claims)
    needed = [oidc.id_claim, oidc.name_claim] + ([oidc.groups_claim] if oidc.required_group else [])
    if any(c not in claims for c in needed) and metadata.get("userinfo_endpoint"):
        info = dict(client.userinfo(token=token))
        if info.get("sub") != claims.get("sub"):
            raise LoginRefused(
                400,
                _("Inloggen is mislukt"),
                _("Het antwoord van de inlogdienst klopt niet. Probeer het opnieuw."),
                "userinfo sub differs from the ID token sub (OIDC Core 5.3.2)",
            )
        for key, value in info.items():
            claims.setdefault(key, value)
    return claims


def _identity(claims: dict[str, Any], oidc: OidcSettings) -> tuple[str, str]:
    user_id = claims.get(oidc.id_claim)
    name = claims.get(oidc.name_claim)
    if not isinstance(user_id, str | int) or not str(user_id).strip() or not isinstance(name, str) or not name.strip():
        raise LoginRefused(
            403,
            _("Geen toegang"),
            _(
                "Uw account mist gegevens die nodig zijn om in te loggen (naam of kenmerk). Neem contact "
                "op met de beheerder."
            ),
            f"claim {oidc.id_claim!r} or {oidc.name_claim!r} missing or empty",
        )
    if oidc.required_group and oidc.required_group not in _groups(claims.get(oidc.groups_claim)):
        raise LoginRefused(
            403,
            _("Geen toegang"),
            _(
                "Uw account heeft geen toegang tot deze dienst. Vraag de beheerder om u toe te voegen "
                "aan de juiste groep."
            ),
            f"required group missing for oidc:{user_id}",
        )
    return str(user_id), name.strip()


def _groups(value: Any) -> set[str]:
    if isinstance(value, str):
        return {value, *value.split()}
    if isinstance(value, list | tuple | set):
        return {str(v) for v in value}
    return set()
