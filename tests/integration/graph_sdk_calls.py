"""Calls through Microsoft's own Graph client (msgraph-sdk, unmodified), run in its own virtualenv by
test_sim_graph_sdk.py. It reads the simulator's connection facts from the environment, makes the calls an
incident-response backend makes, and prints what it got as one JSON object for the test to check against the
simulator's ground truth.

The only set-up beyond Microsoft's samples: the service root is the simulator's (`request_adapter.base_url`),
its CA is trusted through the httpx client the SDK is given (built by the SDK's own GraphClientFactory, so
its middleware is the default), and the token comes from msal against the simulator's authority, handed to
the SDK through kiota's public AccessTokenProvider interface (the Azure Identity provider only attaches
tokens for Microsoft's hosts).
"""

from __future__ import annotations

import asyncio
import base64
import json
import os
from typing import Any
from urllib.parse import urlsplit

import httpx
import msal
from kiota_abstractions.authentication import AccessTokenProvider, AllowedHostsValidator
from kiota_abstractions.authentication.base_bearer_token_authentication_provider import (
    BaseBearerTokenAuthenticationProvider,
)
from kiota_abstractions.base_request_configuration import RequestConfiguration
from msgraph import GraphRequestAdapter, GraphServiceClient
from msgraph.generated.groups.groups_request_builder import GroupsRequestBuilder
from msgraph.generated.models.automatic_replies_setting import AutomaticRepliesSetting
from msgraph.generated.models.automatic_replies_status import AutomaticRepliesStatus
from msgraph.generated.models.body_type import BodyType
from msgraph.generated.models.email_address import EmailAddress
from msgraph.generated.models.item_body import ItemBody
from msgraph.generated.models.mailbox_settings import MailboxSettings
from msgraph.generated.models.message import Message
from msgraph.generated.models.recipient import Recipient
from msgraph.generated.users.item.messages.item.move.move_post_request_body import MovePostRequestBody
from msgraph.generated.users.item.messages.item.reply.reply_post_request_body import ReplyPostRequestBody
from msgraph.generated.users.item.messages.messages_request_builder import MessagesRequestBuilder
from msgraph.generated.users.item.send_mail.send_mail_post_request_body import SendMailPostRequestBody
from msgraph.generated.users.users_request_builder import UsersRequestBuilder
from msgraph_core import GraphClientFactory
from msgraph_core.requests.batch_request_content import BatchRequestContent
from msgraph_core.tasks.page_iterator import PageIterator

ENV = os.environ


class MsalTokenProvider(AccessTokenProvider):
    def __init__(self) -> None:
        self._app = msal.ConfidentialClientApplication(
            ENV["SIM_CLIENT_ID"],
            client_credential=ENV["SIM_CLIENT_SECRET"],
            authority=ENV["SIM_AUTHORITY"],
            verify=ENV["SIM_CA_BUNDLE"],
            instance_discovery=False,
        )
        self._hosts = AllowedHostsValidator([urlsplit(ENV["SIM_GRAPH_URL"]).netloc])

    async def get_authorization_token(
        self, uri: str, additional_authentication_context: dict | None = None
    ) -> str:
        return self._app.acquire_token_for_client(scopes=["https://graph.microsoft.com/.default"])[
            "access_token"
        ]

    def get_allowed_hosts_validator(self) -> AllowedHostsValidator:
        return self._hosts


def client() -> GraphServiceClient:
    http = GraphClientFactory.create_with_default_middleware(
        client=httpx.AsyncClient(verify=ENV["SIM_CA_BUNDLE"])
    )
    adapter = GraphRequestAdapter(BaseBearerTokenAuthenticationProvider(MsalTokenProvider()), client=http)
    adapter.base_url = ENV["SIM_GRAPH_URL"]
    return GraphServiceClient(request_adapter=adapter)


async def main() -> dict[str, Any]:
    graph = client()
    user, other, phish = ENV["SIM_USER"], ENV["SIM_OTHER"], ENV["SIM_PHISH_ID"]
    mine = graph.users.by_user_id(user)
    report: dict[str, Any] = {}

    # list with $filter/$select/$top, following @odata.nextLink until the end
    query = MessagesRequestBuilder.MessagesRequestBuilderGetQueryParameters(
        filter="contains(subject, 'weekly')", select=["subject", "internetMessageId"], top=5
    )
    page = await mine.messages.get(RequestConfiguration(query_parameters=query))
    subjects = [m.subject for m in page.value]
    while page.odata_next_link:
        page = await mine.messages.with_url(page.odata_next_link).get()
        subjects += [m.subject for m in page.value]
    report["paged_subjects"] = subjects

    immutable = RequestConfiguration(
        query_parameters=MessagesRequestBuilder.MessagesRequestBuilderGetQueryParameters(
            filter=f"internetMessageId eq '{phish}'", select=["id", "subject", "hasAttachments"]
        )
    )
    immutable.headers.add("Prefer", 'IdType="ImmutableId"')
    found = (await mine.messages.get(immutable)).value
    report["phish_ids"] = [m.id for m in found]
    target = next(m for m in found if m.has_attachments)

    got = await mine.messages.by_message_id(target.id).get()
    report["got"] = {
        "subject": got.subject,
        "from": got.from_.email_address.address,
        "importance": got.importance.value,
    }
    report["mime_has_message_id"] = (
        phish.encode() in await mine.messages.by_message_id(target.id).content.get()
    )

    attachments = (await mine.messages.by_message_id(target.id).attachments.get()).value
    report["attachments"] = [
        (a.odata_type, a.name, base64.b64encode(a.content_bytes).decode()) for a in attachments
    ]
    await mine.messages.by_message_id(target.id).attachments.by_attachment_id(attachments[0].id).delete()

    moved = await mine.messages.by_message_id(target.id).move.post(
        MovePostRequestBody(destination_id="junkemail")
    )
    report["moved_id_changed"] = moved.id != target.id
    await mine.messages.by_message_id(moved.id).permanent_delete.post()

    to = [Recipient(email_address=EmailAddress(address=other))]
    await mine.send_mail.post(
        SendMailPostRequestBody(
            message=Message(
                subject="SDK notice",
                body=ItemBody(content_type=BodyType.Text, content="hello"),
                to_recipients=to,
            ),
            save_to_sent_items=True,
        )
    )
    others = (
        await graph.users.by_user_id(other).messages.get(
            RequestConfiguration(
                query_parameters=MessagesRequestBuilder.MessagesRequestBuilderGetQueryParameters(
                    filter="subject eq 'SDK notice'"
                )
            )
        )
    ).value
    await (
        graph.users.by_user_id(other)
        .messages.by_message_id(others[0].id)
        .reply.post(ReplyPostRequestBody(comment="got it"))
    )

    await mine.mailbox_settings.patch(
        MailboxSettings(
            automatic_replies_setting=AutomaticRepliesSetting(
                status=AutomaticRepliesStatus.AlwaysEnabled, internal_reply_message="away"
            )
        )
    )
    settings = await mine.mailbox_settings.get()
    report["oof"] = [settings.automatic_replies_setting.status.value, settings.user_purpose.value]

    users_query = UsersRequestBuilder.UsersRequestBuilderGetQueryParameters(select=["id", "mail"], top=2)
    users_page = await graph.users.get(RequestConfiguration(query_parameters=users_query))
    users: list[str | None] = []

    def collect(found_user) -> bool:
        users.append(found_user.mail)
        return True

    await PageIterator(users_page, graph.request_adapter).iterate(collect)
    report["users"] = users

    groups_query = GroupsRequestBuilder.GroupsRequestBuilderGetQueryParameters(
        filter="mail eq 'team@contoso.example'"
    )
    [group] = (await graph.groups.get(RequestConfiguration(query_parameters=groups_query))).value
    members = (await graph.groups.by_group_id(group.id).transitive_members.get()).value
    report["members"] = [(m.odata_type, getattr(m, "mail", None)) for m in members]

    batch = BatchRequestContent()
    batch.add_request_information(mine.mail_folders.by_mail_folder_id("inbox").to_get_request_information())
    batch.add_request_information(graph.users.by_user_id(other).mailbox_settings.to_get_request_information())
    answered = await graph.batch.post(batch_request_content=batch)
    report["batch"] = sorted(item.status for item in answered.responses.values())
    return report


if __name__ == "__main__":
    print(json.dumps(asyncio.run(main())))
