"""Create a device enrollment token in a tenant and print it once."""

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django_tenants.utils import schema_context

from audit.actors import system_user
from identity.enrollment import enrollment_token_create
from portal.problems import KeyplaneError
from portal.tenants.models import Tenant


class Command(BaseCommand):
    help = (
        "Create an enrollment token that activates devices on a license grant without a "
        "license key and puts them in a device group. The token is printed once."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--tenant", required=True, help="Tenant slug.")
        parser.add_argument("--grant", required=True, type=int, help="License grant id.")
        parser.add_argument("--group", required=True, help="Name of the device group to join.")
        parser.add_argument("--uses", required=True, type=int, help="Maximum number of devices.")
        parser.add_argument(
            "--expires-in", required=True, type=int, help="Days until the token expires."
        )
        parser.add_argument("--label", default="", help="Where the token is deployed.")

    def handle(self, *args: Any, **options: Any) -> None:
        tenant = Tenant.objects.filter(slug=options["tenant"]).first()
        if tenant is None:
            raise CommandError(f"No tenant has the slug {options['tenant']!r}.")
        with schema_context(tenant.schema_name):
            try:
                row, token = enrollment_token_create(
                    grant_id=options["grant"],
                    group_name=options["group"],
                    max_uses=options["uses"],
                    expires_in_days=options["expires_in"],
                    label=options["label"],
                    acting_user=system_user("create_enrollment_token"),
                )
            except KeyplaneError as error:
                raise CommandError(f"{error.detail} {error.remediation}") from error
        self.stderr.write(
            f"Enrollment token {row.pk} for grant {row.grant_id}, group {options['group']!r}, "
            f"{row.max_uses} uses, expires {row.expires_at:%Y-%m-%d %H:%M} UTC. "
            "Store it now; it is not shown again."
        )
        self.stdout.write(token)
