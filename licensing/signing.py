"""Signing keys: the platform root key, tenant keys and their certificates.

Trust chain: clients pin the root public keys (the JWKS served at
`/.well-known/keyplane/root-keys.json`). Each tenant key comes with a
`kp-key-cert+jwt` certificate signed by the active root key that names the
tenant, the key as a JWK and its validity window. Tokens, manifests and
overlays are signed by the tenant's active key, so one tenant's key can never
sign for another tenant.

Key life cycle: `active` (signs and verifies) -> `retiring` (verifies until
`verify_until`, the expiry of the last token or manifest window it signed)
-> `retired`. A `compromised` key is dropped from every published set at
once. Keys are created on first use or rotated by `rotate_root_key` and
`rotate_tenant_key`.

Private keys are stored only as key-store envelopes (licensing/keystore.py);
each process keeps opened keys in memory by kid.
"""

import logging
import secrets
import threading
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from django.conf import settings
from django.db import IntegrityError, connection, transaction
from django.db.models import Max
from django.utils import timezone
from django_tenants.utils import get_public_schema_name, schema_context

from licensing.jws import jws_sign, public_jwk, public_key_bytes
from licensing.keystore import default_keystore
from portal.catalog.models import KeyState, RootSigningKey

logger = logging.getLogger(__name__)

KEY_CERT_TYP = "kp-key-cert+jwt"
CERTIFICATE_LIFETIME = timedelta(days=400)
CERTIFICATE_RENEWAL = timedelta(days=30)


@dataclass(frozen=True)
class LoadedKey:
    kid: str
    private_key: Ed25519PrivateKey


_cache_lock = threading.Lock()
_opened_keys: dict[str, LoadedKey] = {}


def _new_kid(prefix: str) -> str:
    return f"{prefix}-{timezone.now():%Y%m%d}-{secrets.token_hex(4)}"


def _private_bytes(private_key: Ed25519PrivateKey) -> bytes:
    return private_key.private_bytes(
        serialization.Encoding.Raw, serialization.PrivateFormat.Raw, serialization.NoEncryption()
    )


def _open_private_key(envelope: bytes, kid: str) -> Ed25519PrivateKey:
    raw = default_keystore().open(bytes(envelope), kid=kid)
    return Ed25519PrivateKey.from_private_bytes(raw)


# --- Root key (public schema) ----------------------------------------------


def _root_key_create() -> RootSigningKey:
    private_key = Ed25519PrivateKey.generate()
    kid = _new_kid("root")
    key = RootSigningKey(
        kid=kid,
        public_key=public_key_bytes(private_key.public_key()),
        private_key_envelope=default_keystore().seal(_private_bytes(private_key), kid=kid),
    )
    _without_request_user(key)
    key.save()
    return key


def _without_request_user(key: RootSigningKey) -> None:
    # The root key lives in the public schema but may be created during a
    # tenant request, whose user exists only in the tenant's schema. Its
    # history row must not point at that user.
    key._history_user = None  # type: ignore[attr-defined]  # read by simple_history


def root_key_active() -> RootSigningKey:
    """Return the active root key, creating the first one if none exists."""
    with schema_context(get_public_schema_name()):
        key = RootSigningKey.objects.filter(state=KeyState.ACTIVE).first()
        if key is not None:
            return key
        try:
            with transaction.atomic():
                key = _root_key_create()
        except IntegrityError:
            # Another process created the first key at the same moment.
            return RootSigningKey.objects.get(state=KeyState.ACTIVE)
        logger.info("signing.root_key_created kid=%s", key.kid)
        return key


def root_key_rotate(*, reason: str) -> RootSigningKey:
    """Retire the active root key and create a new one; return the new key.

    The old key stays in the published JWKS (state retiring) until the
    certificates it signed have expired, so pinned clients keep verifying.
    """
    from licensing.decisions import decision

    with schema_context(get_public_schema_name()), transaction.atomic():
        now = timezone.now()
        old = RootSigningKey.objects.select_for_update().filter(state=KeyState.ACTIVE).first()
        if old is not None:
            old.state = KeyState.RETIRING
            old.state_changed_at = now
            old.not_after = now + CERTIFICATE_LIFETIME
            _without_request_user(old)
            old.save(update_fields=["state", "state_changed_at", "not_after"])
        new = _root_key_create()
    logger.info("signing.root_key_rotated old=%s new=%s", old.kid if old else None, new.kid)
    decision(
        event="key.root_rotated",
        outcome="done",
        note=reason,
        subject=new.kid,
        data={"previous": old.kid if old else None},
    )
    return new


def root_public_key(key: RootSigningKey) -> Ed25519PublicKey:
    return Ed25519PublicKey.from_public_bytes(bytes(key.public_key))


def root_jwks() -> dict[str, list[dict[str, str]]]:
    """Return the JWKS of the root keys clients may trust (active and retiring)."""
    root_key_active()
    with schema_context(get_public_schema_name()):
        keys = RootSigningKey.objects.filter(state__in=[KeyState.ACTIVE, KeyState.RETIRING])
        return {
            "keys": [
                {**public_jwk(root_public_key(key), kid=key.kid), "use": "sig", "alg": "EdDSA"}
                for key in keys
            ]
        }


def _certify(
    *,
    tenant_slug: str,
    kid: str,
    public_key: Ed25519PublicKey,
    not_before: datetime,
    not_after: datetime | None,
    status: str = KeyState.ACTIVE,
) -> str:
    """Return a certificate of a tenant key, signed by the active root key.

    `nbf` is when the key started signing, also for a re-issued certificate,
    so objects the key signed before the re-issue stay inside its window.
    """
    root = root_key_active()
    now = timezone.now()
    expires = now + CERTIFICATE_LIFETIME
    if not_after is not None:
        expires = min(expires, not_after)
    claims = {
        "iss": settings.KEYPLANE_BASE_URL,
        "sub": kid,
        "tid": tenant_slug,
        "jwk": public_jwk(public_key, kid=kid),
        "iat": int(now.timestamp()),
        "nbf": int(not_before.timestamp()),
        "exp": int(expires.timestamp()),
        "status": str(status),
    }
    root_private = _open_private_key(bytes(root.private_key_envelope), root.kid)
    return jws_sign(claims, typ=KEY_CERT_TYP, kid=root.kid, private_key=root_private)


# --- Tenant keys (tenant schema) --------------------------------------------


_slugs_by_schema: dict[str, str] = {}


def current_tenant_slug() -> str:
    """Return the slug of the tenant whose schema the connection uses."""
    schema = connection.schema_name
    if schema == get_public_schema_name():
        raise RuntimeError("Tenant signing needs a tenant schema on the connection.")
    slug = getattr(getattr(connection, "tenant", None), "slug", "")
    if slug:
        return str(slug)
    if schema not in _slugs_by_schema:
        from portal.tenants.models import Tenant

        _slugs_by_schema[schema] = Tenant.objects.values_list("slug", flat=True).get(
            schema_name=schema
        )
    return _slugs_by_schema[schema]


def _tenant_key_create() -> Any:
    from licensing.models import SigningKey

    private_key = Ed25519PrivateKey.generate()
    kid = _new_kid(connection.schema_name.replace("_", "-"))
    created = timezone.now()
    return SigningKey.objects.create(
        kid=kid,
        public_key=public_key_bytes(private_key.public_key()),
        private_key_envelope=default_keystore().seal(_private_bytes(private_key), kid=kid),
        certificate=_certify(
            tenant_slug=current_tenant_slug(),
            kid=kid,
            public_key=private_key.public_key(),
            not_before=created,
            not_after=None,
        ),
    )


def tenant_key_active() -> Any:
    """Return the current tenant's active SigningKey, creating the first one if needed."""
    from licensing.models import SigningKey

    key = SigningKey.objects.filter(state=KeyState.ACTIVE).first()
    if key is not None:
        return key
    try:
        with transaction.atomic():
            key = _tenant_key_create()
    except IntegrityError:
        return SigningKey.objects.get(state=KeyState.ACTIVE)
    logger.info("signing.tenant_key_created kid=%s", key.kid)
    return key


def _signing_key() -> LoadedKey:
    """Return the active key of the current tenant, opened.

    The active kid is read on every call (one indexed query), so a rotation
    takes effect at once in every process. Only the opened private key is
    cached, by kid.
    """
    key = tenant_key_active()
    with _cache_lock:
        cached = _opened_keys.get(key.kid)
    if cached is not None:
        return cached
    loaded = LoadedKey(
        kid=key.kid, private_key=_open_private_key(bytes(key.private_key_envelope), key.kid)
    )
    with _cache_lock:
        _opened_keys[key.kid] = loaded
    return loaded


def sign_tenant_object(claims: dict[str, Any], *, typ: str) -> str:
    """Sign `claims` with the current tenant's active key as a compact JWS of type `typ`."""
    key = _signing_key()
    return jws_sign(claims, typ=typ, kid=key.kid, private_key=key.private_key)


def active_signing_kid() -> str:
    """Return the kid that `sign_tenant_object` signs with right now."""
    return _signing_key().kid


def _verify_window_end(kid: str) -> datetime:
    """Return when the last object signed by `kid` stops mattering to clients."""
    from licensing.models import IssuedToken, Policy

    now = timezone.now()
    last_token = IssuedToken.objects.filter(kid=kid).aggregate(last=Max("expires_at"))["last"]
    offline_hours = Policy.objects.aggregate(hours=Max("offline_tolerance_hours"))["hours"] or 0
    # Manifests signed by the key are trusted by clients for the offline
    # window, which defaults to a week for products without a policy yet.
    offline_window = timedelta(hours=offline_hours) if offline_hours else timedelta(days=7)
    candidates = [now + offline_window]
    if last_token is not None:
        candidates.append(last_token)
    return max(candidates)


def tenant_key_rotate(*, reason: str, compromised: bool = False) -> Any:
    """Replace the tenant's active key; return the new SigningKey.

    1. Lock the active key and mark it retiring (or compromised, which drops
       it from the published set at once and invalidates what it signed).
    2. Create and certify the new active key in the same transaction, and
       publish new manifests signed by it.
    """
    from licensing.decisions import decision
    from licensing.models import SigningKey

    with transaction.atomic():
        now = timezone.now()
        old = SigningKey.objects.select_for_update().filter(state=KeyState.ACTIVE).first()
        if old is not None:
            old.state = KeyState.COMPROMISED if compromised else KeyState.RETIRING
            old.state_changed_at = now
            old.verify_until = now if compromised else _verify_window_end(old.kid)
            fields = ["state", "state_changed_at", "verify_until"]
            if not compromised:
                # Clients learn from the certificate that the key only verifies now.
                old.certificate = _certify(
                    tenant_slug=current_tenant_slug(),
                    kid=old.kid,
                    public_key=Ed25519PublicKey.from_public_bytes(bytes(old.public_key)),
                    not_before=old.created_at,
                    not_after=old.verify_until,
                    status=KeyState.RETIRING,
                )
                fields.append("certificate")
            old.save(update_fields=fields)
        new = _tenant_key_create()
        # Clients learn the new key and the old key's retirement from the
        # next manifest, which the new key signs.
        from licensing.manifests import manifest_publish_all

        manifest_publish_all(reason="signing key rotated")
        decision(
            event="key.tenant_rotated",
            outcome="compromised" if compromised else "done",
            note=reason,
            subject=new.kid,
            data={"previous": old.kid if old else None},
        )
    logger.info("signing.tenant_key_rotated old=%s new=%s", old.kid if old else None, new.kid)
    return new


def tenant_keys_retire_expired() -> int:
    """Mark retiring keys whose verification window has passed as retired; return how many."""
    from licensing.models import SigningKey

    return SigningKey.objects.filter(
        state=KeyState.RETIRING, verify_until__lte=timezone.now()
    ).update(state=KeyState.RETIRED, state_changed_at=timezone.now())


def tenant_key_certificates() -> list[str]:
    """Return the certificates of the tenant's active and retiring keys.

    A certificate is re-issued by the active root key when another root key
    signed it (so clients that pin only the new root still verify the tenant's
    keys) or when it expires within CERTIFICATE_RENEWAL days.
    """
    import json

    from licensing.jws import b64url_decode, jws_parse_header
    from licensing.models import SigningKey

    tenant_key_active()
    tenant_keys_retire_expired()
    root = root_key_active()
    certificates: list[str] = []
    keys = SigningKey.objects.filter(state__in=[KeyState.ACTIVE, KeyState.RETIRING])
    renew_before = int((timezone.now() + CERTIFICATE_RENEWAL).timestamp())
    for key in keys.order_by("-created_at"):
        expires = json.loads(b64url_decode(key.certificate.split(".")[1])).get("exp", 0)
        signed_by_other_root = jws_parse_header(key.certificate).get("kid") != root.kid
        expiring = expires < renew_before and (
            key.verify_until is None or key.verify_until.timestamp() > expires
        )
        if signed_by_other_root or expiring:
            public_key = Ed25519PublicKey.from_public_bytes(bytes(key.public_key))
            key.certificate = _certify(
                tenant_slug=current_tenant_slug(),
                kid=key.kid,
                public_key=public_key,
                not_before=key.created_at,
                not_after=key.verify_until,
                status=key.state,
            )
            key.save(update_fields=["certificate"])
        certificates.append(key.certificate)
    return certificates


def tenant_public_keys() -> dict[str, Ed25519PublicKey]:
    """Return the tenant's verifying keys (active and retiring) by kid."""
    from licensing.models import SigningKey

    keys = SigningKey.objects.filter(state__in=[KeyState.ACTIVE, KeyState.RETIRING])
    return {key.kid: Ed25519PublicKey.from_public_bytes(bytes(key.public_key)) for key in keys}


def audit_key_set() -> dict[str, list[dict[str, str]]]:
    """Return the JWKS of every tenant key that may have signed an audit checkpoint.

    Retired keys stay in the set so that old checkpoints keep verifying.
    Compromised keys are left out on purpose: a checkpoint they signed can no
    longer prove anything, so `audit_verify` reports it.
    """
    from licensing.models import SigningKey

    keys = SigningKey.objects.exclude(state=KeyState.COMPROMISED).order_by("created_at")
    return {"keys": [public_jwk(bytes(key.public_key), kid=key.kid) for key in keys]}


def audit_key_certificates() -> list[str]:
    """Return the root-signed certificates of the keys in `audit_key_set`."""
    from licensing.models import SigningKey

    current = tenant_key_certificates()
    retired = SigningKey.objects.filter(state=KeyState.RETIRED).order_by("created_at")
    return current + [key.certificate for key in retired]
