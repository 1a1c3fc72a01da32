"""Named system users that stand for work done without a human actor.

Every history row names a user. A Celery task or management command that
changes a history-tracked model passes its actor explicitly instead of
relying on thread-local request state:

    from simple_history.utils import bulk_update_with_history, update_change_reason

    actor = system_user("renewals_scan")        # or the user who triggered the task
    grant._history_user = actor                  # read by django-simple-history on save
    grant._change_reason = "renewal scan"        # optional reason on the same row
    grant.save(update_fields=["expires_at"])

    bulk_update_with_history(
        grants, LicenseGrant, ["state"], default_user=actor, default_change_reason="expired"
    )

    update_change_reason(grant, "renewal scan")  # after a save, sets the reason of the last row

A task that acts for a human passes that user's id in its arguments and
loads the user inside the task; `system_user` is for work with no human.
The decision log takes the same name as its `actor`: `system:<name>`.
"""

import re

from django.contrib.auth import get_user_model
from django.contrib.auth.base_user import AbstractBaseUser
from django.db import IntegrityError, transaction

from portal.problems import KeyplaneError

SYSTEM_PREFIX = "system:"
_NAME_PATTERN = re.compile(r"^[a-z][a-z0-9_.-]{0,60}$")


class SystemUserNameInvalid(KeyplaneError):
    """Raised when a system user name is not a short lower-case identifier."""

    code = "audit_system_user_name_invalid"
    status = 500
    title = "Invalid system user name"
    remediation = "Use a lower-case identifier such as the task name, e.g. renewals_scan."


def system_actor(name: str) -> str:
    """Return the actor string `system:<name>` after checking the name."""
    if not _NAME_PATTERN.match(name):
        raise SystemUserNameInvalid(
            f"System user name {name!r} is invalid; use 1 to 61 characters of a-z, 0-9, _ . -"
        )
    return SYSTEM_PREFIX + name


def system_user(name: str) -> AbstractBaseUser:
    """Return the non-login user `system:<name>` in the current schema, creating it if needed.

    The user has an unusable password and is neither staff nor active, so it
    can never sign in. It exists only so that history rows name who acted.
    """
    username = system_actor(name)
    user_model = get_user_model()
    user = user_model.objects.filter(username=username).first()
    if user is not None:
        return user
    try:
        with transaction.atomic():
            user = user_model(username=username, is_active=False, is_staff=False)
            user.set_unusable_password()
            user.save()
            return user
    except IntegrityError:
        # A concurrent caller created it first.
        return user_model.objects.get(username=username)
