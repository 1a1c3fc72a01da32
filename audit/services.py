"""Writes of the audit app: appends, chaining, checkpoints, retention, alerts and legal holds.

An append stores a pending entry in the caller's transaction and takes no
lock, so appends of one tenant commit side by side as plain inserts do.
After the commit, one connection at a time chains the pending entries into
the log in batches. Each gets the next sequence number and covers the
previous entry's hash. Because only the lock holder chains, the chain never
forks (two entries with the same predecessor) and never skips a number,
whatever the number of writer processes. Checkpoints and the retention
purge take the same lock, then the chain head row.
"""

import datetime as dt
import json
import logging
import re
from collections.abc import Iterable
from dataclasses import dataclass
from functools import partial
from typing import Any

import psycopg
from django.core.mail import send_mail
from django.db import connection, transaction
from django.db.models import Min
from django.utils import timezone
from django_tenants.utils import get_public_schema_name
from simple_history.utils import bulk_update_with_history

from audit import chain
from audit.chaining import chainer
from audit.exceptions import (
    CheckpointSignerMissing,
    DecisionEntryInvalid,
    SecretInDecisionData,
)
from audit.models import (
    AuditSettings,
    ChainHead,
    Checkpoint,
    DecisionLogEntry,
    LegalHold,
    PendingEntry,
)
from audit.selectors import current_tenant_slug

logger = logging.getLogger(__name__)

_EVENT_PATTERN = re.compile(r"^[a-z][a-z0-9_]*(\.[a-z][a-z0-9_]*)+$")
_CODE_PATTERN = re.compile(r"^[a-z0-9][a-z0-9_.:-]*$")
UNKNOWN_ACTOR = "unknown"
_ENTRY_TABLE = DecisionLogEntry._meta.db_table
_PENDING_TABLE = PendingEntry._meta.db_table
_HEAD_TABLE = ChainHead._meta.db_table

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
    """Lock and return the chain head, creating it on the first use of a schema.

    Call it inside a transaction. It takes the chaining lock first and then
    the row lock. Chaining takes them in the same order, so the two cannot
    deadlock.
    """
    _hold_chain_lock_in_transaction()
    head = ChainHead.objects.select_for_update().filter(pk=1).first()
    if head is not None:
        return head
    with connection.cursor() as cursor:
        cursor.execute(  # table name from model metadata
            f"INSERT INTO {_HEAD_TABLE} (id, seq, hash) VALUES (1, 0, %s) "  # noqa: S608
            "ON CONFLICT (id) DO NOTHING",
            [chain.GENESIS_HASH],
        )
    return ChainHead.objects.select_for_update().get(pk=1)


def decision_record(
    *,
    event: str,
    outcome: str,
    reason: str = "",
    actor: str = "",
    subject: str = "",
    data: dict[str, Any] | None = None,
) -> int:
    """Record one decision for the current tenant; it is chained into the log after commit.

    Runs inside the caller's transaction when there is one, so the decision
    is stored exactly when the decision's own changes are, as a
    `PendingEntry`. When the transaction commits (at once in autocommit),
    the process's background chainer (`audit.chaining`) appends it to the
    log within moments. No lock is taken, so appends of one tenant do not
    wait for each other. An empty `actor` is stored as `unknown`. Returns
    the pending entry's id.

    Raises SecretInDecisionData when `data` contains a key that names a
    secret or a value that looks like a signed token. Raises
    DecisionEntryInvalid when a field has the wrong form or the current
    schema is the public one.
    """
    schema = connection.schema_name
    if schema == get_public_schema_name():
        raise DecisionEntryInvalid(
            f"event {event!r} was recorded in the public schema, which has no decision log; "
            "record it inside the tenant's schema (schema_context or a tenant request)."
        )
    if not connection.in_atomic_block and not connection.get_autocommit():
        raise DecisionEntryInvalid(
            f"event {event!r} was recorded with autocommit off outside transaction.atomic(); "
            "the entry could never be chained. Record it inside transaction.atomic()."
        )
    data = data or {}
    actor = actor or UNKNOWN_ACTOR
    _validate_entry(event=event, outcome=outcome, reason=reason, actor=actor, subject=subject)
    _check_data(data, "data")

    # Raw SQL because this runs on every authorization decision: one
    # statement and no model instance.
    with connection.cursor() as cursor:
        cursor.execute(  # table name from model metadata
            f"INSERT INTO {_PENDING_TABLE} "  # noqa: S608
            "(time, event, outcome, reason, actor, subject, data) "
            "VALUES (%s, %s, %s, %s, %s, %s, %s::jsonb) RETURNING id",
            [timezone.now(), event, outcome, reason, actor, subject, json.dumps(data)],
        )
        pending_id = int(cursor.fetchone()[0])
    transaction.on_commit(partial(chainer.request, schema))
    return pending_id


# Entries chained per statement; a backlog is chained in several.
CHAIN_BATCH = 2000
# Batches one call chains before leaving the rest to later appends and the task.
_CHAIN_ROUNDS = 20
# The advisory lock that serializes chaining takes one 64-bit key, a hash of
# this prefix and the schema name. Advisory locks are database-wide, so two
# schemas whose keys matched would take turns; with 64 bits that is unlikely.
_CHAIN_LOCK_KEY = "hashtextextended('keyplane.audit.chain:' || %s, 0)"
_LOCK = f"SELECT pg_advisory_lock({_CHAIN_LOCK_KEY})"
_TRY_LOCK = f"SELECT pg_try_advisory_lock({_CHAIN_LOCK_KEY})"
_UNLOCK = f"SELECT pg_advisory_unlock({_CHAIN_LOCK_KEY})"
_LOCK_IN_TRANSACTION = f"SELECT pg_advisory_xact_lock({_CHAIN_LOCK_KEY})"

_ANY_PENDING = f"SELECT EXISTS (SELECT 1 FROM {_PENDING_TABLE})"  # noqa: S608
# Reads the head and the first pending entries, for the holder of the lock.
_READ_BATCH = f"""
SELECT head.seq, head.hash, pending.id, pending.time, pending.event, pending.outcome,
       pending.reason, pending.actor, pending.subject, pending.data
FROM {_HEAD_TABLE} AS head
LEFT JOIN LATERAL (
    SELECT * FROM {_PENDING_TABLE} ORDER BY id LIMIT {CHAIN_BATCH}
) AS pending ON true
WHERE head.id = 1
"""  # noqa: S608 - table names from model metadata

# Moves the head from the state read to the new one and moves the batch
# from the pending table into the log, in one statement, so it is atomic
# even in autocommit. If the head moved since it was read, nothing changes
# and 0 comes back. The batch travels as four arrays, so the statement text
# stays the same whatever the batch size.
_MOVE_HEAD_AND_APPEND = f"""
WITH moved AS (
    UPDATE {_HEAD_TABLE} AS head SET seq = %s, hash = %s
    WHERE head.id = 1 AND head.seq = %s AND head.hash = %s RETURNING head.id
), taken AS (
    DELETE FROM {_PENDING_TABLE} AS pending
    USING unnest(%s::bigint[], %s::bigint[], %s::varchar[], %s::varchar[])
        AS new (id, seq, prev_hash, hash)
    WHERE pending.id = new.id AND EXISTS (SELECT 1 FROM moved)
    RETURNING new.seq, pending.time, pending.event, pending.outcome, pending.reason,
              pending.actor, pending.subject, pending.data, new.prev_hash, new.hash
), logged AS (
    INSERT INTO {_ENTRY_TABLE}
        (seq, time, event, outcome, reason, actor, subject, data, prev_hash, hash)
    SELECT * FROM taken RETURNING seq
)
SELECT audit_chain_checked((SELECT count(*) FROM moved)::int,
                           (SELECT count(*) FROM logged)::int, %s::int)
"""  # noqa: S608 - table names from model metadata


@dataclass(frozen=True)
class ChainPass:
    """The outcome of one chaining attempt for a tenant.

    `done` is True when no pending entry was left once the lock was free;
    False when the lock was busy or the round limit was reached, so the
    caller should try again.
    """

    chained: int
    done: bool


def decision_log_chain(*, wait: bool = False) -> int:
    """Chain the current tenant's pending entries into the log; return how many were chained.

    With `wait`, wait for the chaining lock, so every entry committed before
    the call is in the log when it returns (unless a backlog exceeds the
    round limit). Without, return 0 at once when another connection holds
    the lock. See `decision_log_chain_pass`.
    """
    return decision_log_chain_pass(wait=wait).chained


def decision_log_chain_pass(*, wait: bool = False, lock_timeout: float | None = None) -> ChainPass:
    """Chain pending entries while the per-tenant chaining lock is free; report if any are left.

    Pending entries take the next sequence numbers in the order of their id,
    in batches of up to CHAIN_BATCH. The advisory lock lets one connection
    chain a tenant at a time. Without `wait`, a pass that finds the lock
    taken costs one cheap statement and reports `done=False`. The process's
    chainer then tries again after its delay, until no pending entry is
    left. One pass chains at most _CHAIN_ROUNDS batches in a row.

    With `wait` and `lock_timeout` (seconds), a pass that waited that long
    for the lock gives up and reports `done=False`.

    Called inside an open transaction, it waits for the lock, chains that
    transaction's own entries too, and keeps the lock until the transaction
    ends; the tests do so.
    """
    schema = connection.schema_name
    chained = 0
    cursor: Any = _prepared_cursor()
    if connection.in_atomic_block:
        _hold_chain_lock_in_transaction()
        while rows := _read_batch(cursor):
            count = _append_batch(cursor, rows)
            if not count:
                raise DecisionEntryInvalid(
                    "the chain head moved while this transaction held the chaining lock; "
                    "run audit_verify on the tenant"
                )
            chained += count
        return ChainPass(chained, done=True)

    if wait:
        if not _wait_for_lock(cursor, schema, lock_timeout):
            return ChainPass(0, done=False)
        locked = True
    else:
        # Most passes find another connection chaining and stop after this
        # one, the cheapest statement there is.
        locked = _try_lock(cursor, schema)
    while locked:
        try:
            for _ in range(_CHAIN_ROUNDS):
                rows = _read_batch(cursor)
                if rows is None:
                    break
                chained += _append_batch(cursor, rows)
            else:
                return ChainPass(chained, done=False)
        finally:
            cursor.execute(_UNLOCK, [schema])
        # Entries committed while this connection held the lock may have been
        # left to it: look again now that the lock is free.
        cursor.execute(_ANY_PENDING)
        if not cursor.fetchone()[0]:
            return ChainPass(chained, done=True)
        locked = _try_lock(cursor, schema)
    return ChainPass(chained, done=False)


def _hold_chain_lock_in_transaction() -> None:
    """Take the schema's chaining lock until the current transaction ends, waiting for it.

    Chainers that find the lock taken meanwhile retry later; after the
    commit this process's chainer looks for pending entries too.
    """
    schema = connection.schema_name
    with connection.cursor() as cursor:
        cursor.execute(_LOCK_IN_TRANSACTION, [schema])
    transaction.on_commit(partial(chainer.request, schema))


def _wait_for_lock(cursor: Any, schema: str, timeout: float | None) -> bool:
    """Wait up to `timeout` seconds for the schema's chaining lock; return whether it was taken."""
    if timeout is None:
        cursor.execute(_LOCK, [schema])
        return True
    cursor.execute("SELECT set_config('lock_timeout', %s, false)", [f"{int(timeout * 1000)}ms"])
    try:
        cursor.execute(_LOCK, [schema])
    except psycopg.errors.LockNotAvailable:
        logger.info("audit.chain_lock_timeout schema=%s seconds=%s", schema, timeout)
        return False
    finally:
        cursor.execute("RESET lock_timeout")
    return True


def _try_lock(cursor: Any, schema: str) -> bool:
    cursor.execute(_TRY_LOCK, [schema])
    return bool(cursor.fetchone()[0])


class _PreparedCursor(psycopg.Cursor[Any]):
    """A psycopg cursor that prepares every statement on the server.

    Chaining runs the same few statements after every commit. Django's
    cursors bind parameters on the client and cannot prepare. PostgreSQL
    parses a prepared statement again when `search_path` changes, so one
    statement serves every tenant.
    """

    def execute(self, query: Any, params: Any = None, **kwargs: Any) -> Any:
        return super().execute(query, params, prepare=True, **kwargs)


def _prepared_cursor() -> _PreparedCursor:
    # Opening a Django cursor first sets the tenant's search_path on the connection.
    with connection.cursor():
        pass
    return _PreparedCursor(connection.connection)


def _read_batch(cursor: Any) -> list[tuple[Any, ...]] | None:
    """Read the head and the next batch under the chaining lock; None when nothing waits.

    The statement starts after the lock was taken, so it reads everything the
    previous holder committed.
    """
    cursor.execute(_READ_BATCH)
    rows = cursor.fetchall()
    if not rows:
        raise DecisionEntryInvalid(
            "the chain head row is missing, so no entry can be chained; "
            "run migrate_schemas for the tenant"
        )
    return rows if rows[0][2] is not None else None


def _append_batch(cursor: Any, rows: list[tuple[Any, ...]]) -> int:
    """Chain the pending entries in `rows` after the head read with them; return how many.

    The head check makes a wrong lock fail safe: if another connection moved
    the head since the read, nothing changes and it returns 0.
    """
    head_seq, head_hash = rows[0][0], rows[0][1]
    seq, prev_hash = head_seq, head_hash
    ids: list[int] = []
    seqs: list[int] = []
    prev_hashes: list[str] = []
    hashes: list[str] = []
    for _, _, pending_id, time, event, outcome, reason, actor, subject, data in rows:
        seq += 1
        try:
            digest = chain.entry_hash(
                seq=seq,
                time=time,
                event=event,
                outcome=outcome,
                reason=reason,
                actor=actor,
                subject=subject,
                # Django's PostgreSQL backend loads jsonb as text on its connections.
                data=json.loads(data) if isinstance(data, str) else data,
                prev_hash=prev_hash,
            )
        except ValueError as error:
            # decision_record never stores such a row, so it was written
            # around it; chaining stops here until someone removes it.
            raise DecisionEntryInvalid(
                f"pending entry {pending_id} cannot be hashed ({error}); it was not written "
                "by decision_record. Inspect it, keep a copy and delete it from "
                f"{_PENDING_TABLE} so that chaining can go on."
            ) from None
        ids.append(pending_id)
        seqs.append(seq)
        prev_hashes.append(prev_hash)
        hashes.append(digest)
        prev_hash = digest

    cursor.execute(
        _MOVE_HEAD_AND_APPEND,
        [seq, prev_hash, head_seq, head_hash, ids, seqs, prev_hashes, hashes, len(rows)],
    )
    return len(rows) if cursor.fetchone()[0] else 0


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

    Chains the pending entries first, so the checkpoint covers every
    decision committed before the call. Returns None when the chain is empty
    or the head is already covered by a checkpoint, so the periodic task is
    idempotent. Raises CheckpointSignerMissing when no signer is registered.
    """
    decision_log_chain(wait=True)
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
    2. Find the cut: the entry just before the first one that is not older
       than the retention period, moved back to just before the first entry
       whose subject has an active legal hold. Entries are only ever removed
       as a prefix of the chain.
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
        # Entry times can run slightly out of seq order (an entry is timed
        # when recorded and numbered when chained), so cut before the first
        # entry at or after the cutoff: no newer entry is ever deleted.
        newest = DecisionLogEntry.objects.order_by("-seq").values_list("seq", flat=True).first()
        if newest is None:
            return 0
        first_kept = DecisionLogEntry.objects.filter(time__gte=cutoff).aggregate(first=Min("seq"))[
            "first"
        ]
        cut = newest if first_kept is None else first_kept - 1
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
