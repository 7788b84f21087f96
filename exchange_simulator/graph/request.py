"""One Graph request as the handlers see it, and the answer they give.

`GraphRequest` is transport-neutral: the HTTP front builds one per HTTP request and `$batch` one per item, so
a request behaves the same inside and outside a batch. `GraphContext` adds what routing resolved (the target
mailbox, path parameters) and the id and URL conventions every answer follows.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote

from exchange_simulator.graph import ids
from exchange_simulator.store.model import Attachment, Item, Mailbox, Store

JSON_TYPE = (
    "application/json;odata.metadata=minimal;odata.streaming=true;IEEE754Compatible=false;charset=utf-8"
)
_PREFERENCE = re.compile(r'\s*([\w.-]+)\s*(?:=\s*("[^"]*"|[^,;\s]*))?')


@dataclass(frozen=True)
class GraphCaller:
    """The app a Graph token was issued to, with the application permissions (`roles`) it carries."""

    app_id: str
    tenant_id: str
    roles: frozenset[str]
    mailbox_scope: frozenset[str] | None  # an application access policy; None means every mailbox


@dataclass
class GraphRequest:
    method: str
    version: str  # v1.0 | beta
    path: str  # below the version, percent-decoded per segment: "/users/a@b.example/messages"
    query: dict[str, str]  # query options by name, decoded
    headers: dict[str, str]  # lower-case names
    body: bytes
    service_root: str  # e.g. https://127.0.0.1:8443/v1.0
    caller: GraphCaller
    request_id: str = ""  # the request-id Graph gives this request (a request in a batch has its own)

    def preferences(self) -> dict[str, str]:
        """The Prefer header's preferences by lower-case name (values unquoted)."""
        found: dict[str, str] = {}
        for part in self.headers.get("prefer", "").split(","):
            match = _PREFERENCE.match(part)
            if match and match.group(1):
                found[match.group(1).lower()] = (match.group(2) or "").strip('"')
        return found

    @property
    def client_request_id(self) -> str | None:
        return self.headers.get("client-request-id")


@dataclass
class GraphResponse:
    status: int
    document: dict[str, Any] | None = None  # a JSON answer
    content: bytes | None = None  # a raw answer ($value)
    content_type: str = JSON_TYPE
    headers: list[tuple[str, str]] = field(default_factory=list)


def accepted() -> GraphResponse:
    return GraphResponse(202)


def no_content() -> GraphResponse:
    return GraphResponse(204)


@dataclass
class GraphContext:
    store: Store
    request: GraphRequest
    params: dict[str, str]  # path parameters by name ("user", "message", ...)
    mailbox: Mailbox | None = None  # the target user's mailbox, for mailbox routes

    @property
    def immutable_ids(self) -> bool:
        """`Prefer: IdType="ImmutableId"`: ids in the answer stay valid across moves in the mailbox."""
        return self.request.preferences().get("idtype", "").lower() == "immutableid"

    def item_id(self, item: Item) -> str:
        return ids.rest(self.store.immutable_id(item) if self.immutable_ids else item.id)

    def attachment_id(self, item: Item, attachment: Attachment) -> str:
        if self.immutable_ids:
            return ids.rest(self.store.immutable_attachment_id(item, attachment))
        return ids.rest(attachment.id)

    def context(self, fragment: str) -> str:
        """An @odata.context URL: `{service root}/$metadata#{fragment}`."""
        return f"{self.request.service_root}/$metadata#{fragment}"

    def user_context(self, rest: str) -> str:
        """@odata.context below the target user, who is named as the request named them."""
        return self.context(f"users('{quote(self.params['user'], safe='')}')/{rest}")
