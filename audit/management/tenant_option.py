"""The `--tenant SLUG` option shared by the audit management commands."""

from typing import Any

from django.core.management.base import CommandError
from django_tenants.utils import get_public_schema_name


def selected_tenants(slug: str | None) -> list[Any]:
    """Return the tenant named by `slug`, or every tenant except the public one."""
    from portal.tenants.models import Tenant

    tenants = Tenant.objects.exclude(schema_name=get_public_schema_name()).order_by("slug")
    if slug is None:
        return list(tenants)
    tenant = tenants.filter(slug=slug).first()
    if tenant is None:
        raise CommandError(f"Tenant {slug!r} not found; list tenants in the platform admin.")
    return [tenant]
