"""The Redis connection used for replay protection and rate limits.

Keys start with the cache key prefix (which a test run makes unique) and the
tenant schema, so tenants and parallel test runs never share a counter.
"""

import functools

import redis
from django.conf import settings
from django.db import connection


@functools.cache
def redis_client() -> redis.Redis:
    return redis.Redis.from_url(settings.REDIS_URL, socket_timeout=2, socket_connect_timeout=2)


def tenant_key(*parts: str) -> str:
    prefix = settings.CACHES["default"].get("KEY_PREFIX", "kp")
    return ":".join([prefix, connection.schema_name, *parts])
