from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django_tenants.utils import tenant_context

from licensing.maintenance import licensing_sweep
from portal.tenants.models import Tenant


class Command(BaseCommand):
    help = "Retire signing keys past their window and purge old idempotency records."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--tenant", help="Tenant slug; every active tenant when omitted.")

    def handle(self, *args: Any, **options: Any) -> None:
        tenants = Tenant.objects.filter(status=Tenant.Status.ACTIVE).exclude(schema_name="public")
        if options["tenant"]:
            tenants = tenants.filter(slug=options["tenant"])
            if not tenants.exists():
                raise CommandError(f"No active tenant has the slug {options['tenant']!r}.")
        for tenant in tenants:
            with tenant_context(tenant):
                counts = licensing_sweep()
            self.stdout.write(f"{tenant.slug}: {counts}")
