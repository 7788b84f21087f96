"""Bearer-key authentication and role checks as FastAPI dependencies: 401 no valid key, 403 wrong role."""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated

from fastapi import Depends, HTTPException, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from producer.keys import KeyStore, Principal, Role

bearer = HTTPBearer(auto_error=False, description="an API key from `ews-ir keys add NAME --role ROLE`")

_CHALLENGE = {"WWW-Authenticate": "Bearer"}


def keystore(request: Request) -> KeyStore:
    return request.app.state.keystore


def require(role: Role) -> Callable[..., Principal]:
    def authenticated(
        credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)],
        keys: Annotated[KeyStore, Depends(keystore)],
    ) -> Principal:
        if credentials is None:
            raise HTTPException(401, "missing API key: send 'Authorization: Bearer KEY'", headers=_CHALLENGE)
        principal = keys.authenticate(credentials.credentials)
        if principal is None:
            raise HTTPException(401, "invalid API key", headers=_CHALLENGE)
        if not principal.has(role):
            needed = f"key {principal.name!r} has role {principal.role.name}; this needs {role.name}"
            raise HTTPException(403, needed)
        return principal

    return authenticated


reader = require(Role.reader)
responder = require(Role.responder)
approver = require(Role.approver)
