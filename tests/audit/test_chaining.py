"""Pending entries and their chaining into the log, within a test and across connections."""

import datetime as dt
import subprocess
import sys
import time
import uuid

import psycopg
import pytest
from django.conf import settings
from django.db import DatabaseError, connection, transaction
from django.utils import timezone
from django_tenants.utils import schema_context

from audit import chaining
from audit.chaining import chainer
from audit.exceptions import DecisionEntryInvalid
from audit.models import ChainHead, DecisionLogEntry, PendingEntry
from audit.selectors import chain_verify
from audit.services import _LOCK, decision_log_chain, decision_log_chain_pass, decision_record
from tests.conftest import PROJECT_ROOT, server_environment


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


def _insert_pending(time_sql: str, data_sql: str = "'{}'::jsonb") -> int:
    """Insert a pending row with SQL, as someone with database rights could."""
    with connection.cursor() as cursor:
        cursor.execute(
            "INSERT INTO audit_pendingentry (time, event, outcome, reason, actor, subject, data) "
            f"VALUES ({time_sql}, 'test.crafted', 'ok', '', 'device:x', '', {data_sql}) "
            "RETURNING id"
        )
        return int(cursor.fetchone()[0])


def test_chain_verify_stale_check_ignores_id_order(in_alpha, registered_signer):
    decision_record(event="license.refresh", outcome="ok")
    stale_id = _insert_pending("now() - interval '1 hour'")

    report = chain_verify()

    assert report.first_bad is not None
    assert f"pending entry {stale_id} " in report.first_bad.message


def test_chain_verify_reports_pending_entry_from_future(in_alpha, registered_signer):
    future_id = _insert_pending("now() + interval '1 day'")

    report = chain_verify()

    assert report.first_bad is not None
    assert f"pending entry {future_id} is dated" in report.first_bad.message


def test_decision_log_chain_names_unhashable_pending_entry(in_alpha):
    # jsonb prints 1e5000 as a 5,001-digit integer, more than Python parses.
    bad_id = _insert_pending("now()", "'{\"n\": 1e5000}'::jsonb")

    with pytest.raises(DecisionEntryInvalid, match=f"pending entry {bad_id} cannot be hashed"):
        decision_log_chain()


@pytest.mark.live
def test_decision_record_with_autocommit_off_raises(committed_db):
    with schema_context("alpha"):
        transaction.set_autocommit(False)
        try:
            with pytest.raises(DecisionEntryInvalid, match="autocommit off"):
                decision_record(event="license.refresh", outcome="ok")
        finally:
            transaction.rollback()
            transaction.set_autocommit(True)


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
    holder.execute(_LOCK, [schema])
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
def test_decision_log_chain_wait_after_release(committed_db):
    actor = f"device:{uuid.uuid4().hex[:12]}"
    with schema_context("alpha"):
        holder = _hold_chain_lock("alpha")
        decision_record(event="test.lock_wait", outcome="ok", actor=actor)
        holder.close()

        decision_log_chain(wait=True)

        assert DecisionLogEntry.objects.filter(actor=actor).count() == 1


@pytest.mark.live
def test_chainer_retries_until_lock_is_released(committed_db):
    actor = f"device:{uuid.uuid4().hex[:12]}"
    with schema_context("alpha"):
        holder = _hold_chain_lock("alpha")
        decision_record(event="test.retry", outcome="ok", actor=actor)
        time.sleep(0.3)
        assert PendingEntry.objects.filter(actor=actor).exists()

        # Nothing else is recorded: the chainer itself must come back to it.
        holder.close()

        assert chainer.flush(timeout=30)
        assert DecisionLogEntry.objects.filter(actor=actor).count() == 1


@pytest.mark.live
def test_chainer_thread_chains_after_commit(committed_db):
    actor = f"device:{uuid.uuid4().hex[:12]}"
    with schema_context("alpha"):
        decision_record(event="test.thread", outcome="ok", actor=actor)

        assert chainer.flush(timeout=30)

        assert DecisionLogEntry.objects.filter(actor=actor).count() == 1


def _wait_until_logged(actor: str, timeout: float = 30.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if DecisionLogEntry.objects.filter(actor=actor).exists():
            return True
        time.sleep(0.05)
    return False


def _missing_schema() -> str:
    """Name a schema that does not exist, new for each test, so none starts out set aside."""
    return f"audit_missing_{uuid.uuid4().hex[:12]}"


@pytest.mark.live
def test_chainer_thread_survives_a_failing_tenant(committed_db, monkeypatch):
    monkeypatch.setattr(chaining, "MAX_FAILED_ATTEMPTS", 2)
    chainer.request(_missing_schema())
    actor = f"device:{uuid.uuid4().hex[:12]}"

    with schema_context("alpha"):
        decision_record(event="test.thread", outcome="ok", actor=actor)

        assert _wait_until_logged(actor)


@pytest.mark.live
def test_chainer_drops_tenant_after_failed_attempts(committed_db, monkeypatch):
    monkeypatch.setattr(chaining, "MAX_FAILED_ATTEMPTS", 2)

    chainer.request(_missing_schema())

    assert chainer.flush(timeout=30)


def test_chainer_busy_pause_doubles_up_to_cap():
    idle_chainer = chaining.Chainer()

    pauses = []
    for _ in range(10):
        idle_chainer._busy_for("acme", now=0.0)
        pauses.append(idle_chainer._retry_at["acme"])

    assert pauses[1] == 2 * pauses[0]
    assert max(pauses) == chaining.MAX_BUSY_PAUSE_SECONDS


def test_chainer_new_commit_restarts_busy_pause():
    idle_chainer = chaining.Chainer()
    for _ in range(5):
        idle_chainer._busy_for("acme", now=0.0)

    idle_chainer._restart_busy_pause({"acme"})

    assert "acme" not in idle_chainer._retry_at


@pytest.mark.live
def test_decision_log_chain_pass_lock_timeout_gives_up(committed_db):
    with schema_context("alpha"):
        holder = _hold_chain_lock("alpha")
        try:
            started = time.monotonic()

            result = decision_log_chain_pass(wait=True, lock_timeout=0.2)

            assert result.done is False
            assert time.monotonic() - started < 5
        finally:
            holder.close()


@pytest.mark.live
def test_exiting_process_chains_after_busy_lock(committed_db):
    run_id = uuid.uuid4().hex[:12]
    with schema_context("alpha"):
        holder = _hold_chain_lock("alpha")
        worker = subprocess.Popen(
            [sys.executable, "-m", "tests.audit.append_worker", "alpha", run_id, "1"],
            cwd=PROJECT_ROOT,
            env=server_environment(),
        )
        try:
            deadline = time.monotonic() + 60
            while not PendingEntry.objects.filter(actor=f"device:{run_id}").exists():
                assert time.monotonic() < deadline, "the worker recorded nothing"
                time.sleep(0.05)
        finally:
            holder.close()
        assert worker.wait(timeout=60) == 0

        assert DecisionLogEntry.objects.filter(actor=f"device:{run_id}").count() == 1
