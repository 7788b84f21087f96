"""A user's mailbox settings: GET (whole, or the automaticRepliesSetting part) and PATCH
(user-get-mailboxsettings.md, user-update-mailboxsettings.md).

PATCH answers 200 with the updated properties only, as documented. Only automatic replies are kept by the
store; other writable settings (timeZone, language, workingHours, ...) are accepted and not kept. Reading
the settings makes the mailbox's Archive folder exist (its id is `archiveFolder`), as every Exchange Online
mailbox has one.
"""

from __future__ import annotations

from exchange_simulator.graph import ids
from exchange_simulator.graph.codecs import mailbox_settings as codec
from exchange_simulator.graph.codecs.common import read_json
from exchange_simulator.graph.request import GraphContext, GraphResponse
from exchange_simulator.graph.router import SETTINGS_READ, SETTINGS_WRITE, route
from exchange_simulator.store import oof


@route("GET", "users/{user}/mailboxSettings", operation="GetMailboxSettings", roles=SETTINGS_READ)
def get_settings(ctx: GraphContext) -> GraphResponse:
    assert ctx.mailbox is not None
    archive = ctx.store.default_folder(ctx.mailbox, "archive")
    document = codec.mailbox_settings(
        oof.get_oof(ctx.store, ctx.mailbox), ids.rest(archive.id) if archive else None
    )
    return GraphResponse(200, {"@odata.context": ctx.user_context("mailboxSettings"), **document})


@route(
    "GET",
    "users/{user}/mailboxSettings/automaticRepliesSetting",
    operation="GetAutomaticRepliesSetting",
    roles=SETTINGS_READ,
)
def get_automatic_replies(ctx: GraphContext) -> GraphResponse:
    assert ctx.mailbox is not None
    document = codec.automatic_replies(oof.get_oof(ctx.store, ctx.mailbox))
    context = ctx.user_context("mailboxSettings/automaticRepliesSetting")
    return GraphResponse(200, {"@odata.context": context, **document})


@route("PATCH", "users/{user}/mailboxSettings", operation="UpdateMailboxSettings", roles=SETTINGS_WRITE)
def update_settings(ctx: GraphContext) -> GraphResponse:
    assert ctx.mailbox is not None
    document = read_json(ctx.request.body)
    answer = {"@odata.context": ctx.user_context("mailboxSettings")}
    written = document.get("automaticRepliesSetting")
    if written is not None:
        settings = codec.parse_automatic_replies(written, oof.get_oof(ctx.store, ctx.mailbox))
        oof.set_oof(ctx.store, ctx.mailbox, settings)
        answer["automaticRepliesSetting"] = codec.automatic_replies(settings)
    answer.update(
        {k: v for k, v in document.items() if k != "automaticRepliesSetting" and not k.startswith("@")}
    )
    return GraphResponse(200, answer)
