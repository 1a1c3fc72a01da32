"""`manage.py demo_seed`: idempotent seeding of the demo operator, catalog and tenants."""

from typing import Any

from django.core.management.base import BaseCommand, CommandParser

from portal.demo.seed import demo_seed, demo_tenants_reset
from portal.demo.state import Credentials, credentials_path


class Command(BaseCommand):
    help = (
        "Create the platform operator, two demo products with overlay schemas and defaults, "
        "and the demo tenants acme and globex with users in every role, policies, grants, "
        "device groups and overlays. Safe to run again; generated passwords and license keys "
        "are kept in .keyplane/demo-credentials.json (mode 0600)."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--reset",
            action="store_true",
            help="Offboard and drop the demo tenants first, so that the demo starts fresh.",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        credentials = Credentials()
        if options["reset"]:
            dropped = demo_tenants_reset(credentials=credentials)
            self.stdout.write(f"Dropped demo tenants: {', '.join(dropped) or 'none'}.")
        result = demo_seed(credentials=credentials)
        self.stdout.write(f"Platform operator: {result.operator}")
        for tenant in result.tenants:
            grants = ", ".join(
                f"{grant['label']} ({grant['product']}, {grant['seats']} seats)"
                for grant in tenant.grants
            )
            self.stdout.write(f"Tenant {tenant.slug}: {len(tenant.users)} users, grants: {grants}")
        self.stdout.write(f"Credentials: {credentials_path()}")
