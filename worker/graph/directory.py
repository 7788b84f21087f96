"""Directory-style reads on Graph: contacts, automatic replies, the mailboxes of the tenant and the members of
a distribution list, in the shapes worker.ews.directory answers.

Mailboxes are the users with a mail address (`mail ne null`, an advanced query: ConsistencyLevel eventual and
$count), paged 999 at a time; Graph has no "has a mailbox" filter, so a user whose address has no Exchange
Online mailbox behind it answers MailboxNotEnabledForRESTAPI when a campaign reaches it. A distribution list
is the group with that mail address; its transitive members are users, nested groups and outside contacts
(orgContacts), of which the users with a mail address are the mailboxes. Dynamic distribution groups are not
in Graph.
"""

from __future__ import annotations

from datetime import UTC, datetime

from worker.errors import Permanent
from worker.graph.client import EVENTUAL, GraphClient, odata_string, user_path

PAGE = 999  # the directory's largest $top
CONTACTS = "contacts"
CONTACT_FIELDS = "displayName,emailAddresses,companyName,jobTitle,businessPhones,homePhones,mobilePhone"
OOF_STATES = {"disabled": "Disabled", "alwaysEnabled": "Enabled", "scheduled": "Scheduled"}
AUDIENCES = {"none": "None", "contactsOnly": "Known", "all": "All"}
USER_TYPE = "#microsoft.graph.user"


def _phones(contact: dict) -> list[dict]:
    """As EWS labels them: BusinessPhone, BusinessPhone2, HomePhone, HomePhone2, MobilePhone."""
    numbers = []
    for label, key in (("BusinessPhone", "businessPhones"), ("HomePhone", "homePhones")):
        for index, number in enumerate(contact.get(key) or ()):
            if number:
                numbers.append({"label": label if index == 0 else f"{label}{index + 1}", "number": number})
    if contact.get("mobilePhone"):
        numbers.append({"label": "MobilePhone", "number": contact["mobilePhone"]})
    return numbers


def _contact_folders(client: GraphClient, mailbox: str) -> list[tuple[str, str]]:
    """(listing path, label) of every contact folder below the default one: `contactFolders` lists the
    folders directly below it, `childFolders` those below each (one request per folder)."""
    found: list[tuple[str, str]] = []
    pending = [(user_path(mailbox, "contactFolders"), CONTACTS)]
    while pending:
        listing, parent = pending.pop(0)
        for folder in client.pages(listing, {"$select": "id,displayName", "$top": PAGE}):
            label = f"{parent}/{folder.get('displayName') or ''}"
            found.append((user_path(mailbox, "contactFolders", folder["id"], "contacts"), label))
            pending.append((user_path(mailbox, "contactFolders", folder["id"], "childFolders"), label))
    return found


def get_contacts(client: GraphClient, mailbox: str, limit: int, all_folders: bool = False) -> list[dict]:
    """Up to `limit` contacts of the default Contacts folder (`contacts`) and, with `all_folders`, of the
    contact folders below it (labelled by path, `contacts/Vendors`), page after page."""
    sources = [(user_path(mailbox, "contacts"), CONTACTS)]
    if all_folders:
        sources += _contact_folders(client, mailbox)
    params = {"$select": CONTACT_FIELDS, "$top": min(limit, 1000)}
    contacts: list[dict] = []
    for listing, label in sources:
        for contact in client.pages(listing, params):
            contacts.append(
                {
                    "item_id": contact["id"],
                    "display_name": contact.get("displayName"),
                    "email_addresses": [
                        e["address"] for e in contact.get("emailAddresses") or () if e.get("address")
                    ],
                    "company_name": contact.get("companyName"),
                    "job_title": contact.get("jobTitle"),
                    "phone_numbers": _phones(contact),
                    "folder": label,
                }
            )
            if len(contacts) >= limit:
                return contacts
    return contacts


def _utc(value: dict | None) -> str | None:
    """A Graph dateTimeTimeZone (Exchange Online answers automatic replies in UTC) as UTC ISO 8601."""
    if not value or not value.get("dateTime"):
        return None
    parsed = datetime.fromisoformat(value["dateTime"][:26].rstrip("Z"))
    return parsed.replace(tzinfo=UTC).isoformat()


def get_out_of_office(client: GraphClient, mailbox: str) -> dict:
    settings = client.get(user_path(mailbox, "mailboxSettings", "automaticRepliesSetting"))
    state = OOF_STATES.get(settings.get("status", ""), "Disabled")
    scheduled = state == "Scheduled"
    return {
        "state": state,
        "external_audience": AUDIENCES.get(settings.get("externalAudience", ""), "None"),
        "start": _utc(settings.get("scheduledStartDateTime")) if scheduled else None,
        "end": _utc(settings.get("scheduledEndDateTime")) if scheduled else None,
        "internal_reply": settings.get("internalReplyMessage") or "",
        "external_reply": settings.get("externalReplyMessage") or "",
    }


def list_mailboxes(client: GraphClient, search_filter: str | None = None) -> list[dict]:
    """Users with a mail address, as ews.get_searchable_mailboxes' rows; `search_filter` matches the start
    of the display name or the address."""
    condition = "mail ne null"
    if search_filter:
        text = odata_string(search_filter)
        condition += f" and (startswith(displayName, {text}) or startswith(mail, {text}))"
    params = {
        "$filter": condition,
        "$count": "true",
        "$select": "id,displayName,mail,userPrincipalName",
        "$top": PAGE,
    }
    return [
        {
            "primary_smtp_address": user["mail"].lower(),
            "display_name": user.get("displayName"),
            "guid": user["id"],
            "is_external": False,
            "external_email": None,
            "is_membership_group": False,
            "reference_id": user["id"],
            "failed": False,
        }
        for user in client.pages("/users", params, headers=EVENTUAL)
        if user.get("mail")
    ]


def expand_distribution_list(client: GraphClient, address: str) -> list[str]:
    """SMTP addresses of the list's mailboxes, nested lists expanded (Graph's transitive members)."""
    groups = client.get("/groups", {"$filter": f"mail eq {odata_string(address)}", "$select": "id"})
    found = groups.get("value") or []
    if not found:
        raise Permanent("ErrorNameResolutionNoResults", f"no distribution list has the address {address}")
    members = client.pages(
        f"/groups/{found[0]['id']}/transitiveMembers", {"$select": "id,mail", "$top": PAGE}
    )
    return [m["mail"] for m in members if m.get("@odata.type") == USER_TYPE and m.get("mail")]
