"""Tampering cases for chain verification and `audit_verify`.

The attacker edits rows with raw SQL after `session_replication_role =
replica`, which skips the append-only trigger the way a database superuser
could.
"""

import json

import pytest
from django.core.management import CommandError, call_command
from django.db import connection

from audit import chain
from audit.models import Checkpoint, DecisionLogEntry
from audit.selectors import chain_verify
from audit.services import checkpoint_create
from tests.audit.conftest import record


def attack(sql: str, params: list | None = None) -> None:
    with connection.cursor() as cursor:
        cursor.execute("SET LOCAL session_replication_role = replica")
        cursor.execute(sql, params or [])
        cursor.execute("SET LOCAL session_replication_role = origin")


@pytest.fixture
def five_entries(in_alpha, registered_signer) -> list[DecisionLogEntry]:
    entries = [
        record(
            event="license.activate",
            outcome="granted" if index % 2 else "refused",
            reason="" if index % 2 else "seat_limit",
            actor=f"device:{index}",
            subject=f"grant:{index}",
            data={"index": index},
        )
        for index in range(5)
    ]
    return entries


def test_chain_verify_intact_chain_is_ok(five_entries):
    checkpoint_create()

    report = chain_verify()

    assert report.ok, report.findings
    assert report.last_seq == five_entries[-1].seq
    assert report.last_signed_seq == five_entries[-1].seq


def test_audit_verify_intact_chain_prints_ok(five_entries, capsys):
    call_command("audit_verify", tenant="alpha")

    assert "alpha: ok" in capsys.readouterr().out


def test_audit_verify_edited_field_named(five_entries):
    target = five_entries[2].seq
    attack("UPDATE audit_decisionlogentry SET outcome = 'granted' WHERE seq = %s", [target])

    with pytest.raises(CommandError, match=f"entry #{target} does not match its stored hash"):
        call_command("audit_verify", tenant="alpha")


def test_chain_verify_edited_data_named(five_entries):
    target = five_entries[1].seq
    attack(
        "UPDATE audit_decisionlogentry SET data = '{\"index\": 99}'::jsonb WHERE seq = %s",
        [target],
    )

    report = chain_verify()

    assert report.first_bad.code == "entry_edited"
    assert report.first_bad.seq == target


def test_audit_verify_deleted_row_named(five_entries):
    target = five_entries[2].seq
    attack("DELETE FROM audit_decisionlogentry WHERE seq = %s", [target])

    with pytest.raises(CommandError, match=f"entry #{target} is missing"):
        call_command("audit_verify", tenant="alpha")


def test_chain_verify_deleted_last_row_named(five_entries):
    target = five_entries[-1].seq
    attack("DELETE FROM audit_decisionlogentry WHERE seq = %s", [target])

    report = chain_verify()

    assert report.first_bad.code == "head_mismatch"
    assert report.first_bad.seq == target


def test_chain_verify_deleted_signed_tail_named(five_entries):
    checkpoint_create()
    target = five_entries[-1].seq
    attack("DELETE FROM audit_decisionlogentry WHERE seq = %s", [target])
    attack("UPDATE audit_chainhead SET seq = %s, hash = %s", [target - 1, five_entries[-2].hash])

    report = chain_verify()

    assert report.first_bad.code == "entries_missing"
    assert report.first_bad.seq == target


def test_audit_verify_inserted_row_named(five_entries):
    """A row forged between #2 and #3, linked correctly, shifts the later rows."""
    before, after = five_entries[1], five_entries[2]
    attack("UPDATE audit_decisionlogentry SET seq = seq + 1000 WHERE seq >= %s", [after.seq])
    attack("UPDATE audit_decisionlogentry SET seq = seq - 999 WHERE seq >= %s", [after.seq + 1000])
    forged = {
        "seq": after.seq,
        "time": after.time,
        "event": "license.activate",
        "outcome": "granted",
        "reason": "",
        "actor": "device:forged",
        "subject": "grant:1",
        "data": {},
        "prev_hash": before.hash,
    }
    DecisionLogEntry.objects.create(hash=chain.entry_hash(**forged), **forged)

    with pytest.raises(CommandError, match=f"entry #{after.seq + 1} does not match"):
        call_command("audit_verify", tenant="alpha")


def test_chain_verify_appended_row_named(five_entries):
    last = five_entries[-1]
    forged = {
        "seq": last.seq + 1,
        "time": last.time,
        "event": "license.activate",
        "outcome": "granted",
        "reason": "",
        "actor": "device:forged",
        "subject": "grant:1",
        "data": {},
        "prev_hash": last.hash,
    }
    DecisionLogEntry.objects.create(hash=chain.entry_hash(**forged), **forged)

    report = chain_verify()

    assert report.first_bad.code == "head_mismatch"


def test_audit_verify_swapped_rows_named(five_entries):
    first, second = five_entries[1].seq, five_entries[2].seq
    attack("UPDATE audit_decisionlogentry SET seq = -1 WHERE seq = %s", [first])
    attack("UPDATE audit_decisionlogentry SET seq = %s WHERE seq = %s", [first, second])
    attack("UPDATE audit_decisionlogentry SET seq = %s WHERE seq = -1", [second])

    with pytest.raises(CommandError, match=f"entry #{first} does not match its stored hash"):
        call_command("audit_verify", tenant="alpha")


def test_chain_verify_swapped_contents_named(five_entries):
    """Rows swapped with their hashes but keeping their positions fail on the seq in the hash."""
    first, second = five_entries[1], five_entries[2]
    columns = (
        "time",
        "event",
        "outcome",
        "reason",
        "actor",
        "subject",
        "data",
        "prev_hash",
        "hash",
    )
    assignments = ", ".join(f"{column} = %s" for column in columns)
    rows = {
        row["seq"]: row
        for row in DecisionLogEntry.objects.filter(seq__in=[first.seq, second.seq]).values()
    }
    for target, source in ((first.seq, second.seq), (second.seq, first.seq)):
        values = [rows[source][column] for column in columns]
        values[columns.index("data")] = json.dumps(values[columns.index("data")])
        attack(f"UPDATE audit_decisionlogentry SET {assignments} WHERE seq = %s", [*values, target])

    report = chain_verify()

    assert report.first_bad.code == "entry_edited"
    assert report.first_bad.seq == first.seq


def test_audit_verify_checkpoint_signature_named(five_entries):
    checkpoint = checkpoint_create()
    header, claims, signature = checkpoint.token.split(".")
    flipped = signature[:10] + ("A" if signature[10] != "A" else "B") + signature[11:]
    attack(
        "UPDATE audit_checkpoint SET token = %s WHERE id = %s",
        [f"{header}.{claims}.{flipped}", checkpoint.id],
    )

    with pytest.raises(CommandError, match=f"checkpoint {checkpoint.id} .* invalid signature"):
        call_command("audit_verify", tenant="alpha")


def test_chain_verify_checkpoint_claims_edited(five_entries):
    checkpoint = checkpoint_create()
    attack("UPDATE audit_checkpoint SET seq = seq - 1 WHERE id = %s", [checkpoint.id])

    report = chain_verify()

    assert report.first_bad.code == "checkpoint_invalid"
    assert report.first_bad.checkpoint == checkpoint.id


def test_chain_verify_rewritten_chain_named(five_entries):
    """An attacker who recomputes every hash is caught by the signed checkpoint."""
    checkpoint_create()
    target = five_entries[2]
    rows = list(DecisionLogEntry.objects.filter(seq__gte=target.seq).order_by("seq").values())
    prev_hash = five_entries[1].hash
    for row in rows:
        if row["seq"] == target.seq:
            row["outcome"] = "granted"
        fields = {name: row[name] for name in chain.ENTRY_FIELDS}
        fields["prev_hash"] = prev_hash
        digest = chain.entry_hash(**fields)
        attack(
            "UPDATE audit_decisionlogentry SET outcome = %s, prev_hash = %s, hash = %s "
            "WHERE seq = %s",
            [row["outcome"], prev_hash, digest, row["seq"]],
        )
        prev_hash = digest
    attack("UPDATE audit_chainhead SET hash = %s", [prev_hash])

    report = chain_verify()

    assert report.first_bad.code == "checkpoint_mismatch"
    assert report.first_bad.seq == five_entries[-1].seq


def test_chain_verify_without_key_set_fails(five_entries):
    checkpoint_create()
    chain.register_key_set_provider(None)

    report = chain_verify()

    assert report.first_bad.code == "checkpoint_invalid"


def test_chain_verify_foreign_tenant_checkpoint(five_entries, registered_signer):
    head = five_entries[-1]
    token = registered_signer.sign(
        {"tid": "beta", "seq": head.seq, "hash": head.hash, "kind": "periodic", "iat": 0}
    )
    Checkpoint.objects.create(seq=head.seq, hash=head.hash, kind="periodic", token=token)

    report = chain_verify()

    assert "signed for tenant 'beta'" in report.first_bad.message


def test_checkpoint_create_is_idempotent(five_entries):
    first = checkpoint_create()
    second = checkpoint_create()

    assert first is not None
    assert second is None
