"""License keys: generation and the hash under which they are stored.

A key is `KP-` followed by 32 base32 characters (160 random bits) in groups
of four. Because the key is high-entropy, a plain SHA-256 is a safe lookup
hash: guessing a key is as hard as guessing 160 random bits, so no slow or
keyed hash is needed, and the stored hash stays valid across SECRET_KEY
rotations. Hyphens, spaces and letter case are ignored on input.
"""

import base64
import hashlib
import secrets

PREFIX = "KP-"


def license_key_generate() -> str:
    body = base64.b32encode(secrets.token_bytes(20)).decode("ascii")
    return PREFIX + "-".join(body[i : i + 4] for i in range(0, len(body), 4))


def license_key_normalize(key: str) -> str:
    """Return the key without prefix, separators or case, as it is hashed."""
    text = key.strip().upper()
    if text.startswith(PREFIX):
        text = text[len(PREFIX) :]
    return "".join(ch for ch in text if ch not in "- ")


def license_key_hash(key: str) -> str:
    return hashlib.sha256(
        ("keyplane-license-key:" + license_key_normalize(key)).encode()
    ).hexdigest()


def license_key_hint(key: str) -> str:
    return license_key_normalize(key)[-4:]
