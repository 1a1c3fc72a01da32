"""`manage.py onboard_tenant SLUG --name NAME --admin-username U --admin-email E`."""

import getpass
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from portal.tenants.services import TenantError, tenant_onboard


class Command(BaseCommand):
    help = "Create a tenant: its schema, its migrations, its roles and its first administrator."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("slug", help="Lower case slug; also the URL prefix /t/<slug>/.")
        parser.add_argument("--name", required=True, help="Display name of the tenant.")
        parser.add_argument("--region", default="eu", help="Data residency region (default eu).")
        parser.add_argument("--sandbox", action="store_true", help="Mark as a sandbox tenant.")
        parser.add_argument("--admin-username", required=True)
        parser.add_argument("--admin-email", required=True)
        parser.add_argument(
            "--admin-password-stdin",
            action="store_true",
            help="Read the administrator's password from standard input.",
        )
        parser.add_argument(
            "--prompt-password", action="store_true", help="Prompt for the password."
        )

    def handle(self, *args: Any, **options: Any) -> None:
        password = None
        if options["admin_password_stdin"]:
            password = self.stdin.readline().rstrip("\n") if hasattr(self, "stdin") else input()
        elif options["prompt_password"]:
            password = getpass.getpass("Password for the tenant administrator: ")
        try:
            onboarded = tenant_onboard(
                slug=options["slug"],
                display_name=options["name"],
                region=options["region"],
                is_sandbox=options["sandbox"],
                admin_username=options["admin_username"],
                admin_email=options["admin_email"],
                admin_password=password,
            )
        except TenantError as error:
            raise CommandError(f"{error.detail} {error.remediation}") from error
        self.stdout.write(
            f"Tenant {onboarded.tenant.slug} created (schema {onboarded.tenant.schema_name}); "
            f"admin at /t/{onboarded.tenant.slug}/admin/ as {onboarded.admin_username}."
        )
