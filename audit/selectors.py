"""Reads of the audit records: chain verification, export rows and history as of a date."""

import datetime as dt
from collections.abc import Iterator
from typing import Any

from django.db import connection
from django.db.models import QuerySet
from django.utils import timezone
from django.utils.dateparse import parse_date, parse_datetime

from audit import chain
from audit.models import ChainHead, Checkpoint, DecisionLogEntry, PendingEntry

_CHUNK = 2000
PENDING_TOLERANCE = dt.timedelta(minutes=10)


def current_tenant_slug() -> str:
    """Return the slug of the tenant whose schema is active."""
    from portal.tenants.models import Tenant

    slug = getattr(getattr(connection, "tenant", None), "slug", "")
    if slug:
        return str(slug)
    found = (
        Tenant.objects.filter(schema_name=connection.schema_name)
        .values_list("slug", flat=True)
        .first()
    )
    return found or connection.schema_name


def entry_rows(
    *, first_seq: int | None = None, last_seq: int | None = None, chunk_size: int = _CHUNK
) -> Iterator[dict[str, Any]]:
    """Yield entries as dicts in ascending `seq` order, optionally limited to a `seq` range.

    Reads in keyset-paginated chunks, so memory stays flat on large logs.
    """
    queryset = DecisionLogEntry.objects.order_by("seq")
    if first_seq is not None:
        queryset = queryset.filter(seq__gte=first_seq)
    if last_seq is not None:
        queryset = queryset.filter(seq__lte=last_seq)
    fields = (*chain.ENTRY_FIELDS, "hash")
    after = None
    while True:
        page = queryset if after is None else queryset.filter(seq__gt=after)
        rows = list(page.values(*fields)[:chunk_size])
        if not rows:
            return
        yield from rows
        after = rows[-1]["seq"]


def checkpoint_rows() -> list[dict[str, Any]]:
    rows = Checkpoint.objects.order_by("seq", "id").values("id", "seq", "hash", "kind", "token")
    return [dict(row) for row in rows]


def chain_verify(*, now: dt.datetime | None = None) -> chain.VerificationReport:
    """Verify the current tenant's decision log against its checkpoints and chain head.

    Pending entries are chained moments after their commit, and the periodic
    `audit.chain` task catches up every minute. A pending entry older than
    PENDING_TOLERANCE is reported as `entries_pending`: until it is chained,
    nothing would show an edit, and the log lacks it.
    """
    head = ChainHead.objects.filter(pk=1).values_list("seq", "hash").first()
    report = chain.verify_chain(
        entry_rows(),
        checkpoint_rows(),
        key_set=chain.tenant_key_set(),
        tenant=current_tenant_slug(),
        head=head,
    )
    report.pending = PendingEntry.objects.count()
    now = now or timezone.now()
    oldest = PendingEntry.objects.order_by("time").values_list("id", "time").first()
    if oldest is not None and oldest[1] < now - PENDING_TOLERANCE:
        report.findings.append(
            chain.Finding(
                "entries_pending",
                f"pending entry {oldest[0]} from {oldest[1].isoformat()} and "
                f"{report.pending - 1} more are not chained into the log; check that the "
                "Celery worker and beat run the audit.chain task and that the logs show "
                "no audit.chain_failed errors",
            )
        )
    # decision_record takes the time from the server's clock, so a pending
    # entry from the future was written around it.
    newest = PendingEntry.objects.order_by("-time").values_list("id", "time").first()
    if newest is not None and newest[1] > now + PENDING_TOLERANCE:
        report.findings.append(
            chain.Finding(
                "entries_pending",
                f"pending entry {newest[0]} is dated {newest[1].isoformat()}, in the future; "
                "it was not written by decision_record: inspect it and delete it",
            )
        )
    return report


def parse_as_of(text: str) -> dt.datetime | None:
    """Parse an ISO date (end of that day, UTC) or date and time (UTC unless given)."""
    moment = parse_datetime(text)
    if moment is None:
        day = parse_date(text)
        if day is None:
            return None
        moment = dt.datetime.combine(day, dt.time.max)
    if timezone.is_naive(moment):
        moment = timezone.make_aware(moment, dt.UTC)
    return moment


def history_as_of(model: Any, when: dt.datetime) -> list[dict[str, Any]]:
    """Return each object of `model` that existed at `when`, with its field and m2m values.

    Reads the latest historical record of each object at or before `when`;
    objects whose latest record is a deletion are left out. Many-to-many
    fields tracked with `m2m_fields` show the related objects of that record.
    """
    history_model = model.history.model
    records: QuerySet[Any] = (
        model.history.filter(history_date__lte=when).latest_of_each().order_by(model._meta.pk.name)
    )
    m2m_fields = list(getattr(history_model, "_history_m2m_fields", []))
    rows: list[dict[str, Any]] = []
    for record in records:
        if record.history_type == "-":
            continue
        values: dict[str, Any] = {}
        for field in model._meta.concrete_fields:
            values[field.verbose_name] = getattr(record, field.attname)
        for m2m_field in m2m_fields:
            through_rows = getattr(record, m2m_field.name).all()
            targets = (_m2m_target(row, m2m_field.related_model) for row in through_rows)
            values[m2m_field.verbose_name] = ", ".join(sorted(str(target) for target in targets))
        rows.append(
            {
                "pk": getattr(record, model._meta.pk.attname),
                "changed_by": record.history_user,
                "changed_at": record.history_date,
                "values": values,
            }
        )
    return rows


def _m2m_target(through_row: Any, target_model: Any) -> Any:
    """Return the object of `target_model` that a historical m2m row points to."""
    for field in through_row._meta.fields:
        if field.is_relation and field.related_model is target_model:
            return getattr(through_row, field.name)
    return through_row
