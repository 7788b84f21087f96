"""Per-process exchangelib objects: one credentials object and one Configuration per profile, Accounts cached
per mailbox. Built lazily and dropped after a fork, because sockets and locks must not cross processes.
"""

from __future__ import annotations

import logging
import threading
from collections import OrderedDict

import exchangelib
from exchangelib import (
    BASIC,
    DELEGATE,
    IMPERSONATION,
    NTLM,
    OAUTH2,
    Account,
    Configuration,
    Credentials,
    Version,
)
from exchangelib.folders import Root
from exchangelib.properties import DistinguishedFolderId, Mailbox
from exchangelib.version import VERSIONS

from contract.values import ADDRESS
from worker.errors import ValidationError
from worker.ews import policy, tls
from worker.ews.credentials import MsalCredentials
from worker.oauth import build_msal_app
from worker.profiles import ConnectionProfile, get_profile
from worker.settings import get_settings

# Accounts are cheap but a 50,000-mailbox campaign would otherwise keep all of them alive in every process.
MAX_CACHED_ACCOUNTS = 4096
# A process that is not a worker (shell, producer) still gets a pool above 1, see the reference's pool notes.
DEFAULT_POOL_SIZE = 4
_AUTH_TYPES = {"oauth": OAUTH2, "basic": BASIC, "ntlm": NTLM}
_ACCESS_TYPES = {"impersonation": IMPERSONATION, "delegate": DELEGATE}

# exchangelib logs request headers, bearer token included, at DEBUG: never let that level through.
logging.getLogger("exchangelib").setLevel(logging.INFO)

_lock = threading.Lock()
_configurations: dict[str, Configuration] = {}
_accounts: OrderedDict[tuple[str, str], Account] = OrderedDict()
_threads_per_process = DEFAULT_POOL_SIZE


def _version(name: str) -> Version:
    """An explicit version (Exchange2016, Exchange2013_SP1, ...): no version-guessing request goes first."""
    for build, api_version, _ in VERSIONS:
        if api_version == name:
            return Version(build=build, api_version=api_version)
    known = ", ".join(sorted({api_version for _, api_version, _ in VERSIONS}))
    raise ValidationError("version", f"unknown EWS version {name!r} (known: {known})")


def _credentials(profile: ConnectionProfile):
    identity = profile.service_account or profile.username
    if profile.auth == "oauth":
        return MsalCredentials(build_msal_app(profile), profile.scope, identity)
    return Credentials(profile.username, profile.password)


def _build_configuration(profile: ConnectionProfile) -> Configuration:
    policy.install()
    tls.install(profile.ews_url, profile.ca_bundle)
    pool = get_settings().max_connections or _threads_per_process
    return Configuration(
        service_endpoint=profile.ews_url,
        credentials=_credentials(profile),
        auth_type=_AUTH_TYPES[profile.auth],
        version=_version(profile.version),
        retry_policy=policy.CallerRetries(),
        max_connections=max(2, pool),
    )


def configuration_for(profile_name: str) -> Configuration:
    with _lock:
        if profile_name not in _configurations:
            _configurations[profile_name] = _build_configuration(get_profile(profile_name))
        return _configurations[profile_name]


def account_for(profile_name: str, mailbox: str) -> Account:
    """The Account for `mailbox` via `profile_name`, with a Root stub so no GetFolder is spent on the root."""
    if not isinstance(mailbox, str) or not ADDRESS.match(mailbox):
        raise ValidationError("mailbox", "not an SMTP address")
    if not mailbox.isascii():  # e.g. a distribution list member; it travels in the X-AnchorMailbox header
        raise ValidationError(
            "mailbox", "Exchange mailbox addresses are ASCII; give the mailbox's primary SMTP address"
        )
    key = (profile_name, mailbox.lower())
    with _lock:
        if key in _accounts:
            _accounts.move_to_end(key)
            return _accounts[key]
    config = configuration_for(profile_name)
    account = Account(
        primary_smtp_address=mailbox,
        config=config,
        autodiscover=False,
        access_type=_ACCESS_TYPES[get_profile(profile_name).access_type],
        default_timezone=exchangelib.UTC,
    )
    account.__dict__["root"] = Root(
        account=account,
        _distinguished_id=DistinguishedFolderId(
            id=Root.DISTINGUISHED_FOLDER_ID, mailbox=Mailbox(email_address=mailbox)
        ),
    )
    with _lock:
        _accounts[key] = account
        while len(_accounts) > MAX_CACHED_ACCOUNTS:
            _accounts.popitem(last=False)
    return account


def refresh_token(profile_name: str) -> None:
    """Answer a 401 on an OAuth profile: fetch a really new token (the caller then retries once)."""
    credentials = configuration_for(profile_name).credentials
    if isinstance(credentials, MsalCredentials):
        credentials.force_refresh()


def configure_process(threads: int) -> None:
    """Start this process afresh (after fork); size connection pools to the threads that run tasks in it."""
    global _threads_per_process
    with _lock:
        _threads_per_process = max(1, threads)
        _configurations.clear()
        _accounts.clear()
    exchangelib.close_connections()
