"""The organisation the Graph integration tests share: a phish in several folders of two mailboxes (one copy
in Recoverable Items, which /messages must not see), ordinary mail to page through, lists, contacts, and an
account without a mailbox."""

from __future__ import annotations

from typing import Any

PHISH_ID = "<reset.4711@evil.example>"
PHISH_SUBJECT = "Reset your password today"
ALICE, BOB, CAROL = "alice@contoso.example", "bob@contoso.example", "carol@contoso.example"
ORDINARY = 12


def _phish(folder: str, to: str) -> dict[str, Any]:
    return {
        "folder": folder,
        "subject": PHISH_SUBJECT,
        "from": "IT Desk <it@evil.example>",
        "to": [to],
        "cc": [BOB],
        "message_id": PHISH_ID,
        "received": "2024-06-01T09:00:00Z",
        "importance": "High",
        "categories": ["Red"],
        "attachments": [{"name": "reset.html", "content_type": "text/html", "text": "<a href=x>reset</a>"}],
    }


def scenario() -> dict[str, Any]:
    ordinary = [
        {
            "subject": f"Weekly report {n:02d}",
            "from": f"colleague{n % 3}@partner.example",
            "to": [ALICE],
            "received": f"2024-05-{n + 1:02d}T08:00:00Z",
            "is_read": n % 2 == 0,
        }
        for n in range(ORDINARY)
    ]
    return {
        "mailboxes": [
            {
                "address": ALICE,
                "display_name": "Alice Adams",
                "archive": True,
                "folders": ["Inbox/Projects"],
                "contacts": [
                    {"name": f"Contact {n:02d}", "address": f"c{n}@partner.example"} for n in range(12)
                ],
                "messages": [
                    _phish("Inbox", ALICE),
                    _phish("junkemail", ALICE),
                    _phish("deleteditems", ALICE),
                    _phish("recoverableitemsdeletions", ALICE),
                    *ordinary,
                ],
            },
            {"address": BOB, "display_name": "Bob Berg", "messages": [_phish("Inbox", BOB)]},
            {"address": CAROL, "display_name": "Carol Costa"},
        ],
        "distribution_lists": [
            {
                "address": "managers@contoso.example",
                "display_name": "Managers",
                "members": [CAROL, "outside@partner.example"],
            },
            {
                "address": "team@contoso.example",
                "display_name": "Team",
                "members": [ALICE, BOB, "managers@contoso.example"],
            },
        ],
        "users_without_mailbox": [{"address": "dave@contoso.example", "display_name": "Dave Diaz"}],
    }
