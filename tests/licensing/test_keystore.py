import base64
import os

import pytest

from licensing.keystore import EnvelopeKeyStore, KeyStoreError, _decode_kek


def test_envelope_round_trip() -> None:
    store = EnvelopeKeyStore(os.urandom(32))
    envelope = store.seal(b"secret-key-bytes", kid="k1")
    assert store.open(envelope, kid="k1") == b"secret-key-bytes"


def test_envelope_hides_plaintext() -> None:
    store = EnvelopeKeyStore(os.urandom(32))
    assert b"secret-key-bytes" not in store.seal(b"secret-key-bytes", kid="k1")


def test_envelope_wrong_kek_rejected() -> None:
    envelope = EnvelopeKeyStore(os.urandom(32)).seal(b"x" * 32, kid="k1")
    with pytest.raises(KeyStoreError):
        EnvelopeKeyStore(os.urandom(32)).open(envelope, kid="k1")


def test_envelope_bound_to_kid() -> None:
    store = EnvelopeKeyStore(os.urandom(32))
    envelope = store.seal(b"x" * 32, kid="k1")
    with pytest.raises(KeyStoreError):
        store.open(envelope, kid="k2")


def test_envelope_tampering_rejected() -> None:
    store = EnvelopeKeyStore(os.urandom(32))
    envelope = bytearray(store.seal(b"x" * 32, kid="k1"))
    envelope[-1] ^= 1
    with pytest.raises(KeyStoreError):
        store.open(bytes(envelope), kid="k1")


def test_kek_decoding_accepts_both_alphabets() -> None:
    raw = bytes(range(250, 256)) + os.urandom(26)
    assert _decode_kek(base64.b64encode(raw).decode()) == raw
    assert _decode_kek(base64.urlsafe_b64encode(raw).decode().rstrip("=")) == raw


def test_kek_decoding_rejects_short_key() -> None:
    from django.core.exceptions import ImproperlyConfigured

    with pytest.raises(ImproperlyConfigured):
        _decode_kek(base64.b64encode(b"short").decode())
