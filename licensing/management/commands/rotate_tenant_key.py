from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django_tenants.utils import tenant_context

from licensing.signing import tenant_key_rotate
from portal.tenants.models import Tenant


class Command(BaseCommand):
    help = "Replace a tenant's signing key; the old key verifies until its last token expires."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--tenant", required=True, help="Tenant slug.")
        parser.add_argument(
            "--reason", default="scheduled", help="Why the key is rotated (audited)."
        )
        parser.add_argument(
            "--compromised",
            action="store_true",
            help="Drop the old key from the published set at once instead of retiring it.",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        tenant = Tenant.objects.filter(slug=options["tenant"]).first()
        if tenant is None:
            raise CommandError(f"No tenant has the slug {options['tenant']!r}.")
        with tenant_context(tenant):
            key = tenant_key_rotate(reason=options["reason"], compromised=options["compromised"])
        self.stdout.write(f"Tenant {tenant.slug}: signing key {key.kid} is active.")
