"""The seeded organisation is deterministic and its report is the ground truth."""

from __future__ import annotations

from exchange_simulator.store import seed
from exchange_simulator.store.model import Store


def organisation(seed_value: int) -> tuple[Store, seed.SeedReport]:
    store = Store()
    return store, seed.generate(store, mailboxes=20, messages_per_mailbox=12, phish_rate=0.5, seed=seed_value)


def test_report_matches_the_store():
    store, report = organisation(5)
    assert len(report.mailboxes) == 20 and report.messages == 240
    assert all(len(store.mailbox(a).msgfolderroot.walk()) > 1 for a in report.mailboxes)
    assert (
        sum(
            len(f.items)
            for a in report.mailboxes
            for f in store.mailbox(a).root.walk()
            if f.folder_class != "IPF.Contact"
        )
        == 240
    )
    copies = store.find_by_internet_message_id(report.phish_message_id)
    assert len(copies) == len(report.phish_copies) == 10
    assert {(c.mailbox.address, c.folder.path.split("/", 1)[1]) for c in copies} == {
        (p.mailbox, p.folder) for p in report.phish_copies
    }
    assert {p.folder for p in report.phish_copies} == set(seed.PHISH_FOLDERS)


def test_decoys_share_subject_or_sender_but_not_the_message_id():
    store, report = organisation(5)
    assert report.decoys
    for decoy in report.decoys:
        item = store.item(decoy.item_id)
        assert item.internet_message_id != report.phish_message_id
        assert item.subject == report.phish_subject or item.from_.address == report.phish_sender


def test_same_seed_same_organisation():
    _, first = organisation(9)
    _, second = organisation(9)
    _, other = organisation(10)
    assert first.phish_message_id == second.phish_message_id
    assert [(p.mailbox, p.folder) for p in first.phish_copies] == [
        (p.mailbox, p.folder) for p in second.phish_copies
    ]
    assert other.phish_message_id != first.phish_message_id


def test_directory_and_settings_are_seeded():
    store, report = organisation(5)
    assert report.distribution_lists == [
        "finance@contoso.example",
        "leadership@contoso.example",
        "all-staff@contoso.example",
    ]
    assert len(store.distribution_lists["all-staff@contoso.example"].members) == 20
    assert all(len(store.mailbox(a).folders["contacts"].items) == 2 for a in report.mailboxes)


def test_scenario_file(tmp_path):
    (tmp_path / "hello.eml").write_bytes(
        b"From: A <a@x.example>\r\nTo: bob@contoso.example\r\nSubject: From a file\r\n"
        b"Message-ID: <file@x.example>\r\n\r\nhi\r\n"
    )
    (tmp_path / "scenario.yaml").write_text(
        "mailboxes:\n"
        "  - address: bob@contoso.example\n"
        "    folders: [Inbox/Quarantine]\n"
        "    messages:\n"
        "      - {folder: Inbox/Quarantine, subject: Hi, from: 'Eve <eve@x.example>',\n"
        "         message_id: '<m1@x.example>',\n"
        "         attachments: [{name: a.txt, text: hello}]}\n"
        "      - {eml: hello.eml, folder: junkemail}\n"
        "distribution_lists:\n"
        "  - {address: team@contoso.example, members: [bob@contoso.example]}\n"
    )
    store = Store()
    report = seed.load_scenario(store, tmp_path / "scenario.yaml")
    assert report.mailboxes == ["bob@contoso.example"] and report.messages == 2
    (quarantined,) = store.find_by_internet_message_id("<m1@x.example>")
    assert quarantined.folder.path.endswith("Inbox/Quarantine") and quarantined.has_attachments
    (from_file,) = store.find_by_internet_message_id("<file@x.example>")
    assert from_file.folder.distinguished_id == "junkemail" and from_file.subject == "From a file"
    assert store.distribution_lists["team@contoso.example"].members == ["bob@contoso.example"]
