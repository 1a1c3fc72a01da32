"""Tenant overlays, releases, rollouts and what devices report back (tenant schema).

Admins edit draft layers (`TenantOverlay`, `GroupOverlay`); publishing
validates them and freezes them, with the platform defaults and the schema
version, into an immutable, numbered, content-addressed `Release`. A
`Rollout` decides which devices get the newest release; the others keep the
release it replaces (`Release.base`). `ReleaseHead` is the one row per
product that every publish and rollback locks.
"""

from typing import ClassVar

from django.conf import settings
from django.db import models
from simple_history.models import HistoricalRecords

from licensing.models import Device, DeviceGroup


class TenantOverlay(models.Model):
    """The tenant's draft merge patch over the product's global defaults."""

    product_code = models.CharField(max_length=63, unique=True)
    patch = models.JSONField(default=dict, blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    history = HistoricalRecords()

    def __str__(self) -> str:
        return f"{self.product_code} tenant overlay"


class GroupOverlay(models.Model):
    """A device group's draft merge patch, applied after the tenant overlay."""

    product_code = models.CharField(max_length=63)
    group = models.ForeignKey(DeviceGroup, on_delete=models.CASCADE, related_name="overlays")
    position = models.PositiveIntegerField(
        default=100, help_text="Group layers apply in ascending position, then by group name."
    )
    patch = models.JSONField(default=dict, blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    history = HistoricalRecords()

    class Meta:
        ordering: ClassVar = ["product_code", "position", "group__name"]
        constraints: ClassVar = [
            models.UniqueConstraint(
                fields=["product_code", "group"],
                name="overlays_group_overlay_unique",
                violation_error_message="This group already has an overlay for the product.",
            )
        ]

    def __str__(self) -> str:
        return f"{self.product_code} overlay of group {self.group}"


class Release(models.Model):
    """An immutable, numbered snapshot of every layer of a product's overlay."""

    class Kind(models.TextChoices):
        PUBLISH = "publish", "Publish"
        ROLLBACK = "rollback", "Rollback"
        AUTO_ROLLBACK = "auto_rollback", "Automatic rollback"

    product_code = models.CharField(max_length=63)
    number = models.PositiveIntegerField()
    sha256 = models.CharField(
        max_length=64, help_text="SHA-256 of the RFC 8785 canonical JSON of the content."
    )
    content = models.JSONField(editable=False)
    schema_version = models.PositiveIntegerField()
    kind = models.CharField(max_length=16, choices=Kind.choices, default=Kind.PUBLISH)
    restores_number = models.PositiveIntegerField(
        null=True, blank=True, help_text="For a rollback, the release whose content it restores."
    )
    base = models.ForeignKey(
        "self",
        null=True,
        blank=True,
        # Releases are never deleted while the head exists; PROTECT keeps the chain intact.
        on_delete=models.PROTECT,
        related_name="+",
        help_text="The release that devices outside this release's rollout keep.",
    )
    reason = models.CharField(max_length=500, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )

    history = HistoricalRecords()

    class Meta:
        ordering: ClassVar = ["product_code", "-number"]
        constraints: ClassVar = [
            models.UniqueConstraint(
                fields=["product_code", "number"],
                name="overlays_release_unique_number",
                violation_error_message="A release with this number already exists.",
            )
        ]

    def __str__(self) -> str:
        return f"{self.product_code} release {self.number}"


class ReleaseHead(models.Model):
    """The current release of a product; publishes and rollbacks lock this row."""

    product_code = models.CharField(max_length=63, unique=True)
    current = models.ForeignKey(
        Release, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    updated_at = models.DateTimeField(auto_now=True)

    history = HistoricalRecords()

    def __str__(self) -> str:
        number = self.current.number if self.current else "none"
        return f"{self.product_code} at release {number}"


class Rollout(models.Model):
    """The staged rollout of one release: its steps and how far it has gone."""

    class Status(models.TextChoices):
        ACTIVE = "active", "Active"
        COMPLETE = "complete", "Complete"
        SUPERSEDED = "superseded", "Superseded"

    release = models.OneToOneField(Release, on_delete=models.CASCADE, related_name="rollout")
    steps = models.JSONField(help_text='For example [{"percent": 10}, {"percent": 100}].')
    promote_every_minutes = models.PositiveIntegerField(
        null=True,
        blank=True,
        help_text="Promote on schedule after this many minutes; empty: manual.",
    )

    step_index = models.PositiveIntegerField(default=0)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.ACTIVE)
    step_started_at = models.DateTimeField()

    history = HistoricalRecords()

    def __str__(self) -> str:
        return f"rollout of {self.release} at step {self.step_index + 1}/{len(self.steps)}"


class MaintenanceWindow(models.Model):
    """A weekly UTC time range in which scheduled rollout promotions may run."""

    weekdays = models.JSONField(
        default=list, help_text="Days of the week, 0 Monday to 6 Sunday; empty: every day."
    )
    start_time = models.TimeField(help_text="UTC.")
    end_time = models.TimeField(help_text="UTC; earlier than the start means past midnight.")

    history = HistoricalRecords()

    def __str__(self) -> str:
        return (
            f"{self.start_time:%H:%M}-{self.end_time:%H:%M} UTC on {self.weekdays or 'every day'}"
        )


class OverlaySettings(models.Model):
    """The tenant's thresholds for automatic rollback (one row)."""

    failure_threshold_percent = models.PositiveSmallIntegerField(
        default=20, help_text="Roll back when this share of apply reports are failures."
    )
    failure_min_reports = models.PositiveIntegerField(
        default=5, help_text="Judge a release only after this many apply reports."
    )

    history = HistoricalRecords()

    class Meta:
        verbose_name_plural = "overlay settings"

    def __str__(self) -> str:
        return f"roll back above {self.failure_threshold_percent} % failures"


class ReleaseVariant(models.Model):
    """The signed effective configuration of a release for one group combination.

    A cache derived from the immutable release, so it keeps no history.
    """

    release = models.ForeignKey(Release, on_delete=models.CASCADE, related_name="variants")
    combination = models.CharField(
        max_length=200, help_text="Ids of the device's groups, comma separated; empty: none."
    )
    config = models.JSONField()
    provenance = models.JSONField()
    config_sha256 = models.CharField(max_length=64)
    jws = models.TextField()
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints: ClassVar = [
            models.UniqueConstraint(
                fields=["release", "combination"], name="overlays_variant_unique_combination"
            )
        ]

    def __str__(self) -> str:
        return f"{self.release} for groups [{self.combination}]"


class DeviceRelease(models.Model):
    """The release a device was last served and the last one it applied."""

    device = models.ForeignKey(Device, on_delete=models.CASCADE, related_name="overlay_releases")
    product_code = models.CharField(max_length=63)
    served_number = models.PositiveIntegerField(null=True, blank=True)
    served_at = models.DateTimeField(null=True, blank=True)
    applied_number = models.PositiveIntegerField(null=True, blank=True)
    applied_at = models.DateTimeField(null=True, blank=True)

    history = HistoricalRecords()

    class Meta:
        constraints: ClassVar = [
            models.UniqueConstraint(
                fields=["device", "product_code"], name="overlays_device_release_unique"
            )
        ]

    def __str__(self) -> str:
        return f"device {self.device_id} on {self.product_code} release {self.applied_number}"


class ApplyReport(models.Model):
    """A device's report of applying a release; one per device and release."""

    device = models.ForeignKey(Device, on_delete=models.CASCADE, related_name="apply_reports")
    release = models.ForeignKey(Release, on_delete=models.CASCADE, related_name="apply_reports")
    ok = models.BooleanField()
    code = models.CharField(max_length=64, blank=True, help_text="The client's failure code.")
    created_at = models.DateTimeField(auto_now_add=True)

    history = HistoricalRecords()

    class Meta:
        constraints: ClassVar = [
            models.UniqueConstraint(
                fields=["device", "release"], name="overlays_apply_report_unique"
            )
        ]

    def __str__(self) -> str:
        return f"device {self.device_id} {'applied' if self.ok else 'failed'} {self.release}"


class OverlayFinding(models.Model):
    """Something about overlays that an IT admin should look at, such as an automatic rollback."""

    product_code = models.CharField(max_length=63)
    release = models.ForeignKey(
        Release, null=True, blank=True, on_delete=models.SET_NULL, related_name="findings"
    )
    kind = models.CharField(max_length=64)
    summary = models.CharField(max_length=500)
    data = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    resolved_at = models.DateTimeField(null=True, blank=True)

    history = HistoricalRecords()

    class Meta:
        ordering: ClassVar = ["-created_at"]

    def __str__(self) -> str:
        return self.summary
