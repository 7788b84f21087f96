"""API keys file: only hashes stored, roles ordered, add/list/remove, lookups by key."""

from __future__ import annotations

import stat

import pytest

from producer.keys import KeyStore, KeyStoreError, Principal, Role


def test_added_key_authenticates_as_its_name_and_role_and_only_its_hash_is_stored(tmp_path):
    store = KeyStore(tmp_path / "keys.json")
    key = store.add("soc-analyst", Role.responder)
    assert key.startswith("ewsir_") and len(key) > 40
    assert store.authenticate(key) == Principal("soc-analyst", Role.responder)
    text = store.path.read_text()
    assert key not in text and key.removeprefix("ewsir_") not in text
    assert stat.S_IMODE(store.path.stat().st_mode) == 0o600


def test_unknown_or_altered_key_does_not_authenticate(tmp_path):
    store = KeyStore(tmp_path / "keys.json")
    key = store.add("a", Role.reader)
    assert store.authenticate(key[:-1] + ("x" if key[-1] != "x" else "y")) is None
    assert store.authenticate("") is None
    assert KeyStore(tmp_path / "absent.json").authenticate(key) is None


def test_roles_imply_the_lower_ones():
    approver = Principal("boss", Role.approver)
    reader = Principal("viewer", Role.reader)
    assert approver.has(Role.responder) and approver.has(Role.reader)
    assert not reader.has(Role.responder)


def test_list_and_remove(tmp_path):
    store = KeyStore(tmp_path / "keys.json")
    key = store.add("a", Role.reader)
    store.add("b", Role.approver)
    assert [(e["name"], e["role"]) for e in store.list()] == [("a", "reader"), ("b", "approver")]
    assert "sha256" not in store.list()[0]
    store.remove("a")
    assert store.authenticate(key) is None
    with pytest.raises(KeyStoreError, match="no key named 'a'"):
        store.remove("a")


@pytest.mark.parametrize("name", ["", " padded", "b"])
def test_names_must_be_clean_and_unique(tmp_path, name):
    store = KeyStore(tmp_path / "keys.json")
    store.add("b", Role.reader)
    with pytest.raises(KeyStoreError):
        store.add(name, Role.reader)


def test_a_corrupt_keys_file_is_a_clear_error(tmp_path):
    path = tmp_path / "keys.json"
    path.write_text("{not json")
    with pytest.raises(KeyStoreError, match="cannot read keys file"):
        KeyStore(path).authenticate("ewsir_x")


def test_a_key_scoped_to_profiles_reads_only_those(tmp_path):
    store = KeyStore(tmp_path / "keys.json")
    scoped = store.add("tenant-a", Role.responder, ["tenant-a", " eu.west ", "tenant-a"])
    unscoped = store.add("soc", Role.reader)
    principal = store.authenticate(scoped)
    assert principal == Principal("tenant-a", Role.responder, frozenset({"tenant-a", "eu.west"}))
    assert principal.scoped and principal.may_read_profile("eu.west")
    assert not principal.may_read_profile("default")
    everyone = store.authenticate(unscoped)
    assert not everyone.scoped and everyone.may_read_profile("anything")
    listed = [(e["name"], e["profiles"]) for e in store.list()]
    assert listed == [("tenant-a", "eu.west,tenant-a"), ("soc", "all")]


@pytest.mark.parametrize("profiles", [[], ["bad name"], ["x" * 65]])
def test_a_scope_names_valid_profiles(tmp_path, profiles):
    with pytest.raises(KeyStoreError, match="profile"):
        KeyStore(tmp_path / "keys.json").add("k", Role.reader, profiles)
