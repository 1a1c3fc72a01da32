"""Fixed-window rate limits on the client API, shared by all processes through Redis.

Each limit counts requests per identity (a client address, a license key
hash or a device thumbprint) in windows of `window` seconds. The counter is
incremented and its expiry set in one MULTI/EXEC transaction, so two
processes can never both take the last request of a window. Keys carry the
tenant schema (licensing/redis_store.py), so one tenant's traffic never uses
up another tenant's budget.
"""

import time
from collections.abc import Callable
from dataclasses import dataclass

from django.conf import settings
from redis.client import Pipeline

from licensing.redis_store import redis_client, tenant_key
from portal.problems import RateLimited


@dataclass(frozen=True)
class Limit:
    scope: str
    requests: int
    window: int


def limit_for(scope: str) -> Limit:
    """Return the configured limit of a scope (`address`, `license`, `device`)."""
    requests, window = settings.KEYPLANE_CLIENT_RATE_LIMITS[scope]
    return Limit(scope=scope, requests=int(requests), window=int(window))


def rate_limit_queue(pipeline: Pipeline, *, scope: str, identity: str) -> Callable[[int], None]:
    """Queue the count of one request of `identity` on a Redis transaction pipeline.

    Queues two commands (INCR, EXPIRE). Returns the check to call with the
    INCR result once the pipeline has run; it raises RateLimited when the
    count is over the scope's limit. Callers that already talk to Redis use
    this to save a round trip.
    """
    limit = limit_for(scope)
    now = time.time()
    bucket = int(now // limit.window)
    key = tenant_key("rl", scope, identity, str(bucket))
    pipeline.incr(key)
    pipeline.expire(key, limit.window + 1)

    def check(count: int) -> None:
        if count > limit.requests:
            retry_after = max(1, int((bucket + 1) * limit.window - now) + 1)
            raise RateLimited(
                f"More than {limit.requests} requests per {limit.window} s for this {scope}.",
                retry_after=retry_after,
            )

    return check


def rate_limit_hit(*, scope: str, identity: str) -> None:
    """Count one request of `identity`; raise RateLimited when over the scope's limit."""
    pipeline = redis_client().pipeline(transaction=True)
    check = rate_limit_queue(pipeline, scope=scope, identity=identity)
    count, _ = pipeline.execute()
    check(count)
