"""Tenant-scoped cache maintenance.

Cache keys are built by `django_tenants.cache.make_key`, which starts every
key with the schema name, so a tenant's entries can be found and purged by
that prefix without touching any other tenant's.
"""

import logging

from django.core.cache import cache

logger = logging.getLogger(__name__)


def tenant_cache_purge(*, schema_name: str) -> int:
    """Delete every cache entry of one tenant; return how many keys were removed."""
    client = cache._cache.get_client(write=True)  # type: ignore[attr-defined]  # RedisCache internals
    pattern = f"{schema_name}:{cache.key_prefix}:*"
    removed = 0
    batch: list[bytes] = []
    for key in client.scan_iter(match=pattern, count=500):
        batch.append(key)
        if len(batch) >= 500:
            removed += client.delete(*batch)
            batch.clear()
    if batch:
        removed += client.delete(*batch)
    logger.info("cache.purge schema=%s keys=%d", schema_name, removed)
    return removed
