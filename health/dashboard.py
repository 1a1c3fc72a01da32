"""Context of the tenant and platform health dashboards."""

import datetime as dt
from typing import Any

from django.db import connection
from django.utils import timezone
from django_tenants.utils import get_public_schema_name, schema_context

from health import charts
from health.selectors import (
    client_version_spread,
    findings_by_severity,
    findings_unresolved,
    grants_health,
    rollout_progress,
    seat_usage_series,
    tenant_risk,
)

PLATFORM_SORTS = {
    "risk": lambda row: (-row["score"], row["slug"]),
    "critical": lambda row: (-row["findings"]["critical"], -row["score"], row["slug"]),
    "expiring": lambda row: (-(row["expiring"] + row["in_grace"]), -row["score"], row["slug"]),
    "name": lambda row: (row["slug"],),
}


def tenant_context(*, now: dt.datetime | None = None) -> dict[str, Any]:
    """Return everything the tenant dashboard shows, charts rendered as SVG."""
    now = now or timezone.now()
    grants = grants_health(now=now)
    series = seat_usage_series()
    labelled: dict[str, list[tuple[dt.date, int, int]]] = {}
    for health in grants:
        points = list(series.get(health.grant.pk, []))
        today = now.date()
        if not points or points[-1][0] != today:
            points.append((today, health.seats_active, health.grant.seat_count))
        label = f"grant {health.grant.pk} ({health.grant.policy.product_code})"
        labelled[label] = points
    severities = findings_by_severity()
    versions = client_version_spread()
    rollouts = rollout_progress()
    return {
        "grants": grants,
        "severities": severities,
        "findings": list(findings_unresolved().order_by("severity", "-first_seen")[:25]),
        "versions": versions,
        "rollouts": rollouts,
        "seat_chart": charts.seat_utilisation(labelled),
        "severity_chart": charts.findings_by_severity(severities),
        "version_chart": charts.version_spread(versions),
        "rollout_chart": charts.rollout_progress(rollouts),
    }


def platform_rows(*, sort: str = "risk") -> list[dict[str, Any]]:
    """Return one risk summary per active tenant, sorted by `sort` (a PLATFORM_SORTS key)."""
    from portal.tenants.models import Tenant

    rows = []
    tenants = Tenant.objects.exclude(schema_name=get_public_schema_name()).order_by("slug")
    for tenant in tenants:
        with schema_context(tenant.schema_name):
            risk = tenant_risk()
        rows.append(
            {"slug": tenant.slug, "name": tenant.display_name, "status": tenant.status, **risk}
        )
    connection.set_schema_to_public()
    rows.sort(key=PLATFORM_SORTS.get(sort, PLATFORM_SORTS["risk"]))
    return rows
