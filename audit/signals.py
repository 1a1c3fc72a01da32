"""Admin sign-ins and failed sign-ins, recorded in the tenant's decision log.

Authentication events come from Django's auth signals because they have no
service of their own. Only tenant schemas have a decision log; sign-ins to
the platform admin are logged by the logging system only.
"""

import logging
from typing import Any

from django.contrib.auth import get_user_model
from django.db import connection
from django_tenants.utils import get_public_schema_name

from audit.services import decision_record

logger = logging.getLogger(__name__)


def record_login(sender: Any, request: Any, user: Any, **_: Any) -> None:
    """Record a successful sign-in as `admin.login` with outcome `ok`."""
    if connection.schema_name == get_public_schema_name():
        logger.info("audit.platform_login user_id=%s", user.pk)
        return
    decision_record(
        event="admin.login",
        outcome="ok",
        actor=user.get_username(),
        subject=f"user:{user.pk}",
    )


def record_login_failed(sender: Any, credentials: dict[str, Any], request: Any = None, **_: Any) -> None:
    """Record a failed sign-in as `admin.login` with outcome `refused`.

    The attempted user name is kept only when it names an existing user.
    Anything else is stored as `unknown`, because a mistyped name is often
    the user's password or another person's name.
    """
    if connection.schema_name == get_public_schema_name():
        logger.info("audit.platform_login_failed")
        return
    username = credentials.get("username") or ""
    user = get_user_model().objects.filter(username=username).only("pk").first() if username else None
    decision_record(
        event="admin.login",
        outcome="refused",
        reason="invalid_credentials",
        actor=username if user is not None else "unknown",
        subject=f"user:{user.pk}" if user is not None else "",
    )
