"""Tasks that exist only for the test suite; the test worker loads them with --include."""

from celery import shared_task
from django.contrib.auth import get_user_model
from django.db import connection


@shared_task(name="tests.mark_user")
def mark_user(user_id: int, marker: str) -> str:
    """Set the user's last name to `marker` in the schema the task runs in."""
    get_user_model().objects.filter(pk=user_id).update(last_name=marker)
    return str(connection.schema_name)


@shared_task(name="tests.fail_in_schema")
def fail_in_schema() -> None:
    raise RuntimeError(f"failing on purpose in {connection.schema_name}")


@shared_task(name="tests.current_schema")
def current_schema() -> str:
    return str(connection.schema_name)


@shared_task(name="tests.audit_release_hold")
def audit_release_hold(hold_id: int, acting_user_id: int | None) -> str:
    """Release a legal hold, as `acting_user_id` when given, else with no explicit actor."""
    from audit.models import LegalHold
    from audit.services import legal_holds_release

    hold = LegalHold.objects.get(pk=hold_id)
    if acting_user_id is None:
        hold.active = False
        hold.save(update_fields=["active"])
        return "saved"
    user = get_user_model().objects.get(pk=acting_user_id)
    legal_holds_release(holds=[hold], acting_user=user, reason="released by task")
    return "released"
