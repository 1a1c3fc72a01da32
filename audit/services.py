"""Writes of the audit app: appends, checkpoints, the retention purge, alerts and legal holds.

Every write locks the tenant's `ChainHead` row first, so concurrent writers
in any number of processes append one after the other: the chain never forks
(two entries with the same predecessor) and never skips a sequence number.
The lock is held until the caller's transaction ends, so callers should
record their decision late in short transactions.
"""

import datetime as dt
import json
import logging
import re
from collections.abc import Iterable
from typing import Any

from django.core.mail import send_mail
from django.db import connection, transaction
from django.utils import timezone
from django_tenants.utils import get_public_schema_name
from simple_history.utils import bulk_update_with_history

from audit import chain
from audit.exceptions import (
    CheckpointSignerMissing,
    DecisionEntryInvalid,
    SecretInDecisionData,
)
from audit.models import AuditSettings, ChainHead, Checkpoint, DecisionLogEntry, LegalHold
from audit.selectors import current_tenant_slug

logger = logging.getLogger(__name__)

_EVENT_PATTERN = re.compile(r"^[a-z][a-z0-9_]*(\.[a-z][a-z0-9_]*)+$")
_CODE_PATTERN = re.compile(r"^[a-z0-9][a-z0-9_.:-]*$")
UNKNOWN_ACTOR = "unknown"

# Data keys that name a secret, compared after lower-casing and mapping "-" to "_".
# A key is rejected when it equals one of these or ends with "_" plus one.
_SECRET_KEY_NAMES = frozenset(
    {
        "token",
        "access_token",
        "refresh_token",
        "license_key",
        "licence_key",
        "private_key",
        "api_key",
        "secret",
        "client_secret",
        "password",
        "passphrase",
        "kek",
    }
)
# Substrings that mark a key as secret wherever they appear in it.
_SECRET_KEY_PARTS = ("password", "secret", "passphrase", "private_key")
# A compact JWS or JWT: base64url JSON header starting with `{"` and three parts.
_JWS_PATTERN = re.compile(r"^eyJ[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*\.[A-Za-z0-9_-]+$")


def _is_secret_key(key: str) -> bool:
    normalized = key.lower().replace("-", "_")
    if normalized in _SECRET_KEY_NAMES:
        return True
    if any(normalized.endswith("_" + name) for name in _SECRET_KEY_NAMES):
        return True
    return any(part in normalized for part in _SECRET_KEY_PARTS)


def _check_data(value: Any, path: str) -> None:
    """Reject secrets and values that do not round-trip through jsonb unchanged."""
    if isinstance(value, dict):
        for key, item in value.items():
            if not isinstance(key, str):
                raise DecisionEntryInvalid(f"data key {key!r} at {path} is not a string")
            child = f"{path}.{key}"
            if _is_secret_key(key):
                raise SecretInDecisionData(
                    f"data key {child!r} names a secret; the decision log never stores "
                    "secrets. Record an identifier such as a key id or token jti instead."
                )
            _check_data(item, child)
    elif isinstance(value, list):
        for index, item in enumerate(value):
            _check_data(item, f"{path}[{index}]")
    elif isinstance(value, str):
        if _JWS_PATTERN.match(value):
            raise SecretInDecisionData(
                f"data value at {path!r} looks like a signed token; record its jti instead."
            )
        if "\x00" in value:
            raise DecisionEntryInvalid(f"data value at {path!r} contains a NUL character")
    elif isinstance(value, bool) or value is None or isinstance(value, int):
        return
    elif isinstance(value, float):
        # jsonb may print a float differently from Python, which would change the hash.
        raise DecisionEntryInvalid(
            f"data value at {path!r} is a float ({value!r}); store it as an integer or a string."
        )
    else:
        raise DecisionEntryInvalid(
            f"data value at {path!r} has type {type(value).__name__}; use JSON types only."
        )


def _validate_entry(*, event: str, outcome: str, reason: str, actor: str, subject: str) -> None:
    if not _EVENT_PATTERN.match(event) or len(event) > 64:
        raise DecisionEntryInvalid(
            f"event {event!r} is invalid; use a dotted lower-case name such as license.activate."
        )
    if not _CODE_PATTERN.match(outcome) or len(outcome) > 32:
        raise DecisionEntryInvalid(
            f"outcome {outcome!r} is invalid; use a lower-case code such as granted or refused."
        )
    if reason and (not _CODE_PATTERN.match(reason) or len(reason) > 64):
        raise DecisionEntryInvalid(
            f"reason {reason!r} is invalid; use a stable lower-case code such as seat_limit."
        )
    if len(actor) > 150 or len(subject) > 150:
        raise DecisionEntryInvalid("actor and subject must be at most 150 characters long.")


def _lock_head() -> ChainHead:
    """Lock and return the chain head, creating it on the first append of a schema."""
    head = ChainHead.objects.select_for_update().filter(pk=1).first()
    if head is not None:
        return head
    # Table names in SQL text here and below come from model metadata, never from input.
    with connection.cursor() as cursor:
        cursor.execute(
            f"INSERT INTO {ChainHead._meta.db_table} (id, seq, hash) VALUES (1, 0, %s) "  # noqa: S608
            "ON CONFLICT (id) DO NOTHING",
            [chain.GENESIS_HASH],
        )
    return ChainHead.objects.select_for_update().get(pk=1)


def _insert_and_advance(entry: DecisionLogEntry) -> None:
    """Insert `entry` and move the chain head to it in one statement.

    One round trip instead of two, because it runs while the head is locked.
    """
    with connection.cursor() as cursor:
        cursor.execute(  # table names from model metadata
            f"WITH entry AS (INSERT INTO {DecisionLogEntry._meta.db_table} "  # noqa: S608
            "(seq, time, event, outcome, reason, actor, subject, data, prev_hash, hash) "
            "VALUES (%s, %s, %s, %s, %s, %s, %s, %s::jsonb, %s, %s) RETURNING seq, hash) "
            f"UPDATE {ChainHead._meta.db_table} AS head SET seq = entry.seq, hash = entry.hash "
            "FROM entry WHERE head.id = 1",
            [
                entry.seq,
                entry.time,
                entry.event,
                entry.outcome,
                entry.reason,
                entry.actor,
                entry.subject,
                json.dumps(entry.data),
                entry.prev_hash,
                entry.hash,
            ],
        )
        if cursor.rowcount != 1:
            raise DecisionEntryInvalid(
                f"the chain head row is missing; entry #{entry.seq} not stored"
            )
    entry._state.adding = False


def decision_record(
    *,
    event: str,
    outcome: str,
    reason: str = "",
    actor: str = "",
    subject: str = "",
    data: dict[str, Any] | None = None,
) -> DecisionLogEntry:
    """Append one hash-chained entry to the current tenant's decision log.

    Runs inside the caller's transaction when there is one, so the entry is
    stored exactly when the decision's own changes are. An empty `actor` is
    stored as `unknown`.

    Raises SecretInDecisionData when `data` contains a key that names a
    secret or a value that looks like a signed token. Raises
    DecisionEntryInvalid when a field has the wrong form or the current
    schema is the public one.
    """
    if connection.schema_name == get_public_schema_name():
        raise DecisionEntryInvalid(
            f"event {event!r} was recorded in the public schema, which has no decision log; "
            "record it inside the tenant's schema (schema_context or a tenant request)."
        )
    data = data or {}
    actor = actor or UNKNOWN_ACTOR
    _validate_entry(event=event, outcome=outcome, reason=reason, actor=actor, subject=subject)
    _check_data(data, "data")

    # TODO: appends of one tenant commit one after the other, because the head
    # lock is held until the caller commits. With 8 writers this measured 5x
    # below plain inserts (docs/benchmarks.d/audit.md); batching the chaining
    # of committed entries would let commits group.
    # No savepoint: an error in here is a database error that aborts the
    # caller's transaction anyway, and a savepoint costs two round trips
    # while every other writer of the tenant waits for the head lock.
    with transaction.atomic(savepoint=False):
        head = _lock_head()
        # Taken under the lock, so entry times never decrease along the chain
        # unless the server clock steps back.
        fields: dict[str, Any] = {
            "seq": head.seq + 1,
            "time": timezone.now(),
            "event": event,
            "outcome": outcome,
            "reason": reason,
            "actor": actor,
            "subject": subject,
            "data": data,
            "prev_hash": head.hash,
        }
        digest = chain.entry_hash(**fields)
        entry = DecisionLogEntry(hash=digest, **fields)
        _insert_and_advance(entry)
    return entry


# --- Checkpoints ------------------------------------------------------------------


def _sign_checkpoint(*, seq: int, digest: str, kind: str) -> str:
    signer = chain.checkpoint_signer()
    if signer is None:
        raise CheckpointSignerMissing(
            f"No checkpoint signer is registered, so the {kind} checkpoint at #{seq} "
            "cannot be signed."
        )
    claims = {
        "tid": current_tenant_slug(),
        "seq": seq,
        "hash": digest,
        "kind": kind,
        "iat": int(timezone.now().timestamp()),
    }
    return signer(claims)


def checkpoint_create(*, kind: str = Checkpoint.Kind.PERIODIC) -> Checkpoint | None:
    """Sign the current chain head and store it as a checkpoint.

    Returns None when the chain is empty or the head is already covered by a
    checkpoint, so the periodic task is idempotent. Raises
    CheckpointSignerMissing when no signer is registered.
    """
    with transaction.atomic():
        head = _lock_head()
        if head.seq == 0:
            return None
        if Checkpoint.objects.filter(seq=head.seq, hash=head.hash).exists():
            return None
        token = _sign_checkpoint(seq=head.seq, digest=head.hash, kind=kind)
        checkpoint = Checkpoint.objects.create(seq=head.seq, hash=head.hash, kind=kind, token=token)
    logger.info(
        "audit.checkpoint schema=%s seq=%d kind=%s", connection.schema_name, checkpoint.seq, kind
    )
    return checkpoint


# --- Retention --------------------------------------------------------------------


def audit_settings_get() -> AuditSettings:
    """Return the tenant's audit settings, creating the row with defaults if missing."""
    settings_row, _ = AuditSettings.objects.get_or_create(pk=1)
    return settings_row


def decision_log_purge(*, now: dt.datetime | None = None, actor: str = "system:audit.purge") -> int:
    """Delete entries older than the tenant's retention period; return how many.

    1. Lock the chain head, so no append races the cut.
    2. Find the cut: the newest entry older than the retention period, moved
       back to just before the first entry whose subject has an active legal
       hold. Entries are only ever removed as a prefix of the chain.
    3. Sign a `retention_cut` checkpoint of the cut entry's hash. The first
       remaining entry's `prev_hash` equals it, so the rest still verifies.
       If signing fails nothing is deleted.
    4. Delete the prefix. The append-only trigger allows this only while the
       transaction-local setting `keyplane.audit_purge` is `on`.
    5. Record the purge itself as a decision-log entry by `actor`.
    """
    now = now or timezone.now()
    retention_days = audit_settings_get().retention_days
    cutoff = now - dt.timedelta(days=retention_days)

    with transaction.atomic():
        _lock_head()
        cut = (
            DecisionLogEntry.objects.filter(time__lt=cutoff)
            .order_by("-seq")
            .values_list("seq", flat=True)
            .first()
        )
        if cut is None:
            return 0
        held_subjects = list(
            LegalHold.objects.filter(active=True).values_list("subject", flat=True)
        )
        if held_subjects:
            first_held = (
                DecisionLogEntry.objects.filter(seq__lte=cut, subject__in=held_subjects)
                .order_by("seq")
                .values_list("seq", flat=True)
                .first()
            )
            if first_held is not None:
                cut = first_held - 1
        cut_entry = DecisionLogEntry.objects.filter(seq=cut).only("seq", "hash").first()
        if cut_entry is None:
            # Nothing left before the cut: already purged or held from the first entry.
            return 0

        token = _sign_checkpoint(
            seq=cut_entry.seq, digest=cut_entry.hash, kind=Checkpoint.Kind.RETENTION_CUT
        )
        Checkpoint.objects.create(
            seq=cut_entry.seq,
            hash=cut_entry.hash,
            kind=Checkpoint.Kind.RETENTION_CUT,
            token=token,
        )
        with connection.cursor() as cursor:
            cursor.execute("SELECT set_config('keyplane.audit_purge', 'on', true)")
            cursor.execute(  # table name from model metadata
                f"DELETE FROM {DecisionLogEntry._meta.db_table} WHERE seq <= %s",  # noqa: S608
                [cut_entry.seq],
            )
            deleted = cursor.rowcount
            cursor.execute("SELECT set_config('keyplane.audit_purge', 'off', true)")

        decision_record(
            event="audit.purge",
            outcome="ok",
            reason="retention",
            actor=actor,
            data={"cut_seq": cut_entry.seq, "deleted": deleted, "retention_days": retention_days},
        )

    logger.info(
        "audit.purge schema=%s cut_seq=%d deleted=%d retention_days=%d",
        connection.schema_name,
        cut_entry.seq,
        deleted,
        retention_days,
    )
    return deleted


def verification_alert(*, report: chain.VerificationReport) -> None:
    """Log a failed verification, record it and e-mail the tenant's alert recipients."""
    first = report.first_bad
    if first is None:
        return
    schema = connection.schema_name
    logger.error(
        "audit.verify_failed schema=%s code=%s seq=%s checkpoint=%s",
        schema,
        first.code,
        first.seq,
        first.checkpoint,
    )
    decision_record(
        event="audit.verify",
        outcome="failed",
        reason=first.code,
        actor="system:audit.verify",
        data={"seq": first.seq, "checkpoint": first.checkpoint},
    )
    recipients = [user.email for user in audit_settings_get().alert_recipients.all() if user.email]
    if not recipients:
        return
    send_mail(
        subject=f"Keyplane audit verification failed for {current_tenant_slug()}",
        message=(
            f"The decision-log verification found a problem: {first.message}.\n"
            "Run `manage.py audit_verify --tenant "
            f"{current_tenant_slug()}` for the full report and compare with the last export."
        ),
        from_email=None,
        recipient_list=recipients,
    )


# --- Legal holds ------------------------------------------------------------------


def legal_holds_release(*, holds: Iterable[LegalHold], acting_user: Any, reason: str) -> int:
    """Release the active holds among `holds`; return how many were released.

    Writes one history row per hold with `acting_user` and `reason`, and one
    decision-log entry per hold, in one transaction.
    """
    now = timezone.now()
    with transaction.atomic():
        pks = [hold.pk for hold in holds]
        locked = list(LegalHold.objects.select_for_update().filter(pk__in=pks, active=True))
        for hold in locked:
            hold.active = False
            hold.released_at = now
        bulk_update_with_history(
            locked,
            LegalHold,
            ["active", "released_at"],
            default_user=acting_user,
            default_change_reason=reason,
        )
        for hold in locked:
            decision_record(
                event="audit.legal_hold_release",
                outcome="ok",
                actor=acting_user.get_username(),
                subject=f"legal_hold:{hold.pk}",
                data={"held_subject": hold.subject},
            )
    return len(locked)
