"""Containment on Graph: delete, move, copy, junk and restore, one outcome per id, the same semantics as
worker.ews.items.

- soft delete: a move to the well-known folder `recoverableitemsdeletions` (recoverable by the user and by our
  restore); trash: a move to Deleted Items; hard: `permanentDelete` (to Purges). Never a plain DELETE, whose
  landing place Microsoft does not document.
- junk: a move to Junk Email (or back to the Inbox). v1.0 has no way to block a sender (`reportMessage` is
  beta, `markAsJunk` deprecated), so `move=false` is refused as Unsupported.
- restore: back to the folder PidTagLastActiveParentEntryId (0x348A) names, translated to a folder id with
  `translateExchangeIds`; else the Inbox, or `to_folder` for all.
Ids are immutable (`Prefer: IdType="ImmutableId"`), so a move keeps the id and repeating one is harmless. A
removal first reads where each item is (one GET each): an item already where the removal would put it (in
Recoverable Items for soft and trash, in Purges for hard) is "already_gone", as EWS reports it. A copy
first looks in the destination folder for the item's Internet Message-ID: one already there is not copied
again. Each item is one request (or a few): a throttled or failed one stops the call with Interrupted, which
carries the outcomes of the items before it.
"""

from __future__ import annotations

import base64
from collections.abc import Callable

from contract.envelope import ErrorInfo, ItemResult
from worker.backend import Interrupted
from worker.errors import AuthError, Permanent
from worker.graph.client import GraphClient, GraphError, odata_string, user_path
from worker.graph.errors import classify
from worker.graph.folders import Folders

DELETE_DESTINATIONS = {"soft": "recoverableitemsdeletions", "trash": "deleteditems"}
RECOVERABLE = ("recoverableitemsdeletions", "recoverableitemspurges")
ALREADY_REMOVED = {"soft": RECOVERABLE, "trash": RECOVERABLE, "hard": ("recoverableitemspurges",)}
RESTORE_FALLBACK = "inbox"
LAST_ACTIVE_PARENT = "Binary 0x348A"


def outcome(item_id: str, result: dict | BaseException | None, folder: str | None = None) -> ItemResult:
    """One item's result from a Graph answer (the message, None for 204) or a failure."""
    if isinstance(result, BaseException):
        error = classify(result, item_missing_is_done=True)
        if error.status == "already_gone":
            return ItemResult(item_id=item_id, outcome="already_gone")
        if error.retryable or isinstance(error, AuthError):
            raise error from result  # about the whole call: the caller's retry policy decides
        return ItemResult(item_id=item_id, outcome="failed", error=ErrorInfo(**error.to_dict()))
    new_id = result.get("id") if isinstance(result, dict) else None
    return ItemResult(item_id=item_id, outcome="done", new_item_id=new_id, folder=folder)


def _each(item_ids: list[str], act: Callable[[str], ItemResult]) -> list[ItemResult]:
    """`act` on each item in turn; one that raises (throttled, a failure about the whole call) stops the
    call with Interrupted carrying the outcomes before it."""
    results: list[ItemResult] = []
    for item_id in item_ids:
        try:
            results.append(act(item_id))
        except Exception as exc:
            raise Interrupted(results, exc) from exc
    return results


def _answered(act: Callable[[str], dict | None], folder: str | None) -> Callable[[str], ItemResult]:
    """The item's outcome from `act`'s answer (or from the GraphError it raised)."""

    def one(item_id: str) -> ItemResult:
        try:
            answer: dict | BaseException | None = act(item_id)
        except GraphError as exc:
            answer = exc
        return outcome(item_id, answer, folder)

    return one


def _move(client: GraphClient, mailbox: str, destination: str) -> Callable[[str], dict]:
    def move(item_id: str) -> dict:
        path = user_path(mailbox, "messages", item_id, "move")
        return client.post(path, {"destinationId": destination}).json()

    return move


def _well_known_ids(client: GraphClient, mailbox: str, names: tuple[str, ...]) -> dict[str, str]:
    return {
        client.get(user_path(mailbox, "mailFolders", name), {"$select": "id"})["id"]: name for name in names
    }


def _where(client: GraphClient, mailbox: str, item_id: str) -> str | None:
    """The id of the folder the item is in."""
    found = client.get(user_path(mailbox, "messages", item_id), {"$select": "parentFolderId"})
    return found.get("parentFolderId")


def delete_items(
    client: GraphClient, mailbox: str, item_ids: list[str], delete_type: str = "soft"
) -> list[ItemResult]:
    """soft = recoverable from Recoverable Items (default), trash = move to Deleted Items, hard = purge."""
    removed = _well_known_ids(client, mailbox, ALREADY_REMOVED[delete_type])
    folder = "deleteditems" if delete_type == "trash" else None
    destination = DELETE_DESTINATIONS.get(delete_type)
    move = _move(client, mailbox, destination) if destination else None

    def delete(item_id: str) -> dict | None:
        if _where(client, mailbox, item_id) in removed:
            raise GraphError(404, "ErrorItemNotFound", "The item is already where this removal puts it.")
        if move is not None:
            return move(item_id)
        client.post(user_path(mailbox, "messages", item_id, "permanentDelete"))
        return None

    return _each(item_ids, _answered(delete, folder))


def move_items(client: GraphClient, mailbox: str, item_ids: list[str], to_folder: str) -> list[ItemResult]:
    destination, label = Folders(client, mailbox).resolve(to_folder)
    return _each(item_ids, _answered(_move(client, mailbox, destination), label))


def junk_items(
    client: GraphClient, mailbox: str, item_ids: list[str], is_junk: bool = True, move: bool = True
) -> list[ItemResult]:
    """A move to Junk Email (is_junk) or the Inbox; v1.0 cannot (un)block the sender, so move=false fails."""
    if not move:
        raise Permanent(
            "Unsupported",
            "Microsoft Graph v1.0 cannot add a sender to (or remove one from) the blocked senders list; "
            "junk_email with move=false has nothing to do on the graph backend",
        )
    folder = "junkemail" if is_junk else "inbox"
    return _each(item_ids, _answered(_move(client, mailbox, folder), folder))


def copy_items(
    client: GraphClient, mailbox: str, item_ids: list[str], to_folder: str, to_mailbox: str | None = None
) -> list[ItemResult]:
    """Copy within the mailbox (`copy`) or into `to_mailbox` (its MIME, created in the folder; Graph creates
    messages as drafts), unless a message with its Message-ID is in the folder already."""
    target = to_mailbox or mailbox
    destination, label = Folders(client, target).resolve(to_folder)

    def copy_one(item_id: str) -> ItemResult:
        try:
            return _copy_one(client, mailbox, item_id, target, destination, label)
        except GraphError as exc:
            return outcome(item_id, exc)

    return _each(item_ids, copy_one)


def _copies(client: GraphClient, mailbox: str, folder: str, message_id: str) -> list[str]:
    listing = user_path(mailbox, "mailFolders", folder, "messages")
    params = {"$filter": f"internetMessageId eq {odata_string(message_id)}", "$select": "id", "$top": 1000}
    return [row["id"] for row in client.pages(listing, params)]


def _copy_one(
    client: GraphClient, mailbox: str, item_id: str, target: str, destination: str, label: str
) -> ItemResult:
    source = user_path(mailbox, "messages", item_id)
    message_id = client.get(source, {"$select": "internetMessageId"}).get("internetMessageId") or ""
    present = _copies(client, target, destination, message_id) if message_id else []
    if present:
        return outcome(item_id, {"id": present[0]}, label)
    if target == mailbox:
        created = client.post(f"{source}/copy", {"destinationId": destination}).json()
    else:
        mime = client.send("GET", client.url(f"{source}/$value")).content
        created = client.send(
            "POST",
            client.url(user_path(target, "mailFolders", destination, "messages")),
            content=base64.b64encode(mime),
            headers={"Content-Type": "text/plain"},
        ).json()
    return outcome(item_id, created, label)


def restore_items(
    client: GraphClient, mailbox: str, item_ids: list[str], to_folder: str | None = None
) -> list[ItemResult]:
    """Move items back to the folder they were deleted from, else to `to_folder` or the Inbox."""
    folders = Folders(client, mailbox)
    if to_folder is not None:
        destination, label = folders.resolve(to_folder)
        return _each(item_ids, _answered(_move(client, mailbox, destination), label))
    origins: dict[str, str | None] = {}
    results: dict[str, ItemResult] = {}
    for item_id in item_ids:
        try:
            origins[item_id] = _last_active_parent(client, mailbox, item_id)
        except GraphError as exc:
            results[item_id] = outcome(item_id, exc)
    folder_ids = _folder_ids(client, mailbox, {e for e in origins.values() if e})

    def restore(item_id: str) -> ItemResult:
        folder_id = folder_ids.get(origins[item_id] or "")
        label = folders.path(folder_id) if folder_id else None
        destination, label = (folder_id, label) if label else (RESTORE_FALLBACK, RESTORE_FALLBACK)
        return _answered(_move(client, mailbox, destination), label)(item_id)

    try:
        restored = _each(list(origins), restore)
    except Interrupted as stop:
        raise Interrupted([*results.values(), *stop.finished], stop.cause) from stop.cause
    results.update((r.item_id, r) for r in restored)
    return [results[i] for i in item_ids]


def _last_active_parent(client: GraphClient, mailbox: str, item_id: str) -> str | None:
    """PidTagLastActiveParentEntryId of a deleted item (base64), or None."""
    expand = f"singleValueExtendedProperties($filter=id eq '{LAST_ACTIVE_PARENT}')"
    row = client.get(user_path(mailbox, "messages", item_id), {"$select": "id", "$expand": expand})
    for prop in row.get("singleValueExtendedProperties") or ():
        if str(prop.get("id", "")).lower() == LAST_ACTIVE_PARENT.lower():
            return prop.get("value")
    return None


def _translatable(entry_id_base64: str) -> str:
    """Base64 as translateExchangeIds wants binary ids: URL-safe, unpadded, the padding count appended."""
    stripped = entry_id_base64.rstrip("=")
    padding = len(entry_id_base64) - len(stripped)
    return stripped.replace("+", "-").replace("/", "_") + str(padding)


def _folder_ids(client: GraphClient, mailbox: str, entry_ids: set[str]) -> dict[str, str]:
    """Entry ids (base64) -> Graph folder ids, in one translateExchangeIds request."""
    if not entry_ids:
        return {}
    ordered = sorted(entry_ids)
    by_input = {_translatable(e): e for e in ordered}
    answer = client.post(
        user_path(mailbox, "translateExchangeIds"),
        {"inputIds": list(by_input), "sourceIdType": "entryId", "targetIdType": "restId"},
    ).json()
    return {
        by_input[row["sourceId"]]: row["targetId"]
        for row in answer.get("value", ())
        if row.get("sourceId") in by_input and row.get("targetId")
    }

