"""kombu's Redis channel reuses one client per connection pool once worker.broker is installed."""

import kombu
import pytest

from worker import broker


def test_a_channel_reuses_its_client_until_its_pool_is_replaced(redis_url):
    broker.install()
    with kombu.Connection(redis_url) as connection:
        channel = connection.default_channel
        with channel.conn_or_acquire() as first, channel.conn_or_acquire() as second:
            assert first is second and first.connection_pool is channel.pool
        channel._disconnect_pools()  # what kombu does after a connection error
        with channel.conn_or_acquire() as third:
            assert third is not first and third.connection_pool is channel.pool
            assert third.ping()
        producer = connection.Producer()
        queue = kombu.Queue("broker-client-test", routing_key="broker-client-test")
        producer.publish({"n": 1}, routing_key="broker-client-test", declare=[queue])
        message = queue(channel).get(no_ack=False)
        assert message.payload == {"n": 1}
        message.ack()


def test_a_channel_of_a_collected_connection_fails_with_a_connection_error(redis_url):
    """After a lost broker connection Celery collects it (the transport forgets its client) and closes it
    again; a channel holding fetched messages then restores them through a new client. Stock kombu raises
    AttributeError there, which stops the worker; the patched channel raises a connection error, which
    Celery ignores. If kombu stops raising AttributeError, this patch can go."""
    broker.install()
    connection = kombu.Connection(redis_url)
    channel = connection.default_channel
    channel._disconnect_pools()
    transport = connection.transport
    transport.client = None  # what Connection.collect() leaves behind
    with pytest.raises(AttributeError):
        broker._create_client(channel)
    with pytest.raises(transport.connection_errors), channel.conn_or_acquire():
        pass
