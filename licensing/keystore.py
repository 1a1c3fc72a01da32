"""Key store: how private signing keys are kept at rest.

`KeyStore` is the interface the signing code depends on: it seals a raw
private key into an opaque envelope stored in the database and opens it
again. `EnvelopeKeyStore` encrypts each key with AES-256-GCM under a fresh
data key, and wraps that data key with AES-256-GCM under the key-encryption
key `settings.KEYPLANE_KEK`. A KMS or HSM implementation replaces only this
class; the envelope format is private to each implementation.

Envelope layout (version 1), all binary:
    b"KPE1" | wrap_nonce(12) | wrapped_data_key(48) | nonce(12) | ciphertext
The key id (`kid`) is the associated data of both layers, so an envelope
moved onto another key's row fails to open.
"""

import base64
import binascii
import functools
import os
from typing import Protocol

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured

_MAGIC = b"KPE1"
_NONCE_BYTES = 12
_WRAPPED_KEY_BYTES = 32 + 16  # AES-256 key plus the GCM tag


class KeyStoreError(Exception):
    """Raised when an envelope cannot be opened (wrong KEK, tampered data, wrong kid)."""


class KeyStore(Protocol):
    def seal(self, private_key: bytes, *, kid: str) -> bytes:
        """Return an envelope protecting `private_key`, bound to `kid`."""
        ...

    def open(self, envelope: bytes, *, kid: str) -> bytes:
        """Return the private key inside `envelope`; raise KeyStoreError if it fails."""
        ...


def _decode_kek(value: str) -> bytes:
    padded = value + "=" * (-len(value) % 4)
    for decode in (base64.urlsafe_b64decode, base64.b64decode):
        try:
            raw = decode(padded)
        except (binascii.Error, ValueError):
            continue
        if len(raw) == 32:
            return raw
    raise ImproperlyConfigured(
        "KEYPLANE_KEK must be the base64 (standard or URL-safe) encoding of 32 random bytes; "
        "generate one with: python -c "
        "'import os, base64; print(base64.b64encode(os.urandom(32)).decode())'"
    )


class EnvelopeKeyStore:
    """AES-GCM envelope encryption under a key-encryption key from the settings."""

    def __init__(self, kek: bytes) -> None:
        if len(kek) != 32:
            raise ImproperlyConfigured("The key-encryption key must be 32 bytes.")
        self._kek = AESGCM(kek)

    @classmethod
    def from_settings(cls) -> "EnvelopeKeyStore":
        return cls(_decode_kek(settings.KEYPLANE_KEK))

    def seal(self, private_key: bytes, *, kid: str) -> bytes:
        aad = kid.encode()
        data_key = AESGCM.generate_key(bit_length=256)
        wrap_nonce = os.urandom(_NONCE_BYTES)
        wrapped = self._kek.encrypt(wrap_nonce, data_key, aad)
        nonce = os.urandom(_NONCE_BYTES)
        ciphertext = AESGCM(data_key).encrypt(nonce, private_key, aad)
        return _MAGIC + wrap_nonce + wrapped + nonce + ciphertext

    def open(self, envelope: bytes, *, kid: str) -> bytes:
        envelope = bytes(envelope)
        if not envelope.startswith(_MAGIC):
            raise KeyStoreError(f"Key {kid}: the envelope has an unknown format.")
        body = envelope[len(_MAGIC) :]
        wrap_nonce = body[:_NONCE_BYTES]
        wrapped = body[_NONCE_BYTES : _NONCE_BYTES + _WRAPPED_KEY_BYTES]
        rest = body[_NONCE_BYTES + _WRAPPED_KEY_BYTES :]
        nonce, ciphertext = rest[:_NONCE_BYTES], rest[_NONCE_BYTES:]
        aad = kid.encode()
        try:
            data_key = self._kek.decrypt(wrap_nonce, wrapped, aad)
            return AESGCM(data_key).decrypt(nonce, ciphertext, aad)
        except InvalidTag as exc:
            raise KeyStoreError(
                f"Key {kid}: the envelope failed authentication; the KEK is wrong "
                "or the stored key was altered."
            ) from exc


@functools.cache
def default_keystore() -> KeyStore:
    """Return the configured key store (one instance per process)."""
    return EnvelopeKeyStore.from_settings()
