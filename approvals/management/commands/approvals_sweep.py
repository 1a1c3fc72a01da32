"""Run the approvals sweeps: escalation, request expiry, grace and expiry, due application."""

from typing import Any

from django.core.management.base import BaseCommand, CommandParser

from approvals import renewals, services
from approvals.management.commands._tenants import tenants_selected


class Command(BaseCommand):
    help = (
        "Send due reminders and alerts, expire unanswered requests, move lapsed grants into "
        "grace or expiry, and apply approved requests that are due."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--tenant", help="Slug of one tenant; default: every active tenant.")

    def handle(self, *args: Any, **options: Any) -> None:
        for tenant in tenants_selected(options["tenant"]):
            escalated = services.changerequests_escalate()
            expired = services.changerequests_expire()
            terms = renewals.terms_sweep()
            applied = services.changerequests_apply_due()
            self.stdout.write(
                f"{tenant.slug}: {escalated} escalations, {expired} requests expired, "
                f"{terms['grace_entered']} grants into grace, {terms['expired']} grants expired, "
                f"{applied} requests applied"
            )
