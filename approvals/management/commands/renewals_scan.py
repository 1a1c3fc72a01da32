"""Raise the due renewal requests, like the daily `approvals.renewals_scan` task."""

from typing import Any

from django.core.management.base import BaseCommand, CommandParser

from approvals.management.commands._tenants import tenants_selected
from approvals.renewals import renewals_scan


class Command(BaseCommand):
    help = "Raise a renewal request for every grant entering its renewal window."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--tenant", help="Slug of one tenant; default: every active tenant.")

    def handle(self, *args: Any, **options: Any) -> None:
        for tenant in tenants_selected(options["tenant"]):
            result = renewals_scan()
            self.stdout.write(
                f"{tenant.slug}: {result.considered} grants in their renewal window, "
                f"{result.created} requests raised"
            )
