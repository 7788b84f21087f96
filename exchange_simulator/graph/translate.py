"""translateExchangeIds (user-translateexchangeids.md, convertidresult.md): item and folder ids of one
mailbox from one format to another.

Formats: `ewsId` (the store's EWS id), `restId` (its URL-safe form), `restImmutableEntryId` (an item's
immutable id, URL-safe), and the binary `entryId` (PR_ENTRYID, as store.properties derives it) and
`immutableEntryId`, both written as Microsoft describes: URL-safe base64 without padding, then the number of
padding characters removed. At most 1000 ids, all of one format; an id that cannot be converted answers its
`errorDetails` instead of a `targetId`. A folder has no immutable id: its immutable forms are its usual ones.
"""

from __future__ import annotations

import base64
import binascii
from typing import Any

from exchange_simulator.errors import EwsError
from exchange_simulator.graph import ids
from exchange_simulator.graph.codecs.common import member, read_json
from exchange_simulator.graph.errors import GraphError
from exchange_simulator.graph.request import GraphContext, GraphResponse
from exchange_simulator.graph.router import USERS_READ, route
from exchange_simulator.store.model import Folder, Item
from exchange_simulator.store.properties import entry_id, ews_id_of_entry

FORMATS = ("entryId", "ewsId", "immutableEntryId", "restId", "restImmutableEntryId")
MAX_IDS = 1000


def _binary_text(raw: bytes) -> str:
    encoded = base64.urlsafe_b64encode(raw).decode()
    stripped = encoded.rstrip("=")
    return stripped + str(len(encoded) - len(stripped))


def _binary(text: str) -> bytes:
    if not text or text[-1] not in "012":
        raise EwsError("ErrorInvalidIdMalformed", "Id is malformed.")
    try:
        return base64.urlsafe_b64decode(text[:-1] + "=" * int(text[-1]))
    except (binascii.Error, ValueError):
        raise EwsError("ErrorInvalidIdMalformed", "Id is malformed.") from None


def _store_id(text: str, kind: str) -> str:
    """The EWS id (or immutable id) a source id stands for."""
    if kind == "entryId":
        return ews_id_of_entry(_binary(text))
    if kind == "immutableEntryId":
        return base64.b64encode(_binary(text)).decode()
    return ids.ews(text)


def _resolve(ctx: GraphContext, store_id: str) -> Item | Folder:
    try:
        found: Item | Folder = ctx.store.folder_by_id(store_id)
    except EwsError:
        found = ctx.store.resolve_item(store_id)
    if found.mailbox is not ctx.mailbox:
        raise EwsError("ErrorItemNotFound", "The specified object was not found in the store.")
    return found


def _target(ctx: GraphContext, found: Item | Folder, kind: str) -> str:
    immutable = ctx.store.immutable_id(found) if isinstance(found, Item) else found.id
    if kind == "ewsId":
        return found.id
    if kind == "restId":
        return ids.rest(found.id)
    if kind == "restImmutableEntryId":
        return ids.rest(immutable)
    if kind == "entryId":
        return _binary_text(entry_id(found.id))
    return _binary_text(base64.b64decode(immutable))


def _format(document: dict[str, Any], name: str) -> str:
    value = member(document, name)
    if value not in FORMATS:
        message = f"The parameter '{name}' must be one of {', '.join(FORMATS)}."
        raise GraphError(400, "ErrorInvalidParameter", message)
    return value


@route("POST", "users/{user}/translateExchangeIds", operation="TranslateExchangeIds", roles=USERS_READ)
def translate_exchange_ids(ctx: GraphContext) -> GraphResponse:
    document = read_json(ctx.request.body)
    inputs = member(document, "inputIds")
    if not isinstance(inputs, list) or not all(isinstance(i, str) for i in inputs) or len(inputs) > MAX_IDS:
        raise GraphError(
            400, "ErrorInvalidParameter", f"The parameter 'inputIds' must be a list of at most {MAX_IDS} ids."
        )
    source, target = _format(document, "sourceIdType"), _format(document, "targetIdType")
    results = []
    for text in inputs:
        try:
            found = _resolve(ctx, _store_id(text, source))
            results.append({"sourceId": text, "targetId": _target(ctx, found, target)})
        except EwsError as err:
            results.append({"sourceId": text, "errorDetails": {"code": err.code, "message": err.message}})
    return GraphResponse(
        200, {"@odata.context": ctx.context("Collection(microsoft.graph.convertIdResult)"), "value": results}
    )
