"""Replay the renewal calendar of a tenant forward without changing anything."""

import json
from typing import Any

from django.core.management.base import BaseCommand, CommandParser

from approvals.management.commands._tenants import tenants_selected
from approvals.renewals import renewals_whatif


class Command(BaseCommand):
    help = (
        "List which grants would be renewed, enter grace or expire on which date in the next "
        "DAYS days under the current approvals. Reads only."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--tenant", required=True, help="Slug of the tenant.")
        parser.add_argument("--days", type=int, default=120, help="Days to replay (default 120).")
        parser.add_argument("--json", action="store_true", help="Print a JSON list instead.")

    def handle(self, *args: Any, **options: Any) -> None:
        for _tenant in tenants_selected(options["tenant"]):
            events = renewals_whatif(days=options["days"])
            if options["json"]:
                rows = [
                    {
                        "date": event.date.date().isoformat(),
                        "grant": event.grant_id,
                        "product": event.product_code,
                        "event": event.event,
                        "detail": event.detail,
                    }
                    for event in events
                ]
                self.stdout.write(json.dumps(rows, indent=2))
                continue
            if not events:
                self.stdout.write(f"No grant changes state in the next {options['days']} days.")
            for event in events:
                self.stdout.write(event.line())
