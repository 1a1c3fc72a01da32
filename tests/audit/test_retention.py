import datetime as dt

import pytest
import time_machine
from django.db import connection
from django.utils import timezone

from audit import chain
from audit.exceptions import CheckpointSignerMissing
from audit.models import AuditSettings, Checkpoint, LegalHold
from audit.selectors import chain_verify
from audit.services import audit_settings_get, decision_log_purge, decision_record
from tests.audit.conftest import record
from tests.conftest import chained_decisions


@pytest.fixture
def old_and_new(in_alpha, registered_signer):
    """Three entries 500 days old, then two from now."""
    with time_machine.travel(timezone.now() - dt.timedelta(days=500), tick=True):
        old = [
            record(event="license.activate", outcome="granted", subject=f"grant:{i}")
            for i in range(3)
        ]
    new = [record(event="license.refresh", outcome="ok") for _ in range(2)]
    return old, new


def test_decision_log_purge_removes_old_entries(old_and_new):
    old, new = old_and_new

    deleted = decision_log_purge()

    assert deleted >= 3
    assert not chained_decisions().filter(seq__lte=old[-1].seq).exists()
    assert chained_decisions().filter(seq__in=[e.seq for e in new]).count() == 2


def test_decision_log_purge_keeps_chain_verifiable(old_and_new):
    old, _ = old_and_new

    decision_log_purge()
    report = chain_verify()

    assert report.ok, report.findings
    assert report.first_seq == old[-1].seq + 1


def test_decision_log_purge_signs_retention_cut(old_and_new):
    old, _ = old_and_new

    decision_log_purge()
    cut = Checkpoint.objects.get(kind=Checkpoint.Kind.RETENTION_CUT)

    assert cut.seq == old[-1].seq
    assert cut.hash == old[-1].hash


def test_decision_log_purge_records_itself(old_and_new):
    decision_log_purge()
    entry = chained_decisions().order_by("-seq").first()

    assert entry.event == "audit.purge"
    assert entry.actor == "system:audit.purge"


def test_decision_log_purge_respects_retention_setting(old_and_new):
    settings_row = audit_settings_get()
    settings_row.retention_days = 600
    settings_row.save()

    assert decision_log_purge() == 0


def test_decision_log_purge_stops_at_legal_hold(old_and_new):
    old, _ = old_and_new
    LegalHold.objects.create(subject="grant:1", reason="case 2026-17")

    decision_log_purge()

    assert chained_decisions().filter(seq=old[1].seq).exists()
    assert not chained_decisions().filter(seq=old[0].seq).exists()
    assert chain_verify().ok


def test_decision_log_purge_without_signer_deletes_nothing(old_and_new):
    old, _ = old_and_new
    chain.register_checkpoint_signer(None)

    with pytest.raises(CheckpointSignerMissing):
        decision_log_purge()

    assert chained_decisions().filter(seq=old[0].seq).exists()


def test_chain_verify_detects_deleted_retention_cut(old_and_new):
    decision_log_purge()
    with connection.cursor() as cursor:
        cursor.execute("SET LOCAL session_replication_role = replica")
        cursor.execute("DELETE FROM audit_checkpoint WHERE kind = 'retention_cut'")
        cursor.execute("SET LOCAL session_replication_role = origin")

    report = chain_verify()

    assert report.first_bad.code == "entries_missing"
    assert "no signed retention cut" in report.first_bad.message


def test_audit_settings_default_retention(in_alpha):
    AuditSettings.objects.filter(pk=1).delete()

    assert audit_settings_get().retention_days == 400


def test_decision_log_purge_keeps_newer_entry(in_alpha, registered_signer):
    # Recorded first but dated now: a transaction that stayed open while an
    # older-dated entry was recorded would leave them in this order.
    decision_record(event="license.refresh", outcome="ok", actor="device:newer")
    with time_machine.travel(timezone.now() - dt.timedelta(days=500), tick=True):
        decision_record(event="license.refresh", outcome="ok", actor="device:older")
    chained_decisions()

    decision_log_purge()

    assert chained_decisions().filter(actor="device:newer").exists()
