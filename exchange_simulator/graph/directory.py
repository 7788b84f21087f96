"""The directory: users, groups (distribution lists) and group members, direct or transitive (user-list.md,
user-get.md, group-list.md, group-get.md, group-list-members.md, group-list-transitivemembers.md).

Collections page by an opaque `$skiptoken`: 100 per page by default, `$top` up to 999. `$filter` takes the
default-query forms (eq, startswith, `any` on proxyAddresses); `ne`, `not`, `endswith` and null tests are
advanced queries, which Azure AD answers only with `ConsistencyLevel: eventual` and `$count=true` (else 400
Request_UnsupportedQuery); `$count` and `$search` ("displayName:ali", terms joined by AND, matching the
start of a word) need `ConsistencyLevel: eventual` too. transitiveMembers lists every
member of nested groups once, the nested groups themselves included, as Azure AD does; an outside address
in a list is an orgContact.
"""

from __future__ import annotations

from typing import Any

from exchange_simulator.graph import odata
from exchange_simulator.graph.codecs import directory as codec
from exchange_simulator.graph.codecs.mailbox_settings import mailbox_settings
from exchange_simulator.graph.errors import GraphError
from exchange_simulator.graph.filter import (
    Call,
    Compare,
    Lambda,
    Logical,
    Negation,
    Node,
    Schema,
    compile_filter,
    parse,
)
from exchange_simulator.graph.request import GraphContext, GraphResponse
from exchange_simulator.graph.router import GROUPS_READ, USERS_READ, route
from exchange_simulator.store.model import DirectoryUser, DistributionList, Mailbox, Store

_DEFAULT_PAGE, _MAX_PAGE = 100, 999


def _not_found(key: str) -> GraphError:
    return GraphError(
        404,
        "Request_ResourceNotFound",
        f"Resource '{key}' does not exist or one of its queried reference-property objects are not present.",
    )


# ---- users -----------------------------------------------------------------------------------------------
def _users(store: Store) -> list[Mailbox | DirectoryUser]:
    return [*store.mailboxes.values(), *store.users_without_mailbox.values()]


def _user_document(user: Mailbox | DirectoryUser) -> dict[str, Any]:
    return {**codec.render_user(user), **codec.user_extra(user)}


_USER_DEFAULT = tuple(codec.render_user(DirectoryUser("x@x", "x")))  # the default view's property names


@route("GET", "users", operation="ListUsers", roles=USERS_READ, mailbox=False)
def list_users(ctx: GraphContext) -> GraphResponse:
    documents = [_user_document(u) for u in _users(ctx.store)]
    return _collection(ctx, documents, codec.USER_SCHEMA, "users", _USER_DEFAULT)


@route("GET", "users/{user}", operation="GetUser", roles=USERS_READ, mailbox=False)
def get_user(ctx: GraphContext) -> GraphResponse:
    user = ctx.store.find_user(ctx.params["user"])
    if user is None:
        raise _not_found(ctx.params["user"])
    opts = odata.options(ctx.request, codec.bad_request)
    document = _user_document(user)
    if opts.select and any(s.lower() == "mailboxsettings" for s in opts.select):
        if not isinstance(user, Mailbox):
            raise GraphError(
                404,
                "MailboxNotEnabledForRESTAPI",
                "The mailbox is either inactive, soft-deleted, or is hosted on-premise.",
            )
        document["mailboxSettings"] = mailbox_settings(user.oof, None)
    chosen = _select(document, opts.select, _USER_DEFAULT, "Microsoft.DirectoryServices.User")
    context = ctx.context(f"users{_fragment(opts.select)}/$entity")
    return GraphResponse(200, {"@odata.context": context, **chosen})


# ---- groups ----------------------------------------------------------------------------------------------
def _group(store: Store, key: str) -> DistributionList:
    found = next((g for g in store.distribution_lists.values() if g.guid == key.lower()), None)
    if found is None:
        raise _not_found(key)
    return found


@route("GET", "groups", operation="ListGroups", roles=GROUPS_READ, mailbox=False)
def list_groups(ctx: GraphContext) -> GraphResponse:
    documents = [codec.render_group(g) for g in ctx.store.distribution_lists.values()]
    return _collection(ctx, documents, codec.GROUP_SCHEMA, "groups", None)


@route("GET", "groups/{group}", operation="GetGroup", roles=GROUPS_READ, mailbox=False)
def get_group(ctx: GraphContext) -> GraphResponse:
    group = _group(ctx.store, ctx.params["group"])
    opts = odata.options(ctx.request, codec.bad_request)
    document = codec.render_group(group)
    chosen = _select(document, opts.select, None, "Microsoft.DirectoryServices.Group")
    return GraphResponse(
        200, {"@odata.context": ctx.context(f"groups{_fragment(opts.select)}/$entity"), **chosen}
    )


@route("GET", "groups/{group}/members", operation="ListGroupMembers", roles=GROUPS_READ, mailbox=False)
def list_members(ctx: GraphContext) -> GraphResponse:
    group = _group(ctx.store, ctx.params["group"])
    return _members(ctx, [_member(ctx.store, address) for address in group.members])


@route(
    "GET",
    "groups/{group}/transitiveMembers",
    operation="ListTransitiveMembers",
    roles=GROUPS_READ,
    mailbox=False,
)
def list_transitive_members(ctx: GraphContext) -> GraphResponse:
    group = _group(ctx.store, ctx.params["group"])
    found: dict[str, dict[str, Any]] = {}
    pending, seen = list(group.members), {group.address}
    while pending:
        address = pending.pop(0)
        if address in seen:
            continue
        seen.add(address)
        member = _member(ctx.store, address)
        found.setdefault(member["id"], member)
        nested = ctx.store.distribution_lists.get(address)
        if nested is not None:
            pending.extend(nested.members)
    return _members(ctx, list(found.values()))


def _member(store: Store, address: str) -> dict[str, Any]:
    nested = store.distribution_lists.get(address)
    if nested is not None:
        return {"@odata.type": codec.GROUP_TYPE, **codec.render_group(nested)}
    user = store.find_user(address)
    if user is not None:
        return {"@odata.type": codec.USER_TYPE, **codec.render_user(user)}
    return codec.render_contact(address)


def _members(ctx: GraphContext, members: list[dict[str, Any]]) -> GraphResponse:
    opts = odata.options(ctx.request, codec.bad_request)
    if opts.select:
        wanted = {s.lower() for s in opts.select} | {"@odata.type", "id"}
        members = [{k: v for k, v in m.items() if k.lower() in wanted} for m in members]
    return _page(ctx, opts, members, "directoryObjects")


# ---- collections -----------------------------------------------------------------------------------------
def _collection(
    ctx: GraphContext,
    documents: list[dict[str, Any]],
    schema: Schema,
    where: str,
    default: tuple[str, ...] | None,
) -> GraphResponse:
    opts = odata.options(ctx.request, codec.bad_request)
    eventual = ctx.request.headers.get("consistencylevel", "").lower() == "eventual"
    if opts.search is not None:
        if not eventual:
            raise codec.bad_request(
                "Request with $search query parameter only works through MSGraph with a special request "
                "header: 'ConsistencyLevel: eventual'"
            )
        documents = [d for d in documents if _searched(d, opts.search)]
    if opts.filter:
        tree = parse(opts.filter, schema)
        if _advanced(tree) and not (eventual and opts.count):
            raise codec.unsupported_query(opts.filter)
        predicate = compile_filter(opts.filter, schema).predicate
        documents = [d for d in documents if predicate(d)]
    for path, descending in reversed(opts.orderby):
        if path not in ("displayname", "userprincipalname", "mail"):
            raise GraphError(400, "Request_UnsupportedQuery", "Sorting not supported for current query.")
        key = {"displayname": "displayName", "userprincipalname": "userPrincipalName", "mail": "mail"}[path]
        documents.sort(key=lambda d, key=key: (d.get(key) or "").lower(), reverse=descending)
    type_name = (
        "Microsoft.DirectoryServices.User" if where == "users" else "Microsoft.DirectoryServices.Group"
    )
    documents = [_select(d, opts.select, default, type_name) for d in documents]
    return _page(ctx, opts, documents, f"{where}{_fragment(opts.select)}")


def _page(
    ctx: GraphContext, opts: odata.QueryOptions, documents: list[dict[str, Any]], where: str
) -> GraphResponse:
    eventual = ctx.request.headers.get("consistencylevel", "").lower() == "eventual"
    if opts.count and not eventual:
        raise codec.bad_request("$count is not currently supported.")
    size = odata.page_size(opts.top, _DEFAULT_PAGE, _MAX_PAGE, codec.bad_request)
    start = odata.skiptoken_offset(opts.skiptoken, codec.bad_request)
    answer: dict[str, Any] = {"@odata.context": ctx.context(where)}
    if opts.count:
        answer["@odata.count"] = len(documents)
    if start + size < len(documents):
        answer["@odata.nextLink"] = odata.next_link(
            ctx.request, **{"$skiptoken": odata.skiptoken(start + size)}
        )
    answer["value"] = documents[start : start + size]
    return GraphResponse(200, answer)


def _searched(document: dict[str, Any], search: str) -> bool:
    """Azure AD's $search: "property:text" terms joined by AND, each matching the start of a word."""
    for term in search.split(" AND "):
        name, sep, text = term.strip().strip('"').partition(":")
        key = next((k for k in document if k.lower() == name.strip().lower()), None)
        if not sep or key is None:
            raise codec.bad_request(f"Invalid $search clause: {term.strip()}")
        value = str(document[key] or "").lower()
        wanted = text.strip().lower()
        if not any(
            word.startswith(wanted) for word in [value, *value.replace("@", " ").replace(".", " ").split()]
        ):
            return False
    return True


def _select(
    document: dict[str, Any], select: tuple[str, ...] | None, default: tuple[str, ...] | None, type_name: str
) -> dict[str, Any]:
    """The properties a $select names, else the default view (`default` names; None: all)."""
    if not select:
        return document if default is None else {k: document[k] for k in default}
    by_name = {k.lower(): k for k in document}
    chosen: dict[str, Any] = {}
    for name in select:
        key = by_name.get(name.lower())
        if key is None:
            raise codec.bad_request(f"Could not find a property named '{name}' on type '{type_name}'.")
        chosen[key] = document[key]
    return chosen


def _fragment(select: tuple[str, ...] | None) -> str:
    return f"({','.join(select)})" if select else ""


def _advanced(node: Node) -> bool:
    """Whether a filter needs Azure AD's advanced query capabilities (ne, not, endswith, null tests)."""
    if isinstance(node, Negation):
        return True
    if isinstance(node, Compare):
        return node.op == "ne" or node.value is None
    if isinstance(node, Call):
        return node.function == "endswith"
    if isinstance(node, Lambda):
        return _advanced(node.body)
    assert isinstance(node, Logical)
    return any(_advanced(c) for c in node.children)
