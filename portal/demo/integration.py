"""The demo's calls into other apps' public services and selectors, in one place.

Each function calls the service of the app that owns the change (access,
approvals) or reads through its models (health, audit), so the scenario
itself stays a readable list of steps.
"""

import time
from typing import Any

# --- admin API tokens (access) ---------------------------------------------------


def api_token_create(*, user: Any, name: str) -> str:
    """Issue an admin API token with every scope for `user`; return its secret."""
    from portal.access.models import SCOPES
    from portal.access.services import api_token_issue

    _, secret = api_token_issue(name=name, user=user, scopes=sorted(SCOPES))
    return secret


def api_token_valid(token: str) -> bool:
    """Return True when `token` is a usable token of the current tenant."""
    from portal.access.models import ApiToken, api_token_hash

    row = ApiToken.objects.filter(token_hash=api_token_hash(token)).first()
    return row is not None and row.is_usable


# --- change requests (approvals) -------------------------------------------------


def change_request_raise(
    *, kind: str, grant: Any, payload: dict[str, Any], reason: str, requester: Any
) -> Any:
    from approvals.services import changerequest_create

    return changerequest_create(
        kind=kind, payload={"grant": grant.pk, **payload}, reason=reason, acting_user=requester
    )


def change_request_approve(*, change_request: Any, approver: Any, reason: str) -> Any:
    from approvals.services import changerequest_approve

    return changerequest_approve(request_id=change_request.pk, acting_user=approver, reason=reason)


def change_request_wait_applied(change_request: Any, *, timeout: float = 60.0) -> str:
    """Wait for the Celery worker to apply an approved request; return its final state."""
    from approvals.models import ChangeRequest

    deadline = time.monotonic() + timeout
    state = ""
    while time.monotonic() < deadline:
        state = str(ChangeRequest.objects.get(pk=change_request.pk).state)
        if state not in (ChangeRequest.State.PENDING, ChangeRequest.State.APPROVED):
            return state
        time.sleep(0.25)
    return state


# --- health ---------------------------------------------------------------------


def findings_by_severity() -> dict[str, int]:
    """Count the current tenant's unresolved health findings by severity."""
    from health.selectors import findings_by_severity as unresolved_by_severity

    return unresolved_by_severity()


# --- audit ----------------------------------------------------------------------


def audit_chain_verify() -> tuple[bool, str]:
    """Verify the current tenant's decision-log chain; return (ok, one-line summary)."""
    from audit.selectors import chain_verify

    report = chain_verify()
    if report.ok:
        return True, f"ok, {report.entries_checked} entries"
    first = report.first_bad
    return False, first.message if first is not None else "verification failed"
