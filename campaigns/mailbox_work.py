"""What one campaign task does to one mailbox: search, act, or undo, turned into a recorded outcome.

Pure logic over a `MailboxGateway` (the EWS calls for one mailbox), so it is unit-testable and knows nothing
of Celery or exchangelib. Outcome statuses:
  preview: matched | none_found | skipped_guardrail | failed
  execute: acted | already_gone | none_found | skipped_guardrail | failed
Each outcome carries `counts`, the counter increments it contributed (so retry_failed can take them back).
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any, Protocol

SAMPLE_FIELDS = ("item_id", "folder", "subject", "sender", "internet_message_id", "received")
DONE, ALREADY_GONE, ITEM_FAILED = "done", "already_gone", "failed"
RECOVERABLE_FOLDERS = {"soft": "recoverableitemsdeletions", "hard": "recoverableitemspurges"}


class MailboxGateway(Protocol):
    """EWS operations on one mailbox, with throttling and retries already applied."""

    def find(self, criteria: dict[str, str], folders: list[str] | None, limit: int) -> list[dict]: ...
    def delete(self, item_ids: list[str], delete_type: str) -> list[dict]: ...
    def junk(self, item_ids: list[str]) -> list[dict]: ...
    def move(self, item_ids: list[str], to_folder: str) -> list[dict]: ...
    def restore(self, item_ids: list[str], to_folder: str | None) -> list[dict]: ...


def guardrail_reason(mailbox: str, limit: int) -> dict[str, str]:
    return {
        "code": "GuardrailTripped",
        "field": "options.max_matches_per_mailbox",
        "message": f"{mailbox} has more than {limit} matching messages; the campaign stopped. Narrow the "
        f"match criteria or raise options.max_matches_per_mailbox if this is intended.",
    }


def preview(gateway: MailboxGateway, spec: dict[str, Any], mailbox: str) -> tuple[dict, dict | None]:
    """Search only; returns (outcome, stop reason or None)."""
    found, stop = _search(gateway, spec, mailbox)
    items = [{k: item.get(k) for k in SAMPLE_FIELDS} for item in found]
    status = "skipped_guardrail" if stop else "matched" if items else "none_found"
    outcome = {"status": status, "matches": len(items), "items": items, "error": None}
    outcome["counts"] = {status: 1, "items_found": len(items)}
    return outcome, stop


def execute(
    gateway: MailboxGateway,
    spec: dict[str, Any],
    mailbox: str,
    planned: list[dict] | None,
    previous: dict | None,
) -> tuple[dict, dict | None]:
    """Act on `planned` items (what an approved preview found) or on a fresh search when None.

    `previous` is an earlier failed outcome for this mailbox (retry_failed): items it already acted on are
    kept as done, with their new ids, instead of being acted on again.
    """
    if planned is None:
        planned, stop = _search(gateway, spec, mailbox)
        if stop:
            outcome = {"status": "skipped_guardrail", "items": [], "matches": len(planned), "error": None}
            outcome["counts"] = {"skipped_guardrail": 1, "items_found": len(planned)}
            return outcome, stop
    earlier = {i["item_id"]: i for i in (previous or {}).get("items", []) if i.get("outcome") == DONE}
    pending = [i for i in planned if i["item_id"] not in earlier]
    results = _act(gateway, spec, [i["item_id"] for i in pending]) if pending else []
    items = [earlier[i["item_id"]] for i in planned if i["item_id"] in earlier] + _pair(pending, results)
    return _action_outcome(items, len(planned)), None


def restore(gateway: MailboxGateway, source_spec: dict, source_outcome: dict) -> tuple[dict, None]:
    """Undo what the source campaign did in this mailbox, putting each item back in its original folder."""
    acted = [i for i in source_outcome.get("items", []) if i.get("outcome") == DONE]
    if source_spec["action"] == "delete":
        items = _restore_deleted(gateway, acted, RECOVERABLE_FOLDERS[source_spec["options"]["delete_type"]])
    else:
        items = []
        by_folder: dict[str, list[dict]] = defaultdict(list)
        for item in acted:
            by_folder[item["folder"]].append(_undo_target(item, item.get("new_item_id") or item["item_id"]))
        for folder, group in by_folder.items():
            items += _pair(group, gateway.move([i["item_id"] for i in group], folder))
    return _action_outcome(items, len(acted)), None


def _restore_deleted(gateway: MailboxGateway, acted: list[dict], recoverable_folder: str) -> list[dict]:
    """Deleted items get new ids in Recoverable Items, and DeleteItem does not return them: find them again
    there by Internet Message-ID (at most as many copies as this campaign deleted), then restore each to the
    folder the campaign found it in (recorded at the time, so it does not depend on what the server kept)."""
    by_message_id: dict[str, list[dict]] = defaultdict(list)
    for item in acted:
        by_message_id[item.get("internet_message_id") or ""].append(item)
    by_folder: dict[str | None, list[dict]] = defaultdict(list)
    missing: list[dict] = []
    for message_id, originals in by_message_id.items():
        found = (
            gateway.find({"internet_message_id": message_id}, [recoverable_folder], len(originals))
            if message_id
            else []
        )
        for original, copy in zip(originals, found, strict=False):
            by_folder[original.get("folder")].append(_undo_target(original, copy["item_id"]))
        missing += [_undo_target(o, None) for o in originals[len(found) :]]
    items: list[dict] = []
    for folder, group in by_folder.items():
        items += _pair(group, gateway.restore([t["item_id"] for t in group], folder))
    gone = {"outcome": ALREADY_GONE, "error": None}
    return items + [_merge(m, gone) for m in missing]


def failed_outcome(code: str, message: str) -> dict:
    return {
        "status": "failed",
        "matches": 0,
        "items": [],
        "error": {"code": code, "message": message},
        "counts": {"failed": 1},
    }


def _search(gateway: MailboxGateway, spec: dict, mailbox: str) -> tuple[list[dict], dict | None]:
    limit = spec["options"]["max_matches_per_mailbox"]
    found = gateway.find(spec["match"], spec["options"]["folders"], limit + 1)
    if len(found) > limit:
        return found[:limit], guardrail_reason(mailbox, limit)
    return found, None


def _act(gateway: MailboxGateway, spec: dict, item_ids: list[str]) -> list[dict]:
    action, options = spec["action"], spec["options"]
    if action == "delete":
        return gateway.delete(item_ids, options["delete_type"])
    if action == "junk":
        return gateway.junk(item_ids)
    if action == "move":
        return gateway.move(item_ids, options["to_folder"])
    raise ValueError(f"not a containment action: {action}")


def _undo_target(item: dict, current_id: str | None) -> dict:
    """The item as it is now (after the source action), remembering where it has to go back to."""
    return {
        "item_id": current_id,
        "original_item_id": item["item_id"],
        "folder": item.get("folder"),
        "subject": item.get("subject"),
        "internet_message_id": item.get("internet_message_id"),
    }


def _pair(items: list[dict], results: list[dict]) -> list[dict]:
    """Match per-item results to items by id (by position when results carry no ids); missing = failed."""
    by_id = {r.get("item_id"): r for r in results if r.get("item_id")}
    paired = []
    for index, item in enumerate(items):
        result = by_id.get(item["item_id"])
        if result is None and not by_id and index < len(results):
            result = results[index]
        if result is None:
            result = {
                "outcome": ITEM_FAILED,
                "error": {"code": "NoResult", "message": "no result for this item"},
            }
        paired.append(_merge(item, result))
    return paired


def _merge(item: dict, result: dict) -> dict:
    """One item's record: what it was (id, folder) and what happened (outcome, new id, where it is now)."""
    merged = {k: item.get(k) for k in (*SAMPLE_FIELDS, "original_item_id") if k in item}
    merged.update(
        outcome=result.get("outcome", ITEM_FAILED),
        new_item_id=result.get("new_item_id"),
        new_folder=result.get("folder"),
        error=result.get("error"),
    )
    return merged


def _action_outcome(items: list[dict], planned: int) -> dict:
    acted = sum(1 for i in items if i["outcome"] == DONE)
    gone = sum(1 for i in items if i["outcome"] == ALREADY_GONE)
    failed = len(items) - acted - gone
    if failed:
        status = "failed"
    elif acted:
        status = "acted"
    elif gone:
        status = "already_gone"
    else:
        status = "none_found"
    first_error = next((i["error"] for i in items if i["outcome"] == ITEM_FAILED and i.get("error")), None)
    error = None
    if failed:
        error = first_error or {"code": "ItemActionFailed", "message": f"{failed} item(s) failed"}
    outcome = {
        "status": status,
        "items": items,
        "matches": planned,
        "acted": acted,
        "already_gone": gone,
        "failed_items": failed,
        "error": error,
    }
    outcome["counts"] = {
        status: 1,
        "items_found": planned,
        "items_acted": acted,
        "items_already_gone": gone,
        "items_failed": failed,
    }
    return outcome
