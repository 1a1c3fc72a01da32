"""The periodic audit tasks and their management commands, run in-process."""

import pytest
from django.contrib.auth import get_user_model
from django.core import mail
from django.core.management import CommandError, call_command
from django.db import connection

from audit import chain, tasks
from audit.models import Checkpoint, PendingEntry
from audit.services import audit_settings_get, decision_record
from tests.audit.conftest import record
from tests.conftest import chained_decisions


def test_chain_task_chains_pending_entries(in_alpha):
    decision_record(event="license.refresh", outcome="ok", actor="device:task-1")

    chained = tasks.chain_entries()

    assert chained >= 1
    assert not PendingEntry.objects.exists()
    assert chained_decisions().filter(actor="device:task-1").count() == 1


def test_checkpoint_task_signs_head(in_alpha, registered_signer):
    entry = record(event="license.refresh", outcome="ok")

    assert tasks.checkpoint() == entry.seq
    assert Checkpoint.objects.filter(seq=entry.seq, kind="periodic").exists()


def test_checkpoint_task_without_signer_skips(in_alpha, registered_signer):
    record(event="license.refresh", outcome="ok")
    chain.register_checkpoint_signer(None)

    assert tasks.checkpoint() is None


def test_verify_task_ok_chain(in_alpha, registered_signer):
    record(event="license.refresh", outcome="ok")

    assert tasks.verify() is True


def test_verify_task_alerts_on_tampering(in_alpha, registered_signer):
    reader = get_user_model().objects.create_user("alert-reader", "reader@alpha.example")
    audit_settings_get().alert_recipients.add(reader)
    entry = record(event="license.refresh", outcome="ok")
    with connection.cursor() as cursor:
        cursor.execute("SET LOCAL session_replication_role = replica")
        cursor.execute(
            "UPDATE audit_decisionlogentry SET outcome = 'x' WHERE seq = %s", [entry.seq]
        )
        cursor.execute("SET LOCAL session_replication_role = origin")

    assert tasks.verify() is False
    alert = chained_decisions().order_by("-seq").first()
    assert alert.event == "audit.verify"
    assert alert.reason == "entry_edited"
    assert mail.outbox[-1].to == ["reader@alpha.example"]
    assert f"entry #{entry.seq}" in mail.outbox[-1].body


def test_audit_checkpoint_command(in_alpha, registered_signer, capsys):
    entry = record(event="license.refresh", outcome="ok")

    call_command("audit_checkpoint", tenant="alpha")

    assert f"alpha: checkpoint at #{entry.seq}" in capsys.readouterr().out


def test_audit_purge_command_reports_count(in_alpha, registered_signer, capsys):
    call_command("audit_purge", tenant="alpha")

    assert "alpha: 0 entries purged" in capsys.readouterr().out


def test_audit_verify_unknown_tenant(in_alpha):
    with pytest.raises(CommandError, match="Tenant 'nope' not found"):
        call_command("audit_verify", tenant="nope")
