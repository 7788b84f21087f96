"""FindItem and FindFolder.

One response message per parent folder, each with its own paging attributes, as Exchange answers a
multi-folder find (exchangelib pages such a request with one shared offset). Traversal must be one of the
schema's values: FindItem knows Shallow, SoftDeleted and Associated only, so a Deep FindItem fails schema
validation (a SOAP fault), and a deep item search needs FindFolder Deep plus many ParentFolderIds.
A page holds at most 1000 entries, and at most 250 when a Restriction or QueryString is given
(EWSFindCountLimit); a capped page reports IncludesLastItemInRange="false" and the offset to go on from.
FindFolder accepts no Restriction in the simulator (ErrorUnsupportedQueryFilter).
"""

from __future__ import annotations

from lxml import etree

from exchange_simulator.codec.folders_xml import (
    Shape,
    check_find_shape,
    parse_folder_id,
    parse_shape,
    render_folder,
    render_items,
)
from exchange_simulator.codec.restriction import parse_restriction, parse_sort_order
from exchange_simulator.codec.soap import (
    NS_M,
    OperationContext,
    error_message,
    operation,
    response_messages,
    schema_fault,
    sub_m,
    sub_t,
    success_message,
)
from exchange_simulator.errors import EwsError
from exchange_simulator.store import query
from exchange_simulator.store.finding import Page, find_folders, paginate, select_items

_M = f"{{{NS_M}}}"
PAGE_CAP = 1000
RESTRICTED_PAGE_CAP = 250


def _integer(view: etree._Element, attribute: str, default: str) -> int:
    try:
        return int(view.get(attribute, default))
    except ValueError:
        raise schema_fault(f"The '{attribute}' attribute is not a valid integer.") from None


class _View:
    """The paging view of a find request: IndexedPage*View, FractionalPage*View, or none (everything)."""

    def __init__(self, request: etree._Element, kind: str) -> None:
        self.indexed = request.find(f"{_M}IndexedPage{kind}View")
        self.fractional = request.find(f"{_M}FractionalPage{kind}View")
        view = self.indexed if self.indexed is not None else self.fractional
        self.max_entries: int | None = None
        if view is not None and view.get("MaxEntriesReturned") is not None:
            self.max_entries = _integer(view, "MaxEntriesReturned", "")
            if self.max_entries < 1:
                raise EwsError("ErrorInvalidPagingMaxRows", "The paging max rows value is invalid.")
        self.offset = 0
        self.from_end = False
        if self.fractional is not None:
            self.numerator = _integer(self.fractional, "Numerator", "0")
            self.denominator = _integer(self.fractional, "Denominator", "1")
        if self.indexed is not None:
            self.offset = _integer(self.indexed, "Offset", "0")
            if self.offset < 0:
                raise EwsError(
                    "ErrorInvalidIndexedPagingParameters", "The indexed paging parameters are invalid."
                )
            self.from_end = self.indexed.get("BasePoint", "Beginning") == "End"

    def offset_for(self, total: int) -> int:
        if self.fractional is None:
            return self.offset
        numerator, denominator = self.numerator, self.denominator
        if denominator <= 0 or not 0 <= numerator <= denominator:
            raise EwsError(
                "ErrorInvalidFractionalPagingParameters", "The fractional paging parameters are invalid."
            )
        return total * numerator // denominator

    def annotate(self, root: etree._Element, page: Page) -> None:
        if self.indexed is not None:
            root.set("IndexedPagingOffset", str(page.next_offset))
        elif self.fractional is not None:
            root.set("NumeratorOffset", str(page.next_offset))
            root.set("AbsoluteDenominator", str(page.total))
        root.set("TotalItemsInView", str(page.total))
        root.set("IncludesLastItemInRange", "true" if page.includes_last else "false")


def _traversal(request: etree._Element, allowed: tuple[str, ...], type_name: str) -> str:
    traversal = request.get("Traversal", "")
    if traversal not in allowed:
        raise schema_fault(
            f"The 'Traversal' attribute is invalid - The value '{traversal}' is invalid according to its "
            f"datatype 'http://schemas.microsoft.com/exchange/services/2006/types:{type_name}' - The "
            f"Enumeration constraint failed."
        )
    return traversal


def _predicate(request: etree._Element) -> query.Node | None:
    restriction = request.find(f"{_M}Restriction")
    query_string = request.find(f"{_M}QueryString")
    parts: list[query.Node] = []
    if restriction is not None:
        parts.append(parse_restriction(restriction))
    if query_string is not None and (query_string.text or "").strip():
        parts.append(query.parse_aqs(query_string.text or ""))
    if not parts:
        return None
    return parts[0] if len(parts) == 1 else query.And(tuple(parts))


def _parent_ids(request: etree._Element) -> list[etree._Element]:
    container = request.find(f"{_M}ParentFolderIds")
    if container is None or not len(container):
        raise schema_fault("The element 'ParentFolderIds' is missing or empty.")
    return [c for c in container if isinstance(c.tag, str)]


@operation("FindItem")
def find_item(ctx: OperationContext, request: etree._Element) -> etree._Element:
    traversal = _traversal(request, ("Shallow", "SoftDeleted", "Associated"), "ItemQueryTraversalType")
    shape = parse_shape(request.find(f"{_M}ItemShape"))
    parents = _parent_ids(request)
    response, messages = response_messages("FindItem")
    try:
        view = _View(request, "Item")
        predicate = _predicate(request)
        sort = parse_sort_order(request.find(f"{_M}SortOrder"))
        check_find_shape(shape)
    except EwsError as err:
        for _ in parents:
            error_message(messages, "FindItem", err)
        return response
    cap = RESTRICTED_PAGE_CAP if predicate is not None else PAGE_CAP
    for parent in parents:
        try:
            folder = parse_folder_id(ctx, parent)
            found = select_items(folder, traversal=traversal, predicate=predicate, sort=sort)
            page = paginate(
                found,
                offset=view.offset_for(len(found)),
                max_entries=view.max_entries,
                from_end=view.from_end,
                cap=cap,
            )
        except EwsError as err:
            error_message(messages, "FindItem", err)
            continue
        _render_item_page(success_message(messages, "FindItem"), view, page, shape)
    return response


def _render_item_page(message: etree._Element, view: _View, page: Page, shape: Shape) -> None:
    root = sub_m(message, "RootFolder")
    view.annotate(root, page)
    render_items(sub_t(root, "Items"), page.items, shape, for_find=True)


@operation("FindFolder")
def find_folder(ctx: OperationContext, request: etree._Element) -> etree._Element:
    traversal = _traversal(request, ("Shallow", "Deep", "SoftDeleted"), "FolderQueryTraversalType")
    shape = parse_shape(request.find(f"{_M}FolderShape"))
    parents = _parent_ids(request)
    response, messages = response_messages("FindFolder")
    try:
        view = _View(request, "Folder")
        if request.find(f"{_M}Restriction") is not None:
            raise EwsError("ErrorUnsupportedQueryFilter", "The simulator supports no FindFolder restriction.")
    except EwsError as err:
        for _ in parents:
            error_message(messages, "FindFolder", err)
        return response
    for parent in parents:
        try:
            folder = parse_folder_id(ctx, parent)
        except EwsError as err:
            error_message(messages, "FindFolder", err)
            continue
        found = [] if traversal == "SoftDeleted" else find_folders(folder, deep=traversal == "Deep")
        page = paginate(
            found,
            offset=view.offset_for(len(found)),
            max_entries=view.max_entries,
            from_end=view.from_end,
            cap=PAGE_CAP,
        )
        root = sub_m(success_message(messages, "FindFolder"), "RootFolder")
        view.annotate(root, page)
        folders = sub_t(root, "Folders")
        for child in page.items:
            render_folder(folders, child, shape)
    return response
