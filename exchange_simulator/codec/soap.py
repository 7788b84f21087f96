"""SOAP 1.1 envelope handling for the simulator: parse a request, dispatch it, render the answer.

Operation modules register a handler per Body element with `@operation`. Handlers build the
`m:<Operation>Response` element with the builders below; this module wraps it in an envelope carrying
`ServerVersionInfo`, as Exchange 2016 does, and turns errors into what Exchange sends: an error response
message (`EwsError`, inside a handler) or a SOAP fault (`SoapFault`, for the whole request).
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Callable
from dataclasses import dataclass

from lxml import etree

from exchange_simulator.errors import EwsError, SoapFault
from exchange_simulator.store.model import Mailbox, Store

log = logging.getLogger(__name__)

NS_SOAP = "http://schemas.xmlsoap.org/soap/envelope/"
NS_M = "http://schemas.microsoft.com/exchange/services/2006/messages"
NS_T = "http://schemas.microsoft.com/exchange/services/2006/types"
NS_E = "http://schemas.microsoft.com/exchange/services/2006/errors"
NSMAP = {"s": NS_SOAP, "m": NS_M, "t": NS_T}

# RequestServerVersion values in schema order; a request is validated against the schema it names.
VERSIONS = (
    "Exchange2007",
    "Exchange2007_SP1",
    "Exchange2010",
    "Exchange2010_SP1",
    "Exchange2010_SP2",
    "Exchange2013",
    "Exchange2013_SP1",
    "Exchange2015",
    "Exchange2016",
    "V2015_10_05",
    "V2016_01_06",
    "V2016_04_13",
    "V2016_07_13",
    "V2016_10_10",
    "V2017_01_07",
    "V2017_04_14",
    "V2017_07_11",
)
_VERSION_RANK = {name: rank for rank, name in enumerate(VERSIONS)}
# What an Exchange 2016 CU23 server reports about itself.
SERVER_VERSION = {
    "MajorVersion": "15",
    "MinorVersion": "1",
    "MajorBuildNumber": "2507",
    "MinorBuildNumber": "39",
    "Version": "V2017_07_11",
}

# Comments and processing instructions are legal anywhere in a request; dropping them here means every
# handler sees only elements (lxml's comment nodes have no QName and would fail the handlers).
_PARSER = etree.XMLParser(
    resolve_entities=False,
    no_network=True,
    huge_tree=False,
    remove_blank_text=True,
    remove_comments=True,
    remove_pis=True,
)


@dataclass(frozen=True)
class CallerContext:
    """Who is calling, as established by the HTTP front from Basic or bearer authentication."""

    principal: str  # a user's address, or an application's client id
    is_app: bool = False
    can_impersonate: bool = False
    mailbox_scope: frozenset[str] | None = None  # an application access policy; None means every mailbox
    anchor_mailbox: str | None = None  # the X-AnchorMailbox header


@dataclass(frozen=True)
class SoapRequest:
    operation: str  # local name of the first Body child, e.g. "FindItem"
    body: etree._Element
    version: str  # RequestServerVersion/@Version; a request without one is an Exchange2007 request
    impersonated: str | None  # ExchangeImpersonation/ConnectingSID address
    time_zone: str | None


@dataclass(frozen=True)
class OperationContext:
    store: Store
    caller: CallerContext
    mailbox: Mailbox | None  # the acting mailbox: impersonated, else the caller's own (None for an app)
    version: str
    request: SoapRequest


Handler = Callable[[OperationContext, etree._Element], etree._Element]


@dataclass(frozen=True)
class _Registration:
    handler: Handler
    min_version: str
    needs_mailbox: bool


_OPERATIONS: dict[str, _Registration] = {}


def operation(
    name: str, *, min_version: str = "Exchange2007", needs_mailbox: bool = True
) -> Callable[[Handler], Handler]:
    """Register `handler` for the Body element `name`.

    `min_version` is the first schema that has the operation; `needs_mailbox=False` marks operations that
    act on the organisation rather than a mailbox (ResolveNames, GetSearchableMailboxes, ...).
    """

    def register(handler: Handler) -> Handler:
        _OPERATIONS[name] = _Registration(handler, min_version, needs_mailbox)
        return handler

    return register


# ---- element builders --------------------------------------------------------------------------------
def M(tag: str, **attrs: str) -> etree._Element:
    return etree.Element(f"{{{NS_M}}}{tag}", attrs, nsmap=NSMAP)


def T(tag: str, **attrs: str) -> etree._Element:
    return etree.Element(f"{{{NS_T}}}{tag}", attrs, nsmap=NSMAP)


def sub_m(parent: etree._Element, tag: str, text: str | None = None, **attrs: str) -> etree._Element:
    element = etree.SubElement(parent, f"{{{NS_M}}}{tag}", attrs)
    if text is not None:
        element.text = text
    return element


def sub_t(parent: etree._Element, tag: str, text: str | None = None, **attrs: str) -> etree._Element:
    element = etree.SubElement(parent, f"{{{NS_T}}}{tag}", attrs)
    if text is not None:
        element.text = text
    return element


def append_xml(parent: etree._Element, xml: str) -> None:
    """Append ready-made XML text (`t:`/`m:` prefixes, escaped with `xml_text`) to the content of `parent`.

    Items and folders are rendered as text because lxml costs about 2 us per element, most of a FindItem's
    CPU. The text travels in a processing instruction that `_envelope` unwraps after serialisation; escaped
    text never contains "?>", so the instruction ends where the fragment does.
    """
    parent.append(etree.ProcessingInstruction(_FRAGMENT_TARGET, xml))


_FRAGMENT_TARGET = "ews-fragment"
_FRAGMENT_START = b"<?ews-fragment "
# Markup characters, plus what lxml would refuse or normalise: control characters are dropped, CR is kept.
_ESCAPES = {ord("&"): "&amp;", ord("<"): "&lt;", ord(">"): "&gt;", ord('"'): "&quot;", ord("\r"): "&#13;"}
_ESCAPES.update({code: None for code in (*range(0x00, 0x09), 0x0B, 0x0C, *range(0x0E, 0x20))})


_NEEDS_ESCAPE = re.compile('[&<>"\x00-\x08\x0b\x0c\x0e-\x1f\r]')


def xml_text(value: str) -> str:
    """`value` escaped for element text or a double-quoted attribute."""
    return value.translate(_ESCAPES) if _NEEDS_ESCAPE.search(value) else value


def response_messages(op_name: str) -> tuple[etree._Element, etree._Element]:
    """`<m:{op}Response><m:ResponseMessages/>`: the usual shape of an answer."""
    response = M(f"{op_name}Response")
    return response, sub_m(response, "ResponseMessages")


def success_message(messages: etree._Element, op_name: str) -> etree._Element:
    message = sub_m(messages, f"{op_name}ResponseMessage", ResponseClass="Success")
    sub_m(message, "ResponseCode", "NoError")
    return message


def error_message(
    messages: etree._Element, op_name: str, err: EwsError, response_class: str = "Error"
) -> etree._Element:
    message = sub_m(messages, f"{op_name}ResponseMessage", ResponseClass=response_class)
    fill_error(message, err)
    return message


def fill_error(message: etree._Element, err: EwsError) -> None:
    """MessageText, ResponseCode, DescriptiveLinkKey and MessageXml, in the schema's order."""
    sub_m(message, "MessageText", err.message)
    sub_m(message, "ResponseCode", err.code)
    sub_m(message, "DescriptiveLinkKey", "0")
    if err.values or err.property_path:
        xml = sub_m(message, "MessageXml")
        if err.property_path:
            append_xml(xml, err.property_path)
        for name, value in err.values.items():
            sub_t(xml, "Value", value, Name=name)


# ---- envelopes ---------------------------------------------------------------------------------------
def _envelope(body_child: etree._Element, *, with_version: bool) -> bytes:
    envelope = etree.Element(f"{{{NS_SOAP}}}Envelope", nsmap={"s": NS_SOAP})
    if with_version:
        header = etree.SubElement(envelope, f"{{{NS_SOAP}}}Header")
        etree.SubElement(header, f"{{{NS_T}}}ServerVersionInfo", SERVER_VERSION, nsmap={"h": NS_T})
    body = etree.SubElement(envelope, f"{{{NS_SOAP}}}Body")
    body.append(body_child)
    serialized = etree.tostring(envelope, xml_declaration=True, encoding="utf-8")
    head, *fragments = serialized.split(_FRAGMENT_START)
    # Each piece starts with a fragment and its closing "?>", then the serialised markup that follows it.
    return head + b"".join(piece.replace(b"?>", b"", 1) for piece in fragments) if fragments else head


def fault_response(
    code: str,
    message: str,
    *,
    values: dict[str, str] | None = None,
    elements: dict[str, str] | None = None,
) -> bytes:
    """A SOAP fault as Exchange writes it (HTTP 500); MessageXml sits in the types namespace."""
    fault = etree.Element(f"{{{NS_SOAP}}}Fault", nsmap={"s": NS_SOAP})
    faultcode = etree.SubElement(fault, "faultcode", nsmap={"a": NS_T})
    faultcode.text = f"a:{code}"
    faultstring = etree.SubElement(fault, "faultstring")
    faultstring.set("{http://www.w3.org/XML/1998/namespace}lang", "en-US")
    faultstring.text = message
    detail = etree.SubElement(fault, "detail")
    etree.SubElement(detail, f"{{{NS_E}}}ResponseCode", nsmap={"e": NS_E}).text = code
    etree.SubElement(detail, f"{{{NS_E}}}Message", nsmap={"e": NS_E}).text = message
    if values or elements:
        xml = etree.SubElement(detail, f"{{{NS_T}}}MessageXml", nsmap={"t": NS_T})
        for name, value in (elements or {}).items():
            etree.SubElement(xml, f"{{{NS_T}}}{name}").text = value
        for name, value in (values or {}).items():
            etree.SubElement(xml, f"{{{NS_T}}}Value", Name=name).text = value
    return _envelope(fault, with_version=False)


def operation_error_response(request: SoapRequest, err: EwsError) -> bytes:
    """An HTTP 200 answer in which every response message is the error `err`.

    Exchange reports ErrorExceededConnectionCount, and sometimes ErrorServerBusy, this way: inside the
    operation's own response, one `m:{Op}ResponseMessage ResponseClass="Error"` per requested id or item
    (one when the request names none). The availability-style OOF operations carry a single ResponseMessage.
    """
    op_name = request.operation
    if op_name.endswith("Request"):  # GetUserOofSettingsRequest -> GetUserOofSettingsResponse
        response = M(f"{op_name.removesuffix('Request')}Response")
        fill_error(sub_m(response, "ResponseMessage", ResponseClass="Error"), err)
    else:
        response, messages = response_messages(op_name)
        for _ in range(_requested_count(request.body)):
            error_message(messages, op_name, err)
    return _envelope(response, with_version=True)


_REQUEST_LISTS = (
    "ItemIds", "FolderIds", "ParentFolderIds", "AttachmentIds", "SourceIds", "Items", "Attachments"
)


def _requested_count(body: etree._Element) -> int:
    for name in _REQUEST_LISTS:
        container = body.find(f"{{{NS_M}}}{name}")
        if container is not None:
            return max(1, sum(1 for child in container if isinstance(child.tag, str)))
    return 1


def render_fault(fault: SoapFault) -> tuple[int, bytes]:
    return fault.http_status, fault_response(
        fault.code, fault.message, values=fault.values, elements=fault.elements
    )


def schema_fault(violation: str, line: int = 1, position: int = 1) -> SoapFault:
    return SoapFault(
        "ErrorSchemaValidation",
        f"The request failed schema validation: {violation}",
        elements={"LineNumber": str(line), "LinePosition": str(position), "Violation": violation},
    )


# ---- requests ----------------------------------------------------------------------------------------
def parse_request(raw: bytes) -> SoapRequest:
    """Parse and validate the envelope. Raises `SoapFault` with Exchange's codes for a bad request."""
    try:
        root = etree.fromstring(raw, _PARSER)
    except etree.XMLSyntaxError as exc:
        line, position = exc.position if exc.position else (1, 1)
        raise schema_fault(str(exc.msg or "Data at the root level is invalid."), line, position) from None
    if root.tag != f"{{{NS_SOAP}}}Envelope":
        raise schema_fault(f"The root element '{etree.QName(root).localname}' is not a SOAP 1.1 Envelope.")
    body = root.find(f"{{{NS_SOAP}}}Body")
    if body is None or len(body) == 0:
        raise schema_fault("The SOAP Body is missing or empty.")
    request_element = body[0]
    if not isinstance(request_element.tag, str):
        raise schema_fault("The SOAP Body has no request element.")
    qname = etree.QName(request_element)
    if qname.namespace != NS_M:
        raise schema_fault(
            f"The element 'Body' in namespace '{NS_SOAP}' has invalid child element '{qname.localname}' "
            f"in namespace '{qname.namespace}'."
        )
    header = root.find(f"{{{NS_SOAP}}}Header")
    version, impersonated, time_zone = "Exchange2007", None, None
    if header is not None:
        requested = header.find(f"{{{NS_T}}}RequestServerVersion")
        if requested is not None:
            version = requested.get("Version", "")
            if version not in _VERSION_RANK:
                raise SoapFault(
                    "ErrorInvalidServerVersion", "The specified server version is invalid."
                )
        sid = header.find(f"{{{NS_T}}}ExchangeImpersonation/{{{NS_T}}}ConnectingSID")
        if sid is not None:
            address = sid.findtext(f"{{{NS_T}}}PrimarySmtpAddress") or sid.findtext(f"{{{NS_T}}}SmtpAddress")
            if not address:
                raise SoapFault(
                    "ErrorImpersonateUserDenied",
                    "The account does not have permission to impersonate the requested user.",
                )
            impersonated = address.strip()
        zone = header.find(f"{{{NS_T}}}TimeZoneContext/{{{NS_T}}}TimeZoneDefinition")
        if zone is not None:
            time_zone = zone.get("Id")
    return SoapRequest(qname.localname, request_element, version, impersonated, time_zone)


def budget_key(request: SoapRequest, caller: CallerContext) -> str:
    """Whose throttling budget a request is charged to: the target mailbox under impersonation."""
    target = request.impersonated or caller.anchor_mailbox
    return (target or caller.principal).lower()


def _acting_mailbox(store: Store, caller: CallerContext, request: SoapRequest) -> Mailbox | None:
    if request.impersonated is None:
        if caller.is_app:
            return None
        return store.find_mailbox(caller.principal)
    if not caller.can_impersonate:
        raise SoapFault(
            "ErrorImpersonateUserDenied",
            "The account does not have permission to impersonate the requested user.",
        )
    mailbox = store.find_mailbox(request.impersonated)
    if mailbox is None:
        raise SoapFault(
            "ErrorNonExistentMailbox",
            f"The SMTP address has no mailbox associated with it: {request.impersonated}",
        )
    if caller.mailbox_scope is not None and mailbox.address not in caller.mailbox_scope:
        raise SoapFault(
            "ErrorAccessDenied",
            "Access is denied. Check credentials and try again., The process failed to get the correct "
            "properties.",
        )
    if mailbox.unavailable_code and time.monotonic() < mailbox.unavailable_until:
        raise SoapFault(mailbox.unavailable_code, _UNAVAILABLE_TEXT[mailbox.unavailable_code])
    return mailbox


_UNAVAILABLE_TEXT = {
    "ErrorMailboxStoreUnavailable": "The mailbox database is temporarily unavailable.",
    "ErrorMailboxMoveInProgress": "The mailbox is being moved. Try again later.",
}


def handle(store: Store, caller: CallerContext, request: SoapRequest) -> tuple[int, bytes]:
    """Run one parsed request. Never raises: every failure becomes the answer Exchange would give."""
    registration = _OPERATIONS.get(request.operation)
    try:
        if registration is None or _VERSION_RANK[request.version] < _VERSION_RANK[registration.min_version]:
            raise schema_fault(
                f"The element 'Body' in namespace '{NS_SOAP}' has invalid child element "
                f"'{request.operation}' in namespace '{NS_M}'."
            )
        with store.lock:
            mailbox = _acting_mailbox(store, caller, request)
            if registration.needs_mailbox and mailbox is None:
                raise SoapFault(
                    "ErrorMissingEmailAddress",
                    "When making a request as an account that does not have a mailbox, you must specify "
                    "the mailbox primary SMTP address for any distinguished folders.",
                )
            context = OperationContext(store, caller, mailbox, request.version, request)
            response = registration.handler(context, request.body)
        return 200, _envelope(response, with_version=True)
    except SoapFault as fault:
        return render_fault(fault)
    except EwsError as err:  # a handler's request-wide error: Exchange reports those as faults too
        return render_fault(SoapFault(err.code, err.message, values=err.values))
    except Exception:
        log.exception("simulator failed on %s", request.operation)
        return render_fault(
            SoapFault("ErrorInternalServerError", "An internal server error occurred. The operation failed.")
        )
