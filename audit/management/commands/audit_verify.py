"""`manage.py audit_verify [--tenant SLUG]`: recompute each tenant's decision-log chain."""

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django_tenants.utils import schema_context

from audit.management.tenant_option import selected_tenants
from audit.selectors import chain_verify


class Command(BaseCommand):
    help = (
        "Recompute the hash chain of each tenant's decision log and verify its signed "
        "checkpoints. Exits with status 1 and names the first bad entry when any entry "
        "was edited, deleted, inserted or reordered, or a checkpoint does not verify."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--tenant", metavar="SLUG", help="Verify only this tenant.")

    def handle(self, *args: Any, **options: Any) -> None:
        failed: list[str] = []
        for tenant in selected_tenants(options["tenant"]):
            with schema_context(tenant.schema_name):
                report = chain_verify()
            if report.ok:
                signed = report.last_signed_seq if report.last_signed_seq is not None else "none"
                self.stdout.write(
                    f"{tenant.slug}: ok, {report.entries_checked} entries "
                    f"(#{report.first_seq or 0} to #{report.last_seq or 0}), "
                    f"{report.checkpoints_checked} checkpoints, last signed #{signed}, "
                    f"{report.pending} pending"
                )
                continue
            for finding in report.findings:
                self.stderr.write(f"{tenant.slug}: {finding.code}: {finding.message}")
            first = report.first_bad
            assert first is not None
            failed.append(f"{tenant.slug} ({first.message})")
        if failed:
            raise CommandError("Verification failed for " + "; ".join(failed))
