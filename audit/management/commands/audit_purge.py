"""`manage.py audit_purge [--tenant SLUG]`: delete decision-log entries past retention."""

from typing import Any

from django.core.management.base import BaseCommand, CommandParser
from django_tenants.utils import schema_context

from audit.management.tenant_option import selected_tenants
from audit.services import decision_log_purge


class Command(BaseCommand):
    help = (
        "Delete each tenant's decision-log entries older than its retention period, after "
        "signing a retention-cut checkpoint so that the remaining chain still verifies."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--tenant", metavar="SLUG", help="Purge only this tenant.")

    def handle(self, *args: Any, **options: Any) -> None:
        for tenant in selected_tenants(options["tenant"]):
            with schema_context(tenant.schema_name):
                deleted = decision_log_purge(actor="system:audit_purge")
            self.stdout.write(f"{tenant.slug}: {deleted} entries purged")
