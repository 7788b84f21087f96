"""ResolveNames, ExpandDL and GetSearchableMailboxes: the organisation's directory over EWS.

Permissions for GetSearchableMailboxes (an on-premises eDiscovery operation that needs the Discovery
Management role): the simulator treats every Basic-authenticated user as a member of that role and answers
an app-only (OAuth client credentials) caller with ErrorAccessDenied, since an app token carries no RBAC
management role and Exchange Online has dropped the operation altogether.
"""

from __future__ import annotations

from lxml import etree

from exchange_simulator.codec.folders_xml import render_mailbox
from exchange_simulator.codec.soap import (
    NS_M,
    M,
    OperationContext,
    error_message,
    fill_error,
    operation,
    response_messages,
    sub_m,
    sub_t,
    success_message,
)
from exchange_simulator.errors import EwsError
from exchange_simulator.store import directory
from exchange_simulator.store.model import ContactInfo

_M = f"{{{NS_M}}}"


def _render_contact(parent: etree._Element, info: ContactInfo, source: str | None) -> None:
    """t:Contact in ContactItemType order (DisplayName ... EmailAddresses ... ContactSource ... Surname)."""
    contact = sub_t(parent, "Contact")
    sub_t(contact, "DisplayName", info.display_name)
    if info.given_name:
        sub_t(contact, "GivenName", info.given_name)
    if info.company_name:
        sub_t(contact, "CompanyName", info.company_name)
    if info.email_addresses:
        addresses = sub_t(contact, "EmailAddresses")
        for index, address in enumerate(info.email_addresses[:3], start=1):
            sub_t(addresses, "Entry", f"SMTP:{address}", Key=f"EmailAddress{index}")
    if source:
        sub_t(contact, "ContactSource", source)
    if info.job_title:
        sub_t(contact, "JobTitle", info.job_title)
    if info.surname:
        sub_t(contact, "Surname", info.surname)


@operation("ResolveNames", needs_mailbox=False)
def resolve_names(ctx: OperationContext, request: etree._Element) -> etree._Element:
    full = request.get("ReturnFullContactData", "false").lower() in ("true", "1")
    response, messages = response_messages("ResolveNames")
    for entry in request.findall(f"{_M}UnresolvedEntry"):
        found = directory.resolve_names(ctx.store, entry.text or "", ctx.mailbox)
        if not found:
            error_message(
                messages, "ResolveNames", EwsError("ErrorNameResolutionNoResults", "No results were found.")
            )
            continue
        if len(found) == 1:
            message = success_message(messages, "ResolveNames")
        else:
            ambiguous = EwsError("ErrorNameResolutionMultipleResults", "Multiple results were found.")
            message = error_message(messages, "ResolveNames", ambiguous, response_class="Warning")
        resolution_set = sub_m(
            message,
            "ResolutionSet",
            TotalItemsInView=str(len(found)),
            IncludesLastItemInRange="true" if len(found) < directory.MAX_CANDIDATES else "false",
        )
        for resolution in found:
            element = sub_t(resolution_set, "Resolution")
            contact_id = (resolution.item.id, resolution.item.change_key) if resolution.item else None
            render_mailbox(element, resolution.mailbox, contact_id)
            if full and resolution.contact is not None:
                source = None if resolution.item is not None else "ActiveDirectory"
                _render_contact(element, resolution.contact, source)
    return response


@operation("ExpandDL", needs_mailbox=False)
def expand_dl(ctx: OperationContext, request: etree._Element) -> etree._Element:
    response, messages = response_messages("ExpandDL")
    mailbox = next(
        (c for c in request if isinstance(c.tag, str) and etree.QName(c).localname == "Mailbox"), None
    )
    try:
        address = None
        if mailbox is not None:
            address = next(
                (
                    c.text
                    for c in mailbox
                    if isinstance(c.tag, str) and etree.QName(c).localname == "EmailAddress"
                ),
                None,
            )
        if not address:  # a private list (ItemId) is not modelled
            raise EwsError("ErrorNameResolutionNoResults", "No results were found.")
        members = directory.expand_distribution_list(ctx.store, address)
    except EwsError as err:
        error_message(messages, "ExpandDL", err)
        return response
    expansion = sub_m(
        success_message(messages, "ExpandDL"),
        "DLExpansion",
        TotalItemsInView=str(len(members)),
        IncludesLastItemInRange="true",
    )
    for member in members:
        render_mailbox(expansion, member)
    return response


@operation("GetSearchableMailboxes", min_version="Exchange2013", needs_mailbox=False)
def get_searchable_mailboxes(ctx: OperationContext, request: etree._Element) -> etree._Element:
    response = M("GetSearchableMailboxesResponse")
    search_filter = request.findtext(f"{_M}SearchFilter") or ""
    expand = (request.findtext(f"{_M}ExpandGroupMembership") or "false").strip().lower() in ("true", "1")
    try:
        if ctx.caller.is_app:
            raise EwsError(
                "ErrorAccessDenied",
                "Access is denied. Listing searchable mailboxes needs the Discovery Management role.",
            )
        found = directory.searchable_mailboxes(ctx.store, search_filter, expand)
    except EwsError as err:
        response.set("ResponseClass", "Error")
        fill_error(response, err)
        sub_m(response, "SearchableMailboxes")
        return response
    response.set("ResponseClass", "Success")
    sub_m(response, "ResponseCode", "NoError")
    container = sub_m(response, "SearchableMailboxes")
    for mailbox in found:
        element = sub_t(container, "SearchableMailbox")
        sub_t(element, "Guid", mailbox.guid)
        sub_t(element, "PrimarySmtpAddress", mailbox.address)
        sub_t(element, "IsExternalMailbox", "false")
        sub_t(element, "ExternalEmailAddress")
        sub_t(element, "DisplayName", mailbox.display_name)
        sub_t(element, "IsMembershipGroup", "true" if mailbox.is_group else "false")
        sub_t(element, "ReferenceId", mailbox.reference_id)
    return response
