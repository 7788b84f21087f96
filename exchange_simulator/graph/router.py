"""URL templates of the Graph front, the operation each one is, and the application permissions it needs.

Handler modules register with `@route`; `resolve` matches a request path (segments compare
case-insensitively, as Graph's do). Message routes also exist below `mailFolders/{folder}/` (and one level of
`childFolders/{child}/`), as the reference lists them. What Graph answers for a path it does not know is a
400 naming the first segment it could not resolve; for a known path with another method, a 405.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from exchange_simulator.graph.errors import GraphError
from exchange_simulator.graph.request import GraphContext, GraphResponse

Handler = Callable[[GraphContext], GraphResponse]

# Application permissions, from least to most privileged, that allow each kind of call (permissions tables
# of the reference pages).
MAIL_READ = frozenset({"Mail.ReadBasic.All", "Mail.Read", "Mail.ReadWrite"})
MAIL_WRITE = frozenset({"Mail.ReadWrite"})
MAIL_SEND = frozenset({"Mail.Send"})
SETTINGS_READ = frozenset({"MailboxSettings.Read", "MailboxSettings.ReadWrite"})
SETTINGS_WRITE = frozenset({"MailboxSettings.ReadWrite"})
CONTACTS_READ = frozenset({"Contacts.Read", "Contacts.ReadWrite"})
_DIRECTORY = frozenset({"Directory.Read.All", "Directory.ReadWrite.All"})
USERS_READ = frozenset({"User.Read.All", "User.ReadWrite.All"}) | _DIRECTORY
GROUPS_READ = frozenset({"GroupMember.Read.All", "Group.Read.All", "Group.ReadWrite.All"}) | _DIRECTORY


@dataclass(frozen=True)
class Route:
    method: str
    segments: tuple[str, ...]  # lower-case literals, or "{name}" parameters
    handler: Handler
    operation: str  # how /_sim/requests names it
    roles: frozenset[str]
    mailbox: bool  # below users/{user}/ and served by the user's mailbox (Outlook), or the directory
    beta_only: bool


_ROUTES: dict[int, list[Route]] = {}
_FOLDER_PREFIXES = (("mailfolders", "{folder}"), ("mailfolders", "{folder}", "childfolders", "{child}"))


def route(
    method: str,
    template: str,
    *,
    operation: str,
    roles: frozenset[str],
    mailbox: bool = True,
    beta_only: bool = False,
    in_folders: bool = False,
) -> Callable[[Handler], Handler]:
    """Register a handler for `template` ("users/{user}/messages/{message}"); with `in_folders`, also below
    users/{user}/mailFolders/{folder}/ and .../childFolders/{child}/."""

    def register(handler: Handler) -> Handler:
        segments = tuple(s if s.startswith("{") else s.lower() for s in template.split("/"))
        variants = [segments]
        if in_folders:
            variants += [segments[:2] + prefix + segments[2:] for prefix in _FOLDER_PREFIXES]
        for variant in variants:
            entry = Route(method, variant, handler, operation, roles, mailbox, beta_only)
            _ROUTES.setdefault(len(variant), []).append(entry)
        return handler

    return register


def resolve(method: str, version: str, segments: list[str]) -> tuple[Route, dict[str, str]]:
    if segments and segments[0].lower() == "me":
        raise GraphError(400, "BadRequest", "/me request is only valid with delegated authentication flow.")
    lowered = [s.lower() for s in segments]
    candidates = [r for r in _ROUTES.get(len(segments), ()) if version == "beta" or not r.beta_only]
    matching = [r for r in candidates if _matches(r.segments, lowered)]
    for found in matching:
        if found.method == method:
            params = {
                name[1:-1]: value
                for name, value in zip(found.segments, segments, strict=True)
                if name.startswith("{")
            }
            return found, params
    if matching:
        message = "Specified HTTP method is not allowed for the request target."
        raise GraphError(405, "Request_BadRequest", message)
    unknown = segments[_first_unknown(lowered, version)] if segments else ""
    raise GraphError(400, "BadRequest", f"Resource not found for the segment '{unknown}'.")


def _matches(template: tuple[str, ...], segments: list[str]) -> bool:
    return all(t.startswith("{") or t == s for t, s in zip(template, segments, strict=True))


def _first_unknown(segments: list[str], version: str) -> int:
    """The position of the first segment no route's template has there (given the segments before it)."""
    routes = [r for group in _ROUTES.values() for r in group if version == "beta" or not r.beta_only]
    for index, segment in enumerate(segments):
        routes = [
            r
            for r in routes
            if len(r.segments) > index and _matches(r.segments[index : index + 1], [segment])
        ]
        if not routes:
            return index
    return len(segments) - 1
