from datetime import timedelta
from typing import Any

from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.utils import timezone
from django_tenants.utils import schema_context

from portal.access.models import SCOPES
from portal.access.services import api_token_issue
from portal.tenants.models import Tenant


class Command(BaseCommand):
    help = "Issue a scoped admin API token for a tenant user and print it once."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--tenant", required=True, help="Tenant slug.")
        parser.add_argument("--user", required=True, help="Username the token acts for.")
        parser.add_argument(
            "--scopes",
            required=True,
            help=f"Comma-separated scopes from: {', '.join(sorted(SCOPES))}.",
        )
        parser.add_argument("--name", default="command line", help="What the token is for.")
        parser.add_argument("--days", type=int, default=None, help="Days until the token expires.")

    def handle(self, *args: Any, **options: Any) -> None:
        tenant = Tenant.objects.filter(slug=options["tenant"]).first()
        if tenant is None:
            raise CommandError(f"No tenant has the slug {options['tenant']!r}.")
        scopes = [scope.strip() for scope in options["scopes"].split(",") if scope.strip()]
        expires_at = timezone.now() + timedelta(days=options["days"]) if options["days"] else None
        with schema_context(tenant.schema_name):
            user = get_user_model().objects.filter(username=options["user"]).first()
            if user is None:
                raise CommandError(f"Tenant {tenant.slug!r} has no user {options['user']!r}.")
            try:
                _, secret = api_token_issue(
                    name=options["name"], user=user, scopes=scopes, expires_at=expires_at
                )
            except ValidationError as error:
                raise CommandError("; ".join(error.messages)) from error
        self.stdout.write(secret)
