"""The chain of trust: pinned root keys, tenant key certificates, tenant keys.

The application ships the platform root public keys as a JWKS and pins them.
Each tenant signing key reaches the client as a `kp-key-cert+jwt` signed by a
root key, with claims `tid` (the tenant), `jwk` (the key, with its `kid`),
`nbf` and `exp` (its validity window) and an optional `status`.
A `Keyring` holds the tenant keys whose certificates verified. Only those
keys verify licenses, manifests and overlays, so one tenant's key can never
sign for another tenant and a key embedded in a token is never used.
"""

import json
import logging
from collections.abc import Iterable, Mapping
from typing import Any, NamedTuple

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from keyplane_client.errors import TrustError, VerificationError
from keyplane_client.jose import (
    CompactJws,
    check_header,
    parse_compact,
    public_key_from_jwk,
    verify_signature,
)

logger = logging.getLogger(__name__)

TYP_KEY_CERT = "kp-key-cert+jwt"
ACCEPTED_KEY_STATUSES = frozenset({"active", "retiring"})


class RootKeys:
    """The pinned platform root public keys, by `kid`."""

    def __init__(self, keys: Mapping[str, Ed25519PublicKey]) -> None:
        if not keys:
            raise TrustError(
                "the root key set is empty; pin at least one root key", reason="root_keys_missing"
            )
        self._keys = dict(keys)

    @classmethod
    def from_jwks(cls, jwks: Mapping[str, Any] | str | bytes) -> "RootKeys":
        if isinstance(jwks, str | bytes):
            try:
                jwks = json.loads(jwks)
            except (UnicodeDecodeError, json.JSONDecodeError) as exc:
                raise TrustError(
                    f"the root key set is not JSON: {exc}", reason="root_keys_invalid"
                ) from exc
        if not isinstance(jwks, Mapping) or not isinstance(jwks.get("keys"), list):
            raise TrustError(
                'the root key set must be a JWKS: {"keys": [...]}', reason="root_keys_invalid"
            )
        keys: dict[str, Ed25519PublicKey] = {}
        for jwk in jwks["keys"]:
            kid = jwk.get("kid") if isinstance(jwk, dict) else None
            if not isinstance(kid, str) or not kid:
                raise TrustError("a root key has no kid", reason="root_keys_invalid")
            try:
                keys[kid] = public_key_from_jwk(jwk)
            except VerificationError as exc:
                raise TrustError(
                    f"root key {kid!r} is invalid: {exc}", reason="root_keys_invalid"
                ) from exc
        return cls(keys)

    def get(self, kid: str) -> Ed25519PublicKey | None:
        return self._keys.get(kid)

    @property
    def kids(self) -> tuple[str, ...]:
        return tuple(self._keys)


class KeyCertificate(NamedTuple):
    """A tenant signing key vouched for by a root key."""

    tenant: str
    kid: str
    public_key: Ed25519PublicKey
    not_before: int
    expires_at: int
    status: str
    compact: str


def _int_claim(claims: Mapping[str, Any], name: str) -> int:
    value = claims.get(name)
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0 <= value < 2**53:
        raise TrustError(
            f"the key certificate has no valid {name!r} claim", reason="key_cert_invalid"
        )
    return int(value)


def verify_key_certificate(compact: str, root_keys: RootKeys, *, tenant: str) -> KeyCertificate:
    """Verify one `kp-key-cert+jwt` against the root keys and bind it to `tenant`."""
    jws = parse_compact(compact)
    root_kid = check_header(jws.header, expected_typ=TYP_KEY_CERT)
    root_key = root_keys.get(root_kid)
    if root_key is None:
        raise TrustError(
            f"key certificate signed by unknown root key {root_kid!r}", reason="key_unknown"
        )
    verify_signature(jws, root_key)

    claims = jws.claims
    cert_tenant = claims.get("tid")
    if cert_tenant != tenant:
        raise TrustError(
            f"key certificate names tenant {cert_tenant!r}; expected {tenant!r}",
            reason="tenant_mismatch",
        )
    status = claims.get("status", "active")
    if status not in ACCEPTED_KEY_STATUSES:
        raise TrustError(
            f"key certificate status {status!r} is not accepted", reason="key_cert_invalid"
        )
    jwk = claims.get("jwk")
    kid = jwk.get("kid") if isinstance(jwk, dict) else None
    if not isinstance(kid, str) or not kid:
        raise TrustError("the key certificate's jwk has no kid", reason="key_cert_invalid")
    if claims.get("sub", kid) != kid:
        raise TrustError(
            "the key certificate's sub does not name its key", reason="key_cert_invalid"
        )
    try:
        public_key = public_key_from_jwk(jwk)
    except VerificationError as exc:
        raise TrustError(
            f"the certified key {kid!r} is invalid: {exc}", reason="key_cert_invalid"
        ) from exc
    not_before = _int_claim(claims, "nbf")
    expires_at = _int_claim(claims, "exp")
    if expires_at <= not_before:
        raise TrustError("the key certificate expires before it starts", reason="key_cert_invalid")
    return KeyCertificate(
        tenant=tenant,
        kid=kid,
        public_key=public_key,
        not_before=not_before,
        expires_at=expires_at,
        status=status,
        compact=jws.compact,
    )


class Keyring:
    """The verified signing keys of one tenant."""

    def __init__(self, tenant: str, certificates: Iterable[KeyCertificate] = ()) -> None:
        self.tenant = tenant
        self._certificates: dict[str, KeyCertificate] = {}
        for certificate in certificates:
            self._certificates[certificate.kid] = certificate

    @classmethod
    def from_certificates(
        cls, compacts: Iterable[str], root_keys: RootKeys, *, tenant: str
    ) -> "Keyring":
        """Build a keyring from certificates, raising on the first one that fails."""
        return cls(tenant, (verify_key_certificate(c, root_keys, tenant=tenant) for c in compacts))

    @property
    def certificates(self) -> tuple[KeyCertificate, ...]:
        return tuple(self._certificates.values())

    def merged(self, other: "Keyring") -> "Keyring":
        if other.tenant != self.tenant:
            raise TrustError("cannot merge keyrings of two tenants", reason="tenant_mismatch")
        return Keyring(self.tenant, (*self.certificates, *other.certificates))

    def extended(self, compacts: Iterable[str], root_keys: RootKeys) -> "Keyring":
        """Return this keyring plus those of `compacts` that verify; log and skip the others."""
        certificates = []
        for compact in compacts:
            try:
                certificates.append(verify_key_certificate(compact, root_keys, tenant=self.tenant))
            except VerificationError as exc:
                logger.warning("key certificate skipped (%s): %s", exc.reason, exc)
        return self.merged(Keyring(self.tenant, certificates))

    def verify(self, compact: str | bytes, *, expected_typ: str) -> CompactJws:
        """Parse and verify a tenant-signed object; the caller checks its claims.

        The object's `iat` must fall inside the signing key's certified window,
        so a key is not trusted for objects it could not have signed while
        certified.
        """
        jws = parse_compact(compact)
        kid = check_header(jws.header, expected_typ=expected_typ)
        certificate = self._certificates.get(kid)
        if certificate is None:
            raise VerificationError(
                f"signing key {kid!r} is not certified for tenant {self.tenant!r}",
                reason="key_unknown",
            )
        verify_signature(jws, certificate.public_key)
        issued_at = jws.claims.get("iat")
        if isinstance(issued_at, bool) or not isinstance(issued_at, int | float):
            return jws  # the caller's claim checks reject a missing or non-numeric iat
        if not certificate.not_before <= issued_at <= certificate.expires_at:
            raise VerificationError(
                f"signed at {int(issued_at)}, outside key {kid!r}'s certified window "
                f"{certificate.not_before}..{certificate.expires_at}",
                reason="key_expired",
            )
        return jws
