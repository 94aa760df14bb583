"""The login cookie: Flask's signed cookie session, the same cookie, written and read with less work.

Flask builds a new itsdangerous serializer twice per request (to read the cookie and to write it; each
construction serialises an empty dict to see whether the serializer speaks text), derives the signing
key from the secret on every signature, and runs every value through its tagged JSON. A citizen's page
paid about a tenth of its CPU for that. Here the serializer is built once per set of keys, the newest
key's signing key is derived once, and a session whose values are all plain strings and numbers is
written with ``json.dumps`` directly, which is what the tagged JSON writes for them.

The cookie is byte for byte what Flask writes (same JSON, same compression rule, same timestamp and
HMAC-SHA1 signature; tests compare), so cookies written before this change stay valid and Flask would
read these. A cookie signed with the newest key, unexpired, is read here; anything else (signed with a
fallback key, expired, tampered with, malformed) goes through itsdangerous as before, which accepts it
or raises ``BadSignature`` (Flask then starts a fresh session).
"""

from __future__ import annotations

import functools
import hashlib
import hmac
import json
import time
from base64 import urlsafe_b64encode
from typing import Any

from flask import Flask, Request
from flask import json as flask_json
from flask.globals import _cv_app  # the app context itself: cheaper than current_app
from flask.json.provider import DefaultJSONProvider
from flask.json.tag import TaggedJSONSerializer
from flask.sessions import SecureCookieSession, SecureCookieSessionInterface, SessionMixin
from flask.wrappers import Response
from itsdangerous import URLSafeTimedSerializer
from itsdangerous.encoding import base64_decode, bytes_to_int, int_to_bytes

# Paths whose requests never use the login cookie: the API authenticates with keys, probes and scrapes
# with nothing. Their requests get an empty session without reading (verifying, decoding) the cookie.
NO_COOKIE_PATHS = ("/api/", "/health/", "/metrics", "/static/")

_PLAIN = (str, int, float)


class SessionJSON(TaggedJSONSerializer):
    """Flask's tagged JSON; a session of plain values (what the citizen's pages keep) skips the tagging."""

    def dumps(self, value: Any) -> str:
        if (
            type(value) is dict
            and all(type(v) in _PLAIN for v in value.values())
            and not (len(value) == 1 and next(iter(value)) in self.tags)  # a one-key dict named like a tag
        ):
            ctx = _cv_app.get(None)
            provider = ctx.app.json if ctx is not None else None
            if type(provider) is DefaultJSONProvider:  # flask.json.dumps, without its layers
                return _encoder(provider.ensure_ascii, provider.sort_keys).encode(value)
            return flask_json.dumps(value, separators=(",", ":"))  # tag() returns such a dict as it is
        return super().dumps(value)


@functools.cache
def _encoder(ensure_ascii: bool, sort_keys: bool) -> json.JSONEncoder:
    return json.JSONEncoder(separators=(",", ":"), ensure_ascii=ensure_ascii, sort_keys=sort_keys)


def _b64(data: bytes) -> bytes:
    return urlsafe_b64encode(data).rstrip(b"=")


class SessionCookieSerializer(URLSafeTimedSerializer):
    """``URLSafeTimedSerializer`` as Flask configures it for the session, with the common cases direct."""

    def __init__(self, keys: list[str | bytes], salt: str) -> None:
        super().__init__(
            keys,  # type: ignore[arg-type]
            salt=salt,
            serializer=SessionJSON(),
            signer_kwargs={"key_derivation": "hmac", "digest_method": hashlib.sha1},
        )
        self._key = self.make_signer().derive_key()  # the newest key, as itsdangerous signs with it

    def dumps(self, obj: Any, salt: str | bytes | None = None) -> str:
        if salt is not None:
            return super().dumps(obj, salt)
        payload: bytes = self.dump_payload(obj)  # JSON, zlib when that is shorter, base64
        value = payload + b"." + _b64(int_to_bytes(int(time.time())))  # TimestampSigner.sign
        return (value + b"." + _b64(hmac.new(self._key, value, hashlib.sha1).digest())).decode("utf-8")

    def loads(  # type: ignore[override]
        self, s: str | bytes, max_age: int | None = None, return_timestamp: bool = False, salt: bytes | None = None
    ) -> Any:
        raw = s.encode("utf-8") if isinstance(s, str) else s
        value, dot, signature = raw.rpartition(b".")
        if dot and not return_timestamp and salt is None and max_age is not None:
            if hmac.compare_digest(_b64(hmac.new(self._key, value, hashlib.sha1).digest()), signature):
                payload, dot, stamp = value.rpartition(b".")
                try:
                    signed_at = bytes_to_int(base64_decode(stamp)) if dot else None
                except Exception:
                    signed_at = None
                if signed_at is not None and 0 <= int(time.time()) - signed_at <= max_age:
                    return self.load_payload(payload)
        return super().loads(s, max_age, return_timestamp, salt)  # other keys, expired, tampered: as before


class CookieSessionsForPages(SecureCookieSessionInterface):
    serializer = SessionJSON()

    def __init__(self) -> None:
        self._serializers: dict[tuple[Any, ...], SessionCookieSerializer] = {}

    def get_signing_serializer(self, app: Flask) -> URLSafeTimedSerializer | None:
        if not app.secret_key:
            return None
        keys = [*(app.config["SECRET_KEY_FALLBACKS"] or ()), app.secret_key]  # newest last, as Flask does
        found = self._serializers.get(key := tuple(keys))
        if found is None:
            found = self._serializers[key] = SessionCookieSerializer(keys, self.salt)
        return found

    def open_session(self, app: Flask, request: Request) -> SecureCookieSession | None:
        if request.path.startswith(NO_COOKIE_PATHS):
            return self.session_class()  # empty and unmodified: nothing is read, nothing is written back
        return super().open_session(app, request)

    def save_session(self, app: Flask, session: SessionMixin, response: Response) -> None:
        """Flask's own (3.1), with ``Vary: Cookie`` added once, without parsing the header into a set and writing
        it back (Flask does that twice per request); a test compares the headers with Flask's for every kind
        of session."""
        name = self.get_cookie_name(app)
        attributes: dict[str, Any] = {
            "domain": self.get_cookie_domain(app),
            "path": self.get_cookie_path(app),
            "secure": self.get_cookie_secure(app),
            "partitioned": self.get_cookie_partitioned(app),
            "samesite": self.get_cookie_samesite(app),
            "httponly": self.get_cookie_httponly(app),
        }
        varied = session.accessed  # then Vary says Cookie from here on: Flask's second add changes nothing
        if varied:
            _vary_cookie(response)
        if not session:
            if not session.modified:
                return
            response.delete_cookie(name, **attributes)
        elif self.should_set_cookie(app, session):
            value = self.get_signing_serializer(app).dumps(dict(session))  # type: ignore[union-attr]
            response.set_cookie(name, value, expires=self.get_expiration_time(app, session), **attributes)
        else:
            return
        if not varied:
            _vary_cookie(response)


def _vary_cookie(response: Response) -> None:
    """``response.vary.add("Cookie")``: that parses the header into a set and writes the set back."""
    vary = response.headers.get("Vary")
    if vary is None:
        response.headers["Vary"] = "Cookie"  # what the set writes back when there was no header
    elif vary != "Cookie":
        response.vary.add("Cookie")  # a header of the view's own: merged as before
