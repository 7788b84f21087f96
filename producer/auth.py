"""Bearer-key authentication and role checks as FastAPI dependencies: 401 no valid key, 403 wrong role, 429
after too many failed authentications from one client address (producer.auth_limit)."""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Annotated, NoReturn

from fastapi import Depends, HTTPException, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from producer.auth_limit import FailedAuthLimiter
from producer.keys import KeyStore, Principal, Role
from worker import metrics

bearer = HTTPBearer(auto_error=False, description="an API key from `ews-ir keys add NAME --role ROLE`")

_CHALLENGE = {"WWW-Authenticate": "Bearer"}


def keystore(request: Request) -> KeyStore:
    return request.app.state.keystore


def _refuse(limiter: FailedAuthLimiter, client: str, reason: str, detail: str) -> NoReturn:
    limiter.failed(client)
    metrics.auth_failed(reason)
    raise HTTPException(401, detail, headers=_CHALLENGE)


def require(role: Role) -> Callable[..., Principal]:
    def authenticated(
        request: Request,
        credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)],
        keys: Annotated[KeyStore, Depends(keystore)],
    ) -> Principal:
        limiter: FailedAuthLimiter = request.app.state.auth_limiter
        peer = request.client.host if request.client else ""
        client = limiter.client_of(peer, request.headers.get("x-forwarded-for"))
        wait = limiter.retry_after(client)
        if wait:
            metrics.auth_failed("rate_limited")
            retry_after = {"Retry-After": str(math.ceil(wait))}
            raise HTTPException(429, "too many failed authentications from this address", headers=retry_after)
        if credentials is None:
            _refuse(limiter, client, "missing", "missing API key: send 'Authorization: Bearer KEY'")
        principal = keys.authenticate(credentials.credentials)
        if principal is None:
            _refuse(limiter, client, "invalid", "invalid API key")
        if not principal.has(role):
            needed = f"key {principal.name!r} has role {principal.role.name}; this needs {role.name}"
            raise HTTPException(403, needed)
        return principal

    return authenticated


reader = require(Role.reader)
responder = require(Role.responder)
approver = require(Role.approver)
