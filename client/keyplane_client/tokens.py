"""Verified license tokens, manifests and overlay releases.

Each `verify_*` function checks the signature through a `Keyring`, then the
claims: every required claim present with the right type, and the object
bound to the expected tenant, product and (for licenses) device. Time claims
are only read here; whether the object is current is for `decide()`, which
takes the time as an argument.
"""

import hashlib
import json
from collections.abc import Mapping
from typing import Any, NamedTuple

from keyplane_client.errors import VerificationError
from keyplane_client.trust import Keyring

TYP_LICENSE = "kp-license+jwt"
TYP_MANIFEST = "kp-manifest+jwt"
TYP_OVERLAY = "kp-overlay+jwt"

LICENSE_REQUIRED_CLAIMS = (
    "iss", "aud", "sub", "tid", "did", "cnf", "ent", "iat", "nbf", "exp",
    "grace_until", "offline_until", "mver", "jti",
)  # fmt: skip


def _missing(claims: Mapping[str, Any], name: str) -> VerificationError:
    return VerificationError(
        f"required claim {name!r} is missing or has the wrong type", reason="claim_missing"
    )


# Later than any real time claim, and exactly representable as a float.
MAX_TIME = 2**53


def _time(claims: Mapping[str, Any], name: str) -> int:
    value = claims.get(name)
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise _missing(claims, name)
    # The range test is also false for NaN and for 1e400, which JSON reads as infinity.
    if not 0 <= value < MAX_TIME:
        raise VerificationError(
            f"time claim {name!r} is out of range: {value!r}", reason="claim_invalid"
        )
    return int(value)


def _text(claims: Mapping[str, Any], name: str) -> str:
    value = claims.get(name)
    if not isinstance(value, str) or not value:
        raise _missing(claims, name)
    return value


def _codes(claims: Mapping[str, Any], name: str, *, required: bool) -> frozenset[str]:
    value = claims.get(name)
    if value is None and not required:
        return frozenset()
    if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
        raise _missing(claims, name)
    return frozenset(value)


def _audience(claims: Mapping[str, Any]) -> tuple[str, ...]:
    value = claims.get("aud", claims.get("product"))
    if isinstance(value, str) and value:
        return (value,)
    if isinstance(value, list) and value and all(isinstance(item, str) for item in value):
        return tuple(value)
    raise _missing(claims, "aud")


def _check_binding(actual: object, expected: str | None, *, subject: str, reason: str) -> None:
    if expected is not None and actual != expected:
        raise VerificationError(
            f"the token is for {subject} {actual!r}, not {expected!r}", reason=reason
        )


class License(NamedTuple):
    """The claims of a verified `kp-license+jwt`."""

    issuer: str
    product: str
    grant_id: str
    tenant: str
    device_id: str
    key_thumbprint: str
    entitlements: frozenset[str]
    issued_at: int
    not_before: int
    expires_at: int
    grace_until: int
    offline_until: int
    manifest_version: int
    token_id: str
    # The end of the paid term; grace runs from here to `grace_until`. Tokens
    # without the optional `term_end` claim use `exp`.
    term_end: int
    user: str | None
    compact: str
    # `entitlements` sorted, computed once for the repeated-decision path.
    entitlement_list: tuple[str, ...]

    def __repr__(self) -> str:
        # Leaves out the token itself, which must not end up in logs.
        return (
            f"License(grant_id={self.grant_id!r}, device_id={self.device_id!r}, "
            f"token_id={self.token_id!r})"
        )


def verify_license(
    compact: str | bytes,
    keyring: Keyring,
    *,
    product: str,
    device_id: str | None = None,
    key_thumbprint: str | None = None,
) -> License:
    """Verify a license token for this tenant and product (and device, when known)."""
    jws = keyring.verify(compact, expected_typ=TYP_LICENSE)
    claims = jws.claims
    for name in LICENSE_REQUIRED_CLAIMS:
        if name not in claims:
            raise _missing(claims, name)

    audience = _audience(claims)
    if product not in audience:
        raise VerificationError(
            f"the token is for product {audience!r}, not {product!r}", reason="audience_mismatch"
        )
    _check_binding(claims["tid"], keyring.tenant, subject="tenant", reason="tenant_mismatch")
    _check_binding(claims["did"], device_id, subject="device", reason="device_mismatch")
    confirmation = claims["cnf"]
    jkt = confirmation.get("jkt") if isinstance(confirmation, dict) else None
    if not isinstance(jkt, str) or not jkt:
        raise _missing(claims, "cnf.jkt")
    _check_binding(jkt, key_thumbprint, subject="device key", reason="device_mismatch")

    issued_at = _time(claims, "iat")
    not_before = _time(claims, "nbf")
    expires_at = _time(claims, "exp")
    grace_until = _time(claims, "grace_until")
    offline_until = _time(claims, "offline_until")
    if not (not_before <= expires_at <= grace_until and issued_at <= expires_at):
        raise VerificationError(
            "the token's time claims are out of order; "
            "expected nbf <= exp <= grace_until and iat <= exp",
            reason="claim_invalid",
        )
    manifest_version = claims["mver"]
    if isinstance(manifest_version, bool) or not isinstance(manifest_version, int):
        raise _missing(claims, "mver")
    user = claims.get("usr")
    entitlements = _codes(claims, "ent", required=True)
    return License(
        issuer=_text(claims, "iss"),
        product=product,
        grant_id=str(claims["sub"]),
        tenant=keyring.tenant,
        device_id=_text(claims, "did"),
        key_thumbprint=jkt,
        entitlements=entitlements,
        issued_at=issued_at,
        not_before=not_before,
        expires_at=expires_at,
        grace_until=grace_until,
        offline_until=offline_until,
        manifest_version=manifest_version,
        token_id=_text(claims, "jti"),
        term_end=_time(claims, "term_end") if "term_end" in claims else expires_at,
        user=user if isinstance(user, str) else None,
        compact=jws.compact,
        entitlement_list=tuple(sorted(entitlements)),
    )


class Revocations(NamedTuple):
    """The manifest's `revoked` claim; `devices` lists device key thumbprints or ids."""

    grants: frozenset[str] = frozenset()
    devices: frozenset[str] = frozenset()
    token_ids: frozenset[str] = frozenset()


class OverlayPointer(NamedTuple):
    """The manifest's `overlay` claim: the current release and, during a rollout, its base."""

    release: int
    sha256: str
    # The release that devices outside a staged rollout keep; None otherwise.
    base: "OverlayPointer | None" = None

    def allows(self, release: int, sha256: str) -> bool:
        """Return whether the manifest points at this release, as current or as base."""
        if (self.release, self.sha256) == (release, sha256):
            return True
        return self.base is not None and (self.base.release, self.base.sha256) == (release, sha256)


class Manifest(NamedTuple):
    """The claims of a verified `kp-manifest+jwt`."""

    tenant: str
    product: str
    version: int
    issued_at: int
    expires_at: int
    features: frozenset[str]
    fallback_features: frozenset[str]
    revocations: Revocations
    overlay: OverlayPointer | None
    key_certificates: tuple[str, ...]
    claims: Mapping[str, Any]
    compact: str
    # `fallback_features` sorted, computed once for the repeated-decision path.
    fallback_list: tuple[str, ...]

    def __repr__(self) -> str:
        return f"Manifest(tenant={self.tenant!r}, product={self.product!r}, version={self.version})"


def _revocations(claims: Mapping[str, Any]) -> Revocations:
    revoked = claims.get("revoked") or {}
    if not isinstance(revoked, dict):
        raise _missing(claims, "revoked")
    return Revocations(
        grants=frozenset(str(item) for item in _codes(revoked, "grants", required=False)),
        devices=_codes(revoked, "devices", required=False),
        token_ids=_codes(revoked, "tokens", required=False)
        | _codes(revoked, "jtis", required=False),
    )


def _release_reference(claims: Mapping[str, Any], pointer: Any) -> OverlayPointer:
    if (
        not isinstance(pointer, dict)
        or isinstance(pointer.get("release"), bool)
        or not isinstance(pointer.get("release"), int)
        or not isinstance(pointer.get("sha256"), str)
    ):
        raise _missing(claims, "overlay")
    return OverlayPointer(release=pointer["release"], sha256=pointer["sha256"].lower())


def _overlay_pointer(claims: Mapping[str, Any]) -> OverlayPointer | None:
    pointer = claims.get("overlay")
    if pointer is None:
        return None
    current = _release_reference(claims, pointer)
    if pointer.get("base") is None:
        return current
    return current._replace(base=_release_reference(claims, pointer["base"]))


def verify_manifest(compact: str | bytes, keyring: Keyring, *, product: str) -> Manifest:
    """Verify a manifest for this tenant and product; rollback is checked by the caller.

    Claim names follow the server: `mver` (version), `unlicensed_features`
    and `key_certificates`. The names `ver`, `fallback_features` and
    `key_certs` are accepted too.
    """
    jws = keyring.verify(compact, expected_typ=TYP_MANIFEST)
    claims = jws.claims

    audience = _audience(claims)
    if product not in audience:
        raise VerificationError(
            f"the manifest is for product {audience!r}, not {product!r}", reason="audience_mismatch"
        )
    _check_binding(claims.get("tid"), keyring.tenant, subject="tenant", reason="tenant_mismatch")

    version = claims.get("mver", claims.get("ver"))
    if isinstance(version, bool) or not isinstance(version, int) or version < 0:
        raise _missing(claims, "mver")
    key_certificates = claims.get("key_certificates", claims.get("key_certs")) or []
    if not isinstance(key_certificates, list) or not all(
        isinstance(c, str) for c in key_certificates
    ):
        raise _missing(claims, "key_certificates")

    fallback_claim = (
        "unlicensed_features" if "unlicensed_features" in claims else "fallback_features"
    )
    fallback_features = _codes(claims, fallback_claim, required=False)
    return Manifest(
        tenant=keyring.tenant,
        product=product,
        version=version,
        issued_at=_time(claims, "iat"),
        expires_at=_time(claims, "exp"),
        features=_codes(claims, "features", required=False),
        fallback_features=fallback_features,
        revocations=_revocations(claims),
        overlay=_overlay_pointer(claims),
        key_certificates=tuple(key_certificates),
        claims=claims,
        compact=jws.compact,
        fallback_list=tuple(sorted(fallback_features)),
    )


def canonical_json(value: Any) -> bytes:
    """RFC 8785 (JCS) serialization for the JSON values overlays contain.

    Object members are sorted by their UTF-16 code units, as JCS requires.
    NOTE: floats use Python's shortest repr, which matches JCS for the finite
    values overlays use but not for every exponent form.
    """
    if isinstance(value, dict):
        members = sorted(value.items(), key=lambda item: item[0].encode("utf-16-be"))
        inner = b",".join(canonical_json(str(k)) + b":" + canonical_json(v) for k, v in members)
        return b"{" + inner + b"}"
    if isinstance(value, list):
        return b"[" + b",".join(canonical_json(item) for item in value) + b"]"
    if isinstance(value, float) and value.is_integer() and abs(value) < 2**53:
        return str(int(value)).encode("ascii")
    return json.dumps(value, ensure_ascii=False, allow_nan=False).encode("utf-8")


class Overlay(NamedTuple):
    """A verified `kp-overlay+jwt`: the effective configuration for this device."""

    tenant: str
    product: str
    release: int
    issued_at: int
    values: Mapping[str, Any]
    # Content address of the release, the value the manifest's pointer names.
    sha256: str
    compact: str

    def __repr__(self) -> str:
        return f"Overlay(tenant={self.tenant!r}, product={self.product!r}, release={self.release})"


def _first_claim(claims: Mapping[str, Any], names: tuple[str, ...]) -> Any:
    return next((claims[name] for name in names if name in claims), None)


def verify_overlay(
    compact: str | bytes, keyring: Keyring, *, product: str, pointer: OverlayPointer | None = None
) -> Overlay:
    """Verify an overlay release and, given the manifest's pointer, that it is that release.

    Claims: `rel` (release number), `sha256` (the release's content address),
    `cfg` (this device's effective configuration), `tid`, `aud`, `iat`. The
    longer names `release` and `config` are accepted too.
    """
    jws = keyring.verify(compact, expected_typ=TYP_OVERLAY)
    claims = jws.claims
    audience = _audience(claims)
    if product not in audience:
        raise VerificationError(
            f"the overlay is for product {audience!r}, not {product!r}", reason="audience_mismatch"
        )
    _check_binding(claims.get("tid"), keyring.tenant, subject="tenant", reason="tenant_mismatch")
    release = _first_claim(claims, ("rel", "release"))
    if isinstance(release, bool) or not isinstance(release, int):
        raise _missing(claims, "rel")
    values = _first_claim(claims, ("cfg", "config"))
    if not isinstance(values, dict):
        raise _missing(claims, "cfg")
    # Without a signed `sha256` the address is computed from the values.
    declared = claims.get("sha256")
    digest = (
        declared.lower()
        if isinstance(declared, str)
        else hashlib.sha256(canonical_json(values)).hexdigest()
    )
    if pointer is not None and not pointer.allows(release, digest):
        raise VerificationError(
            f"overlay release {release} does not match the manifest's pointer "
            f"to release {pointer.release}",
            reason="overlay_mismatch",
        )
    return Overlay(
        tenant=keyring.tenant,
        product=product,
        release=release,
        issued_at=_time(claims, "iat"),
        values=values,
        sha256=digest,
        compact=jws.compact,
    )
