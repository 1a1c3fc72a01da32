"""Checkpoints signed by the licensing app's registered signer verify with the tenant keys."""

import pytest

from audit import chain
from audit.selectors import chain_verify
from audit.services import checkpoint_create, decision_record

signing = pytest.importorskip("licensing.signing")
jws = pytest.importorskip("licensing.jws")


@pytest.fixture
def licensing_key_set():
    """Register a key-set provider built from licensing's tenant keys, then restore."""
    saved = (chain._key_set_provider, chain._certificate_provider)

    def key_set():
        keys = signing.tenant_public_keys()
        return {"keys": [jws.public_jwk(key, kid=kid) for kid, key in keys.items()]}

    chain.register_key_set_provider(key_set, certificates=signing.tenant_key_certificates)
    yield
    chain.register_key_set_provider(saved[0], certificates=saved[1])


def test_licensing_signer_checkpoint_verifies(in_alpha, licensing_key_set):
    if chain.checkpoint_signer() is None:
        pytest.fail("the licensing app registered no checkpoint signer")
    decision_record(event="license.refresh", outcome="ok")

    checkpoint = checkpoint_create()
    report = chain_verify()

    assert checkpoint is not None
    assert report.ok, report.findings
    assert report.last_signed_seq == checkpoint.seq
