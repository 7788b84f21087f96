"""Expansion of campaign targets that are not a literal list; runs in the dispatcher, never in the API call.

{"all": true} -> every searchable mailbox; {"distribution_list": X} -> its members (nested lists expanded by
the directory layer); a restore campaign -> the mailboxes where its source campaign acted.
"""

from __future__ import annotations

from typing import Protocol

from campaigns.lifecycle import EXECUTE
from campaigns.store import CampaignStore
from contract.campaign import CampaignRecord

SCAN_PAGE = 1000


class Directory(Protocol):
    def searchable_mailboxes(self) -> list[str]: ...
    def expand_distribution_list(self, address: str) -> list[str]: ...


def needs_expansion(record: CampaignRecord) -> bool:
    return not record.expanded


def expand(record: CampaignRecord, store: CampaignStore, directory: Directory) -> list[str]:
    targets = record.spec.targets
    if targets.campaign:
        return acted_mailboxes(store, targets.campaign)
    if targets.all:
        found = directory.searchable_mailboxes()
    else:
        found = directory.expand_distribution_list(targets.distribution_list)
    return _unique(found)


def acted_mailboxes(store: CampaignStore, campaign_id: str) -> list[str]:
    """Mailboxes where the campaign's execute phase acted on at least one item, in target order."""
    acted: list[str] = []
    start = 0
    while page := store.targets_page(campaign_id, start, SCAN_PAGE):
        outcomes = store.outcomes_for(campaign_id, EXECUTE, page)
        retried = store.retried_outcomes_for(campaign_id, EXECUTE, page)  # one HMGET, not one HGET each
        for mailbox, outcome, earlier in zip(page, outcomes, retried, strict=True):
            if (outcome and outcome.acted) or (earlier and earlier.acted):
                acted.append(mailbox)
        start += len(page)
    return acted


def _unique(addresses: list[str]) -> list[str]:
    seen: dict[str, str] = {}
    for address in addresses:
        if address:
            seen.setdefault(address.strip().lower(), address.strip())
    return list(seen.values())
