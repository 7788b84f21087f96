"""mailboxSettings and automaticRepliesSetting in JSON (mailboxsettings.md, automaticrepliessetting.md,
user-get-mailboxsettings.md, user-update-mailboxsettings.md).

The store models automatic replies only (OofSettings): status disabled | alwaysEnabled | scheduled is its
Disabled | Enabled | Scheduled, externalAudience none | contactsOnly | all its None | Known | All. Schedules
are written in UTC as dateTimeTimeZone values with seven fractional digits, as Graph writes them; on input a
time zone is "UTC" or an IANA name (Windows names are not known here: InvalidTimeZone). The other settings
are rendered with the values of a new Exchange Online mailbox; `userPurpose` is "user".
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from exchange_simulator.graph.codecs.common import body_error
from exchange_simulator.graph.errors import GraphError
from exchange_simulator.store.model import OofSettings, utcnow

_STATUS = {"disabled": "Disabled", "alwaysenabled": "Enabled", "scheduled": "Scheduled"}
_AUDIENCE = {"none": "None", "contactsonly": "Known", "all": "All"}
_STATUS_OUT = {"Disabled": "disabled", "Enabled": "alwaysEnabled", "Scheduled": "scheduled"}
_AUDIENCE_OUT = {"None": "none", "Known": "contactsOnly", "All": "all"}
_FRACTION = re.compile(r"(\.\d{1,6})\d*")


def date_time_time_zone(value: datetime) -> dict[str, str]:
    return {"dateTime": value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.0000000"), "timeZone": "UTC"}


def automatic_replies(oof: OofSettings) -> dict[str, Any]:
    start = oof.start or utcnow().replace(minute=0, second=0)
    end = oof.end or start + timedelta(days=1)
    return {
        "status": _STATUS_OUT[oof.state],
        "externalAudience": _AUDIENCE_OUT[oof.external_audience],
        "internalReplyMessage": oof.internal_reply,
        "externalReplyMessage": oof.external_reply,
        "scheduledStartDateTime": date_time_time_zone(start),
        "scheduledEndDateTime": date_time_time_zone(end),
    }


def mailbox_settings(oof: OofSettings, archive_folder_id: str | None) -> dict[str, Any]:
    return {
        "archiveFolder": archive_folder_id,
        "timeZone": "UTC",
        "delegateMeetingMessageDeliveryOptions": "sendToDelegateOnly",
        "dateFormat": "M/d/yyyy",
        "timeFormat": "h:mm tt",
        "userPurpose": "user",
        "automaticRepliesSetting": automatic_replies(oof),
        "language": {"locale": "en-US", "displayName": "English (United States)"},
        "workingHours": {
            "daysOfWeek": ["monday", "tuesday", "wednesday", "thursday", "friday"],
            "startTime": "08:00:00.0000000",
            "endTime": "17:00:00.0000000",
            "timeZone": {"name": "UTC"},
        },
    }


def parse_automatic_replies(value: object, current: OofSettings) -> OofSettings:
    """The settings after a PATCH: properties not written keep their current values."""
    if not isinstance(value, dict):
        raise body_error("The property 'automaticRepliesSetting' must be an object.")
    updated = OofSettings(**vars(current))
    if "status" in value:
        updated.state = _enum(value["status"], _STATUS)
    if "externalAudience" in value:
        updated.external_audience = _enum(value["externalAudience"], _AUDIENCE)
    for name, attribute in (
        ("internalReplyMessage", "internal_reply"),
        ("externalReplyMessage", "external_reply"),
    ):
        if name in value:
            if not isinstance(value[name], str):
                raise body_error(
                    f"Cannot convert the literal '{value[name]}' to the expected type 'Edm.String'."
                )
            setattr(updated, attribute, value[name])
    if "scheduledStartDateTime" in value:
        updated.start = parse_date_time_time_zone(value["scheduledStartDateTime"])
    if "scheduledEndDateTime" in value:
        updated.end = parse_date_time_time_zone(value["scheduledEndDateTime"])
    return updated


def parse_date_time_time_zone(value: object) -> datetime:
    text = value.get("dateTime") if isinstance(value, dict) else None
    zone = value.get("timeZone", "UTC") if isinstance(value, dict) else None
    if not isinstance(text, str) or not isinstance(zone, str):
        raise body_error("A dateTimeTimeZone needs dateTime and timeZone.")
    try:
        parsed = datetime.fromisoformat(_FRACTION.sub(r"\1", text.strip().removesuffix("Z")))
    except ValueError:
        raise body_error(
            f"Cannot convert the literal '{text}' to the expected type 'Edm.DateTime'."
        ) from None
    try:
        tz = UTC if zone.upper() in ("UTC", "") else ZoneInfo(zone)
    except (ZoneInfoNotFoundError, ValueError):
        raise GraphError(400, "InvalidTimeZone", "Time Zone settings provided are invalid.") from None
    return parsed.replace(tzinfo=tz).astimezone(UTC)


def _enum(value: object, allowed: dict[str, str]) -> str:
    if not isinstance(value, str) or value.lower() not in allowed:
        raise body_error(f"Requested value '{value}' was not found.")
    return allowed[value.lower()]
