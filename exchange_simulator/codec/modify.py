"""DeleteItem, MoveItem, CopyItem and MarkAsJunk: one response message per requested item.

A bad id in a batch fails only its own response message (ErrorItemNotFound, ErrorInvalidIdMalformed, ...);
the other items are processed, as Exchange does. Change keys are not checked here: Exchange does not check
them for these operations either. A move or copy into another mailbox answers without the new ItemId.
"""

from __future__ import annotations

from collections.abc import Callable

from lxml import etree

from exchange_simulator.codec import folders_xml
from exchange_simulator.codec.create import folder_in, item_id_elements, parse_bool
from exchange_simulator.codec.soap import (
    NS_M,
    OperationContext,
    error_message,
    operation,
    response_messages,
    schema_fault,
    sub_m,
    success_message,
)
from exchange_simulator.errors import EwsError
from exchange_simulator.store import mutations
from exchange_simulator.store.model import Folder, Item, Store


@operation("DeleteItem")
def delete_item(ctx: OperationContext, request: etree._Element) -> etree._Element:
    delete_type = request.get("DeleteType")
    if delete_type not in mutations.DELETE_TYPES:
        raise schema_fault(f"The 'DeleteType' attribute is invalid - The value '{delete_type}' is invalid "
                            "according to its datatype 'DisposalType'.")
    response, messages = response_messages("DeleteItem")
    for element in item_id_elements(request):
        try:
            mutations.delete_item(ctx.store, folders_xml.parse_item_id(ctx, element), delete_type)
        except EwsError as err:
            error_message(messages, "DeleteItem", err)
            continue
        success_message(messages, "DeleteItem")
    return response


def _move_or_copy(
    ctx: OperationContext,
    request: etree._Element,
    op_name: str,
    action: Callable[[Store, Item, Folder], Item],
) -> etree._Element:
    container = request.find(f"{{{NS_M}}}ToFolderId")
    if container is None:
        raise schema_fault(f"The element '{op_name}' has incomplete content. List of possible elements "
                            "expected: 'ToFolderId'.")
    response, messages = response_messages(op_name)
    for element in item_id_elements(request):
        try:
            destination = folder_in(ctx, container)
            item = folders_xml.parse_item_id(ctx, element)
            same_mailbox = item.mailbox is destination.mailbox
            result = action(ctx.store, item, destination)
        except EwsError as err:
            sub_m(error_message(messages, op_name, err), "Items")
            continue
        items = sub_m(success_message(messages, op_name), "Items")
        if same_mailbox:
            folders_xml.render_item(items, result, folders_xml.ID_ONLY)
    return response


@operation("MoveItem")
def move_item(ctx: OperationContext, request: etree._Element) -> etree._Element:
    return _move_or_copy(ctx, request, "MoveItem", mutations.move_item)


@operation("CopyItem")
def copy_item(ctx: OperationContext, request: etree._Element) -> etree._Element:
    return _move_or_copy(ctx, request, "CopyItem", mutations.copy_item)


@operation("MarkAsJunk", min_version="Exchange2013")
def mark_as_junk(ctx: OperationContext, request: etree._Element) -> etree._Element:
    is_junk = parse_bool(request.get("IsJunk"), "IsJunk")
    move = parse_bool(request.get("MoveItem"), "MoveItem")
    response, messages = response_messages("MarkAsJunk")
    for element in item_id_elements(request):
        try:
            moved = mutations.mark_as_junk(ctx.store, folders_xml.parse_item_id(ctx, element), is_junk, move)
        except EwsError as err:
            error_message(messages, "MarkAsJunk", err)
            continue
        message = success_message(messages, "MarkAsJunk")
        if moved is not None:
            sub_m(message, "MovedItemId", Id=moved.id, ChangeKey=moved.change_key)
    return response
