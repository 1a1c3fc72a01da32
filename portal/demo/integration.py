"""The demo's calls into the other apps' public services, in one place.

Each function calls one service of the app that owns the change (approvals,
health, audit, access). When that service is missing, the function raises
`StepUnavailable` naming it, and the orchestrator reports the step as
skipped, which makes `make demo` fail: the demo never imitates a missing
feature.
"""

import importlib
from collections.abc import Callable
from typing import Any


class StepUnavailable(Exception):
    """Raised when a service the demo needs is not provided by its app."""


def _service(module_name: str, *names: str) -> Callable[..., Any]:
    """Return the first of `names` that `module_name` defines; raise StepUnavailable otherwise."""
    try:
        module = importlib.import_module(module_name)
    except ImportError as error:
        raise StepUnavailable(f"{module_name} cannot be imported ({error})") from error
    for name in names:
        function = getattr(module, name, None)
        if callable(function):
            return function  # type: ignore[no-any-return]
    raise StepUnavailable(f"{module_name} has no {' or '.join(names)}")


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
    raise_request = _service("approvals.services", "change_request_raise", "change_request_create")
    return raise_request(
        kind=kind, grant_id=grant.pk, payload=payload, reason=reason, acting_user=requester
    )


def change_request_approve(*, change_request: Any, approver: Any, reason: str) -> Any:
    approve = _service("approvals.services", "change_request_approve")
    return approve(change_request_id=change_request.pk, acting_user=approver, reason=reason)


def change_request_state(change_request: Any) -> str:
    from approvals.models import ChangeRequest

    return str(ChangeRequest.objects.get(pk=change_request.pk).state)


# --- health ---------------------------------------------------------------------


def reconcile_now() -> Any:
    """Run reconciliation of check-ins against the device catalog in the current tenant."""
    reconcile = _service("health.services", "reconcile", "reconciliation_run", "tenant_reconcile")
    return reconcile()


def findings_by_severity() -> dict[str, int]:
    """Count the tenant's open health and overlay findings by severity."""
    from django.apps import apps
    from django.db.models import Count

    counts: dict[str, int] = {}
    for label in ("health.Finding", "overlays.OverlayFinding"):
        try:
            model = apps.get_model(label)
        except LookupError:
            continue
        if not any(field.name == "severity" for field in model._meta.get_fields()):
            continue
        rows = model.objects.values("severity").annotate(total=Count("id"))
        for row in rows:
            counts[str(row["severity"])] = counts.get(str(row["severity"]), 0) + row["total"]
    return dict(sorted(counts.items()))


# --- audit ----------------------------------------------------------------------


def audit_chain_verify() -> tuple[bool, str]:
    """Verify the current tenant's decision-log chain; return (ok, one-line summary)."""
    from audit.selectors import chain_verify

    report = chain_verify()
    if report.ok:
        return True, f"ok, {report.entries_checked} entries"
    first = report.first_bad
    return False, first.message if first is not None else "verification failed"
