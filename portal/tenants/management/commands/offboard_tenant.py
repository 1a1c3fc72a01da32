"""`manage.py offboard_tenant SLUG --suspend | --export | --drop`."""

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from portal.tenants.models import Tenant
from portal.tenants.services import TenantError, tenant_drop, tenant_export, tenant_suspend


class Command(BaseCommand):
    help = (
        "Offboard a tenant in three steps: --suspend (stop serving), --export (write its data), "
        "--drop (delete its schema once the retention period has passed)."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("slug")
        step = parser.add_mutually_exclusive_group(required=True)
        step.add_argument("--suspend", action="store_true")
        step.add_argument("--export", action="store_true")
        step.add_argument("--drop", action="store_true")

    def handle(self, *args: Any, **options: Any) -> None:
        try:
            tenant = Tenant.objects.get(slug=options["slug"])
        except Tenant.DoesNotExist as error:
            raise CommandError(f"No tenant has the slug {options['slug']!r}.") from error
        try:
            if options["suspend"]:
                tenant_suspend(tenant=tenant, offboarding=True)
                self.stdout.write(f"{tenant.slug}: suspended for offboarding.")
            elif options["export"]:
                folder = tenant_export(tenant=tenant)
                self.stdout.write(f"{tenant.slug}: exported to {folder}.")
            else:
                tenant_drop(tenant=tenant)
                self.stdout.write(f"{tenant.slug}: schema dropped.")
        except TenantError as error:
            raise CommandError(f"{error.detail} {error.remediation}") from error
