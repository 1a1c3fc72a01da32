"""`manage.py audit_export --tenant SLUG --since DATE --until DATE --out DIR`."""

import datetime as dt
from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django_tenants.utils import schema_context

from audit.export import decision_log_export
from audit.management.tenant_option import selected_tenants
from audit.selectors import parse_as_of


def _moment(text: str, option: str) -> dt.datetime:
    moment = parse_as_of(text + "T00:00" if len(text) == 10 else text)
    if moment is None:
        raise CommandError(
            f"{option} {text!r} is not a date; use YYYY-MM-DD or an ISO date and time."
        )
    return moment


class Command(BaseCommand):
    help = (
        "Write a tenant's decision log and history for [--since, --until) as JSON Lines and CSV, "
        "with checkpoints, key certificates and the standalone verifier, into --out."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--tenant", metavar="SLUG", required=True)
        parser.add_argument("--since", metavar="DATE", required=True, help="start, inclusive (UTC)")
        parser.add_argument("--until", metavar="DATE", required=True, help="end, exclusive (UTC)")
        parser.add_argument("--out", metavar="DIR", required=True, type=Path)

    def handle(self, *args: Any, **options: Any) -> None:
        since = _moment(options["since"], "--since")
        until = _moment(options["until"], "--until")
        if until <= since:
            raise CommandError(
                f"--until {options['until']} must be after --since {options['since']}."
            )
        (tenant,) = selected_tenants(options["tenant"])
        with schema_context(tenant.schema_name):
            manifest = decision_log_export(since=since, until=until, out_dir=Path(options["out"]))
        self.stdout.write(f"{tenant.slug}: bundle written to {manifest.parent}")
