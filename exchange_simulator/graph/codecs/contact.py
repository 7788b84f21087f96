"""The contact and contactFolder resources in JSON (contact.md, contactfolder.md), with the properties the
store models; phone numbers come from the EWS keys (BusinessPhone, HomePhone, MobilePhone, ...)."""

from __future__ import annotations

from typing import Any

from exchange_simulator.graph import ids
from exchange_simulator.graph.codecs.common import graph_datetime
from exchange_simulator.graph.request import GraphContext
from exchange_simulator.store.model import ContactInfo, Folder, Item


def render(ctx: GraphContext, item: Item) -> dict[str, Any]:
    info = item.contact or ContactInfo()
    phones = info.phone_numbers
    return {
        "@odata.etag": f'W/"{item.change_key}"',
        "id": ctx.item_id(item),
        "createdDateTime": graph_datetime(item.date_time_created),
        "lastModifiedDateTime": graph_datetime(item.last_modified_time),
        "changeKey": item.change_key,
        "categories": list(item.categories),
        "parentFolderId": ids.rest(item.folder.id) if item.folder else None,
        "displayName": info.display_name or item.subject,
        "givenName": info.given_name or None,
        "surname": info.surname or None,
        "jobTitle": info.job_title or None,
        "companyName": info.company_name or None,
        "mobilePhone": phones.get("MobilePhone"),
        "businessPhones": [v for k, v in phones.items() if k.startswith("BusinessPhone")],
        "homePhones": [v for k, v in phones.items() if k.startswith("HomePhone")],
        "emailAddresses": [{"name": info.display_name or a, "address": a} for a in info.email_addresses],
    }


def render_folder(folder: Folder) -> dict[str, Any]:
    return {
        "id": ids.rest(folder.id),
        "displayName": folder.display_name,
        "parentFolderId": ids.rest(folder.parent.id) if folder.parent else None,
    }
