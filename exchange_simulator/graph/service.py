"""One Graph request from route to answer: resolve the route, check the app's permissions, find the target
mailbox, run the handler against the store.

It is split in two so the HTTP front can throttle in between, once it knows the mailbox (Outlook's limits
are per app and mailbox): `prepare` raises what Graph answers before any work (unknown path 400, missing
permission 403, unknown user 404, application access policy 403), `run` does the work under the store's lock.
Checks run in the order Graph's layers make them: the gateway's permission check, then Exchange's.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from exchange_simulator.errors import EwsError
from exchange_simulator.graph import (  # noqa: F401 - imported for their route registrations
    attachments,
    contacts,
    directory,
    folders,
    mail,
    messages,
    settings,
    translate,
)
from exchange_simulator.graph.errors import ACCESS_DENIED, GraphError, from_store_error
from exchange_simulator.graph.request import GraphContext, GraphRequest, GraphResponse
from exchange_simulator.graph.router import Route, resolve
from exchange_simulator.store.model import Mailbox, Store

_UNAVAILABLE_TEXT = {
    "ErrorMailboxStoreUnavailable": "The mailbox database is temporarily unavailable.",
    "ErrorMailboxMoveInProgress": "The mailbox is being moved. Try again later.",
}


@dataclass
class Prepared:
    route: Route
    context: GraphContext

    @property
    def mailbox(self) -> str | None:
        """The target mailbox's address, for mailbox routes: what Outlook throttles by, with the app."""
        return self.context.mailbox.address if self.context.mailbox is not None else None


def segments(path: str) -> list[str]:
    return [s for s in path.split("/") if s]


def prepare(store: Store, request: GraphRequest) -> Prepared:
    route, params = resolve(request.method, request.version, segments(request.path))
    if not route.roles & request.caller.roles:
        if route.mailbox:
            raise GraphError(403, "ErrorAccessDenied", ACCESS_DENIED)
        raise GraphError(
            403, "Authorization_RequestDenied", "Insufficient privileges to complete the operation."
        )
    context = GraphContext(store, request, params)
    if route.mailbox:
        with store.lock:
            context.mailbox = _target_mailbox(store, request, params["user"])
    return Prepared(route, context)


def _target_mailbox(store: Store, request: GraphRequest, user: str) -> Mailbox:
    found = store.find_user(user)
    if found is None:
        raise GraphError(404, "ErrorInvalidUser", f"The requested user '{user}' is invalid.")
    if not isinstance(found, Mailbox):
        raise GraphError(
            404,
            "MailboxNotEnabledForRESTAPI",
            "The mailbox is either inactive, soft-deleted, or is hosted on-premise.",
        )
    scope = request.caller.mailbox_scope
    if scope is not None and found.address not in scope:
        raise GraphError(403, "ErrorAccessDenied", "Access to OData is disabled.")
    if found.unavailable_code and time.monotonic() < found.unavailable_until:
        raise GraphError(503, found.unavailable_code, _UNAVAILABLE_TEXT[found.unavailable_code])
    return found


def run(prepared: Prepared) -> GraphResponse:
    store = prepared.context.store
    with store.lock:
        try:
            return prepared.route.handler(prepared.context)
        except EwsError as err:
            raise from_store_error(err) from None
