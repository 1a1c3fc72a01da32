"""`manage.py audit_checkpoint [--tenant SLUG]`: sign each tenant's chain head now."""

from typing import Any

from django.core.management.base import BaseCommand, CommandParser
from django_tenants.utils import schema_context

from audit.management.tenant_option import selected_tenants
from audit.services import checkpoint_create


class Command(BaseCommand):
    help = "Write a signed periodic checkpoint of each tenant's decision-log chain head."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--tenant", metavar="SLUG", help="Checkpoint only this tenant.")

    def handle(self, *args: Any, **options: Any) -> None:
        for tenant in selected_tenants(options["tenant"]):
            with schema_context(tenant.schema_name):
                checkpoint = checkpoint_create()
            if checkpoint is None:
                self.stdout.write(f"{tenant.slug}: head already signed or chain empty")
            else:
                self.stdout.write(f"{tenant.slug}: checkpoint at #{checkpoint.seq}")
