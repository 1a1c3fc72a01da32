"""The default Celery beat schedule, stored in django-celery-beat's tables.

Operators see and change these entries in the platform admin (Periodic
tasks). `schedule_sync` only creates missing entries and never overwrites an
entry an operator edited or disabled.
"""

import json
import logging
from dataclasses import dataclass

from django.conf import settings
from django_celery_beat.models import CrontabSchedule, IntervalSchedule, PeriodicTask

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class ScheduledTenantTask:
    name: str  # the entry's unique name in the admin
    task: str  # the per-tenant task sent to every active tenant
    every_minutes: int | None = None
    daily_at_hour: int | None = None


# Apps add their periodic per-tenant work here.
DEFAULT_SCHEDULE: list[ScheduledTenantTask] = []

# Audit: chaining of entries that no append chained (every minute), signed
# checkpoints of each decision-log chain, the retention purge at 02:00 UTC
# and a full chain verification at 03:00 UTC.
DEFAULT_SCHEDULE += [
    ScheduledTenantTask("audit: chain entries", "audit.chain", every_minutes=1),
    ScheduledTenantTask(
        "audit: checkpoint",
        "audit.checkpoint",
        every_minutes=settings.KEYPLANE_AUDIT_CHECKPOINT_MINUTES,
    ),
    ScheduledTenantTask("audit: retention purge", "audit.purge", daily_at_hour=2),
    ScheduledTenantTask("audit: verify chain", "audit.verify", daily_at_hour=3),
]

# Approvals: the daily renewal scan at 01:00 UTC; reminders, alerts, request
# expiry and grace/expiry of lapsed grants every 15 minutes; approved requests
# whose time or maintenance window has come every 5 minutes.
DEFAULT_SCHEDULE += [
    ScheduledTenantTask("approvals: renewal scan", "approvals.renewals_scan", daily_at_hour=1),
    ScheduledTenantTask("approvals: escalation and expiry", "approvals.sweep", every_minutes=15),
    ScheduledTenantTask("approvals: scheduled application", "approvals.apply_due", every_minutes=5),
]

# Overlays: promote scheduled rollouts that are due, inside maintenance windows.
DEFAULT_SCHEDULE += [
    ScheduledTenantTask("overlays: advance rollouts", "overlays.rollouts_advance", every_minutes=5),
]

# Health: hourly reconciliation (critical alerts go out at once), the check-in
# roll-up and seat-use snapshot at 01:00 UTC and the warning digest at 07:00 UTC.
DEFAULT_SCHEDULE += [
    ScheduledTenantTask("health: reconcile", "health.reconcile", every_minutes=60),
    ScheduledTenantTask("health: check-in roll-up", "health.roll_up", daily_at_hour=1),
    ScheduledTenantTask("health: warning digest", "health.digest", daily_at_hour=7),
]


# Licensing: retire signing keys past their window, purge idempotency records.
DEFAULT_SCHEDULE += [
    ScheduledTenantTask("licensing: sweep", "licensing.sweep", every_minutes=60),
]


def schedule_sync() -> int:
    """Create the missing default entries; return how many were created."""
    created = 0
    for entry in DEFAULT_SCHEDULE:
        if PeriodicTask.objects.filter(name=entry.name).exists():
            continue
        fields: dict[str, object] = {
            "name": entry.name,
            "task": "portal.for_each_tenant",
            "args": json.dumps([entry.task]),
        }
        if entry.every_minutes is not None:
            interval, _ = IntervalSchedule.objects.get_or_create(
                every=entry.every_minutes, period=IntervalSchedule.MINUTES
            )
            fields["interval"] = interval
        else:
            crontab, _ = CrontabSchedule.objects.get_or_create(
                minute="0", hour=str(entry.daily_at_hour or 0), timezone="UTC"
            )
            fields["crontab"] = crontab
        PeriodicTask.objects.create(**fields)
        created += 1
        logger.info("schedule.created name=%s task=%s", entry.name, entry.task)
    return created
