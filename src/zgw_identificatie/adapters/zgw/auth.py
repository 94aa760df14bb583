"""ZGW JWT authentication: a fresh HS256 token for every request.

Source: ZGW-CHEATSHEET §7 and pitfalls 1-2. Open Zaak rejects a token once ``now - iat`` reaches
``JWT_EXPIRY`` (default one hour); other ZGW servers require ``exp``. Minting per request with a
short ``exp`` satisfies both, unlike zgw-consumers' ``ZGWAuth``, which mints once per client.
"""

from __future__ import annotations

import time
import warnings
from collections.abc import Callable

import jwt
import requests

TOKEN_LIFETIME_SECONDS = 300


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
        claims = {
            "iss": self.client_id,
            "iat": iat,
            "exp": iat + self.lifetime,
            "client_id": self.client_id,
            "user_id": self.user_id,
            "user_representation": self.user_representation,
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
