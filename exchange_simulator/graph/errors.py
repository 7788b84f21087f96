"""Graph's error answers: `{"error": {"code", "message", "innerError": {...}}}` with Graph's codes.

Outlook resources answer with Exchange's own codes (ErrorItemNotFound, ErrorInvalidIdMalformed, ...), the
directory with Azure AD's (Request_ResourceNotFound, Authorization_RequestDenied, ...), the gateway with
generic ones (BadRequest, InvalidAuthenticationToken). `from_store_error` maps what the store raises (EWS
codes) to the HTTP status Graph pairs with each code.
"""

from __future__ import annotations

from exchange_simulator.errors import EwsError

ITEM_NOT_FOUND = "The specified object was not found in the store."
ACCESS_DENIED = "Access is denied. Check credentials and try again."

# Store (EWS) codes whose Graph answer is not 400 Bad Request.
_STATUS_OF_CODE = {
    "ErrorItemNotFound": 404,
    "ErrorFolderNotFound": 404,
    "ErrorInvalidAttachmentId": 404,
    "ErrorAccessDenied": 403,
    "ErrorSendAsDenied": 403,
    "ErrorMailboxStoreUnavailable": 503,
    "ErrorMailboxMoveInProgress": 503,
    "ErrorInternalServerError": 500,
}
# Store codes Graph names differently: an unknown folder or attachment is "not found" like an item.
_GRAPH_CODE = {"ErrorFolderNotFound": "ErrorItemNotFound", "ErrorInvalidAttachmentId": "ErrorItemNotFound"}


class GraphError(Exception):
    """One Graph error answer; `headers` are extra response headers (Retry-After for 429 and 503)."""

    def __init__(
        self, status: int, code: str, message: str, headers: list[tuple[str, str]] | None = None
    ) -> None:
        super().__init__(f"{status} {code}: {message}")
        self.status = status
        self.code = code
        self.message = message
        self.headers = headers or []


def from_store_error(err: EwsError) -> GraphError:
    code = _GRAPH_CODE.get(err.code, err.code)
    message = ITEM_NOT_FOUND if code == "ErrorItemNotFound" else err.message
    return GraphError(_STATUS_OF_CODE.get(err.code, 400), code, message)


def parse_uri_error(message: str) -> GraphError:
    """What Outlook answers for an OData query it cannot parse (unknown property, bad syntax)."""
    return GraphError(400, "RequestBroker--ParseUri", message)


def error_document(err: GraphError, date: str, request_id: str, client_request_id: str) -> dict:
    return {
        "error": {
            "code": err.code,
            "message": err.message,
            "innerError": {"date": date, "request-id": request_id, "client-request-id": client_request_id},
        }
    }
