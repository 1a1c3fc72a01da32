"""Recording device check-ins and rolling them up into daily totals.

A check-in costs two statements: an upsert of the device's latest state
(`INSERT ... ON CONFLICT DO UPDATE` on the device and product) and an insert
into the raw `CheckIn` table. Reconciliation reads only the latest state, and
`checkins_roll_up` folds each finished UTC day of raw rows into one
`CheckInDaily` row per product and deletes raw rows past retention, so the
tables stay bounded at 100,000 devices checking in hourly.
"""

import datetime as dt
import logging
from dataclasses import dataclass
from typing import Any

from django.db import connection, transaction
from django.utils import timezone

from health.models import CheckIn, CheckInDaily, DeviceState, HealthSettings, SeatUsageDaily
from licensing.models import Device, LicenseGrant, Seat

logger = logging.getLogger(__name__)

# Names in `timings_ms` that the health pages chart; other timings are accepted and ignored.
VALIDATION_TIMING = "license_validation"
STARTUP_TIMING = "startup"


@dataclass(frozen=True)
class CheckInReport:
    """A validated check-in body (see health/api/serializers.py)."""

    product_code: str
    token_jti: str
    manifest_version: int | None
    overlay_release: int | None
    decision: str
    reason: str
    client_version: str
    validation_ms: float | None
    startup_ms: float | None
    apply_results: tuple[tuple[int, bool, str], ...]

    @classmethod
    def from_body(cls, body: dict[str, Any]) -> "CheckInReport":
        timings = body.get("timings_ms") or {}
        return cls(
            product_code=body["product"],
            token_jti=body.get("token_jti") or "",
            manifest_version=body.get("manifest_version"),
            overlay_release=body.get("overlay_release"),
            decision=body["decision"]["state"],
            reason=body["decision"].get("reason") or "",
            client_version=body["client_version"],
            validation_ms=timings.get(VALIDATION_TIMING),
            startup_ms=timings.get(STARTUP_TIMING),
            apply_results=tuple(
                (item["release"], item["ok"], item.get("error") or "")
                for item in body.get("overlay_apply") or []
            ),
        )


def health_settings_get() -> HealthSettings:
    """Return the tenant's health settings, creating the row with defaults on first use."""
    found = HealthSettings.objects.first()
    if found is not None:
        return found
    return HealthSettings.objects.create()


_UPSERT_STATE = f"""
INSERT INTO {DeviceState._meta.db_table} AS s (
    device_id, product_code, token_jti, manifest_version, overlay_release, decision, reason,
    client_version, validation_ms, startup_ms, apply_release, apply_ok, apply_code, checked_in_at
) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)
ON CONFLICT (device_id, product_code) DO UPDATE SET
    token_jti = EXCLUDED.token_jti,
    manifest_version = EXCLUDED.manifest_version,
    overlay_release = EXCLUDED.overlay_release,
    decision = EXCLUDED.decision,
    reason = EXCLUDED.reason,
    client_version = EXCLUDED.client_version,
    validation_ms = EXCLUDED.validation_ms,
    startup_ms = EXCLUDED.startup_ms,
    apply_release = COALESCE(EXCLUDED.apply_release, s.apply_release),
    apply_ok = COALESCE(EXCLUDED.apply_ok, s.apply_ok),
    apply_code = CASE WHEN EXCLUDED.apply_release IS NULL THEN s.apply_code
                      ELSE EXCLUDED.apply_code END,
    checked_in_at = EXCLUDED.checked_in_at
"""  # noqa: S608  # table names from model metadata; values are bound parameters


def checkin_record(
    *, device: Device, report: CheckInReport, now: dt.datetime | None = None
) -> None:
    """Store a device's check-in and pass its overlay apply results to the overlays app.

    1. Upsert the device's latest state and append the raw check-in, in one transaction.
    2. Report each overlay apply result to `overlays.services.release_report_apply`,
       which records it once per device and release and may roll a failing
       release back. An unknown release number is logged and skipped, so one
       stale result cannot make the device's whole check-in fail.

    A revoked device's check-in is stored too: reconciliation turns it into a
    finding, which it could not do if the report were rejected.
    """
    now = now or timezone.now()
    last_apply = report.apply_results[-1] if report.apply_results else None
    with transaction.atomic():
        with connection.cursor() as cursor:
            cursor.execute(
                _UPSERT_STATE,
                [
                    device.pk,
                    report.product_code,
                    report.token_jti,
                    report.manifest_version,
                    report.overlay_release,
                    report.decision,
                    report.reason,
                    report.client_version,
                    report.validation_ms,
                    report.startup_ms,
                    last_apply[0] if last_apply else None,
                    last_apply[1] if last_apply else None,
                    last_apply[2] if last_apply else "",
                    now,
                ],
            )
        CheckIn.objects.create(
            device_id=device.pk,
            product_code=report.product_code,
            decision=report.decision,
            client_version=report.client_version,
            validation_ms=report.validation_ms,
            startup_ms=report.startup_ms,
            apply_failed=any(not ok for _, ok, _ in report.apply_results),
            received_at=now,
        )
    _apply_results_forward(device=device, report=report)


def _apply_results_forward(*, device: Device, report: CheckInReport) -> None:
    from overlays.exceptions import ReleaseNotFound
    from overlays.services import release_report_apply

    for release_number, ok, code in report.apply_results:
        try:
            release_report_apply(
                device=device,
                product_code=report.product_code,
                release_number=release_number,
                ok=ok,
                code=code,
            )
        except ReleaseNotFound:
            logger.warning(
                "health.checkin_apply_unknown_release device=%s product=%s release=%s",
                device.pk,
                report.product_code,
                release_number,
            )


_ROLL_UP = f"""
WITH raw AS (
    SELECT (received_at AT TIME ZONE 'UTC')::date AS day, product_code, device_id, decision,
           apply_failed, validation_ms, startup_ms
    FROM {CheckIn._meta.db_table}
    WHERE received_at >= %(start)s AND received_at < %(end)s
), per_decision AS (
    SELECT day, product_code, jsonb_object_agg(decision, n) AS decisions
    FROM (SELECT day, product_code, decision, COUNT(*) AS n FROM raw GROUP BY 1, 2, 3) counted
    GROUP BY 1, 2
)
INSERT INTO {CheckInDaily._meta.db_table} AS d (
    day, product_code, checkins, devices, decisions, apply_failures,
    validation_ms_avg, startup_ms_avg
)
SELECT raw.day, raw.product_code, COUNT(*), COUNT(DISTINCT raw.device_id),
       MIN(per_decision.decisions::text)::jsonb, COUNT(*) FILTER (WHERE raw.apply_failed),
       AVG(raw.validation_ms), AVG(raw.startup_ms)
FROM raw JOIN per_decision USING (day, product_code)
GROUP BY raw.day, raw.product_code
ON CONFLICT (day, product_code) DO UPDATE SET
    checkins = EXCLUDED.checkins,
    devices = EXCLUDED.devices,
    decisions = EXCLUDED.decisions,
    apply_failures = EXCLUDED.apply_failures,
    validation_ms_avg = EXCLUDED.validation_ms_avg,
    startup_ms_avg = EXCLUDED.startup_ms_avg
"""  # noqa: S608  # table names from model metadata; values are bound parameters


def checkins_roll_up(*, now: dt.datetime | None = None, days_back: int = 2) -> int:
    """Fold the raw check-ins of the last finished UTC days into daily totals.

    Recomputes each of the `days_back` days before today from the raw rows,
    so running it twice, or late, gives the same totals. Then deletes raw
    rows older than the tenant's retention. Returns the raw rows deleted.
    """
    now = now or timezone.now()
    today = now.astimezone(dt.UTC).date()
    start = dt.datetime.combine(today - dt.timedelta(days=days_back), dt.time(), tzinfo=dt.UTC)
    end = dt.datetime.combine(today, dt.time(), tzinfo=dt.UTC)
    retention_days = health_settings_get().checkin_retention_days
    cutoff = end - dt.timedelta(days=max(retention_days, days_back))

    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(_ROLL_UP, {"start": start, "end": end})
        deleted, _ = CheckIn.objects.filter(received_at__lt=cutoff).delete()
    logger.info(
        "health.rollup schema=%s from=%s to=%s deleted=%d",
        connection.schema_name,
        start.date(),
        end.date(),
        deleted,
    )
    return deleted


_SEAT_USAGE = f"""
INSERT INTO {SeatUsageDaily._meta.db_table} (day, grant_id, seats_active, seat_count)
SELECT %(day)s, g.id, COUNT(s.id) FILTER (WHERE s.status = 'active'), g.seat_count
FROM {LicenseGrant._meta.db_table} g
LEFT JOIN {Seat._meta.db_table} s ON s.grant_id = g.id
WHERE g.status = 'active'
GROUP BY g.id, g.seat_count
ON CONFLICT (day, grant_id) DO UPDATE SET
    seats_active = EXCLUDED.seats_active, seat_count = EXCLUDED.seat_count
"""  # noqa: S608  # table names from model metadata; values are bound parameters


def seat_usage_snapshot(*, now: dt.datetime | None = None) -> int:
    """Store today's active seats of every active grant (rerunning updates the row); return rows."""
    now = now or timezone.now()
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(_SEAT_USAGE, {"day": now.astimezone(dt.UTC).date()})
        return int(cursor.rowcount)
