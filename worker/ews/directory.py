"""Directory-style reads: contacts, out-of-office settings and (on-premises only) searchable mailboxes."""

from __future__ import annotations

from exchangelib import Contact, Mailbox, Q
from exchangelib.fields import FieldPath
from exchangelib.properties import FailedMailbox
from exchangelib.protocol import Protocol
from exchangelib.services import GetSearchableMailboxes, GetUserOofSettings

from worker.errors import AuthError, Permanent
from worker.ews.connection import configuration_for
from worker.ews.errors import classify
from worker.ews.folders import FolderTree, well_known_folder
from worker.ews.search import find_items, iso

CONTACTS = "contacts"
CONTACT_FIELDS = (
    "display_name", "email_addresses", "company_name", "job_title", "phone_numbers", "parent_folder_id"
)
CONTACT_PATHS = tuple(FieldPath(field=Contact.get_field_by_fieldname(f)) for f in CONTACT_FIELDS)
CONTACTS_PAGE = 1000  # FindItem's largest page


def get_contacts(account, limit: int, all_folders: bool = False) -> list[dict]:
    """Up to `limit` contacts of the Contacts folder (labelled `contacts`) and, with `all_folders`, of the
    contact folders below it (one FindFolder; labelled by path, `contacts/Vendors`), read page by page with
    one FindItem over all of them."""
    base = well_known_folder(account, CONTACTS)
    folders, labels = [base], {}
    if all_folders:
        below = FolderTree.load(account, base, CONTACTS).nodes
        nodes = [n for n in below if (n.folder_class or "").lower().startswith("ipf.contact")]
        folders += [n.folder for n in nodes]
        labels = {n.folder.id: n.path for n in nodes}
    found = find_items(account, folders, Q(), CONTACT_PATHS, min(limit, CONTACTS_PAGE), max_items=limit)
    contacts = []
    for item in found:
        if not isinstance(item, Contact):
            continue  # distribution lists share the folder
        parent = item.parent_folder_id.id if item.parent_folder_id else None
        contacts.append(
            {
                "item_id": item.id,
                "display_name": item.display_name,
                "email_addresses": [e.email for e in item.email_addresses or () if e.email],
                "company_name": item.company_name,
                "job_title": item.job_title,
                "phone_numbers": [
                    {"label": p.label, "number": p.phone_number}
                    for p in item.phone_numbers or ()
                    if p.phone_number
                ],
                "folder": labels.get(parent, CONTACTS),
            }
        )
    return contacts


def get_out_of_office(account) -> dict:
    settings = GetUserOofSettings(account=account).get(
        mailbox=Mailbox(email_address=account.primary_smtp_address)
    )
    scheduled = settings.state == "Scheduled"
    return {
        "state": settings.state,
        "external_audience": settings.external_audience,
        "start": iso(settings.start) if scheduled else None,
        "end": iso(settings.end) if scheduled else None,
        "internal_reply": settings.internal_reply or "",
        "external_reply": settings.external_reply or "",
    }


def get_searchable_mailboxes(
    profile_name: str, search_filter: str | None, expand_group_membership: bool
) -> list[dict]:
    """GetSearchableMailboxes needs the Discovery Management role and exists on-premises only: Exchange Online
    removed it on 1 April 2020, which this reports as a Permanent "Unsupported" error instead of a raw
    fault."""
    try:
        found = list(
            GetSearchableMailboxes(protocol=Protocol(config=configuration_for(profile_name))).call(
                search_filter=search_filter, expand_group_membership=expand_group_membership
            )
        )
    except Exception as exc:  # a refusal is reported with the on-premises caveat
        error = classify(exc)
        if error.retryable or isinstance(error, AuthError):  # a 401 gets its token refresh (call_backend)
            raise error from exc
        raise Permanent(
            "Unsupported",
            f"GetSearchableMailboxes failed ({error.code}: {error.message}); it is "
            "available on Exchange on-premises only (removed from Exchange Online in April 2020) "
            "and needs the Discovery Management role",
        ) from exc
    mailboxes = []
    for entry in found:
        if isinstance(entry, Exception):
            raise entry
        if isinstance(entry, FailedMailbox):
            mailboxes.append(
                {
                    "mailbox": entry.mailbox,
                    "failed": True,
                    "error_code": entry.error_code,
                    "error_message": entry.error_message,
                }
            )
            continue
        mailboxes.append(
            {
                "primary_smtp_address": entry.primary_smtp_address,
                "display_name": entry.display_name,
                "guid": entry.guid,
                "is_external": bool(entry.is_external),
                "external_email": entry.external_email,
                "is_membership_group": bool(entry.is_membership_group),
                "reference_id": entry.reference_id,
                "failed": False,
            }
        )
    return mailboxes


DL_TYPES = ("PublicDL", "PrivateDL")
NOT_MAILBOXES = ("Contact", "OneOff", "PublicFolder")  # external recipients and folders: nothing to search


def expand_distribution_list(profile_name: str, address: str) -> list[str]:
    """SMTP addresses of a distribution list's mailboxes, nested lists expanded (each list once, so a list
    that contains itself still ends). Used by campaigns to turn a DL target into mailboxes."""
    protocol = Protocol(config=configuration_for(profile_name))
    members: list[str] = []
    pending, seen = [address], set()
    while pending:
        current = pending.pop()
        if current.lower() in seen:
            continue
        seen.add(current.lower())
        for member in protocol.expand_dl(current):
            if isinstance(member, Exception):
                raise member
            if member.mailbox_type in DL_TYPES and member.email_address:
                pending.append(member.email_address)
            elif member.email_address and member.mailbox_type not in NOT_MAILBOXES:
                members.append(member.email_address)
    return members
