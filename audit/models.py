"""The decision log, its checkpoints and the tenant's audit settings (tenant schema).

`DecisionLogEntry` and `Checkpoint` are append-only: a trigger created by
the migrations rejects UPDATE and DELETE on them (see `audit/migrations`),
except for the controlled retention purge of old entries. A decision is
first stored as a `PendingEntry` and moved into the log when it is chained.
"""

from typing import ClassVar

from django.conf import settings
from django.db import models
from simple_history.models import HistoricalRecords

from audit.history import history_user


class DecisionLogEntry(models.Model):
    """One authorization decision or security event, hash-chained to the entry before it."""

    seq = models.BigIntegerField(
        primary_key=True, help_text="Position in the tenant's chain, from 1."
    )
    time = models.DateTimeField(db_index=True)
    event = models.CharField(
        max_length=64, db_index=True, help_text="Dotted name, e.g. license.activate."
    )
    outcome = models.CharField(max_length=32, help_text="For example granted, refused or ok.")
    reason = models.CharField(max_length=64, blank=True, help_text="Stable reason code.")
    actor = models.CharField(
        max_length=150, db_index=True, help_text="User name, system:<task> or device:<id>."
    )
    subject = models.CharField(max_length=150, blank=True, help_text="For example grant:12.")
    data = models.JSONField(default=dict, blank=True)
    prev_hash = models.CharField(max_length=64)
    hash = models.CharField(max_length=64)

    class Meta:
        ordering: ClassVar = ["-seq"]
        verbose_name = "decision log entry"
        verbose_name_plural = "decision log"
        permissions: ClassVar = [
            ("verify_decisionlog", "Can verify the decision log chain"),
            ("export_decisionlog", "Can export the decision log"),
        ]

    def __str__(self) -> str:
        return f"#{self.seq} {self.event} {self.outcome}"


class PendingEntry(models.Model):
    """A recorded decision that is not chained into the log yet.

    `audit.services.decision_record` inserts it in the caller's transaction;
    after the commit, `decision_log_chain` deletes it and appends it to the
    log with the next `seq`. The id gives the order of chaining. A trigger
    rejects UPDATE, so what is chained is what was recorded.
    """

    id = models.BigAutoField(primary_key=True)
    time = models.DateTimeField()
    event = models.CharField(max_length=64)
    outcome = models.CharField(max_length=32)
    reason = models.CharField(max_length=64, blank=True)
    actor = models.CharField(max_length=150)
    subject = models.CharField(max_length=150, blank=True)
    data = models.JSONField(default=dict, blank=True)

    class Meta:
        verbose_name = "pending decision-log entry"
        verbose_name_plural = "pending decision-log entries"

    def __str__(self) -> str:
        return f"pending {self.id} {self.event} {self.outcome}"


class ChainHead(models.Model):
    """The last sequence number and hash of the tenant's chain; one row, moved by every chaining."""

    id = models.SmallIntegerField(primary_key=True, default=1)
    seq = models.BigIntegerField(default=0)
    hash = models.CharField(max_length=64)

    class Meta:
        constraints: ClassVar = [
            models.CheckConstraint(
                condition=models.Q(id=1),
                name="audit_chainhead_single_row",
                violation_error_message="The chain head is a single row with id 1.",
            )
        ]

    def __str__(self) -> str:
        return f"head #{self.seq}"


class Checkpoint(models.Model):
    """A signed statement of the chain's hash at one sequence number."""

    class Kind(models.TextChoices):
        PERIODIC = "periodic", "Periodic"
        RETENTION_CUT = "retention_cut", "Retention cut"

    seq = models.BigIntegerField(help_text="Sequence number of the entry the checkpoint covers.")
    hash = models.CharField(max_length=64, help_text="Hash of that entry.")
    kind = models.CharField(max_length=16, choices=Kind.choices)
    token = models.TextField(help_text="Compact JWS of the claims, signed with the tenant key.")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering: ClassVar = ["-seq", "-id"]
        indexes: ClassVar = [models.Index(fields=["kind", "seq"], name="audit_checkpoint_kind_seq")]

    def __str__(self) -> str:
        return f"{self.kind} checkpoint at #{self.seq}"


class AuditSettings(models.Model):
    """The tenant's audit settings; a single row with id 1."""

    id = models.SmallIntegerField(primary_key=True, default=1)
    retention_days = models.PositiveIntegerField(
        default=settings.KEYPLANE_AUDIT_RETENTION_DAYS,
        help_text="Decision-log entries older than this many days are purged.",
    )
    alert_recipients = models.ManyToManyField(
        settings.AUTH_USER_MODEL,
        blank=True,
        related_name="+",
        help_text="Users e-mailed when the scheduled chain verification fails.",
    )

    history = HistoricalRecords(m2m_fields=[alert_recipients], get_user=history_user)

    class Meta:
        verbose_name = "audit settings"
        verbose_name_plural = "audit settings"

    def __str__(self) -> str:
        return f"retention {self.retention_days} days"


class LegalHold(models.Model):
    """A hold that stops the retention purge before the first entry about `subject`."""

    subject = models.CharField(
        max_length=150, help_text="Entries with this exact subject are kept, e.g. grant:12."
    )
    reason = models.TextField(help_text="Why the entries must be kept, e.g. the case reference.")
    created_at = models.DateTimeField(auto_now_add=True)

    active = models.BooleanField(default=True)
    released_at = models.DateTimeField(null=True, blank=True)

    history = HistoricalRecords(get_user=history_user)

    class Meta:
        ordering: ClassVar = ["-created_at"]

    def __str__(self) -> str:
        return f"hold on {self.subject}"
