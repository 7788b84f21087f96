"""Campaign leases live as long as the process working under them: renewed while held, never another's."""

import fakeredis
import pytest

from campaigns.leases import LIVES, LeaseKeeper

KEY = "x:campaign:c:lease:preview:a@corp.example"


@pytest.fixture
def client():
    return fakeredis.FakeRedis()


def test_a_lease_is_taken_for_a_few_intervals(client):
    assert LeaseKeeper(client, interval_s=2).ttl_ms == LIVES * 2000


def test_held_leases_are_renewed_and_released_ones_are_not(client):
    keeper = LeaseKeeper(client, interval_s=600)  # its own thread never gets a turn here
    client.set(KEY, "mine", px=1000)
    with keeper.kept(KEY, "mine"):
        keeper.renew_once()
        assert client.pttl(KEY) > 1000
    client.set(KEY, "mine", px=1000)
    keeper.renew_once()
    assert client.pttl(KEY) <= 1000


def test_a_lease_someone_else_took_is_not_renewed(client):
    keeper = LeaseKeeper(client, interval_s=600)
    client.set(KEY, "theirs", px=1000)
    with keeper.kept(KEY, "mine"):
        keeper.renew_once()
    assert client.pttl(KEY) <= 1000 and client.get(KEY) == b"theirs"
