"""Revoke a device enrollment token in a tenant."""

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django_tenants.utils import schema_context

from audit.actors import system_user
from identity.enrollment import enrollment_token_revoke
from portal.problems import KeyplaneError
from portal.tenants.models import Tenant


class Command(BaseCommand):
    help = (
        "Revoke an enrollment token so that no further device can activate with it; "
        "devices that already activated keep their seats."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--tenant", required=True, help="Tenant slug.")
        parser.add_argument("--id", required=True, type=int, help="Enrollment token id.")
        parser.add_argument("--reason", required=True, help="Why the token is revoked.")

    def handle(self, *args: Any, **options: Any) -> None:
        tenant = Tenant.objects.filter(slug=options["tenant"]).first()
        if tenant is None:
            raise CommandError(f"No tenant has the slug {options['tenant']!r}.")
        with schema_context(tenant.schema_name):
            try:
                row = enrollment_token_revoke(
                    token_id=options["id"],
                    reason=options["reason"],
                    acting_user=system_user("revoke_enrollment_token"),
                )
            except KeyplaneError as error:
                raise CommandError(f"{error.detail} {error.remediation}") from error
        self.stdout.write(
            f"Enrollment token {row.pk} revoked at {row.revoked_at:%Y-%m-%d %H:%M} UTC "
            f"after {row.uses} of {row.max_uses} uses."
        )
