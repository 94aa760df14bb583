"""ZGW JWT authentication: a fresh HS256 token for every request.

Source: ZGW-CHEATSHEET §7 and pitfalls 1-2. Open Zaak rejects a token once ``now - iat`` reaches
``JWT_EXPIRY`` (default one hour); other ZGW servers require ``exp``. Minting per request with a
short ``exp`` satisfies both, unlike zgw-consumers' ``ZGWAuth``, which mints once per client.
"""

from __future__ import annotations

import time
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar

import jwt
import requests

TOKEN_LIFETIME_SECONDS = 300

#: (user_id, user_representation) of the behandelaar on whose behalf the current thread writes.
_acting: ContextVar[tuple[str, str] | None] = ContextVar("zgw_acting_user", default=None)


@contextmanager
def acting_as(user_id: str, user_representation: str) -> Iterator[None]:
    """Every token minted in this block (this thread or task) names this user instead of the service, so
    the zaaksysteem's audit trail (Open Zaak: ``gebruikersId`` / ``gebruikersWeergave``) shows the
    behandelaar who identified the citizen."""
    token = _acting.set((user_id, user_representation))
    try:
        yield
    finally:
        _acting.reset(token)


class ZgwJwtAuth(requests.auth.AuthBase):
    """``Authorization: Bearer <jwt>`` with claims iss, iat, exp, client_id, user_id, user_representation."""

    def __init__(
        self,
        client_id: str,
        secret: str,
        *,
        user_id: str,
        user_representation: str,
        lifetime: int = TOKEN_LIFETIME_SECONDS,
        now: Callable[[], float] = time.time,
    ) -> None:
        self.client_id = client_id
        self._secret = secret
        self.user_id = user_id[:255]
        self.user_representation = user_representation[:255]
        self.lifetime = lifetime
        self._now = now

    def token(self) -> str:
        iat = int(self._now())
        acting = _acting.get()
        user_id, user_representation = acting if acting else (self.user_id, self.user_representation)
        claims = {
            "iss": self.client_id,
            "iat": iat,
            "exp": iat + self.lifetime,
            "client_id": self.client_id,
            "user_id": user_id[:255],
            "user_representation": user_representation[:255],
        }
        with warnings.catch_warnings():
            # ZGW secrets are issued by the zaaksysteem (Open Zaak generates short ones); their
            # strength is the Applicatie's business, not a reason to warn on every request.
            warnings.simplefilter("ignore", jwt.InsecureKeyLengthWarning)
            return jwt.encode(claims, self._secret, algorithm="HS256", headers={"typ": "JWT"})

    def __call__(self, request: requests.PreparedRequest) -> requests.PreparedRequest:
        request.headers["Authorization"] = f"Bearer {self.token()}"
        return request

    def __repr__(self) -> str:
        return f"ZgwJwtAuth(client_id={self.client_id!r})"
