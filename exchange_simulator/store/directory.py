"""The organisation's address book: name resolution, distribution list expansion, searchable mailboxes.

Resolution follows Exchange's ambiguous name resolution: "smtp:addr" matches a primary or proxy address
exactly; otherwise an entry matches a mailbox or list whose address, alias or display name (or a word of
it) starts with the text, then contacts in the caller's Contacts folder. At most 100 candidates.
"""

from __future__ import annotations

from dataclasses import dataclass

from exchange_simulator.errors import EwsError
from exchange_simulator.store.model import ContactInfo, DistributionList, EmailAddress, Item, Mailbox, Store

MAX_CANDIDATES = 100


@dataclass(frozen=True)
class Resolution:
    mailbox: EmailAddress
    contact: ContactInfo | None  # directory data of the match, or the Contacts folder item's data
    item: Item | None = None  # set for matches from the caller's Contacts folder


def _starts(text: str, *candidates: str) -> bool:
    for candidate in candidates:
        lowered = candidate.lower()
        if lowered.startswith(text) or any(word.startswith(text) for word in lowered.split()):
            return True
    return False


def mailbox_address(mailbox: Mailbox) -> EmailAddress:
    return EmailAddress(mailbox.display_name, mailbox.address, "SMTP", "Mailbox")


def list_address(dl: DistributionList) -> EmailAddress:
    return EmailAddress(dl.display_name, dl.address, "SMTP", "PublicDL")


def _mailbox_contact(mailbox: Mailbox) -> ContactInfo:
    given, _, surname = mailbox.display_name.partition(" ")
    return ContactInfo(
        display_name=mailbox.display_name,
        given_name=given,
        surname=surname,
        email_addresses=[mailbox.address],
    )


def resolve_names(store: Store, entry: str, contacts_of: Mailbox | None = None) -> list[Resolution]:
    text = entry.strip().lower()
    if not text:
        return []
    exact = text.startswith("smtp:")
    wanted = text[5:] if exact else text
    found: list[Resolution] = []
    for mailbox in store.mailboxes.values():
        names = [mailbox.address, *mailbox.aliases]
        hit = wanted in names if exact else _starts(wanted, *names, mailbox.display_name)
        if hit:
            found.append(Resolution(mailbox_address(mailbox), _mailbox_contact(mailbox)))
    for dl in store.distribution_lists.values():
        hit = wanted == dl.address if exact else _starts(wanted, dl.address, dl.display_name)
        if hit:
            found.append(Resolution(list_address(dl), ContactInfo(display_name=dl.display_name)))
    if contacts_of is not None:
        for item in contacts_of.folders["contacts"].items.values():
            info = item.contact
            if info is None:
                continue
            hit = (
                wanted in info.email_addresses
                if exact
                else _starts(wanted, info.display_name, *info.email_addresses)
            )
            if hit:
                address = info.email_addresses[0] if info.email_addresses else ""
                contact_address = EmailAddress(info.display_name, address, "SMTP", "Contact")
                found.append(Resolution(contact_address, info, item))
    return found[:MAX_CANDIDATES]


def find_distribution_list(store: Store, name: str) -> DistributionList:
    """A public list by address, alias (local part) or display name; ambiguity and absence are errors."""
    wanted = name.strip().lower()
    if wanted.startswith("smtp:"):
        wanted = wanted[5:]
    exact = store.distribution_lists.get(wanted)
    if exact is not None:
        return exact
    matches = [
        dl
        for dl in store.distribution_lists.values()
        if wanted in (dl.address.split("@")[0], dl.display_name.lower())
    ]
    if not matches:
        raise EwsError("ErrorNameResolutionNoResults", "No results were found.")
    if len(matches) > 1:
        raise EwsError("ErrorNameResolutionMultipleResults", "Multiple results were found.")
    return matches[0]


def expand_distribution_list(store: Store, name: str) -> list[EmailAddress]:
    """Direct members only: Exchange does not expand nested lists (they come back as PublicDL entries)."""
    members: list[EmailAddress] = []
    for address in find_distribution_list(store, name).members:
        nested = store.distribution_lists.get(address)
        if nested is not None:
            members.append(list_address(nested))
            continue
        mailbox = store.find_mailbox(address)
        one_off = EmailAddress(address, address, "SMTP", "OneOff")
        members.append(mailbox_address(mailbox) if mailbox else one_off)
    return members


@dataclass(frozen=True)
class SearchableMailbox:
    guid: str
    address: str
    display_name: str
    is_group: bool
    reference_id: str


def _searchable(mailbox: Mailbox) -> SearchableMailbox:
    reference = _legacy_dn(mailbox.address)
    return SearchableMailbox(mailbox.guid, mailbox.address, mailbox.display_name, False, reference)


def _legacy_dn(address: str) -> str:
    group = "Exchange Administrative Group (FYDIBOHF23SPDLT)"
    return f"/o=First Organization/ou={group}/cn=Recipients/cn={address}"


def searchable_mailboxes(store: Store, search_filter: str, expand_groups: bool) -> list[SearchableMailbox]:
    """Every mailbox for an empty filter; else the alias's mailbox, or a list (expanded on request)."""
    wanted = search_filter.strip().lower()
    if not wanted:
        if expand_groups:
            raise EwsError(
                "ErrorInvalidArgument",
                "Cannot use wildcard or empty query when auto group expansion is enabled.",
            )
        return [_searchable(m) for m in store.mailboxes.values()]
    results: list[SearchableMailbox] = []
    for mailbox in store.mailboxes.values():
        if wanted in (mailbox.address, mailbox.address.split("@")[0], *mailbox.aliases):
            results.append(_searchable(mailbox))
    for dl in store.distribution_lists.values():
        if wanted not in (dl.address, dl.address.split("@")[0], dl.display_name.lower()):
            continue
        if not expand_groups:
            results.append(
                SearchableMailbox(dl.guid, dl.address, dl.display_name, True, _legacy_dn(dl.address))
            )
            continue
        for member in dl.members:
            mailbox = store.find_mailbox(member)
            if mailbox is not None:
                results.append(_searchable(mailbox))
    return results
