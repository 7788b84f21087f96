"""Directory objects in JSON: user, group (a distribution list), orgContact (an outside address in a list)
(user.md, group.md, orgcontact.md), and their `$filter` schemas.

A user's `id` is its mailbox's guid (accounts without a mailbox get a stable one), `userPrincipalName` its
primary address; `mail` is that address for a user with a mailbox and null without one, which is how a
client tells them apart in a list (or by `mailboxSettings`, which fails with MailboxNotEnabledForRESTAPI).
Distribution lists are mail-enabled, non-security groups with no `groupTypes`, as Exchange distribution
groups appear in the directory.
"""

from __future__ import annotations

import uuid
from typing import Any

from exchange_simulator.graph.errors import GraphError
from exchange_simulator.graph.filter import Schema
from exchange_simulator.store.model import DirectoryUser, DistributionList, Mailbox

USER_TYPE = "#microsoft.graph.user"
GROUP_TYPE = "#microsoft.graph.group"
CONTACT_TYPE = "#microsoft.graph.orgContact"


def unsupported_query(what: str) -> GraphError:
    return GraphError(400, "Request_UnsupportedQuery", f"Unsupported or invalid query filter clause: {what}.")


def bad_request(message: str) -> GraphError:
    return GraphError(400, "Request_BadRequest", message)


def render_user(user: Mailbox | DirectoryUser) -> dict[str, Any]:
    display = user.display_name
    given, _, surname = display.partition(" ")
    has_mailbox = isinstance(user, Mailbox)
    return {
        "businessPhones": [],
        "displayName": display,
        "givenName": given or None,
        "jobTitle": None,
        "mail": user.address if has_mailbox else None,
        "mobilePhone": None,
        "officeLocation": None,
        "preferredLanguage": "en-US" if has_mailbox else None,
        "surname": surname or None,
        "userPrincipalName": user.address,
        "id": user.guid,
    }


def user_extra(user: Mailbox | DirectoryUser) -> dict[str, Any]:
    """Properties a $select may ask for beyond the default set."""
    addresses = [user.address, *getattr(user, "aliases", [])] if isinstance(user, Mailbox) else []
    return {
        "accountEnabled": True,
        "mailNickname": user.address.split("@")[0],
        "proxyAddresses": [f"{'SMTP' if i == 0 else 'smtp'}:{a}" for i, a in enumerate(addresses)],
        "userType": "Member",
    }


def render_group(group: DistributionList) -> dict[str, Any]:
    return {
        "id": group.guid,
        "deletedDateTime": None,
        "classification": None,
        "createdDateTime": None,
        "description": None,
        "displayName": group.display_name,
        "groupTypes": [],
        "mail": group.address,
        "mailEnabled": True,
        "mailNickname": group.address.split("@")[0],
        "proxyAddresses": [f"SMTP:{group.address}"],
        "securityEnabled": False,
        "visibility": None,
    }


def render_contact(address: str) -> dict[str, Any]:
    return {
        "@odata.type": CONTACT_TYPE,
        "id": str(uuid.uuid5(uuid.NAMESPACE_URL, f"contact:{address}")),
        "displayName": address,
        "mail": address,
        "mailNickname": address.split("@")[0],
        "proxyAddresses": [f"SMTP:{address}"],
    }


def _invalid(message: str) -> GraphError:
    return GraphError(400, "BadRequest", message)


USER_SCHEMA = Schema(
    "microsoft.graph.user",
    {
        "id": (str, lambda u: u["id"]),
        "mail": (str, lambda u: u["mail"]),
        "userprincipalname": (str, lambda u: u["userPrincipalName"]),
        "displayname": (str, lambda u: u["displayName"]),
        "givenname": (str, lambda u: u["givenName"]),
        "surname": (str, lambda u: u["surname"]),
        "mailnickname": (str, lambda u: u["mailNickname"]),
        "usertype": (str, lambda u: u["userType"]),
        "accountenabled": (bool, lambda u: u["accountEnabled"]),
    },
    {"proxyaddresses": (lambda u: u["proxyAddresses"], str)},
    unsupported=unsupported_query,
    invalid=_invalid,
)
GROUP_SCHEMA = Schema(
    "microsoft.graph.group",
    {
        "id": (str, lambda g: g["id"]),
        "mail": (str, lambda g: g["mail"]),
        "displayname": (str, lambda g: g["displayName"]),
        "mailnickname": (str, lambda g: g["mailNickname"]),
        "mailenabled": (bool, lambda g: g["mailEnabled"]),
        "securityenabled": (bool, lambda g: g["securityEnabled"]),
    },
    {
        "grouptypes": (lambda g: g["groupTypes"], str),
        "proxyaddresses": (lambda g: g["proxyAddresses"], str),
    },
    unsupported=unsupported_query,
    invalid=_invalid,
)
