"""GetUserOofSettings and SetUserOofSettings: the availability-style shape, not ResponseMessages.

Requests are `m:<Op>Request` with a `t:Mailbox/t:Address`; answers carry a single `m:ResponseMessage`
(and, for Get, `t:OofSettings` plus `m:AllowExternalOof` beside it). Only the acting mailbox's own settings
can be read or written, as Exchange allows a mailbox user.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from lxml import etree

from exchange_simulator.codec.folders_xml import ews_datetime
from exchange_simulator.codec.soap import (
    NS_T,
    M,
    OperationContext,
    fill_error,
    operation,
    schema_fault,
    sub_m,
    sub_t,
)
from exchange_simulator.errors import EwsError, SoapFault
from exchange_simulator.store import oof
from exchange_simulator.store.model import Mailbox, OofSettings, utcnow


def _t(name: str) -> str:
    return f"{{{NS_T}}}{name}"


def _target(ctx: OperationContext, request: etree._Element) -> Mailbox:
    address = (request.findtext(f"{_t('Mailbox')}/{_t('Address')}") or "").strip()
    if not address:
        raise schema_fault("The element 'Mailbox' has incomplete content. List of possible elements "
                            "expected: 'Address'.")
    mailbox = ctx.store.find_mailbox(address)
    if mailbox is None:
        raise SoapFault("ErrorMailRecipientNotFound", f"No mailbox has the address {address}.")
    if mailbox is not ctx.mailbox:
        raise SoapFault("ErrorAccessDenied", "User is not mailbox owner.")
    return mailbox


def _response(op_name: str, err: EwsError | None = None) -> etree._Element:
    response = M(f"{op_name}Response")
    message = sub_m(response, "ResponseMessage", ResponseClass="Error" if err else "Success")
    if err is None:
        sub_m(message, "ResponseCode", "NoError")
    else:
        fill_error(message, err)
    return response


@operation("GetUserOofSettingsRequest")
def get_user_oof_settings(ctx: OperationContext, request: etree._Element) -> etree._Element:
    settings = oof.get_oof(ctx.store, _target(ctx, request))
    response = _response("GetUserOofSettings")
    element = sub_t(response, "OofSettings")
    sub_t(element, "OofState", settings.state)
    sub_t(element, "ExternalAudience", settings.external_audience)
    today = utcnow().replace(hour=0, minute=0, second=0)
    duration = sub_t(element, "Duration")
    sub_t(duration, "StartTime", ews_datetime(settings.start or today))
    sub_t(duration, "EndTime", ews_datetime(settings.end or today + timedelta(days=1)))
    sub_t(sub_t(element, "InternalReply"), "Message", settings.internal_reply)
    sub_t(sub_t(element, "ExternalReply"), "Message", settings.external_reply)
    sub_m(response, "AllowExternalOof", "All")
    return response


def _datetime(text: str | None) -> datetime | None:
    if not text:
        return None
    try:
        parsed = datetime.fromisoformat(text.strip())
    except ValueError:
        raise schema_fault(f"The value '{text}' is invalid according to its datatype 'DateTime'.") from None
    return parsed.replace(tzinfo=utcnow().tzinfo) if parsed.tzinfo is None else parsed


def _settings(request: etree._Element) -> OofSettings:
    element = request.find(_t("UserOofSettings"))
    if element is None:
        raise schema_fault("The element 'SetUserOofSettingsRequest' has incomplete content. List of "
                            "possible elements expected: 'UserOofSettings'.")
    state = element.findtext(_t("OofState")) or ""
    audience = element.findtext(_t("ExternalAudience")) or "All"
    if state not in oof.OOF_STATES or audience not in oof.EXTERNAL_AUDIENCES:
        raise schema_fault(f"The OofState '{state}' or ExternalAudience '{audience}' value is invalid.")
    return OofSettings(
        state=state,
        external_audience=audience,
        start=_datetime(element.findtext(f"{_t('Duration')}/{_t('StartTime')}")),
        end=_datetime(element.findtext(f"{_t('Duration')}/{_t('EndTime')}")),
        internal_reply=element.findtext(f"{_t('InternalReply')}/{_t('Message')}") or "",
        external_reply=element.findtext(f"{_t('ExternalReply')}/{_t('Message')}") or "",
    )


@operation("SetUserOofSettingsRequest")
def set_user_oof_settings(ctx: OperationContext, request: etree._Element) -> etree._Element:
    mailbox = _target(ctx, request)
    try:
        oof.set_oof(ctx.store, mailbox, _settings(request))
    except EwsError as err:
        return _response("SetUserOofSettings", err)
    return _response("SetUserOofSettings")
