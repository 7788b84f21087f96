"""Submitting mail: drafts, new messages, replies and forwards, and delivery inside the organisation.

A submitted message passes through the sender's Outbox, as in Exchange, then is either moved to the folder
that keeps the sent copy (SendAndSaveCopy, SendItem with SaveItemToFolder) or removed (SendOnly). Each
recipient that is a simulated mailbox, directly or through a distribution list, gets its own copy in its Inbox
(Junk Email if it blocked the sender) with the same Internet Message-ID and no Bcc; other addresses are only
recorded as external in the "sent" journal entry.
"""

from __future__ import annotations

from exchange_simulator.errors import EwsError
from exchange_simulator.store import mime
from exchange_simulator.store.model import EmailAddress, Folder, Item, Mailbox, Store, utcnow
from exchange_simulator.store.mutations import address_list, clone_attachment, clone_item

RESPONSE_KINDS = ("ReplyToItem", "ReplyAllToItem", "ForwardItem")
_SUBJECT_PREFIX = {"ReplyToItem": "RE: ", "ReplyAllToItem": "RE: ", "ForwardItem": "FW: "}


def own_address(mailbox: Mailbox) -> EmailAddress:
    return EmailAddress(mailbox.display_name, mailbox.address)


def new_internet_message_id(mailbox: Mailbox) -> str:
    return mime.new_message_id(mailbox.address.rsplit("@", 1)[-1])


# ---- drafts ------------------------------------------------------------------------------------------
def save_draft(store: Store, mailbox: Mailbox, draft: Item, folder: Folder | None = None) -> Item:
    """CreateItem SaveOnly: an unsent message in `folder` (default Drafts) that SendItem can send later."""
    with store.lock:
        draft.is_draft = True
        draft.is_read = True
        draft.from_ = draft.from_ or own_address(mailbox)
        draft.sender = own_address(mailbox)
        draft.internet_message_id = draft.internet_message_id or new_internet_message_id(mailbox)
        mime.refresh_mime(draft)
        store.add_item(folder or mailbox.folders["drafts"], draft)
        store.record("created", draft, disposition="SaveOnly")
        return draft


# ---- sending -----------------------------------------------------------------------------------------
def send_new(store: Store, mailbox: Mailbox, message: Item, save_copy_to: Folder | None) -> None:
    """CreateItem SendOnly (`save_copy_to` None) or SendAndSaveCopy of a message not yet in the store."""
    with store.lock:
        _check_sendable(mailbox, message)
        message.internet_message_id = message.internet_message_id or new_internet_message_id(mailbox)
        store.add_item(mailbox.folders["outbox"], message)
        _submit(store, mailbox, message, save_copy_to)


def send_draft(store: Store, item: Item, save_copy_to: Folder | None) -> None:
    """SendItem: send a saved message; it leaves its folder, and a copy is kept in `save_copy_to` if given."""
    with store.lock:
        mailbox = item.mailbox
        _check_sendable(mailbox, item)
        item.internet_message_id = item.internet_message_id or new_internet_message_id(mailbox)
        store.move_item(item, mailbox.folders["outbox"])
        _submit(store, mailbox, item, save_copy_to)


def _check_sendable(mailbox: Mailbox, message: Item) -> None:
    if not (message.to or message.cc or message.bcc):
        raise EwsError("ErrorInvalidRecipients", "At least one recipient is required, but none were found.")
    author = message.from_.address.lower() if message.from_ else mailbox.address
    if author not in (mailbox.address, *mailbox.aliases):
        raise EwsError(
            "ErrorSendAsDenied",
            "The user account which was used to submit this request does not have the right to send mail on "
            "behalf of the specified sending account.",
        )


def _submit(store: Store, mailbox: Mailbox, message: Item, save_copy_to: Folder | None) -> None:
    now = utcnow()
    message.from_ = message.from_ or own_address(mailbox)
    message.sender = own_address(mailbox)
    message.is_draft = False
    message.is_read = True
    message.date_time_sent = now
    message.date_time_received = now
    mime.refresh_mime(message)
    delivered, external = deliver(store, message)
    store.record(
        "sent",
        message,
        to=address_list(message.to + message.cc + message.bcc),
        delivered=",".join(m.address for m in delivered),
        external=",".join(external),
    )
    if save_copy_to is None:
        store.remove_item(message)
        return
    store.move_item(message, save_copy_to)
    store.record("created", message, disposition="SendAndSaveCopy")


# ---- delivery ----------------------------------------------------------------------------------------
def resolve_recipients(store: Store, addresses: list[str]) -> tuple[list[Mailbox], list[str]]:
    """Mailboxes reached by `addresses` (distribution lists expanded, each mailbox once) and the rest."""
    mailboxes: list[Mailbox] = []
    external: list[str] = []
    seen: set[str] = set()
    pending = [a.strip().lower() for a in addresses]
    while pending:
        address = pending.pop(0)
        if address in seen:
            continue
        seen.add(address)
        dl = store.distribution_lists.get(address)
        if dl is not None:
            pending.extend(dl.members)
            continue
        mailbox = store.find_mailbox(address)
        if mailbox is None:
            external.append(address)
        elif mailbox not in mailboxes:
            mailboxes.append(mailbox)
    return mailboxes, external


def deliver(store: Store, message: Item) -> tuple[list[Mailbox], list[str]]:
    """Put a copy of a sent `message` in each internal recipient's Inbox; returns (mailboxes, external)."""
    recipients = [a.address for a in message.to + message.cc + message.bcc]
    mailboxes, external = resolve_recipients(store, recipients)
    if not mailboxes:
        return mailboxes, external
    template = clone_item(message)
    template.bcc = []
    template.is_read = False
    template.date_time_received = utcnow()
    mime.refresh_mime(template)
    sender = (message.from_ or message.sender or own_address(message.mailbox)).address.lower()
    for mailbox in mailboxes:
        copy = clone_item(template)
        copy.date_time_created = template.date_time_received or copy.date_time_created
        folder = mailbox.folders["junkemail" if sender in mailbox.blocked_senders else "inbox"]
        store.add_item(folder, copy)
        store.record("delivered", copy, sender=sender)
    return mailboxes, external


# ---- replies and forwards ----------------------------------------------------------------------------
def compose_response(
    mailbox: Mailbox,
    kind: str,
    reference: Item,
    *,
    subject: str | None = None,
    body: tuple[str, str] | None = None,
    new_body: tuple[str, str] | None = None,
    to: list[EmailAddress] | None = None,
    cc: list[EmailAddress] | None = None,
    bcc: list[EmailAddress] | None = None,
) -> Item:
    """The message a ReplyToItem, ReplyAllToItem or ForwardItem response object stands for.

    Recipients the client names are added to the ones Exchange derives from the original (its sender, and
    for reply-all its other recipients, never the replying mailbox). `body` replaces the whole body;
    `new_body` (NewBodyContent) goes above the quoted original, as Exchange writes it.
    """
    if kind not in RESPONSE_KINDS:
        raise ValueError(f"unknown response object {kind!r}")
    me = mailbox.address.lower()
    derived_to: list[EmailAddress] = []
    derived_cc: list[EmailAddress] = []
    if kind != "ForwardItem":
        author = reference.reply_to or [a for a in (reference.from_ or reference.sender,) if a is not None]
        derived_to = list(author)
    if kind == "ReplyAllToItem":
        derived_to += reference.to
        derived_cc = list(reference.cc)
    prefix = _SUBJECT_PREFIX[kind]
    if subject is None:
        original = reference.subject
        subject = original if original.upper().startswith(prefix.strip().upper()) else prefix + original
    if body is not None:
        body_type, text = body
    else:
        body_type, text = _quote(reference, *(new_body or (reference.body_type, "")))
    references = " ".join(r for r in (reference.references, reference.internet_message_id) if r)
    return Item(
        item_class="IPM.Note",
        subject=subject,
        body=text,
        body_type=body_type,
        to=_unique(derived_to + (to or []), exclude=me if kind == "ReplyAllToItem" else None),
        cc=_unique(derived_cc + (cc or []), exclude=me),
        bcc=_unique(bcc or []),
        in_reply_to=reference.internet_message_id or None,
        references=references or None,
        attachments=[clone_attachment(a) for a in reference.attachments] if kind == "ForwardItem" else [],
    )


def _unique(addresses: list[EmailAddress], exclude: str | None = None) -> list[EmailAddress]:
    found: list[EmailAddress] = []
    seen = {exclude} if exclude else set()
    for address in addresses:
        key = address.address.lower()
        if key not in seen:
            seen.add(key)
            found.append(address)
    return found


def _quote(reference: Item, body_type: str, added: str) -> tuple[str, str]:
    """(body type, body) of a response: the new text above the original, HTML if either of them is."""
    author = reference.from_ or reference.sender
    sent = reference.date_time_sent.strftime("%A, %B %d, %Y %I:%M %p") if reference.date_time_sent else ""
    header = [
        ("From", f"{author.name} <{author.address}>" if author else ""),
        ("Sent", sent),
        ("To", "; ".join(a.address for a in reference.to)),
        ("Subject", reference.subject),
    ]
    if "HTML" not in (body_type, reference.body_type):
        lines = "\r\n".join(f"{name}: {value}" for name, value in header)
        return "Text", f"{added}\r\n\r\n-----Original Message-----\r\n{lines}\r\n\r\n{reference.body}"
    new = added if body_type == "HTML" else f"<pre>{_escape(added)}</pre>"
    original = reference.body if reference.body_type == "HTML" else f"<pre>{_escape(reference.body)}</pre>"
    lines = "<br>".join(f"<b>{name}:</b> {_escape(value)}" for name, value in header)
    return "HTML", f"{new}<hr><div>{lines}</div><br>{original}"


def _escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
