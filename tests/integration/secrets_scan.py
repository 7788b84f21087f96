"""What the leak tests look for and where: every form a credential takes on the wire (with the access tokens
the `token_endpoint` fixture saw issued), and every key and value of a Redis."""

from __future__ import annotations

import base64
from collections.abc import Iterator

import redis


def secret_forms(sim, tokens: list[str], **more: str) -> dict[str, bytes]:
    """Every secret the simulator's accounts and `more` hold, raw and as the Basic header encodes it, and
    the access tokens issued."""
    basic = base64.b64encode(f"{sim.basic_user}:{sim.basic_password}".encode())
    client = base64.b64encode(f"{sim.client_id}:{sim.client_secret}".encode())
    forms = {
        "client secret": sim.client_secret.encode(),
        "Basic password": sim.basic_password.encode(),
        "Basic header": basic,
        "client Basic header": client,
    }
    forms.update({name: value.encode() for name, value in more.items()})
    forms.update({f"access token {n}": token.encode() for n, token in enumerate(tokens)})
    return forms


def redis_contents(url: str) -> Iterator[tuple[bytes, bytes]]:
    """(key, value) for every key of the private Redis: broker queues, unacked messages, results, leases."""
    client = redis.Redis.from_url(url)
    for key in client.scan_iter(count=1000):
        kind = client.type(key)
        if kind == b"string":
            value = client.get(key) or b""
        elif kind == b"list":
            value = b"\n".join(client.lrange(key, 0, -1))
        elif kind == b"hash":
            value = b"\n".join(k + b"=" + v for k, v in client.hgetall(key).items())
        elif kind == b"set":
            value = b"\n".join(client.smembers(key))
        elif kind == b"zset":
            value = b"\n".join(client.zrange(key, 0, -1))
        elif kind == b"stream":
            value = b"\n".join(repr(entry).encode() for entry in client.xrange(key))
        else:
            value = b""
        yield key, value


def leaks(secrets: dict[str, bytes], places: dict[str, bytes]) -> list[tuple[str, str]]:
    """(secret name, place name) for every secret found in a place's name or content."""
    return [
        (name, where)
        for name, secret in secrets.items()
        for where, text in places.items()
        if secret in text or secret in where.encode()
    ]
