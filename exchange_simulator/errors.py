"""Errors the simulator answers with, named by Exchange's own response codes.

Store and codec raise these; the codec turns `EwsError` into a per-item error response message and
`SoapFault` into a SOAP fault for the whole request, as Exchange does.
"""


class EwsError(Exception):
    """One EWS ResponseCode (e.g. ErrorItemNotFound), reported inside an error response message.

    `property_path` is the XML of the property path at fault (`<t:FieldURI .../>`, `<t:ExtendedFieldURI
    .../>`), which Exchange puts in MessageXml so that the client can name the bad property.
    """

    def __init__(
        self, code: str, message: str, *, values: dict[str, str] | None = None, property_path: str = ""
    ) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message
        self.values = values or {}
        self.property_path = property_path


class SoapFault(Exception):
    """A request-level failure that Exchange reports as a SOAP fault instead of a response message."""

    def __init__(
        self,
        code: str,
        message: str,
        *,
        http_status: int = 500,
        values: dict[str, str] | None = None,
        elements: dict[str, str] | None = None,
    ) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message
        self.http_status = http_status
        self.values = values or {}  # rendered as <t:Value Name="key">value</t:Value> in MessageXml
        self.elements = elements or {}  # rendered as <t:Key>value</t:Key> (e.g. schema violations)
