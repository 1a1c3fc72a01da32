"""Reads of license health for the dashboards, the admin API and the metrics endpoint."""

import datetime as dt
from dataclasses import dataclass, field
from typing import Any

from django.db.models import Count, Q, QuerySet
from django.utils import timezone

from health.models import DeviceState, Finding, SeatUsageDaily
from licensing.models import LicenseGrant, Seat

RISK_WEIGHTS = {"critical": 100, "warning": 10, "info": 1}
RENEWAL_WINDOW_DAYS = 60


def findings_unresolved() -> QuerySet[Finding]:
    return Finding.objects.exclude(state=Finding.State.RESOLVED)


def findings_by_severity() -> dict[str, int]:
    """Count unresolved findings per severity, with every severity present."""
    counts = dict(
        findings_unresolved()
        .values("severity")
        .annotate(n=Count("id"))
        .values_list("severity", "n")
    )
    return {severity: counts.get(severity, 0) for severity in Finding.Severity.values}


@dataclass
class GrantHealth:
    grant: LicenseGrant
    seats_active: int
    days_to_expiry: int
    in_grace: bool
    renewal_requests: list[dict[str, Any]] = field(default_factory=list)

    @property
    def utilisation_percent(self) -> int:
        return (
            round(100 * self.seats_active / self.grant.seat_count) if self.grant.seat_count else 0
        )


def grants_health(*, now: dt.datetime | None = None) -> list[GrantHealth]:
    """Return each grant with its seat use, days to expiry and open renewal requests."""
    now = now or timezone.now()
    grants = LicenseGrant.objects.select_related("policy").annotate(
        seats_active=Count("seats", filter=Q(seats__status=Seat.Status.ACTIVE))
    )
    renewals = _renewal_requests()
    result = []
    for grant in grants.order_by("term_end"):
        grace_end = grant.term_end + dt.timedelta(days=grant.policy.grace_days)
        result.append(
            GrantHealth(
                grant=grant,
                seats_active=grant.seats_active,
                days_to_expiry=(grant.term_end - now).days,
                in_grace=grant.term_end <= now < grace_end,
                renewal_requests=renewals.get(grant.pk, []),
            )
        )
    return result


def _renewal_requests() -> dict[int, list[dict[str, Any]]]:
    """Return the undecided and approved renewal requests per grant id, with approval counts."""
    from approvals.models import Approval, ChangeRequest

    open_states = (ChangeRequest.State.PENDING, ChangeRequest.State.APPROVED)
    rows = (
        ChangeRequest.objects.filter(
            kind=ChangeRequest.Kind.RENEWAL, state__in=open_states, grant__isnull=False
        )
        .annotate(
            approvals_given=Count(
                "approvals", filter=Q(approvals__decision=Approval.Decision.APPROVE)
            )
        )
        .order_by("id")
    )
    by_grant: dict[int, list[dict[str, Any]]] = {}
    for row in rows:
        by_grant.setdefault(row.grant_id, []).append(  # type: ignore[arg-type]  # filtered not null
            {
                "id": row.pk,
                "state": row.get_state_display(),
                "approvals": f"{row.approvals_given} of {row.quorum_required}",
            }
        )
    return by_grant


def seat_usage_series(*, days: int = 30) -> dict[int, list[tuple[dt.date, int, int]]]:
    """Return, per grant, the daily (day, active seats, seat count) of the last `days` days."""
    since = timezone.now().date() - dt.timedelta(days=days)
    series: dict[int, list[tuple[dt.date, int, int]]] = {}
    for row in SeatUsageDaily.objects.filter(day__gte=since).order_by("day"):
        series.setdefault(row.grant_id, []).append((row.day, row.seats_active, row.seat_count))
    return series


def client_version_spread(*, limit: int = 12) -> list[tuple[str, int]]:
    """Return the most common client versions among devices' latest check-ins."""
    return list(
        DeviceState.objects.values("client_version")
        .annotate(n=Count("id"))
        .order_by("-n", "client_version")
        .values_list("client_version", "n")[:limit]
    )


def rollout_progress() -> list[dict[str, Any]]:
    """Return, per product, the current overlay release and how many devices run it."""
    from overlays.models import ReleaseHead, Rollout

    progress = []
    for head in ReleaseHead.objects.filter(current__isnull=False).select_related("current"):
        release = head.current
        assert release is not None
        states = DeviceState.objects.filter(product_code=head.product_code)
        total = states.count()
        running = states.filter(overlay_release__gte=release.number).count()
        failed = states.filter(apply_release=release.number, apply_ok=False).count()
        rollout = Rollout.objects.filter(release=release).first()
        progress.append(
            {
                "product": head.product_code,
                "release": release.number,
                "devices": total,
                "running": running,
                "failed": failed,
                "percent": round(100 * running / total) if total else 0,
                "rollout": (
                    f"step {rollout.step_index + 1} of {len(rollout.steps)}, {rollout.status}"
                    if rollout
                    else "released to all"
                ),
            }
        )
    return progress


def tenant_risk(*, now: dt.datetime | None = None) -> dict[str, Any]:
    """Return the numbers the platform dashboard sorts tenants by."""
    now = now or timezone.now()
    severities = findings_by_severity()
    grants = grants_health(now=now)
    expiring = [g for g in grants if 0 <= g.days_to_expiry <= RENEWAL_WINDOW_DAYS]
    in_grace = [g for g in grants if g.in_grace]
    seats_active = sum(g.seats_active for g in grants)
    seat_count = sum(g.grant.seat_count for g in grants)
    score = sum(RISK_WEIGHTS[s] * n for s, n in severities.items())
    score += 50 * len(in_grace) + 5 * len(expiring)
    return {
        "findings": severities,
        "grants": len(grants),
        "expiring": len(expiring),
        "in_grace": len(in_grace),
        "seats_active": seats_active,
        "seat_count": seat_count,
        "devices": DeviceState.objects.values("device_id").distinct().count(),
        "score": score,
    }
