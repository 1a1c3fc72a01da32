"""Pending entries and their chaining into the log, within a test and across connections."""

import datetime as dt
import uuid

import psycopg
import pytest
from django.conf import settings
from django.db import DatabaseError, connection, transaction
from django.utils import timezone
from django_tenants.utils import schema_context

from audit.chaining import chainer
from audit.models import ChainHead, DecisionLogEntry, PendingEntry
from audit.selectors import chain_verify
from audit.services import _CHAIN_LOCK_CLASS, decision_log_chain, decision_record


def test_decision_record_stays_pending_until_chained(in_alpha):
    logged_before = DecisionLogEntry.objects.count()

    pending_id = decision_record(event="license.refresh", outcome="ok", actor="device:p1")

    assert PendingEntry.objects.filter(id=pending_id).exists()
    assert DecisionLogEntry.objects.count() == logged_before


def test_decision_log_chain_moves_pending_into_log(in_alpha):
    decision_record(event="license.refresh", outcome="ok", actor="device:p2")

    decision_log_chain()

    assert not PendingEntry.objects.exists()
    assert DecisionLogEntry.objects.filter(actor="device:p2").count() == 1


def test_decision_log_chain_keeps_recording_order(in_alpha):
    for index in range(3):
        decision_record(event="license.refresh", outcome="ok", actor=f"device:order-{index}")

    decision_log_chain()

    actors = DecisionLogEntry.objects.filter(actor__startswith="device:order-").order_by("seq")
    assert list(actors.values_list("actor", flat=True)) == [f"device:order-{i}" for i in range(3)]


def test_decision_log_chain_moves_head_to_last_entry(in_alpha):
    decision_record(event="license.refresh", outcome="ok")

    decision_log_chain()

    head = ChainHead.objects.get(pk=1)
    last = DecisionLogEntry.objects.order_by("-seq").first()
    assert (head.seq, head.hash) == (last.seq, last.hash)


def test_pending_entry_rejects_update(in_alpha):
    pending_id = decision_record(event="license.refresh", outcome="ok")

    with pytest.raises(DatabaseError, match="append-only"), transaction.atomic():
        PendingEntry.objects.filter(id=pending_id).update(outcome="refused")


def test_chain_verify_tolerates_fresh_pending_entry(in_alpha, registered_signer):
    decision_record(event="license.refresh", outcome="ok")

    report = chain_verify()

    assert report.ok, report.findings
    assert report.pending >= 1


def test_chain_verify_reports_stale_pending_entry(in_alpha, registered_signer):
    decision_record(event="license.refresh", outcome="ok")

    report = chain_verify(now=timezone.now() + dt.timedelta(minutes=11))

    assert report.first_bad is not None
    assert report.first_bad.code == "entries_pending"


def _hold_chain_lock(schema: str) -> psycopg.Connection:
    """Take the schema's chaining lock from a connection of its own."""
    database = settings.DATABASES["default"]
    holder = psycopg.connect(
        host=database["HOST"],
        port=database["PORT"] or 5432,
        user=database["USER"],
        dbname=connection.settings_dict["NAME"],
        autocommit=True,
    )
    holder.execute("SELECT pg_advisory_lock(%s, hashtext(%s))", [_CHAIN_LOCK_CLASS, schema])
    return holder


@pytest.mark.live
def test_decision_log_chain_returns_when_lock_is_held(committed_db):
    actor = f"device:{uuid.uuid4().hex[:12]}"
    with schema_context("alpha"):
        holder = _hold_chain_lock("alpha")
        try:
            decision_record(event="test.lock_held", outcome="ok", actor=actor)

            chained = decision_log_chain()

            assert chained == 0
            assert PendingEntry.objects.filter(actor=actor).exists()
        finally:
            holder.close()
        decision_log_chain(wait=True)


@pytest.mark.live
def test_decision_log_chain_wait_chains_after_lock_is_released(committed_db):
    actor = f"device:{uuid.uuid4().hex[:12]}"
    with schema_context("alpha"):
        holder = _hold_chain_lock("alpha")
        decision_record(event="test.lock_wait", outcome="ok", actor=actor)
        holder.close()

        decision_log_chain(wait=True)

        assert DecisionLogEntry.objects.filter(actor=actor).count() == 1


@pytest.mark.live
def test_chainer_thread_chains_after_commit(committed_db):
    actor = f"device:{uuid.uuid4().hex[:12]}"
    with schema_context("alpha"):
        decision_record(event="test.thread", outcome="ok", actor=actor)

        assert chainer.flush(timeout=30)

        assert DecisionLogEntry.objects.filter(actor=actor).count() == 1


@pytest.mark.live
def test_chainer_thread_survives_a_failing_tenant(committed_db):
    chainer.request("audit_no_such_schema")
    assert chainer.flush(timeout=30)
    actor = f"device:{uuid.uuid4().hex[:12]}"

    with schema_context("alpha"):
        decision_record(event="test.thread", outcome="ok", actor=actor)
        assert chainer.flush(timeout=30)

        assert DecisionLogEntry.objects.filter(actor=actor).count() == 1
