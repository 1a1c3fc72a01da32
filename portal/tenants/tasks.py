"""Platform tasks: fan-out of per-tenant periodic work, cache purge, worker ping."""

import logging

from celery import shared_task
from django.db import connection
from django_tenants.utils import get_public_schema_name, schema_context

from portal.cache import tenant_cache_purge
from portal.tenants.models import Tenant

logger = logging.getLogger(__name__)


@shared_task(name="portal.for_each_tenant", time_limit=300)
def for_each_tenant(task_name: str, *, include_suspended: bool = False) -> int:
    """Send `task_name` once per tenant, each message in that tenant's schema.

    Celery beat lives in the public schema and schedules this task with the
    name of a per-tenant task; returns the number of tenants it was sent to.
    """
    from portal.celery import app

    tenants = Tenant.objects.exclude(schema_name=get_public_schema_name())
    if not include_suspended:
        tenants = tenants.filter(status=Tenant.Status.ACTIVE)
    count = 0
    for tenant in tenants.only("schema_name", "slug"):
        with schema_context(tenant.schema_name):
            app.send_task(task_name)
        count += 1
    logger.info("tasks.fan_out task=%s tenants=%d", task_name, count)
    return count


@shared_task(name="portal.purge_tenant_cache", time_limit=120)
def purge_tenant_cache() -> int:
    """Purge the cache of the schema the task was sent from."""
    return tenant_cache_purge(schema_name=connection.schema_name)


@shared_task(name="portal.ping", time_limit=10)
def ping() -> str:
    """Return the schema the task ran in; used by health checks and tests."""
    return str(connection.schema_name)
