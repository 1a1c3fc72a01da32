"""Device identity: the device's Ed25519 key pair, its store and its proofs.

The private key never leaves the device. It signs DPoP proofs (RFC 9449)
for activation, refresh and every other device request, and the server
binds license tokens to its RFC 7638 thumbprint (`cnf.jkt`), so a token
copied to another machine is useless there. It also derives the key that
MACs the local state, which ties the cache to this device key.

`DeviceKeyStore` is the seam for an OS keystore (Keychain, DPAPI, Secret
Service). `FileKeyStore` keeps the key as an unencrypted PKCS #8 PEM file
readable only by its owner.
"""

import base64
import binascii
import logging
import os
import secrets
import stat
from pathlib import Path
from typing import Protocol

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from keyplane_client.errors import StoreError
from keyplane_client.jose import jwk_thumbprint, public_jwk, sign_compact

logger = logging.getLogger(__name__)

TYP_DPOP = "dpop+jwt"


class DeviceKeyStore(Protocol):
    """Where the device private key lives."""

    def load(self) -> Ed25519PrivateKey | None: ...

    def save(self, key: Ed25519PrivateKey) -> None: ...

    def delete(self) -> None: ...


def write_private_file(path: Path, data: bytes) -> None:
    """Write `data` atomically to `path`, readable and writable by the owner only."""
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.{secrets.token_hex(4)}.tmp")
    descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(descriptor, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temporary, path)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise


# PKCS #8 (RFC 5958) DER of an Ed25519 private key without attributes, as
# RFC 8410 section 7 gives it: this fixed prefix, then the 32-byte seed.
# Writing and reading that form directly keeps cryptography's serialization
# module, one of the slowest imports, off the start-up path.
PKCS8_ED25519_PREFIX = bytes.fromhex("302e020100300506032b657004220420")
PEM_BEGIN = "-----BEGIN PRIVATE KEY-----"
PEM_END = "-----END PRIVATE KEY-----"


def private_key_to_pem(key: Ed25519PrivateKey) -> bytes:
    der = PKCS8_ED25519_PREFIX + key.private_bytes_raw()
    return f"{PEM_BEGIN}\n{base64.b64encode(der).decode('ascii')}\n{PEM_END}\n".encode("ascii")


def private_key_from_pem(pem: bytes) -> Ed25519PrivateKey:
    """Load an Ed25519 PKCS #8 PEM key; other encodings go through cryptography's loader."""
    text = pem.decode("ascii", errors="replace").strip()
    if text.startswith(PEM_BEGIN) and text.endswith(PEM_END):
        try:
            der = base64.b64decode(
                "".join(text[len(PEM_BEGIN) : -len(PEM_END)].split()), validate=True
            )
        except binascii.Error:
            der = b""
        if len(der) == 48 and der.startswith(PKCS8_ED25519_PREFIX):
            return Ed25519PrivateKey.from_private_bytes(der[16:])
    from cryptography.hazmat.primitives import serialization

    key = serialization.load_pem_private_key(pem, password=None)
    if not isinstance(key, Ed25519PrivateKey):
        raise TypeError("not an Ed25519 private key")
    return key


class FileKeyStore:
    """The device key as a PKCS #8 PEM file with mode 0600."""

    def __init__(self, path: Path | str) -> None:
        self.path = Path(path)

    def load(self) -> Ed25519PrivateKey | None:
        try:
            info = self.path.stat()
        except FileNotFoundError:
            return None
        if os.name == "posix" and info.st_mode & (stat.S_IRWXG | stat.S_IRWXO):
            raise StoreError(
                f"device key {self.path} is accessible by other users "
                f"(mode {stat.S_IMODE(info.st_mode):o}); "
                "run chmod 600 on it or delete it and activate again",
                reason="device_key_exposed",
            )
        try:
            return private_key_from_pem(self.path.read_bytes())
        except (ValueError, TypeError, OSError) as exc:
            raise StoreError(
                f"device key {self.path} cannot be read: {exc}", reason="device_key_invalid"
            ) from exc

    def save(self, key: Ed25519PrivateKey) -> None:
        write_private_file(self.path, private_key_to_pem(key))

    def delete(self) -> None:
        self.path.unlink(missing_ok=True)


class DeviceIdentity:
    """The device key pair and what is derived from it."""

    def __init__(self, private_key: Ed25519PrivateKey) -> None:
        self._private_key = private_key
        self.jwk = public_jwk(private_key.public_key())
        self.thumbprint = jwk_thumbprint(self.jwk)

    @classmethod
    def load_or_create(cls, store: DeviceKeyStore) -> "DeviceIdentity":
        key = store.load()
        if key is None:
            key = Ed25519PrivateKey.generate()
            store.save(key)
            logger.info("created a new device key")
        return cls(key)

    def proof(self, *, method: str, url: str, now: int, nonce: str | None = None) -> str:
        """A DPoP proof for one request; `url` is sent without its query and fragment."""
        target = url.split("?", 1)[0].split("#", 1)[0]
        claims: dict[str, object] = {
            "htm": method.upper(),
            "htu": target,
            "iat": now,
            "jti": secrets.token_urlsafe(16),
        }
        if nonce is not None:
            claims["nonce"] = nonce
        return sign_compact(
            self._private_key, {"alg": "EdDSA", "typ": TYP_DPOP, "jwk": self.jwk}, claims
        )

    def mac_key(self, purpose: str) -> bytes:
        """A 32-byte key for `purpose`, derived from the device private key with HKDF-SHA256."""
        raw = self._private_key.private_bytes_raw()
        hkdf = HKDF(
            algorithm=hashes.SHA256(),
            length=32,
            salt=None,
            info=f"keyplane-client/{purpose}".encode(),
        )
        return hkdf.derive(raw)
