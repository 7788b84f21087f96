"""A pydantic ValidationError as the list every caller reports: `[{"field", "message"}]`.

Fields are dotted paths with list indexes in brackets (`query.sender`, `targets.mailboxes[3]`,
`attachments[0].name`). Messages say what was expected and never contain the input value: pydantic keeps the
input in a separate key, which is dropped here, and the project's validators never put it in their messages.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence

from pydantic import BaseModel, ValidationError

MAX_REPORTED = 20  # a list of 100,000 bad addresses is summarised, not returned whole

_MESSAGES = {
    "missing": "required",
    "extra_forbidden": "unknown field",
    "model_type": "expected an object",
    "model_attributes_type": "expected an object",
    "dict_type": "expected an object",
    "list_type": "expected a list",
    "string_type": "expected a string",
}


def field_name(location: Sequence[int | str]) -> str:
    """("targets", "mailboxes", 3) -> "targets.mailboxes[3]"; () -> "body"."""
    name = ""
    for part in location:
        if isinstance(part, int):
            name += f"[{part}]"
        else:
            name += f".{part}" if name else str(part)
    return name or "body"


def field_errors(
    error: ValidationError, prefix: Sequence[int | str] = (), model: type[BaseModel] | None = None
) -> list[dict[str, str]]:
    """Every error of `error` as {"field", "message"}, the field under `prefix`; an unknown top-level field
    of `model` lists the accepted ones."""
    return describe(error.errors(include_input=False, include_url=False), prefix, model)


def describe(
    errors: Iterable[dict], prefix: Sequence[int | str] = (), model: type[BaseModel] | None = None
) -> list[dict[str, str]]:
    """Pydantic error dicts (from ValidationError.errors() or FastAPI's RequestValidationError) as field
    errors, at most MAX_REPORTED of them plus one line saying how many there were."""
    described, total = [], 0
    for entry in errors:
        total += 1
        if len(described) < MAX_REPORTED:
            described.append(_one(entry, prefix, model))
    if total > MAX_REPORTED:
        field = re.sub(r"\[\d+\]$", "", described[0]["field"])
        message = f"{total} errors in total (first {MAX_REPORTED} listed)"
        described.append({"field": field, "message": message})
    return described


def _one(entry: dict, prefix: Sequence[int | str], model: type[BaseModel] | None) -> dict[str, str]:
    location = tuple(part for part in entry.get("loc", ()) if not _is_variant_tag(part))
    kind = entry.get("type", "")
    message = _MESSAGES.get(kind) or entry.get("msg", "invalid")
    if kind == "extra_forbidden" and model is not None and len(location) == 1:
        accepted = ", ".join(f.alias or name for name, f in model.model_fields.items())
        message = f"unknown field (accepted: {accepted})"
    return {"field": field_name((*prefix, *location)), "message": message}


def _is_variant_tag(part: int | str) -> bool:
    """pydantic names the union member or validator it tried in the location ("function-before[...]")."""
    return isinstance(part, str) and ("[" in part or part.startswith("function-"))


def first_message(errors: list[dict[str, str]]) -> tuple[str, str]:
    """(field of the first error, "field: message; other.field: message") for a one-line report."""
    return errors[0]["field"], "; ".join(f"{e['field']}: {e['message']}" for e in errors)
