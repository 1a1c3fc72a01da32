"""Fixed-window rate limits on the client API, shared by all processes through Redis.

Each limit counts requests per identity (a client address, a license key
hash or a device thumbprint) in windows of `window` seconds. The counter is
incremented and its expiry set in one MULTI/EXEC transaction, so two
processes can never both take the last request of a window. Keys carry the
tenant schema (licensing/redis_store.py), so one tenant's traffic never uses
up another tenant's budget.
"""

import time
from dataclasses import dataclass

from django.conf import settings

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


def rate_limit_hit(*, scope: str, identity: str) -> None:
    """Count one request of `identity`; raise RateLimited when over the scope's limit."""
    limit = limit_for(scope)
    now = time.time()
    bucket = int(now // limit.window)
    key = tenant_key("rl", scope, identity, str(bucket))
    pipeline = redis_client().pipeline(transaction=True)
    pipeline.incr(key)
    pipeline.expire(key, limit.window + 1)
    count, _ = pipeline.execute()
    if count > limit.requests:
        retry_after = max(1, int((bucket + 1) * limit.window - now) + 1)
        raise RateLimited(
            f"More than {limit.requests} requests per {limit.window} s for this {scope}.",
            retry_after=retry_after,
        )
