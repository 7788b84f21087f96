"""Settings and connection profiles: documented defaults, errors naming the field, secrets never printed."""

import json

import pytest

from worker import profiles
from worker.errors import ValidationError
from worker.settings import get_settings, load_settings

OAUTH_ENV = {
    "EWS_URL": "https://outlook.office365.com/EWS/Exchange.asmx",
    "EWS_TENANT_ID": "tenant-1",
    "EWS_CLIENT_ID": "client-1",
    "EWS_CLIENT_SECRET": "s3cr3t-value",
}


@pytest.fixture(autouse=True)
def clean_env(monkeypatch):
    import os

    for name in list(os.environ):
        if name.startswith(("EWS_", "REDIS_URL")):
            monkeypatch.delenv(name)
    get_settings.cache_clear()
    profiles.clear_cache()
    yield
    get_settings.cache_clear()
    profiles.clear_cache()


def test_defaults():
    settings = load_settings()
    assert settings.redis_url == "redis://127.0.0.1:6379/0"
    assert settings.result_backend_url == settings.redis_url
    assert settings.result_expires_s == 7 * 24 * 3600
    assert settings.mailbox_concurrency_for("ews") == 10 and settings.mailbox_concurrency_for("graph") == 4
    assert settings.graph_mailbox_requests == 10_000
    assert settings.max_countdown_s < settings.visibility_timeout_s


def test_an_explicit_mailbox_concurrency_wins_for_every_backend(monkeypatch):
    monkeypatch.setenv("EWS_IR_MAILBOX_CONCURRENCY", "2")
    settings = load_settings()
    assert settings.mailbox_concurrency_for("ews") == settings.mailbox_concurrency_for("graph") == 2


def test_countdowns_stay_below_a_short_visibility_timeout(monkeypatch):
    monkeypatch.setenv("EWS_IR_VISIBILITY_TIMEOUT", "30")
    assert load_settings().max_countdown_s == 15


def test_bad_number_names_the_variable(monkeypatch):
    monkeypatch.setenv("EWS_IR_MAILBOX_CONCURRENCY", "ten")
    with pytest.raises(ValidationError) as raised:
        load_settings()
    assert raised.value.field == "EWS_IR_MAILBOX_CONCURRENCY"


def test_oauth_profile_from_env_with_secret_hidden(monkeypatch):
    for name, value in OAUTH_ENV.items():
        monkeypatch.setenv(name, value)
    profile = profiles.load_profiles()["default"]
    assert (profile.auth, profile.access_type, profile.version) == ("oauth", "impersonation", "Exchange2016")
    assert profile.authority_url == "https://login.microsoftonline.com/tenant-1"
    assert profile.tenant_key == "tenant-1"
    assert "s3cr3t-value" not in repr(profile)
    assert "s3cr3t-value" not in str(profile)


def test_missing_ews_url_is_named(monkeypatch):
    with pytest.raises(ValidationError) as raised:
        profiles.load_profiles()
    assert raised.value.field == "EWS_URL"


@pytest.mark.parametrize(
    ("name", "value", "field"),
    [
        ("EWS_AUTH", "kerberos", "EWS_AUTH"),
        ("EWS_ACCESS_TYPE", "owner", "EWS_ACCESS_TYPE"),
        ("EWS_URL", "outlook.office365.com", "EWS_URL"),
        ("EWS_CA_BUNDLE", "/nonexistent/ca.pem", "EWS_CA_BUNDLE"),
    ],
)
def test_invalid_env_values_name_the_variable(monkeypatch, name, value, field):
    for key, good in OAUTH_ENV.items():
        monkeypatch.setenv(key, good)
    monkeypatch.setenv(name, value)
    with pytest.raises(ValidationError) as raised:
        profiles.load_profiles()
    assert raised.value.field == field


def test_graph_profile_from_env_needs_no_ews_url(monkeypatch):
    for name, value in OAUTH_ENV.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("EWS_URL")
    monkeypatch.setenv("EWS_BACKEND", "Graph")
    profile = profiles.load_profiles()["default"]
    assert (profile.backend, profile.ews_url, profile.tenant_key) == ("graph", "", "tenant-1")
    assert profile.service_url == profile.graph_url == "https://graph.microsoft.com/v1.0"
    assert profile.graph_scope == "https://graph.microsoft.com/.default"


def test_graph_profile_for_a_national_cloud(monkeypatch):
    for name, value in OAUTH_ENV.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("EWS_BACKEND", "graph")
    monkeypatch.setenv("EWS_AUTHORITY", "https://login.microsoftonline.us/tenant-1")
    monkeypatch.setenv("EWS_GRAPH_URL", "https://graph.microsoft.us/v1.0")
    monkeypatch.setenv("EWS_GRAPH_SCOPE", "https://graph.microsoft.us/.default")
    profile = profiles.load_profiles()["default"]
    assert (profile.authority_url, profile.graph_url, profile.graph_scope) == (
        "https://login.microsoftonline.us/tenant-1",
        "https://graph.microsoft.us/v1.0",
        "https://graph.microsoft.us/.default",
    )


@pytest.mark.parametrize(
    ("name", "value", "field"),
    [
        ("EWS_BACKEND", "rest", "EWS_BACKEND"),
        ("EWS_GRAPH_URL", "graph.microsoft.com", "EWS_GRAPH_URL"),
        ("EWS_AUTH", "basic", "EWS_AUTH"),
    ],
)
def test_invalid_graph_settings_name_the_variable(monkeypatch, name, value, field):
    for key, good in OAUTH_ENV.items():
        monkeypatch.setenv(key, good)
    monkeypatch.setenv("EWS_BACKEND", "graph")
    monkeypatch.setenv("EWS_USERNAME", "svc@corp.example")
    monkeypatch.setenv("EWS_PASSWORD", "pw")
    monkeypatch.setenv(name, value)
    with pytest.raises(ValidationError) as raised:
        profiles.load_profiles()
    assert raised.value.field == field


def test_basic_profile_needs_a_password(monkeypatch):
    monkeypatch.setenv("EWS_URL", "https://mail.corp.example/EWS/Exchange.asmx")
    monkeypatch.setenv("EWS_AUTH", "basic")
    monkeypatch.setenv("EWS_USERNAME", "svc@corp.example")
    with pytest.raises(ValidationError) as raised:
        profiles.load_profiles()
    assert raised.value.field == "EWS_PASSWORD"


def test_profiles_file_with_secret_from_environment(monkeypatch, tmp_path):
    path = tmp_path / "profiles.yaml"
    path.write_text(
        "profiles:\n"
        "  onprem:\n"
        "    ews_url: https://mail.corp.example/EWS/Exchange.asmx\n"
        "    auth: ntlm\n"
        "    username: CORP\\\\svc\n"
        "    password_env: ONPREM_PASSWORD\n"
        "    version: Exchange2013_SP1\n"
    )
    monkeypatch.setenv("EWS_IR_PROFILES_FILE", str(path))
    monkeypatch.setenv("ONPREM_PASSWORD", "hunter2-long")
    profile = profiles.get_profile("onprem")
    assert (profile.auth, profile.password, profile.tenant_key) == (
        "ntlm",
        "hunter2-long",
        "mail.corp.example",
    )
    assert "hunter2-long" not in repr(profile)


def test_profiles_file_unknown_setting_is_named(monkeypatch, tmp_path):
    path = tmp_path / "profiles.json"
    path.write_text(json.dumps({"profiles": {"x": {"ews_url": "https://a.example/EWS", "colour": "red"}}}))
    monkeypatch.setenv("EWS_IR_PROFILES_FILE", str(path))
    with pytest.raises(ValidationError) as raised:
        profiles.load_profiles()
    assert raised.value.field == "profiles.x.colour"


def test_unknown_profile_name_blames_the_connection_argument(monkeypatch):
    for name, value in OAUTH_ENV.items():
        monkeypatch.setenv(name, value)
    with pytest.raises(ValidationError) as raised:
        profiles.get_profile("other")
    assert raised.value.field == "connection"


def test_allowed_senders_of_the_default_profile_and_of_a_profiles_file(monkeypatch, tmp_path):
    for name, value in OAUTH_ENV.items():
        monkeypatch.setenv(name, value)
    assert profiles.get_profile("default").allowed_senders == frozenset()  # none unless named
    monkeypatch.setenv("EWS_IR_ALLOWED_SENDERS", "SOC@corp.example, ir@corp.example")
    profiles.clear_cache()
    assert profiles.get_profile("default").allowed_senders == {"soc@corp.example", "ir@corp.example"}
    monkeypatch.setenv("EWS_IR_ALLOWED_SENDERS", "soc@corp.example,not an address")
    profiles.clear_cache()
    with pytest.raises(ValidationError) as raised:
        profiles.get_profile("default")
    assert raised.value.field == "EWS_IR_ALLOWED_SENDERS" and "entry 2" in raised.value.message

    path = tmp_path / "profiles.yaml"
    path.write_text(
        "profiles:\n"
        "  tenant-a:\n"
        "    ews_url: https://a.example/EWS/Exchange.asmx\n"
        "    auth: basic\n"
        "    username: svc\n"
        "    password: pw-long-enough\n"
        "    allowed_senders: [soc@a.example]\n"
    )
    monkeypatch.setenv("EWS_IR_PROFILES_FILE", str(path))
    get_settings.cache_clear()
    profiles.clear_cache()
    assert profiles.get_profile("tenant-a").allowed_senders == {"soc@a.example"}


def test_two_person_rule_is_on_unless_switched_off(monkeypatch):
    assert load_settings().two_person_rule is True
    monkeypatch.setenv("EWS_IR_TWO_PERSON_RULE", "FALSE")
    assert load_settings().two_person_rule is False
    monkeypatch.setenv("EWS_IR_TWO_PERSON_RULE", "off")
    with pytest.raises(ValidationError) as raised:
        load_settings()
    assert raised.value.field == "EWS_IR_TWO_PERSON_RULE"
