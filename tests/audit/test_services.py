import pytest
from django.db import DatabaseError, connection, transaction

from audit import chain
from audit.exceptions import DecisionEntryInvalid, SecretInDecisionData
from audit.models import ChainHead, PendingEntry
from audit.services import decision_record
from tests.audit.conftest import record
from tests.conftest import chained_decisions


def test_decision_record_chains_entries(in_alpha):
    first = record(event="license.activate", outcome="granted", actor="alpha-admin")
    second = record(
        event="license.activate",
        outcome="refused",
        reason="seat_limit",
        actor="device:7",
        subject="grant:12",
        data={"seats": 5},
    )

    assert second.seq == first.seq + 1
    assert second.prev_hash == first.hash
    assert second.hash == chain.entry_hash(
        seq=second.seq,
        time=second.time,
        event="license.activate",
        outcome="refused",
        reason="seat_limit",
        actor="device:7",
        subject="grant:12",
        data={"seats": 5},
        prev_hash=first.hash,
    )


def test_decision_record_hash_matches_stored_row(in_alpha):
    entry = record(event="token.issue", outcome="ok", data={"jti": "abc", "n": [1, True]})
    stored = chained_decisions().get(seq=entry.seq)

    assert (
        chain.entry_hash(
            seq=stored.seq,
            time=stored.time,
            event=stored.event,
            outcome=stored.outcome,
            reason=stored.reason,
            actor=stored.actor,
            subject=stored.subject,
            data=stored.data,
            prev_hash=stored.prev_hash,
        )
        == stored.hash
    )


def test_decision_record_moves_chain_head(in_alpha):
    entry = record(event="license.refresh", outcome="ok")
    head = ChainHead.objects.get(pk=1)

    assert head.seq == entry.seq
    assert head.hash == entry.hash


def test_decision_record_empty_actor_is_unknown(in_alpha):
    entry = record(event="license.refresh", outcome="ok")

    assert entry.actor == "unknown"


def test_decision_record_rolls_back_with_caller(in_alpha):
    pending_before = PendingEntry.objects.count()

    def decide_then_fail() -> None:
        with transaction.atomic():
            decision_record(event="license.refresh", outcome="ok")
            raise RuntimeError("caller fails after recording")

    with pytest.raises(RuntimeError):
        decide_then_fail()

    assert PendingEntry.objects.count() == pending_before


@pytest.mark.parametrize(
    "data",
    [
        {"license_key": "KP-1234"},
        {"token": "x"},
        {"device": {"private_key": "x"}},
        {"admin_password": "x"},
        {"Client-Secret": "x"},
        {"refresh_token": "x"},
        {"items": [{"secret": "x"}]},
        {"value": "eyJhbGciOiJFZERTQSJ9.eyJzdWIiOiIxIn0.c2lnbmF0dXJl"},
    ],
)
def test_decision_record_rejects_secret(in_alpha, data):
    with pytest.raises(SecretInDecisionData) as caught:
        record(event="license.activate", outcome="granted", data=data)

    assert caught.value.code == "audit_secret_rejected"


def test_decision_record_accepts_identifier_keys(in_alpha):
    entry = record(
        event="token.issue", outcome="ok", data={"jti": "j1", "kid": "k1", "token_exp": 123}
    )

    assert entry.data == {"jti": "j1", "kid": "k1", "token_exp": 123}


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("event", "Activate"),
        ("event", "license"),
        ("outcome", "Granted!"),
        ("reason", "Seat limit"),
    ],
)
def test_decision_record_rejects_malformed_field(in_alpha, field, value):
    arguments = {"event": "license.activate", "outcome": "granted", field: value}

    with pytest.raises(DecisionEntryInvalid) as caught:
        record(**arguments)

    assert caught.value.code == "audit_entry_invalid"


def test_decision_record_rejects_float_data(in_alpha):
    with pytest.raises(DecisionEntryInvalid):
        record(event="license.activate", outcome="granted", data={"ratio": 0.5})


def test_decision_log_rejects_update(in_alpha):
    entry = record(event="license.activate", outcome="granted")

    with pytest.raises(DatabaseError, match="append-only"), transaction.atomic():
        chained_decisions().filter(seq=entry.seq).update(outcome="refused")


def test_decision_log_rejects_delete(in_alpha):
    entry = record(event="license.activate", outcome="granted")

    with pytest.raises(DatabaseError, match="append-only"), transaction.atomic():
        chained_decisions().filter(seq=entry.seq).delete()


def test_decision_log_rejects_truncate(in_alpha):
    record(event="license.activate", outcome="granted")

    with (
        pytest.raises(DatabaseError, match="append-only"),
        transaction.atomic(),
        connection.cursor() as cursor,
    ):
        cursor.execute("TRUNCATE audit_decisionlogentry")


def test_decision_log_delete_needs_purge_setting(in_alpha):
    entry = record(event="license.activate", outcome="granted")

    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("SELECT set_config('keyplane.audit_purge', 'on', true)")
        cursor.execute("DELETE FROM audit_decisionlogentry WHERE seq = %s", [entry.seq])
        deleted = cursor.rowcount

    assert deleted == 1


def test_decision_record_rejects_public_schema(db):
    with pytest.raises(DecisionEntryInvalid, match="public schema"):
        record(event="root_key.rotate", outcome="ok")
