"""Create a sandbox tenant from a production tenant's configuration."""

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from portal.tenants.models import Tenant
from portal.tenants.sandbox import sandbox_create, sandbox_slug_suggest


class Command(BaseCommand):
    help = (
        "Create a sandbox tenant with a copy of SOURCE's policies, grants (with new, unseen "
        "license keys), device groups and overlay drafts; no devices, seats, tokens or keys."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("source", help="slug of the production tenant to copy")
        parser.add_argument("--slug", help="slug of the sandbox (default: <source>-sbx-<hex>)")
        parser.add_argument("--admin-username", required=True, help="first admin of the sandbox")
        parser.add_argument("--admin-email", required=True, help="e-mail of that admin")

    def handle(self, *args: Any, **options: Any) -> None:
        source = Tenant.objects.filter(slug=options["source"]).first()
        if source is None:
            raise CommandError(f"No tenant has the slug {options['source']!r}.")
        sandbox = sandbox_create(
            source=source,
            slug=options["slug"] or sandbox_slug_suggest(source),
            admin_username=options["admin_username"],
            admin_email=options["admin_email"],
            acting_user=None,
        )
        self.stdout.write(
            f"Created sandbox {sandbox.slug} from {source.slug}; set its admin's password "
            "with a password reset before signing in."
        )
