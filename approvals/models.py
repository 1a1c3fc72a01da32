"""Change requests, their approvals, the tenant's approval settings and term transitions.

A `ChangeRequest` records one gated action: what will change (`payload`,
with a rendered `before`/`after`), why, who asked, and the fields of every
object it was based on (`base`). Applying it after those objects changed
fails instead of overwriting newer values. `Approval` rows are the
approvers' decisions; editing a request voids them. `TermTransition` records
that a grant's term entered its grace period or expired, once per term.
"""

from typing import ClassVar

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import models
from django.db.models import Q
from simple_history.models import HistoricalRecords

from audit.history import history_user

# Kinds whose gating the tenant's approval settings decide; licensing policies gate the others.
SETTINGS_GATED_KINDS = ("new_grant", "entitlement_change", "overlay_release", "grant_revocation")


class ApprovalSettings(models.Model):
    """The tenant's approval policy: gated kinds, quorum, expiry and escalation (one row)."""

    quorum = models.PositiveSmallIntegerField(
        default=1, help_text="Approvals from distinct approvers needed before a request applies."
    )
    gated_kinds = models.JSONField(
        default=list,
        blank=True,
        help_text=(
            "Kinds of change that need approval besides renewals and seat increases, whose "
            "gating each licensing policy sets: new_grant, entitlement_change, "
            "overlay_release, grant_revocation."
        ),
    )
    request_expiry_hours = models.PositiveIntegerField(
        default=168, help_text="Hours after which an unanswered request expires."
    )
    reminder_after_hours = models.PositiveIntegerField(
        default=24, help_text="Hours after which approvers get a reminder about a waiting request."
    )
    alert_after_hours = models.PositiveIntegerField(
        default=72,
        help_text="Hours after which tenant admins get an alert about a waiting request.",
    )
    renewal_lead_days = models.PositiveIntegerField(
        null=True,
        blank=True,
        help_text=(
            "Days before the end of a term at which the renewal request is raised; "
            "empty: by the policy's renewal cadence (monthly 7, quarterly 30, annual 60)."
        ),
    )
    maintenance_window = models.ForeignKey(
        "overlays.MaintenanceWindow",
        null=True,
        blank=True,
        # Losing the window only turns "next maintenance window" requests into immediate ones.
        on_delete=models.SET_NULL,
        related_name="+",
        help_text="The window in which requests set to 'next maintenance window' apply.",
    )
    notify_emails = models.JSONField(
        default=list,
        blank=True,
        help_text="Extra addresses that get escalation alerts, besides the tenant admins.",
    )

    history = HistoricalRecords(get_user=history_user)

    class Meta:
        verbose_name = "approval settings"
        verbose_name_plural = "approval settings"
        constraints: ClassVar = [
            models.CheckConstraint(
                condition=Q(quorum__gte=1),
                name="approvals_settings_quorum_positive",
                violation_error_message="quorum must be at least 1.",
            ),
            models.CheckConstraint(
                condition=Q(reminder_after_hours__lte=models.F("alert_after_hours")),
                name="approvals_settings_reminder_before_alert",
                violation_error_message="reminder_after_hours must not exceed alert_after_hours.",
            ),
        ]

    def __str__(self) -> str:
        return f"quorum {self.quorum}, requests expire after {self.request_expiry_hours} h"

    def clean(self) -> None:
        allowed = set(SETTINGS_GATED_KINDS)
        kinds = self.gated_kinds
        if not isinstance(kinds, list) or not all(isinstance(kind, str) for kind in kinds):
            raise ValidationError({"gated_kinds": "Enter a JSON list of change kinds."})
        unknown = sorted(set(kinds) - allowed)
        if unknown:
            raise ValidationError(
                {
                    "gated_kinds": f"Unknown or policy-gated kinds {unknown}; choose from "
                    f"{sorted(allowed)}. Renewals and seat increases are gated per policy."
                }
            )


class ChangeRequest(models.Model):
    """A maker-checker request for one gated change, from draft to applied."""

    class Kind(models.TextChoices):
        RENEWAL = "renewal", "License renewal"
        SEAT_INCREASE = "seat_increase", "Seat increase"
        NEW_GRANT = "new_grant", "New grant"
        ENTITLEMENT_CHANGE = "entitlement_change", "Entitlement change"
        OVERLAY_RELEASE = "overlay_release", "Overlay release"
        GRANT_REVOCATION = "grant_revocation", "Revocation of a grant"

    class State(models.TextChoices):
        PENDING = "pending", "Waiting for approval"
        APPROVED = "approved", "Approved, not applied yet"
        REJECTED = "rejected", "Rejected"
        WITHDRAWN = "withdrawn", "Withdrawn"
        EXPIRED = "expired", "Expired"
        APPLIED = "applied", "Applied"
        FAILED = "failed", "Failed to apply"

    class Origin(models.TextChoices):
        MANUAL = "manual", "Raised by a person"
        RENEWAL_SCAN = "renewal_scan", "Raised by the renewal scan"

    class Schedule(models.TextChoices):
        IMMEDIATE = "immediate", "As soon as approved"
        AT_TIME = "at_time", "At a set time"
        MAINTENANCE_WINDOW = "maintenance_window", "In the next maintenance window"

    kind = models.CharField(max_length=32, choices=Kind.choices)
    origin = models.CharField(max_length=16, choices=Origin.choices, default=Origin.MANUAL)
    payload = models.JSONField(help_text="Exactly what will change; its keys depend on the kind.")
    reason = models.TextField(help_text="Why the change is requested.")
    requester = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        # The request must keep naming who asked after the account is gone.
        on_delete=models.PROTECT,
        related_name="change_requests",
    )
    grant = models.ForeignKey(
        "licensing.LicenseGrant",
        null=True,
        blank=True,
        on_delete=models.CASCADE,
        related_name="change_requests",
        help_text="The grant the request changes, when it changes one.",
    )
    term_end = models.DateTimeField(
        null=True, blank=True, help_text="For a renewal, the end of the term it renews."
    )
    quorum_required = models.PositiveSmallIntegerField(
        help_text="Approvals needed, fixed when the request was raised."
    )
    schedule = models.CharField(max_length=24, choices=Schedule.choices, default=Schedule.IMMEDIATE)
    apply_after = models.DateTimeField(
        null=True, blank=True, help_text="For 'at a set time', the earliest moment to apply."
    )
    created_at = models.DateTimeField(auto_now_add=True)

    state = models.CharField(max_length=16, choices=State.choices, default=State.PENDING)
    revision = models.PositiveIntegerField(
        default=1, help_text="Raised by every edit; approvals count only for the current one."
    )
    before = models.JSONField(default=dict, help_text="Values of the changed fields when raised.")
    after = models.JSONField(default=dict, help_text="Values the changed fields will have.")
    base = models.JSONField(
        default=list, help_text="The objects the request was based on, with their versions."
    )
    updated_at = models.DateTimeField(auto_now=True)
    expires_at = models.DateTimeField(help_text="When an unanswered request expires.")
    next_escalation_at = models.DateTimeField(null=True, blank=True)
    escalation_level = models.PositiveSmallIntegerField(
        default=0, help_text="0 none sent, 1 approvers reminded, 2 tenant admins alerted."
    )
    apply_due_at = models.DateTimeField(
        null=True, blank=True, help_text="When an approved request is next tried for application."
    )
    decided_at = models.DateTimeField(null=True, blank=True)
    decision_reason = models.TextField(blank=True)
    applied_at = models.DateTimeField(null=True, blank=True)
    result = models.JSONField(default=dict, blank=True)
    failure_reason = models.TextField(blank=True)

    history = HistoricalRecords(get_user=history_user)

    class Meta:
        ordering: ClassVar = ["-created_at", "-id"]
        permissions: ClassVar = [("approve_changerequest", "Can approve change requests")]
        indexes: ClassVar = [
            models.Index(fields=["state", "next_escalation_at"], name="approvals_cr_escalation"),
            models.Index(fields=["state", "apply_due_at"], name="approvals_cr_apply_due"),
        ]
        constraints: ClassVar = [
            models.UniqueConstraint(
                fields=["grant", "term_end", "kind"],
                condition=Q(origin="renewal_scan"),
                name="approvals_cr_one_scan_request_per_term",
                violation_error_message="The renewal scan already raised a request for this term.",
            ),
            models.CheckConstraint(
                condition=~Q(kind="renewal") | (Q(grant__isnull=False) & Q(term_end__isnull=False)),
                name="approvals_cr_renewal_names_term",
                violation_error_message="A renewal request names its grant and term end.",
            ),
            models.CheckConstraint(
                condition=~Q(schedule="at_time") | Q(apply_after__isnull=False),
                name="approvals_cr_at_time_has_time",
                violation_error_message="A request scheduled at a set time needs apply_after.",
            ),
        ]

    def __str__(self) -> str:
        return f"change request {self.pk} ({self.get_kind_display()}, {self.state})"


class Approval(models.Model):
    """One approver's decision on one revision of a change request."""

    class Decision(models.TextChoices):
        APPROVE = "approve", "Approve"
        REJECT = "reject", "Reject"

    request = models.ForeignKey(ChangeRequest, on_delete=models.CASCADE, related_name="approvals")
    approver = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="approvals_given"
    )
    decision = models.CharField(max_length=16, choices=Decision.choices)
    reason = models.TextField(blank=True)
    revision = models.PositiveIntegerField(help_text="The request revision that was decided.")
    created_at = models.DateTimeField(auto_now_add=True)

    voided_at = models.DateTimeField(
        null=True, blank=True, help_text="Set when an edit of the request voided this approval."
    )

    history = HistoricalRecords(get_user=history_user)

    class Meta:
        ordering: ClassVar = ["created_at", "id"]
        constraints: ClassVar = [
            models.UniqueConstraint(
                fields=["request", "approver"],
                condition=Q(voided_at__isnull=True),
                name="approvals_approval_one_per_approver",
                violation_error_message="This approver already decided on the request.",
            )
        ]

    def __str__(self) -> str:
        return f"{self.decision} by user {self.approver_id} on request {self.request_id}"


class TermTransition(models.Model):
    """A grant's term entering its grace period or expiring; unique per grant, term and kind."""

    class Kind(models.TextChoices):
        GRACE_ENTERED = "grace_entered", "Entered grace period"
        EXPIRED = "expired", "Expired"

    # Transitions are records of the grant's past; they go when the grant goes.
    grant = models.ForeignKey(
        "licensing.LicenseGrant", on_delete=models.CASCADE, related_name="term_transitions"
    )
    term_end = models.DateTimeField()
    kind = models.CharField(max_length=16, choices=Kind.choices)
    due_at = models.DateTimeField(help_text="When the transition was due.")
    occurred_at = models.DateTimeField(auto_now_add=True)
    actor = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")

    history = HistoricalRecords(get_user=history_user)

    class Meta:
        ordering: ClassVar = ["-occurred_at", "-id"]
        constraints: ClassVar = [
            models.UniqueConstraint(
                fields=["grant", "term_end", "kind"],
                name="approvals_transition_once_per_term",
                violation_error_message="This transition already happened for this term.",
            )
        ]

    def __str__(self) -> str:
        return f"grant {self.grant_id} {self.kind} (term ending {self.term_end:%Y-%m-%d})"
