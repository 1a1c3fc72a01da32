"""`manage.py bootstrap_platform`: idempotent set-up of the public schema's defaults."""

import logging
import os
from typing import Any

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand

logger = logging.getLogger(__name__)


class Command(BaseCommand):
    help = (
        "Create the platform operator from KEYPLANE_OPERATOR_USERNAME / KEYPLANE_OPERATOR_EMAIL / "
        "KEYPLANE_OPERATOR_PASSWORD when set, and the default periodic task schedule. "
        "Safe to run on every start."
    )

    def handle(self, *args: Any, **options: Any) -> None:
        from portal.schedule import schedule_sync

        created = schedule_sync()
        self.stdout.write(f"Periodic tasks: {created} created, others kept as operators set them.")

        username = os.environ.get("KEYPLANE_OPERATOR_USERNAME")
        password = os.environ.get("KEYPLANE_OPERATOR_PASSWORD")
        if not username or not password:
            return
        users = get_user_model().objects
        if users.filter(username=username).exists():
            return
        users.create_superuser(
            username=username,
            email=os.environ.get("KEYPLANE_OPERATOR_EMAIL", ""),
            password=password,
        )
        logger.info("platform.operator_created username=%s", username)
        self.stdout.write(f"Platform operator {username} created.")
