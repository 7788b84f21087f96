"""What one campaign task does to one mailbox: search, act, undo or verify, turned into a recorded outcome.

Pure logic over a `MailboxGateway` (worker.mailbox.Mailbox: one mailbox's operations, on whichever backend
its profile names), so it is unit-testable and knows nothing of Celery, EWS or Graph. Outcome statuses:
  preview: matched | none_found | skipped_guardrail | failed (a restore's preview: matched | none_found)
  execute: acted | already_gone | none_found | skipped_guardrail | failed
  verify:  verified | copies_remaining | failed
Each outcome (contract.campaign.MailboxOutcome) carries `counts`, the counter increments it contributed (so
retry_failed can take them back).
"""

from __future__ import annotations

from collections import defaultdict
from typing import Protocol

from contract.campaign import RESTORE, ItemOutcome, MailboxOutcome, OutcomeError, RecordedSpec
from contract.criteria import SearchCriteria
from contract.envelope import ErrorInfo, FoundMessage, ItemResult, SearchResult
from worker.errors import Permanent

DONE, ALREADY_GONE, ITEM_FAILED = "done", "already_gone", "failed"
VERIFIED, COPIES_REMAINING = "verified", "copies_remaining"
# Where each delete type leaves a message (well-known folder names; Recoverable Items is no mail folder).
DELETED_TO = {"soft": "recoverableitemsdeletions", "hard": "recoverableitemspurges", "trash": "deleteditems"}
JUNK_FOLDER = "junkemail"
COPIES_LIMIT = 1000  # copies of one message looked for when one is missing from where a restore put it


class MailboxGateway(Protocol):
    """Operations on one mailbox, with throttling and retries already applied (worker.mailbox.Mailbox)."""

    def find(self, criteria: SearchCriteria, folders: list[str] | None, limit: int) -> SearchResult: ...
    def delete(self, item_ids: list[str], delete_type: str) -> list[ItemResult]: ...
    def junk(self, item_ids: list[str]) -> list[ItemResult]: ...
    def move(self, item_ids: list[str], to_folder: str) -> list[ItemResult]: ...
    def restore(self, item_ids: list[str], to_folder: str | None) -> list[ItemResult]: ...


def guardrail_reason(mailbox: str, limit: int) -> dict[str, str]:
    return OutcomeError(
        code="GuardrailTripped",
        field="options.max_matches_per_mailbox",
        message=f"{mailbox} has more than {limit} matching messages; the campaign stopped. Narrow the "
        f"match criteria or raise options.max_matches_per_mailbox if this is intended.",
    ).model_dump()


def preview(gateway: MailboxGateway, spec: RecordedSpec, mailbox: str) -> tuple[MailboxOutcome, dict | None]:
    """Search only; returns (outcome, stop reason or None)."""
    items, stop = _search(gateway, spec, mailbox)
    status = "skipped_guardrail" if stop else "matched" if items else "none_found"
    outcome = MailboxOutcome(
        status=status, matches=len(items), items=items, counts={status: 1, "items_found": len(items)}
    )
    return outcome, stop


def execute(
    gateway: MailboxGateway,
    spec: RecordedSpec,
    mailbox: str,
    planned: list[ItemOutcome] | None,
    previous: MailboxOutcome | None,
) -> tuple[MailboxOutcome, dict | None]:
    """Act on `planned` items (what an approved preview found) or on a fresh search when None.

    `previous` is an earlier failed outcome for this mailbox (retry_failed): items it already acted on are
    kept as done, with their new ids, instead of being acted on again.
    """
    if planned is None:
        planned, stop = _search(gateway, spec, mailbox)
        if stop:
            counts = {"skipped_guardrail": 1, "items_found": len(planned)}
            return MailboxOutcome(status="skipped_guardrail", matches=len(planned), counts=counts), stop
    earlier = {i.item_id: i for i in (previous.items if previous else []) if i.outcome == DONE}
    pending = [i for i in planned if i.item_id not in earlier]
    results = _act(gateway, spec, [i.item_id for i in pending]) if pending else []
    items = [earlier[i.item_id] for i in planned if i.item_id in earlier] + _pair(pending, results)
    return _action_outcome(items, len(planned)), None


def restore_preview(
    gateway: MailboxGateway, source_spec: RecordedSpec, source_outcome: MailboxOutcome | None
) -> tuple[MailboxOutcome, None]:
    """What a restore would put back in this mailbox, and from where to which folder; nothing moves."""
    items = _restore_plan(gateway, source_spec, source_outcome)
    present = sum(1 for item in items if item.item_id)
    status = "matched" if present else "none_found"
    counts = {status: 1, "items_found": present}
    return MailboxOutcome(status=status, matches=present, items=items, counts=counts), None


def restore(
    gateway: MailboxGateway,
    source_spec: RecordedSpec,
    source_outcome: MailboxOutcome | None,
    planned: list[ItemOutcome] | None,
) -> tuple[MailboxOutcome, None]:
    """Put each item back in its original folder: what the approved preview planned, or (None) a fresh plan.
    After a delete the items come back from Recoverable Items; after junk or move they are moved back."""
    if planned is None:
        planned = _restore_plan(gateway, source_spec, source_outcome)
    by_folder: dict[str | None, list[ItemOutcome]] = defaultdict(list)
    for item in planned:
        if item.item_id:
            by_folder[item.folder].append(item)
    put_back = gateway.restore if source_spec.action == "delete" else gateway.move
    items: list[ItemOutcome] = []
    for folder, group in by_folder.items():
        items += _pair(group, put_back([i.item_id for i in group], folder))
    gone = ItemResult(item_id=None, outcome=ALREADY_GONE)
    items += [_merge(item, gone) for item in planned if not item.item_id]
    return _action_outcome(items, len(planned)), None


def _restore_plan(
    gateway: MailboxGateway, source_spec: RecordedSpec, source_outcome: MailboxOutcome | None
) -> list[ItemOutcome]:
    """Each item the source campaign acted on: where it is now and the folder it goes back to (recorded when
    the campaign found it, so it does not depend on what the server kept)."""
    acted = [i for i in (source_outcome.items if source_outcome else []) if i.outcome == DONE]
    if source_spec.action == "delete":
        return _find_deleted(gateway, acted, DELETED_TO[source_spec.options.delete_type])
    return [_undo_target(item, item.new_item_id or item.item_id, item.new_folder) for item in acted]


def _find_deleted(
    gateway: MailboxGateway, acted: list[ItemOutcome], recoverable_folder: str
) -> list[ItemOutcome]:
    """Deleted items get new ids in Recoverable Items, and DeleteItem does not return them: find them again
    there by Internet Message-ID (at most as many copies as this campaign deleted)."""
    by_message_id: dict[str, list[ItemOutcome]] = defaultdict(list)
    for item in acted:
        by_message_id[item.internet_message_id or ""].append(item)
    planned: list[ItemOutcome] = []
    for message_id, originals in by_message_id.items():
        found: list[FoundMessage] = []
        if message_id:
            criteria = SearchCriteria(internet_message_id=message_id)
            found = gateway.find(criteria, [recoverable_folder], len(originals)).messages
        for original, copy in zip(originals, found, strict=False):
            planned.append(_undo_target(original, copy.item_id, copy.folder or recoverable_folder))
        planned += [_undo_target(o, None, None) for o in originals[len(found) :]]
    return planned


def verify(gateway: MailboxGateway, spec: RecordedSpec, executed: MailboxOutcome | None) -> MailboxOutcome:
    """Search the mailbox again and list each copy that is not where the action should have left it.

    delete (soft, hard): no copy of a match in the campaign's folders; trash, junk and move: none outside
    Deleted Items, Junk Email or the destination; restore: each restored copy back in the folder it was taken
    from. Copies are told apart by item id, so folder names never have to be compared.
    """
    misplaced = _not_restored(gateway, executed) if spec.action == RESTORE else _not_removed(gateway, spec)
    if not misplaced:
        return MailboxOutcome(status=VERIFIED, counts={VERIFIED: 1})
    return MailboxOutcome(
        status=COPIES_REMAINING,
        matches=len(misplaced),
        items=misplaced,
        counts={COPIES_REMAINING: 1, "copies": len(misplaced)},
    )


def _intended_folder(spec: RecordedSpec) -> str | None:
    """Where the action leaves a matching message, as a folder a search can look in; None: in no mail
    folder (soft and hard deletes go to Recoverable Items)."""
    if spec.action == "move":
        return spec.options.to_folder
    if spec.action == "junk":
        return JUNK_FOLDER
    return DELETED_TO["trash"] if spec.options.delete_type == "trash" else None


def _not_removed(gateway: MailboxGateway, spec: RecordedSpec) -> list[ItemOutcome]:
    """Matches in the campaign's folders that are not in the intended folder. The intended folder may lie
    within those folders (a move to Inbox/Quarantine across all folders); its matches are then among the ones
    found, so a search there with the same limit finds all of them."""
    limit = spec.options.max_matches_per_mailbox
    found = gateway.find(spec.match, spec.options.folders, limit)
    if found.truncated:
        raise Permanent(
            "VerificationIncomplete",
            f"more than {limit} messages match in this mailbox's folders, so their places were not checked; "
            "narrow the match or raise options.max_matches_per_mailbox",
        )
    target = _intended_folder(spec)
    kept: set[str] = set()
    if target is not None and found.messages:
        kept = {m.item_id for m in gateway.find(spec.match, [target], len(found.messages)).messages}
    return [_copy(m, target) for m in found.messages if m.item_id not in kept]


def _not_restored(gateway: MailboxGateway, executed: MailboxOutcome | None) -> list[ItemOutcome]:
    """Per message, each folder should hold as many copies as the restore put back there; for each missing
    one, a copy found elsewhere (where it is instead) or nothing (it is in no mail folder)."""
    by_message: dict[str, list[ItemOutcome]] = defaultdict(list)
    for item in executed.items if executed else []:
        if not item.internet_message_id:
            message = "a restored message has no Internet Message-ID to look for"
            raise Permanent("VerificationIncomplete", message)
        by_message[item.internet_message_id].append(item)
    misplaced: list[ItemOutcome] = []
    for message_id, items in by_message.items():
        criteria = SearchCriteria(internet_message_id=message_id)
        wanted: dict[str | None, list[ItemOutcome]] = defaultdict(list)
        for item in items:
            wanted[item.folder].append(item)
        placed: set[str] = set()
        missing: list[ItemOutcome] = []
        for folder, expected in wanted.items():
            here = gateway.find(criteria, [folder] if folder else None, len(expected)).messages
            placed.update(m.item_id for m in here)
            missing += expected[len(here) :]
        if missing:
            everywhere = gateway.find(criteria, None, COPIES_LIMIT).messages
            strays = [m for m in everywhere if m.item_id not in placed]
            for index, item in enumerate(missing):
                stray = strays[index] if index < len(strays) else None
                misplaced.append(_missing_copy(item, stray))
    return misplaced


def _copy(message: FoundMessage, expected_folder: str | None) -> ItemOutcome:
    return _sample(message).model_copy(update={"expected_folder": expected_folder})


def _missing_copy(item: ItemOutcome, stray: FoundMessage | None) -> ItemOutcome:
    return ItemOutcome(
        item_id=stray.item_id if stray else None,
        folder=stray.folder if stray else None,
        subject=item.subject,
        internet_message_id=item.internet_message_id,
        expected_folder=item.folder,
    )


def failed_outcome(code: str, message: str) -> MailboxOutcome:
    return MailboxOutcome(
        status="failed", error=OutcomeError(code=code, message=message), counts={"failed": 1}
    )


def _search(
    gateway: MailboxGateway, spec: RecordedSpec, mailbox: str
) -> tuple[list[ItemOutcome], dict | None]:
    limit = spec.options.max_matches_per_mailbox
    found = gateway.find(spec.match, spec.options.folders, limit)
    items = [_sample(message) for message in found.messages]
    return items, guardrail_reason(mailbox, limit) if found.truncated else None


def _sample(message: FoundMessage) -> ItemOutcome:
    """What a campaign keeps of a found message: enough to act on it, show it and undo the action."""
    return ItemOutcome(
        item_id=message.item_id,
        folder=message.folder,
        subject=message.subject,
        sender=message.sender,
        internet_message_id=message.internet_message_id,
        received=message.received.isoformat() if message.received else None,
    )


def _act(gateway: MailboxGateway, spec: RecordedSpec, item_ids: list[str]) -> list[ItemResult]:
    action, options = spec.action, spec.options
    if action == "delete":
        return gateway.delete(item_ids, options.delete_type)
    if action == "junk":
        return gateway.junk(item_ids)
    if action == "move":
        return gateway.move(item_ids, options.to_folder)
    raise ValueError(f"not a containment action: {action}")


def _undo_target(item: ItemOutcome, current_id: str | None, current_folder: str | None) -> ItemOutcome:
    """The item as it is now (after the source action), remembering where it has to go back to."""
    return ItemOutcome(
        item_id=current_id,
        original_item_id=item.item_id,
        current_folder=current_folder,
        folder=item.folder,
        subject=item.subject,
        internet_message_id=item.internet_message_id,
    )


def _pair(items: list[ItemOutcome], results: list[ItemResult]) -> list[ItemOutcome]:
    """Match per-item results to items by id (by position when results carry no ids); missing = failed."""
    by_id = {r.item_id: r for r in results if r.item_id}
    paired = []
    for index, item in enumerate(items):
        result = by_id.get(item.item_id)
        if result is None and not by_id and index < len(results):
            result = results[index]
        if result is None:
            error = ErrorInfo(code="NoResult", message="no result for this item")
            result = ItemResult(item_id=item.item_id, outcome=ITEM_FAILED, error=error)
        paired.append(_merge(item, result))
    return paired


def _merge(item: ItemOutcome, result: ItemResult) -> ItemOutcome:
    """One item's record: what it was (id, folder) and what happened (outcome, new id, where it is now)."""
    return item.model_copy(
        update={
            "outcome": result.outcome,
            "new_item_id": result.new_item_id,
            "new_folder": result.folder,
            "error": result.error,
        }
    )


def _action_outcome(items: list[ItemOutcome], planned: int) -> MailboxOutcome:
    acted = sum(1 for i in items if i.outcome == DONE)
    gone = sum(1 for i in items if i.outcome == ALREADY_GONE)
    failed = len(items) - acted - gone
    if failed:
        status = "failed"
    elif acted:
        status = "acted"
    elif gone:
        status = "already_gone"
    else:
        status = "none_found"
    error = None
    if failed:
        first = next((i.error for i in items if i.outcome == ITEM_FAILED and i.error), None)
        error = (
            OutcomeError(code=first.code, message=first.message)
            if first
            else OutcomeError(code="ItemActionFailed", message=f"{failed} item(s) failed")
        )
    return MailboxOutcome(
        status=status,
        items=items,
        matches=planned,
        acted=acted,
        already_gone=gone,
        failed_items=failed,
        error=error,
        counts={
            status: 1,
            "items_found": planned,
            "items_acted": acted,
            "items_already_gone": gone,
            "items_failed": failed,
        },
    )
