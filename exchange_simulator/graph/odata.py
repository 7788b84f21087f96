"""OData system query options as Graph reads them, and the paging links it writes.

On v1.0 the options need their `$` (`filter=` alone is an unknown parameter and ignored, as Graph ignores
it); beta accepts them with or without. `$top`, `$skip` and `$count` are checked for form here; what each
resource allows is checked by its module. Paging follows Graph: messages page with `$skip` (as Outlook's
@odata.nextLink does), directory collections and search results with an opaque `$skiptoken`.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from urllib.parse import quote, urlencode

from exchange_simulator.graph.errors import GraphError
from exchange_simulator.graph.request import GraphRequest

_OPTIONS = ("select", "filter", "orderby", "top", "skip", "skiptoken", "count", "search", "expand")
_EXPAND = re.compile(r"\s*([A-Za-z]+)\s*(?:\((.*)\))?\s*$", re.DOTALL)


@dataclass(frozen=True)
class Expand:
    name: str  # lower case, e.g. "singlevalueextendedproperties"
    options: dict[str, str]  # nested options, e.g. {"filter": "id eq 'Integer 0x0E08'"}


@dataclass(frozen=True)
class QueryOptions:
    select: tuple[str, ...] | None
    filter: str | None
    orderby: tuple[tuple[str, bool], ...]  # (lower-case property path, descending)
    top: int | None
    skip: int
    skiptoken: str | None
    count: bool
    search: str | None
    expand: tuple[Expand, ...]


def options(request: GraphRequest, invalid: Callable[[str], GraphError]) -> QueryOptions:
    raw = _raw_options(request)
    select = tuple(s.strip() for s in raw["select"].split(",") if s.strip()) if "select" in raw else None
    orderby = []
    for part in raw.get("orderby", "").split(","):
        words = part.split()
        if not words:
            continue
        if len(words) > 2 or (len(words) == 2 and words[1].lower() not in ("asc", "desc")):
            raise invalid(f"Invalid $orderby clause: '{part.strip()}'.")
        orderby.append((words[0].lower(), len(words) == 2 and words[1].lower() == "desc"))
    count = raw.get("count", "false").lower()
    if count not in ("true", "false"):
        raise invalid(f"Invalid value '{raw['count']}' for query option $count.")
    search = raw.get("search")
    return QueryOptions(
        select=select,
        filter=raw.get("filter") or None,
        orderby=tuple(orderby),
        top=_whole(raw, "top", invalid),
        skip=_whole(raw, "skip", invalid) or 0,
        skiptoken=raw.get("skiptoken"),
        count=count == "true",
        search=search.strip().strip('"') if search is not None else None,
        expand=tuple(_expand(part, invalid) for part in _split_top_level(raw.get("expand", ""))),
    )


def _raw_options(request: GraphRequest) -> dict[str, str]:
    found: dict[str, str] = {}
    for name, value in request.query.items():
        lowered = name.lower()
        if lowered.startswith("$") and lowered[1:] in _OPTIONS:
            found[lowered[1:]] = value
        elif request.version == "beta" and lowered in _OPTIONS:
            found.setdefault(lowered, value)
    return found


def _whole(raw: dict[str, str], name: str, invalid: Callable[[str], GraphError]) -> int | None:
    if name not in raw:
        return None
    text = raw[name].strip()
    if not text.isdigit():
        raise invalid(f"Invalid value '{raw[name]}' for query option ${name}.")
    return int(text)


def _split_top_level(text: str) -> list[str]:
    """Split on commas outside parentheses: "a,b($filter=x eq 'y, z')" -> ["a", "b($filter=x eq 'y, z')"]."""
    parts, depth, start, quoted = [], 0, 0, False
    for index, char in enumerate(text):
        if char == "'":
            quoted = not quoted
        elif not quoted and char == "(":
            depth += 1
        elif not quoted and char == ")":
            depth -= 1
        elif not quoted and char == "," and depth == 0:
            parts.append(text[start:index])
            start = index + 1
    parts.append(text[start:])
    return [p for p in (p.strip() for p in parts) if p]


def _expand(part: str, invalid: Callable[[str], GraphError]) -> Expand:
    match = _EXPAND.match(part)
    if match is None:
        raise invalid(f"Parsing OData Select and Expand failed: invalid $expand clause '{part}'.")
    nested: dict[str, str] = {}
    for option in (match.group(2) or "").split(";"):
        name, sep, value = option.partition("=")
        if not option.strip():
            continue
        if not sep or not name.strip().startswith("$"):
            raise invalid(f"Parsing OData Select and Expand failed: invalid option '{option}'.")
        nested[name.strip()[1:].lower()] = value.strip()
    return Expand(match.group(1).lower(), nested)


# ---- paging ------------------------------------------------------------------------------------------------
def page_size(top: int | None, default: int, maximum: int, invalid: Callable[[str], GraphError]) -> int:
    if top is None:
        return default
    if not 1 <= top <= maximum:
        raise invalid(f"The value of $top must be between 1 and {maximum}.")
    return top


def next_link(request: GraphRequest, **replace: str) -> str:
    """The request's URL with paging options replaced: next_link(request, **{"$skip": "20"})."""
    kept = {k: v for k, v in request.query.items() if k.lower() not in {r.lower() for r in replace}}
    kept.update(replace)
    path = "/".join(quote(segment, safe="@!$&'()*+,;=:") for segment in request.path.split("/"))
    return f"{request.service_root}{path}?{urlencode(kept, quote_via=quote, safe='')}"


def skiptoken(offset: int) -> str:
    return base64.urlsafe_b64encode(json.dumps({"o": offset}).encode()).decode().rstrip("=")


def skiptoken_offset(token: str | None, invalid: Callable[[str], GraphError]) -> int:
    if token is None:
        return 0
    try:
        offset = json.loads(base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)))["o"]
    except (binascii.Error, ValueError, KeyError, TypeError):
        raise invalid("The $skiptoken is invalid.") from None
    if not isinstance(offset, int) or offset < 0:
        raise invalid("The $skiptoken is invalid.")
    return offset
