"""`manage.py reconcile [--tenant SLUG]`: the same work as the `health.reconcile` task."""

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django_tenants.utils import get_public_schema_name, schema_context

from health.alerts import findings_alert_critical
from health.reconcile import findings_reconcile
from portal.tenants.models import Tenant


class Command(BaseCommand):
    help = "Compare grants, seats, revocations, manifests and releases with device check-ins."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--tenant", help="Slug of one tenant; default: every active tenant.")
        parser.add_argument(
            "--no-alerts", action="store_true", help="Update findings but send no alerts."
        )

    def handle(self, *args: Any, **options: Any) -> None:
        tenants = Tenant.objects.exclude(schema_name=get_public_schema_name())
        if options["tenant"]:
            tenants = tenants.filter(slug=options["tenant"])
            if not tenants.exists():
                raise CommandError(f"No tenant has the slug {options['tenant']!r}.")
        else:
            tenants = tenants.filter(status=Tenant.Status.ACTIVE)
        for tenant in tenants.order_by("slug"):
            with schema_context(tenant.schema_name):
                result = findings_reconcile()
                alerted = 0 if options["no_alerts"] else findings_alert_critical().findings
            self.stdout.write(
                f"{tenant.slug}: {result.devices} devices, {result.opened} findings opened, "
                f"{result.resolved} resolved, {result.seats_released} seats released, "
                f"{alerted} alerted"
            )
