from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django_tenants.utils import tenant_context

from licensing.services import seat_force_release
from portal.problems import KeyplaneError
from portal.tenants.models import Tenant


class Command(BaseCommand):
    help = "Release a seat by force, for a device that is lost; the reason is audited."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--tenant", required=True, help="Tenant slug.")
        parser.add_argument("--seat", type=int, required=True, help="Seat id.")
        parser.add_argument("--reason", required=True, help="Why the seat is released.")

    def handle(self, *args: Any, **options: Any) -> None:
        tenant = Tenant.objects.filter(slug=options["tenant"]).first()
        if tenant is None:
            raise CommandError(f"No tenant has the slug {options['tenant']!r}.")
        with tenant_context(tenant):
            try:
                seat = seat_force_release(
                    seat_id=options["seat"], reason=options["reason"], acting_user=None
                )
            except KeyplaneError as error:
                raise CommandError(error.detail) from error
        self.stdout.write(f"Seat {seat.pk} of tenant {tenant.slug} is {seat.status}.")
