"""Reads of approval state: settings, gating, approvers, the approver queue and windows."""

from datetime import UTC, datetime, timedelta
from typing import Any

from django.contrib.auth import get_user_model
from django.db.models import Q, QuerySet

from approvals.models import Approval, ApprovalSettings, ChangeRequest
from licensing.models import LicenseGrant, Policy
from overlays.rollout import window_contains

APPROVE_PERMISSION = "approvals.approve_changerequest"
APPROVE_CODENAME = "approve_changerequest"
# Days before a term ends at which the renewal request is raised, by renewal cadence.
RENEWAL_LEAD_DAYS: dict[str, int] = {
    Policy.Cadence.MONTHLY: 7,
    Policy.Cadence.QUARTERLY: 30,
    Policy.Cadence.ANNUAL: 60,
}


def approval_settings() -> ApprovalSettings:
    """Return the tenant's approval settings, creating the row with defaults on first use."""
    row, _ = ApprovalSettings.objects.get_or_create(pk=1)
    return row


def kind_is_gated(kind: str, *, policy: Policy | None, settings: ApprovalSettings) -> bool:
    """Return whether a change of `kind` needs approval under the tenant's policy.

    Renewals and seat increases follow the flags of the grant's licensing
    policy; every other kind follows the tenant's `gated_kinds`.
    """
    if kind == ChangeRequest.Kind.RENEWAL and policy is not None:
        return bool(policy.renewal_requires_approval)
    if kind == ChangeRequest.Kind.SEAT_INCREASE and policy is not None:
        return bool(policy.seat_increase_requires_approval)
    return kind in (settings.gated_kinds or [])


def renewal_lead(policy: Policy, settings: ApprovalSettings) -> timedelta:
    """Return how long before the end of a term its renewal request is raised."""
    if settings.renewal_lead_days is not None:
        return timedelta(days=settings.renewal_lead_days)
    return timedelta(days=RENEWAL_LEAD_DAYS.get(policy.renewal_cadence, 60))


def approvers(*, exclude_user_id: int | None = None) -> QuerySet[Any]:
    """Return the active users who may approve, with an e-mail address, minus one user."""
    users = (
        get_user_model()
        .objects.filter(is_active=True)
        .exclude(email="")
        .filter(
            Q(is_superuser=True)
            | Q(groups__permissions__codename=APPROVE_CODENAME)
            | Q(user_permissions__codename=APPROVE_CODENAME)
        )
        .distinct()
        .order_by("id")
    )
    if exclude_user_id is not None:
        users = users.exclude(pk=exclude_user_id)
    return users


def tenant_admins() -> QuerySet[Any]:
    """Return the active superusers of the tenant with an e-mail address."""
    return (
        get_user_model()
        .objects.filter(is_active=True, is_superuser=True)
        .exclude(email="")
        .order_by("id")
    )


def approvals_counted(request: ChangeRequest) -> int:
    """Return how many distinct approvers approved the request's current revision."""
    return (
        Approval.objects.filter(
            request=request,
            decision=Approval.Decision.APPROVE,
            voided_at__isnull=True,
            revision=request.revision,
        )
        .exclude(approver_id=request.requester_id)
        .values("approver_id")
        .distinct()
        .count()
    )


def queue_for(user: Any) -> QuerySet[ChangeRequest]:
    """Return the pending requests that wait for this user's decision, oldest first."""
    if not user.has_perm(APPROVE_PERMISSION):
        return ChangeRequest.objects.none()
    decided = Approval.objects.filter(approver=user, voided_at__isnull=True).values("request_id")
    return (
        ChangeRequest.objects.filter(state=ChangeRequest.State.PENDING)
        .exclude(requester=user)
        .exclude(pk__in=decided)
        .select_related("requester", "grant")
        .order_by("created_at", "id")
    )


def maintenance_windows(settings: ApprovalSettings) -> list[Any]:
    """Return the tenant's maintenance windows: the configured one, else all overlay windows."""
    from overlays.models import MaintenanceWindow

    if settings.maintenance_window_id is not None:
        return list(MaintenanceWindow.objects.filter(pk=settings.maintenance_window_id))
    return list(MaintenanceWindow.objects.order_by("id"))


def window_is_open(windows: list[Any], moment: datetime) -> bool:
    """Return whether `moment` is inside one of the windows."""
    return any(
        window_contains(weekdays=w.weekdays, start=w.start_time, end=w.end_time, moment=moment)
        for w in windows
    )


def window_next_opening(windows: list[Any], after: datetime) -> datetime | None:
    """Return `after` if a window is open then, else the next time a window opens; None if none."""
    if window_is_open(windows, after):
        return after
    after = after.astimezone(UTC)
    openings = []
    for window in windows:
        for offset in range(8):
            day = (after + timedelta(days=offset)).date()
            if window.weekdays and day.weekday() not in window.weekdays:
                continue
            opening = datetime.combine(day, window.start_time, tzinfo=UTC)
            if opening >= after:
                openings.append(opening)
                break
    return min(openings, default=None)


def grants_for_renewal_scan() -> QuerySet[LicenseGrant]:
    """Return the grants the renewal scan considers: active or expired, not revoked or suspended."""
    return LicenseGrant.objects.filter(
        status__in=[LicenseGrant.Status.ACTIVE, LicenseGrant.Status.EXPIRED]
    ).select_related("policy")
