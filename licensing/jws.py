"""Compact JWS with Ed25519 (`alg` EdDSA, RFC 8037) and the JWK helpers around it.

Format: `base64url(header) "." base64url(payload) "." base64url(signature)`,
no padding. The header is exactly `{"alg": "EdDSA", "typ": ..., "kid": ...}`
for server-signed objects; device proofs carry `jwk` in place of `kid`.
Payloads are JSON with sorted keys and compact separators, so the same claims
always produce the same bytes, but verifiers must not depend on that.

`jws_verify` is strict: it accepts only `alg` EdDSA, only the expected
`typ`, rejects unknown critical headers, and checks the signature before the
payload is parsed. Claims such as `exp` are checked by the caller, because
what counts as fresh differs between tokens and proofs.
"""

import base64
import binascii
import hashlib
import json
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

ALGORITHM = "EdDSA"
MAX_JWS_LENGTH = 16 * 1024


class JWSError(Exception):
    """Raised when a JWS is malformed, has the wrong header, or fails verification."""


class JWKError(JWSError):
    """Raised when a JWK is not an Ed25519 public key (`kty` OKP, `crv` Ed25519)."""


def b64url_encode(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def b64url_decode(text: str) -> bytes:
    if not isinstance(text, str) or "=" in text:
        raise JWSError("Base64url segments must be unpadded strings.")
    try:
        return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except (binascii.Error, ValueError) as exc:
        raise JWSError("A segment is not valid base64url.") from exc


def _json_bytes(value: dict[str, Any]) -> bytes:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def public_key_bytes(public_key: Ed25519PublicKey) -> bytes:
    return public_key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)


def public_jwk(public_key: Ed25519PublicKey | bytes, *, kid: str | None = None) -> dict[str, str]:
    """Return the public JWK (RFC 8037) of an Ed25519 key."""
    raw = public_key if isinstance(public_key, bytes) else public_key_bytes(public_key)
    jwk = {"kty": "OKP", "crv": "Ed25519", "x": b64url_encode(raw)}
    if kid is not None:
        jwk["kid"] = kid
    return jwk


def public_key_from_jwk(jwk: Any) -> Ed25519PublicKey:
    """Return the Ed25519 public key of `jwk`; reject any other key type or a private key."""
    if not isinstance(jwk, dict):
        raise JWKError("The key must be a JWK object.")
    if jwk.get("kty") != "OKP" or jwk.get("crv") != "Ed25519":
        raise JWKError(
            f"Only Ed25519 keys (kty OKP, crv Ed25519) are accepted, not "
            f"kty {jwk.get('kty')!r} crv {jwk.get('crv')!r}."
        )
    if "d" in jwk:
        raise JWKError("The JWK contains a private key; send only the public key.")
    x = jwk.get("x")
    if not isinstance(x, str):
        raise JWKError("The JWK has no `x` member.")
    raw = b64url_decode(x)
    if len(raw) != 32:
        raise JWKError(f"An Ed25519 public key is 32 bytes, not {len(raw)}.")
    return Ed25519PublicKey.from_public_bytes(raw)


def jwk_thumbprint(jwk: dict[str, Any]) -> str:
    """Return the RFC 7638 SHA-256 thumbprint (base64url) of an Ed25519 public JWK."""
    required = {"crv": jwk["crv"], "kty": jwk["kty"], "x": jwk["x"]}
    canonical = json.dumps(required, sort_keys=True, separators=(",", ":")).encode()
    return b64url_encode(hashlib.sha256(canonical).digest())


def jws_sign(
    claims: dict[str, Any],
    *,
    typ: str,
    kid: str | None,
    private_key: Ed25519PrivateKey,
    extra_header: dict[str, Any] | None = None,
) -> str:
    """Sign `claims` as a compact JWS with the header `{"alg": "EdDSA", "typ", "kid"}`."""
    header: dict[str, Any] = {"alg": ALGORITHM, "typ": typ}
    if kid is not None:
        header["kid"] = kid
    if extra_header:
        header.update(extra_header)
    signing_input = b64url_encode(_json_bytes(header)) + "." + b64url_encode(_json_bytes(claims))
    signature = private_key.sign(signing_input.encode("ascii"))
    return signing_input + "." + b64url_encode(signature)


def jws_parse_header(token: Any) -> dict[str, Any]:
    """Return the unverified header of a compact JWS, after structural checks."""
    if not isinstance(token, str) or len(token) > MAX_JWS_LENGTH or not token.isascii():
        raise JWSError(f"The JWS must be an ASCII string of at most {MAX_JWS_LENGTH} characters.")
    parts = token.split(".")
    if len(parts) != 3:
        raise JWSError("A compact JWS has exactly three dot-separated parts.")
    try:
        header = json.loads(b64url_decode(parts[0]))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise JWSError("The JWS header is not JSON.") from exc
    if not isinstance(header, dict):
        raise JWSError("The JWS header must be a JSON object.")
    if header.get("alg") != ALGORITHM:
        raise JWSError(f"The JWS `alg` must be {ALGORITHM!r}, not {header.get('alg')!r}.")
    if "crit" in header:
        raise JWSError("The JWS has critical header parameters, which are not supported.")
    return header


def jws_verify(
    token: Any, *, typ: str, public_key: Ed25519PublicKey
) -> tuple[dict[str, Any], dict[str, Any]]:
    """Verify a compact JWS and return `(header, claims)`.

    Raises JWSError when the structure, `alg`, `typ` or signature is wrong.
    """
    header = jws_parse_header(token)
    if header.get("typ") != typ:
        raise JWSError(f"The JWS `typ` must be {typ!r}, not {header.get('typ')!r}.")
    header_part, payload_part, signature_part = token.split(".")
    signature = b64url_decode(signature_part)
    try:
        public_key.verify(signature, f"{header_part}.{payload_part}".encode("ascii"))
    except InvalidSignature as exc:
        raise JWSError("The JWS signature is invalid.") from exc
    try:
        claims = json.loads(b64url_decode(payload_part))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise JWSError("The JWS payload is not JSON.") from exc
    if not isinstance(claims, dict):
        raise JWSError("The JWS payload must be a JSON object.")
    return header, claims
