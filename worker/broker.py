"""Two changes to kombu's Redis channel, installed in every process that imports the Celery app:

One redis-py client per kombu channel and connection pool, instead of one per broker operation. kombu's
Redis transport builds a new client object (redis-py registers about 200 response callbacks in each) for
every publish, every fetch's unacked bookkeeping and every ack. In a campaign that is three per mailbox,
about 5% of a worker's CPU. A redis-py client is safe to share between threads (commands take a connection
from the pool; pipelines are created per use), so the channel keeps one, and makes a new one whenever kombu
replaced the pool (after a connection error).

The consuming client's BRPOP replies pass `worker.envelopes.checked_brpop_reply` (a redis-py response
callback), so a message that is not a kombu envelope reaches the worker's consumer as a placeholder it
dead-letters instead of stopping the worker.

A channel whose connection was already collected asks for a client with a connection error. When the broker
connection drops, Celery collects the connection (kombu drops its parameters) and then closes it again; a
channel that still holds fetched messages tries to put them back through a new client, and kombu then raised
AttributeError ("Unrecoverable error": the worker exited on a Redis restart). A connection error is what
Celery ignores there; the messages stay in Redis's unacked set, where the watchdog or the visibility timeout
finds them.
"""

from __future__ import annotations

import redis
from kombu.transport import redis as kombu_redis

from worker.envelopes import checked_brpop_reply

_create_client = kombu_redis.Channel._create_client


def _reused_client(self, asynchronous=False):
    if asynchronous:  # the BRPOP/LISTEN client kombu already keeps in `Channel.client`
        client = _create_client(self, asynchronous=True)
        client.set_response_callback("BRPOP", checked_brpop_reply)
        return client
    if self._pool is None and self.connection.client is None:
        raise redis.ConnectionError("the broker connection is closed")
    pool, client = self.pool, self.__dict__.get("_ews_ir_client")
    if client is None or client.connection_pool is not pool:
        client = self.__dict__["_ews_ir_client"] = _create_client(self)
    return client


def install() -> None:
    """Patch kombu's Redis channel for this process (idempotent)."""
    kombu_redis.Channel._create_client = _reused_client
