"""Reconciliation: compare what the catalog says should run with what devices report.

One pass per tenant:

1. Read the small per-product targets (manifest version and overlay release
   each device should run by now) and the tenant's settings.
2. Stream every device that holds a seat or has checked in (one query over a
   server-side cursor, `CHUNK_SIZE` rows at a time) and check each row
   against the device rules. The drifts found are copied into a temporary
   table chunk by chunk, so memory stays flat however large the fleet is.
3. Add the per-grant and per-release drifts (seat overuse, apply failures,
   renewal risk), which come from small aggregate queries.
4. Merge in the database: insert a finding for each new drift (the partial
   unique index on code and subject makes a rerun insert nothing), resolve
   every unresolved finding whose drift was not seen, and write history rows
   for both.
5. After the commit, release the seats of silent devices when the tenant's
   settings say so, each release in its own short transaction.

Steps 2 to 4 run in one transaction under a per-tenant advisory lock, so
two concurrent runs of the same tenant cannot both insert or resolve.
"""

import datetime as dt
import functools
import logging
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

from django.db import connection, transaction
from django.db.models import Count, Max, Q
from django.utils import timezone
from packaging.version import InvalidVersion, Version

from audit.actors import system_actor, system_user
from audit.services import decision_record
from health.checkins import health_settings_get
from health.findings import Detected
from health.models import DeviceState, Finding, HealthSettings
from licensing.models import (
    Device,
    IssuedToken,
    LicenseGrant,
    Manifest,
    Policy,
    Revocation,
    Seat,
)

logger = logging.getLogger(__name__)

CHUNK_SIZE = 5000
EXPIRING_WITHIN_DAYS = 30
ACTOR_NAME = "reconcile"

_DETECTED_TABLE = "health_detected"

# Every device that holds an active seat or has checked in, one row per device
# and product, with what reconciliation compares: its latest check-in, its
# seat, the revocations that concern it and the overlay release it was served.
FLEET_SQL = f"""
WITH seats AS (
    SELECT st.id AS seat_id, st.device_id, st.grant_id, st.activated_at, p.product_code
    FROM {Seat._meta.db_table} st
    JOIN {LicenseGrant._meta.db_table} g ON g.id = st.grant_id
    JOIN {Policy._meta.db_table} p ON p.id = g.policy_id
    WHERE st.status = 'active'
)
SELECT
    d.id, d.status, d.last_seen,
    COALESCE(s.product_code, a.product_code),
    s.checked_in_at, s.token_jti, s.manifest_version, s.overlay_release, s.client_version,
    a.seat_id, a.grant_id, a.activated_at,
    rd.created_at, rt.created_at, rg.created_at, it.grant_id,
    dr.served_number, dr.served_at
FROM {DeviceState._meta.db_table} s
FULL OUTER JOIN seats a ON a.device_id = s.device_id AND a.product_code = s.product_code
JOIN {Device._meta.db_table} d ON d.id = COALESCE(s.device_id, a.device_id)
LEFT JOIN {Revocation._meta.db_table} rd ON rd.kind = 'device' AND rd.device_id = d.id
LEFT JOIN {Revocation._meta.db_table} rt
    ON rt.kind = 'token' AND s.token_jti <> '' AND rt.token_jti = s.token_jti
LEFT JOIN {IssuedToken._meta.db_table} it ON s.token_jti <> '' AND it.jti = s.token_jti
LEFT JOIN {Revocation._meta.db_table} rg ON rg.kind = 'grant' AND rg.grant_id = it.grant_id
LEFT JOIN overlays_devicerelease dr
    ON dr.device_id = d.id AND dr.product_code = COALESCE(s.product_code, a.product_code)
"""


@dataclass(frozen=True)
class FleetRow:
    """One row of FLEET_SQL."""

    device_id: int
    device_status: str
    device_last_seen: dt.datetime | None
    product_code: str
    checked_in_at: dt.datetime | None
    token_jti: str | None
    manifest_version: int | None
    overlay_release: int | None
    client_version: str | None
    seat_id: int | None
    grant_id: int | None
    seat_activated_at: dt.datetime | None
    device_revoked_at: dt.datetime | None
    token_revoked_at: dt.datetime | None
    token_grant_revoked_at: dt.datetime | None
    token_grant_id: int | None
    served_release: int | None
    served_at: dt.datetime | None


@dataclass
class Targets:
    """What each product's devices should run by now, and the thresholds in force."""

    now: dt.datetime
    settings: HealthSettings
    manifest_version: dict[str, int] = field(default_factory=dict)
    overlay_release: dict[str, int] = field(default_factory=dict)

    @property
    def silent_before(self) -> dt.datetime:
        return self.now - dt.timedelta(hours=self.settings.silent_after_hours)

    @property
    def stale_before(self) -> dt.datetime:
        return self.now - dt.timedelta(hours=self.settings.stale_after_hours)

    @functools.cached_property
    def minimum_version(self) -> Version | None:
        if not self.settings.minimum_client_version:
            return None
        try:
            return Version(self.settings.minimum_client_version)
        except InvalidVersion:
            logger.warning(
                "health.minimum_version_invalid schema=%s value=%s",
                connection.schema_name,
                self.settings.minimum_client_version,
            )
            return None


@dataclass(frozen=True)
class ReconcileResult:
    devices: int
    detected: int
    opened: list[int]
    resolved: int
    seats_released: int = 0


def targets_load(*, now: dt.datetime, settings: HealthSettings) -> Targets:
    """Compute each product's required manifest version and overlay release.

    A version counts as required only once it is older than the tenant's
    `stale_after_hours`, so devices get time to fetch it. The head overlay
    release of a product in the middle of a staged rollout is not required
    of every device; those devices are checked against the release they were
    served instead.
    """
    from overlays.models import ReleaseHead, Rollout

    targets = Targets(now=now, settings=settings)
    required = (
        Manifest.objects.filter(created_at__lte=targets.stale_before)
        .values("product_code")
        .annotate(version=Max("version"))
        .values_list("product_code", "version")
    )
    targets.manifest_version = dict(required)

    heads = ReleaseHead.objects.filter(current__isnull=False).select_related("current")
    rolling = set(
        Rollout.objects.filter(status=Rollout.Status.ACTIVE).values_list("release_id", flat=True)
    )
    for head in heads:
        release = head.current
        if release is None or release.pk in rolling or release.created_at > targets.stale_before:
            continue
        targets.overlay_release[head.product_code] = release.number
    return targets


@functools.lru_cache(maxsize=4096)
def _parsed_version(text: str) -> Version | None:
    try:
        return Version(text)
    except InvalidVersion:
        return None


def _recent(moment: dt.datetime | None, targets: Targets) -> bool:
    return moment is not None and moment >= targets.silent_before


def device_drifts(row: FleetRow, targets: Targets) -> Iterator[Detected]:
    """Yield the drifts of one device and product."""
    device = f"device:{row.device_id}"
    subject = f"{device}:{row.product_code}"
    base = {"device": row.device_id, "product": row.product_code}
    checked_in = row.checked_in_at is not None

    if checked_in and _recent(row.checked_in_at, targets):
        revoked_at = row.device_revoked_at
        if row.device_status == Device.Status.REVOKED or revoked_at is not None:
            if revoked_at is None or row.checked_in_at > revoked_at:  # type: ignore[operator]  # checked above
                yield Detected(
                    "device_revoked_checking_in",
                    subject,
                    f"Device {row.device_id} was revoked but checked in for {row.product_code} "
                    f"at {row.checked_in_at:%Y-%m-%d %H:%M} UTC.",
                    {**base, "checked_in_at": row.checked_in_at.isoformat()},  # type: ignore[union-attr]
                )
        token_revoked_at = row.token_revoked_at or row.token_grant_revoked_at
        if token_revoked_at is not None and row.checked_in_at > token_revoked_at:  # type: ignore[operator]
            yield Detected(
                "token_revoked_in_use",
                f"token:{row.token_jti}",
                f"Device {row.device_id} still runs {row.product_code} with token "
                f"{row.token_jti}, which is revoked"
                + (f" with its grant {row.token_grant_id}." if row.token_revoked_at is None else "."),
                {**base, "token_jti": row.token_jti, "grant": row.token_grant_id},
            )

    if row.seat_id is not None:
        contacts = [t for t in (row.checked_in_at, row.device_last_seen, row.seat_activated_at) if t]
        last_contact = max(contacts) if contacts else None
        if last_contact is None or last_contact < targets.silent_before:
            hours = int((targets.now - last_contact).total_seconds() // 3600) if last_contact else None
            yield Detected(
                "device_silent",
                subject,
                f"Device {row.device_id} holds seat {row.seat_id} of grant {row.grant_id} but "
                f"has not been heard from for {hours} hours "
                f"(limit {targets.settings.silent_after_hours}).",
                {
                    **base,
                    "seat": row.seat_id,
                    "grant": row.grant_id,
                    "last_contact": last_contact.isoformat() if last_contact else None,
                },
            )

    if not checked_in or row.device_status == Device.Status.REVOKED:
        return

    required_manifest = targets.manifest_version.get(row.product_code)
    if required_manifest is not None and (row.manifest_version or 0) < required_manifest:
        yield Detected(
            "manifest_stale",
            subject,
            f"Device {row.device_id} runs manifest version {row.manifest_version} of "
            f"{row.product_code}; version {required_manifest} is current.",
            {**base, "running": row.manifest_version, "required": required_manifest},
        )

    required_release = targets.overlay_release.get(row.product_code)
    if row.served_release is not None and row.served_at is not None:
        if row.served_at <= targets.stale_before:
            required_release = row.served_release
        elif required_release is not None:
            required_release = min(required_release, row.served_release)
    if required_release is not None and (row.overlay_release or 0) < required_release:
        yield Detected(
            "overlay_release_stale",
            subject,
            f"Device {row.device_id} runs overlay release {row.overlay_release} of "
            f"{row.product_code}; it should run release {required_release}.",
            {**base, "running": row.overlay_release, "required": required_release},
        )

    minimum = targets.minimum_version
    if minimum is not None and row.client_version:
        running = _parsed_version(row.client_version)
        if running is None or running < minimum:
            yield Detected(
                "client_version_below_minimum",
                subject,
                f"Device {row.device_id} runs client version {row.client_version}; "
                f"the minimum is {minimum}.",
                {**base, "running": row.client_version, "minimum": str(minimum)},
            )


def fleet_rows(chunk_size: int = CHUNK_SIZE) -> Iterator[FleetRow]:
    """Stream FLEET_SQL through a server-side cursor; needs an open transaction."""
    with connection.chunked_cursor() as cursor:
        cursor.execute(FLEET_SQL)
        while True:
            rows = cursor.fetchmany(chunk_size)
            if not rows:
                return
            for values in rows:
                yield FleetRow(*values)


def grant_drifts(targets: Targets) -> Iterator[Detected]:
    """Yield seat overuse and renewal risk of the tenant's grants."""
    now = targets.now
    grants = LicenseGrant.objects.filter(status=LicenseGrant.Status.ACTIVE).select_related("policy")
    for grant in grants.annotate(
        seats_active=Count("seats", filter=Q(seats__status=Seat.Status.ACTIVE), distinct=True)
    ):
        in_use = grant.seats_active + _devices_without_seat(grant, targets)
        subject = f"grant:{grant.pk}"
        if in_use > grant.seat_count:
            yield Detected(
                "grant_over_seats",
                subject,
                f"{in_use} devices use grant {grant.pk} ({grant.policy.product_code}), which has "
                f"{grant.seat_count} seats.",
                {"grant": grant.pk, "in_use": in_use, "seat_count": grant.seat_count},
            )
        grace_end = grant.term_end + dt.timedelta(days=grant.policy.grace_days)
        if grant.term_end <= now < grace_end:
            yield Detected(
                "grant_in_grace",
                subject,
                f"Grant {grant.pk} ({grant.policy.product_code}) ended on "
                f"{grant.term_end:%Y-%m-%d}; its grace period ends on {grace_end:%Y-%m-%d}.",
                {"grant": grant.pk, "term_end": grant.term_end.isoformat()},
            )
        elif now < grant.term_end <= now + dt.timedelta(days=EXPIRING_WITHIN_DAYS):
            days = (grant.term_end - now).days
            yield Detected(
                "grant_expiring",
                subject,
                f"Grant {grant.pk} ({grant.policy.product_code}) ends in {days} days, on "
                f"{grant.term_end:%Y-%m-%d}.",
                {"grant": grant.pk, "term_end": grant.term_end.isoformat(), "days": days},
            )


def _devices_without_seat(grant: LicenseGrant, targets: Targets) -> int:
    """Count devices that checked in recently with a token of the grant but hold no seat of it."""
    return (
        DeviceState.objects.filter(
            checked_in_at__gte=targets.silent_before,
            token_jti__in=IssuedToken.objects.filter(grant=grant).values("jti"),
        )
        .exclude(
            device_id__in=Seat.objects.filter(grant=grant, status=Seat.Status.ACTIVE).values(
                "device_id"
            )
        )
        .exclude(decision__in=("revoked", "expired", "invalid"))
        .values("device_id")
        .distinct()
        .count()
    )


def release_drifts() -> Iterator[Detected]:
    """Yield the current overlay releases that devices failed to apply."""
    from overlays.models import ApplyReport, ReleaseHead

    current = ReleaseHead.objects.filter(current__isnull=False).values_list("current_id", flat=True)
    tallies = (
        ApplyReport.objects.filter(release_id__in=current)
        .values("release_id", "release__product_code", "release__number")
        .annotate(total=Count("id"), failed=Count("id", filter=Q(ok=False)))
        .filter(failed__gt=0)
    )
    for tally in tallies:
        codes = list(
            ApplyReport.objects.filter(release_id=tally["release_id"], ok=False)
            .values("code")
            .annotate(n=Count("id"))
            .order_by("-n")
            .values_list("code", "n")[:5]
        )
        product, number = tally["release__product_code"], tally["release__number"]
        yield Detected(
            "release_apply_failed",
            f"release:{product}:{number}",
            f"{tally['failed']} of {tally['total']} devices failed to apply {product} release "
            f"{number}; most frequent codes: {', '.join(code or '-' for code, _ in codes)}.",
            {
                "product": product,
                "release": number,
                "failed": tally["failed"],
                "reported": tally["total"],
                "codes": dict(codes),
            },
        )


_CREATE_DETECTED = f"""
CREATE TEMPORARY TABLE {_DETECTED_TABLE} (
    code varchar(64) NOT NULL,
    subject varchar(200) NOT NULL,
    severity varchar(16) NOT NULL,
    affected jsonb NOT NULL,
    summary varchar(500) NOT NULL,
    remediation varchar(500) NOT NULL
) ON COMMIT DROP
"""

_INSERT_NEW = f"""
INSERT INTO {Finding._meta.db_table} (
    code, subject, severity, affected, summary, remediation, first_seen, state
)
SELECT DISTINCT ON (d.code, d.subject)
    d.code, d.subject, d.severity, d.affected, d.summary, d.remediation, %(now)s, 'open'
FROM {_DETECTED_TABLE} d
WHERE NOT EXISTS (
    SELECT 1 FROM {Finding._meta.db_table} f
    WHERE f.code = d.code AND f.subject = d.subject AND f.state <> 'resolved'
)
ORDER BY d.code, d.subject
ON CONFLICT DO NOTHING
RETURNING id
"""

_RESOLVE_GONE = f"""
UPDATE {Finding._meta.db_table} f SET state = 'resolved', resolved_at = %(now)s
WHERE f.state <> 'resolved' AND NOT EXISTS (
    SELECT 1 FROM {_DETECTED_TABLE} d WHERE d.code = f.code AND d.subject = f.subject
)
RETURNING id
"""


def _copy_detected(cursor: Any, batch: list[Detected]) -> None:
    import json

    with cursor.copy(
        f"COPY {_DETECTED_TABLE} (code, subject, severity, affected, summary, remediation) "
        "FROM STDIN"
    ) as copy:
        for item in batch:
            copy.write_row(
                (
                    item.code,
                    item.subject[:200],
                    item.severity,
                    json.dumps(item.affected),
                    item.summary[:500],
                    item.remediation[:500],
                )
            )


def _history_write(ids: Iterable[int], *, reason: str, update: bool) -> None:
    """Write history rows for findings changed by SQL, which simple-history cannot see."""
    actor = system_user(ACTOR_NAME)
    ids = list(ids)
    for start in range(0, len(ids), 2000):
        chunk = list(Finding.objects.filter(pk__in=ids[start : start + 2000]))
        Finding.history.bulk_history_create(  # type: ignore[attr-defined]  # simple-history manager
            chunk, update=update, default_user=actor, default_change_reason=reason
        )


def findings_reconcile(*, now: dt.datetime | None = None) -> ReconcileResult:
    """Compare the tenant's catalog with its devices' check-ins and update its findings.

    Returns the ids of the findings opened in this run (alerts go out for
    those) and the counts of devices read and findings resolved.
    """
    now = now or timezone.now()
    settings = health_settings_get()
    targets = targets_load(now=now, settings=settings)
    devices = detected = 0

    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(
            "SELECT pg_advisory_xact_lock(hashtext(%s))", [f"{connection.schema_name}:reconcile"]
        )
        # ON COMMIT DROP does not fire when the caller's transaction is still
        # open (tests, nested calls), so drop any leftover table explicitly.
        cursor.execute(f"DROP TABLE IF EXISTS pg_temp.{_DETECTED_TABLE}")
        cursor.execute(_CREATE_DETECTED)

        batch: list[Detected] = []
        for row in fleet_rows():
            devices += 1
            batch.extend(device_drifts(row, targets))
            if len(batch) >= CHUNK_SIZE:
                _copy_detected(cursor, batch)
                detected += len(batch)
                batch = []
        batch.extend(grant_drifts(targets))
        batch.extend(release_drifts())
        _copy_detected(cursor, batch)
        detected += len(batch)

        cursor.execute(f"CREATE INDEX ON {_DETECTED_TABLE} (code, subject)")
        cursor.execute(f"ANALYZE {_DETECTED_TABLE}")
        cursor.execute(_INSERT_NEW, {"now": now})
        opened = [row[0] for row in cursor.fetchall()]
        cursor.execute(_RESOLVE_GONE, {"now": now})
        resolved = [row[0] for row in cursor.fetchall()]

        _history_write(opened, reason="found by reconciliation", update=False)
        _history_write(resolved, reason="drift no longer seen by reconciliation", update=True)
        cursor.execute(f"DROP TABLE pg_temp.{_DETECTED_TABLE}")

    result = ReconcileResult(
        devices=devices, detected=detected, opened=opened, resolved=len(resolved)
    )
    if settings.release_seat_when_silent:
        result = ReconcileResult(**{**result.__dict__, "seats_released": silent_seats_release()})

    with transaction.atomic():
        decision_record(
            event="health.reconcile",
            outcome="done",
            actor=system_actor(ACTOR_NAME),
            data={
                "devices": result.devices,
                "detected": result.detected,
                "opened": len(result.opened),
                "resolved": result.resolved,
                "seats_released": result.seats_released,
            },
        )
    logger.info(
        "health.reconcile schema=%s devices=%d detected=%d opened=%d resolved=%d released=%d",
        connection.schema_name,
        result.devices,
        result.detected,
        len(result.opened),
        result.resolved,
        result.seats_released,
    )
    return result


def silent_seats_release() -> int:
    """Release the seats named by open `device_silent` findings; return how many.

    Each release goes through licensing's `seat_force_release`, which records
    the reason on the seat and in the decision log. The finding resolves on
    the next run, because the device then holds no seat.
    """
    from licensing.services import seat_force_release

    actor = system_user(ACTOR_NAME)
    released = 0
    findings = (
        Finding.objects.filter(code="device_silent")
        .exclude(state=Finding.State.RESOLVED)
        .values_list("affected", flat=True)
    )
    hours = health_settings_get().silent_after_hours
    for affected in findings.iterator(chunk_size=CHUNK_SIZE):
        seat_id = affected.get("seat")
        if not Seat.objects.filter(pk=seat_id, status=Seat.Status.ACTIVE).exists():
            continue
        seat_force_release(
            seat_id=seat_id,
            reason=(
                f"device {affected.get('device')} silent for more than {hours} hours "
                f"(last contact {affected.get('last_contact') or 'never'})"
            ),
            acting_user=actor,
        )
        released += 1
    return released
