"""kombu's Redis channel reuses one client per connection pool once worker.broker is installed."""

import kombu

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
