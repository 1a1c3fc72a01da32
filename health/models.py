"""License health of one tenant: device check-ins, their daily roll-ups, findings, settings.

Check-in rows are device telemetry written at fleet scale (every device,
every hour), so they keep no django-simple-history tables: a history row per
check-in would double the write load and record nothing an admin changed.
`DeviceState` holds the latest check-in per device and product (one upserted
row), `CheckIn` the raw reports until `checkins_roll_up` folds whole days into
`CheckInDaily`. Findings and settings, which admins and tasks change, keep
history.
"""

from typing import ClassVar

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import models
from django.db.models import Q
from simple_history.models import HistoricalRecords

from licensing.models import Device, LicenseGrant


class HealthSettings(models.Model):
    """The tenant's health thresholds and alert targets (one row)."""

    silent_after_hours = models.PositiveIntegerField(
        default=72, help_text="Hours without a check-in after which a device with a seat is silent."
    )
    release_seat_when_silent = models.BooleanField(
        default=False, help_text="Release the seat of a silent device during reconciliation."
    )
    minimum_client_version = models.CharField(
        max_length=32,
        blank=True,
        help_text="Lowest client version allowed, for example 2.4.0; empty: no minimum.",
    )
    stale_after_hours = models.PositiveIntegerField(
        default=24,
        help_text="Hours a device may run an older manifest or overlay release after a new one.",
    )
    alert_webhook_url = models.URLField(
        blank=True,
        help_text="HTTPS endpoint that receives critical alerts signed with the tenant key.",
    )
    alert_repeat_hours = models.PositiveIntegerField(
        default=24, help_text="Hours before an alert for the same open finding is sent again."
    )
    checkin_retention_days = models.PositiveIntegerField(
        default=7,
        help_text="Days raw check-ins are kept after they were rolled up into daily totals.",
    )

    last_digest_at = models.DateTimeField(null=True, blank=True, editable=False)

    history = HistoricalRecords(excluded_fields=["last_digest_at"])

    class Meta:
        verbose_name_plural = "health settings"
        constraints: ClassVar = [
            models.CheckConstraint(
                condition=Q(silent_after_hours__gte=1) & Q(alert_repeat_hours__gte=1),
                name="health_settings_hours_positive",
                violation_error_message=(
                    "silent_after_hours and alert_repeat_hours must be at least 1."
                ),
            )
        ]

    def __str__(self) -> str:
        return f"silent after {self.silent_after_hours} h"

    def clean(self) -> None:
        from packaging.version import InvalidVersion, Version

        if self.minimum_client_version:
            try:
                Version(self.minimum_client_version)
            except InvalidVersion as error:
                raise ValidationError(
                    {
                        "minimum_client_version": (
                            f"{self.minimum_client_version!r} is not a version number; "
                            "enter one such as 2.4.0."
                        )
                    }
                ) from error


class DeviceState(models.Model):
    """The latest check-in of one device for one product, upserted on every check-in."""

    device = models.ForeignKey(Device, on_delete=models.CASCADE, related_name="+")
    product_code = models.CharField(max_length=63)
    token_jti = models.CharField(max_length=64, blank=True)
    manifest_version = models.PositiveIntegerField(null=True)
    overlay_release = models.PositiveIntegerField(null=True)
    decision = models.CharField(max_length=16)
    reason = models.CharField(max_length=64, blank=True)
    client_version = models.CharField(max_length=32)
    validation_ms = models.FloatField(null=True)
    startup_ms = models.FloatField(null=True)
    apply_release = models.PositiveIntegerField(null=True)
    apply_ok = models.BooleanField(null=True)
    apply_code = models.CharField(max_length=64, blank=True)
    checked_in_at = models.DateTimeField()

    class Meta:
        constraints: ClassVar = [
            models.UniqueConstraint(
                fields=["device", "product_code"], name="health_devicestate_one_per_product"
            )
        ]

    def __str__(self) -> str:
        return (
            f"device {self.device_id} on {self.product_code} at {self.checked_in_at:%Y-%m-%d %H:%M}"
        )


class CheckIn(models.Model):
    """One raw check-in, kept until it is rolled up and past retention."""

    device_id = models.BigIntegerField()
    product_code = models.CharField(max_length=63)
    decision = models.CharField(max_length=16)
    client_version = models.CharField(max_length=32)
    validation_ms = models.FloatField(null=True)
    startup_ms = models.FloatField(null=True)
    apply_failed = models.BooleanField(default=False)
    received_at = models.DateTimeField(db_index=True)

    def __str__(self) -> str:
        return f"check-in of device {self.device_id} at {self.received_at:%Y-%m-%d %H:%M}"


class CheckInDaily(models.Model):
    """Check-in totals of one product on one UTC day."""

    day = models.DateField()
    product_code = models.CharField(max_length=63)
    checkins = models.PositiveIntegerField()
    devices = models.PositiveIntegerField()
    decisions = models.JSONField(default=dict, help_text="Check-ins per client decision.")
    apply_failures = models.PositiveIntegerField(default=0)
    validation_ms_avg = models.FloatField(null=True)
    startup_ms_avg = models.FloatField(null=True)

    class Meta:
        ordering: ClassVar = ["-day", "product_code"]
        verbose_name_plural = "daily check-in totals"
        constraints: ClassVar = [
            models.UniqueConstraint(fields=["day", "product_code"], name="health_daily_unique_day")
        ]

    def __str__(self) -> str:
        return f"{self.product_code} on {self.day}: {self.checkins} check-ins"


class SeatUsageDaily(models.Model):
    """Active seats of one grant on one UTC day, for the utilisation chart."""

    day = models.DateField()
    grant = models.ForeignKey(LicenseGrant, on_delete=models.CASCADE, related_name="+")
    seats_active = models.PositiveIntegerField()
    seat_count = models.PositiveIntegerField()

    class Meta:
        ordering: ClassVar = ["day"]
        constraints: ClassVar = [
            models.UniqueConstraint(fields=["day", "grant"], name="health_seatusage_unique_day")
        ]

    def __str__(self) -> str:
        return f"grant {self.grant_id} on {self.day}: {self.seats_active}/{self.seat_count}"


class Finding(models.Model):
    """A difference between what should be deployed and what devices report.

    `code` and `subject` identify the drift. At most one finding per code and
    subject is open or acknowledged at a time (a partial unique index), so a
    rerun of reconciliation finds the existing row instead of adding one.
    """

    class Severity(models.TextChoices):
        CRITICAL = "critical", "Critical"
        WARNING = "warning", "Warning"
        INFO = "info", "Info"

    class State(models.TextChoices):
        OPEN = "open", "Open"
        ACKNOWLEDGED = "acknowledged", "Acknowledged"
        RESOLVED = "resolved", "Resolved"

    code = models.CharField(max_length=64)
    severity = models.CharField(max_length=16, choices=Severity.choices)
    subject = models.CharField(max_length=200, help_text="The affected object, e.g. device:42.")
    affected = models.JSONField(default=dict, help_text="Ids and values of the affected objects.")
    summary = models.CharField(max_length=500)
    remediation = models.CharField(max_length=500)
    first_seen = models.DateTimeField()

    state = models.CharField(max_length=16, choices=State.choices, default=State.OPEN)
    acknowledged_at = models.DateTimeField(null=True, blank=True)
    acknowledged_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    resolved_at = models.DateTimeField(null=True, blank=True)
    alerted_at = models.DateTimeField(null=True, blank=True)
    digested_at = models.DateTimeField(null=True, blank=True)

    history = HistoricalRecords()

    class Meta:
        ordering: ClassVar = ["-first_seen"]
        constraints: ClassVar = [
            models.UniqueConstraint(
                fields=["code", "subject"],
                condition=~Q(state="resolved"),
                name="health_finding_one_unresolved",
                violation_error_message="This drift already has an unresolved finding.",
            )
        ]
        indexes: ClassVar = [
            models.Index(fields=["state", "severity"], name="health_finding_state_sev"),
            models.Index(fields=["code", "subject"], name="health_finding_code_subject"),
        ]

    def __str__(self) -> str:
        return f"{self.severity} {self.code} on {self.subject} ({self.state})"
