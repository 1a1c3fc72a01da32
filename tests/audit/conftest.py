"""Fixtures of the audit tests: a checkpoint signer with a key generated per test session."""

import base64
import json
from collections.abc import Iterator
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from audit import chain
from audit.models import DecisionLogEntry
from audit.services import decision_record
from tests.conftest import chained_decisions


def b64url(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


class CheckpointTestSigner:
    """Signs checkpoint claims like the licensing app does, with a throwaway Ed25519 key."""

    def __init__(self, kid: str = "test-audit-key") -> None:
        self.kid = kid
        self.private_key = Ed25519PrivateKey.generate()
        public = self.private_key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
        self.jwk = {"kty": "OKP", "crv": "Ed25519", "x": b64url(public), "kid": kid, "use": "sig"}

    def sign(self, claims: dict[str, Any], typ: str = chain.CHECKPOINT_TYPE) -> str:
        header = {"alg": "EdDSA", "kid": self.kid, "typ": typ}
        signing_input = (
            b64url(json.dumps(header, separators=(",", ":")).encode())
            + "."
            + b64url(json.dumps(claims, separators=(",", ":")).encode())
        )
        signature = self.private_key.sign(signing_input.encode("ascii"))
        return signing_input + "." + b64url(signature)

    def key_set(self) -> dict[str, Any]:
        return {"keys": [self.jwk]}


@pytest.fixture(scope="session")
def test_signer() -> CheckpointTestSigner:
    return CheckpointTestSigner()


@pytest.fixture
def registered_signer(test_signer: CheckpointTestSigner) -> Iterator[CheckpointTestSigner]:
    """Register the test signer and key set with audit.chain for one test, then restore."""
    saved = (chain._checkpoint_signer, chain._key_set_provider, chain._certificate_provider)
    chain.register_checkpoint_signer(test_signer.sign)
    chain.register_key_set_provider(test_signer.key_set)
    yield test_signer
    chain.register_checkpoint_signer(saved[0])
    chain.register_key_set_provider(saved[1], certificates=saved[2])


def record(**fields: Any) -> DecisionLogEntry:
    """Record a decision, chain it and return its log entry.

    Inside a test's transaction the decisions recorded so far are chained in
    order, so the newest log entry is the one just recorded.
    """
    decision_record(**fields)
    entry = chained_decisions().order_by("-seq").first()
    assert entry is not None
    return entry
