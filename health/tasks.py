"""Periodic health work per tenant; each task calls one function that a command also calls."""

import logging

from celery import shared_task

from health.alerts import findings_alert_critical, findings_digest
from health.checkins import checkins_roll_up, seat_usage_snapshot
from health.reconcile import findings_reconcile

logger = logging.getLogger(__name__)


@shared_task(name="health.reconcile", time_limit=900, soft_time_limit=840)
def reconcile() -> dict[str, int]:
    """Reconcile the tenant's findings, then alert about critical ones at once."""
    result = findings_reconcile()
    alert = findings_alert_critical()
    return {
        "devices": result.devices,
        "opened": result.opened,
        "resolved": result.resolved,
        "seats_released": result.seats_released,
        "alerted": alert.findings,
    }


@shared_task(name="health.roll_up", time_limit=600)
def roll_up() -> int:
    """Fold finished days of raw check-ins into daily totals and snapshot seat use."""
    seat_usage_snapshot()
    return checkins_roll_up()


@shared_task(name="health.digest", time_limit=300)
def digest() -> int:
    """Send the daily digest of warnings."""
    return findings_digest()
