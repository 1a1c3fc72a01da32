"""Checkpoints signed through the providers that the licensing app registers."""

from audit import chain
from audit.selectors import chain_verify
from audit.services import checkpoint_create, decision_record
from licensing.signing import tenant_key_rotate


def test_licensing_registers_signer_and_key_set(in_alpha) -> None:
    assert chain.checkpoint_signer() is not None
    assert chain.tenant_key_set() is not None


def test_licensing_signer_checkpoint_verifies(in_alpha) -> None:
    decision_record(event="license.refresh", outcome="ok")

    checkpoint = checkpoint_create()
    report = chain_verify()

    assert checkpoint is not None
    assert report.ok, report.findings
    assert report.last_signed_seq == checkpoint.seq


def test_checkpoint_verifies_after_key_rotation(in_alpha) -> None:
    decision_record(event="license.refresh", outcome="ok")
    checkpoint_create()

    tenant_key_rotate(reason="scheduled rotation in test")
    report = chain_verify()

    assert report.ok, report.findings


def test_checkpoint_of_compromised_key_fails(in_alpha) -> None:
    decision_record(event="license.refresh", outcome="ok")
    checkpoint_create()

    tenant_key_rotate(reason="compromise drill in test", compromised=True)
    report = chain_verify()

    assert not report.ok
