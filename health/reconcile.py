"""Reconciliation: compare what the catalog specifies with what devices report.

One pass per tenant:

1. Read the small per-product targets (manifest version and overlay release
   each device should run by now) and the tenant's settings.
2. Stream every device that has an active seat or has checked in (one query over a
   server-side cursor, `CHUNK_SIZE` rows at a time) and check each row
   against the device rules. The drifts found are copied into a temporary
   table chunk by chunk, so memory stays flat however large the fleet is.
3. Add the per-grant and per-release drifts (seat overuse, apply failures,
   renewal risk), which come from small aggregate queries.
4. Merge in the database: insert a finding for each new drift (the partial
   unique index on code and subject makes a rerun insert nothing), resolve
   every unresolved finding whose drift was not seen, and write history rows
   for both.
5. After the commit, release the seats of silent devices if the tenant's
   settings enable it, each release in its own short transaction.

Steps 2 to 4 run in one transaction under a per-tenant advisory lock, so
two concurrent runs of the same tenant cannot both insert or resolve.
"""

import datetime as dt
import json
import logging
from collections.abc import Iterator
from dataclasses import dataclass, replace
from typing import Any

from django.db import connection, transaction
from django.utils import timezone

from audit.actors import system_actor, system_user
from audit.services import decision_record
from health.checkins import health_settings_get
from health.drifts import FleetRow, device_drifts, grant_drifts, release_drifts, targets_load
from health.findings import Detected
from health.models import DeviceState, Finding
from licensing.models import Device, IssuedToken, LicenseGrant, Policy, Revocation, Seat
from overlays.models import DeviceRelease

logger = logging.getLogger(__name__)

CHUNK_SIZE = 5000
ACTOR_NAME = "reconcile"

_DETECTED_TABLE = "health_detected"

# Every device that has an active seat or has checked in, one row per device
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
LEFT JOIN {DeviceRelease._meta.db_table} dr
    ON dr.device_id = d.id AND dr.product_code = COALESCE(s.product_code, a.product_code)
"""  # noqa: S608  # table names from model metadata; values are bound parameters


@dataclass(frozen=True)
class ReconcileResult:
    devices: int
    detected: int
    opened: int
    resolved: int
    seats_released: int = 0


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

_FINDING_COLUMNS = ", ".join(field.column for field in Finding._meta.concrete_fields)
_HISTORY_INSERT = f"""
INSERT INTO {Finding.history.model._meta.db_table} (
    {_FINDING_COLUMNS}, history_date, history_change_reason, history_type, history_user_id
)
SELECT {_FINDING_COLUMNS}, %(now)s, %(reason)s, %(kind)s, %(user)s FROM changed
"""  # noqa: S608  # names from model metadata; values are bound parameters

# Each statement changes findings and writes their history rows in the same
# statement (simple-history cannot see SQL writes), so no id list is loaded.
_INSERT_NEW = f"""
WITH changed AS (
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
    RETURNING *
)
{_HISTORY_INSERT}
"""  # noqa: S608  # names from model metadata; values are bound parameters

_RESOLVE_GONE = f"""
WITH changed AS (
    UPDATE {Finding._meta.db_table} f SET state = 'resolved', resolved_at = %(now)s
    WHERE f.state <> 'resolved' AND NOT EXISTS (
        SELECT 1 FROM {_DETECTED_TABLE} d WHERE d.code = f.code AND d.subject = f.subject
    )
    RETURNING f.*
)
{_HISTORY_INSERT}
"""  # noqa: S608  # names from model metadata; values are bound parameters


def _copy_detected(cursor: Any, batch: list[Detected]) -> None:
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


def findings_reconcile(*, now: dt.datetime | None = None) -> ReconcileResult:
    """Compare the tenant's catalog with its devices' check-ins and update its findings.

    Returns the counts of devices read, drifts detected and findings opened
    and resolved.
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
        stamp = {"now": now, "user": system_user(ACTOR_NAME).pk}
        cursor.execute(_INSERT_NEW, {**stamp, "reason": "found by reconciliation", "kind": "+"})
        opened = cursor.rowcount
        cursor.execute(
            _RESOLVE_GONE,
            {**stamp, "reason": "drift no longer seen by reconciliation", "kind": "~"},
        )
        resolved = cursor.rowcount
        cursor.execute(f"DROP TABLE pg_temp.{_DETECTED_TABLE}")

    result = ReconcileResult(devices=devices, detected=detected, opened=opened, resolved=resolved)
    if settings.release_seat_when_silent:
        result = replace(result, seats_released=silent_seats_release())

    with transaction.atomic():
        decision_record(
            event="health.reconcile",
            outcome="done",
            actor=system_actor(ACTOR_NAME),
            data={
                "devices": result.devices,
                "detected": result.detected,
                "opened": result.opened,
                "resolved": result.resolved,
                "seats_released": result.seats_released,
            },
        )
    logger.info(
        "health.reconcile schema=%s devices=%d detected=%d opened=%d resolved=%d released=%d",
        connection.schema_name,
        result.devices,
        result.detected,
        result.opened,
        result.resolved,
        result.seats_released,
    )
    return result


def silent_seats_release() -> int:
    """Release the seats named by open `device_silent` findings; return how many.

    Each release goes through licensing's `seat_force_release`, which records
    the reason on the seat and in the decision log. The finding resolves on
    the next run, because the device then has no active seat.
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
