"""The tenant loop shared by the approvals management commands."""

from collections.abc import Iterator

from django.core.management.base import CommandError
from django_tenants.utils import get_public_schema_name, schema_context

from portal.tenants.models import Tenant


def tenants_selected(slug: str | None) -> Iterator[Tenant]:
    """Yield each active tenant (or the one named `slug`) with its schema active."""
    tenants = Tenant.objects.exclude(schema_name=get_public_schema_name()).order_by("slug")
    if slug:
        tenants = tenants.filter(slug=slug)
        if not tenants.exists():
            raise CommandError(f"No tenant has the slug {slug!r}.")
    else:
        tenants = tenants.filter(status=Tenant.Status.ACTIVE)
    for tenant in tenants:
        with schema_context(tenant.schema_name):
            yield tenant
