import jwt
import pytest
from django.db import connection

from licensing.jws import jws_parse_header, public_key_from_jwk
from licensing.models import SigningKey
from licensing.signing import (
    root_jwks,
    root_key_rotate,
    sign_tenant_object,
    tenant_key_certificates,
    tenant_key_rotate,
)
from portal.catalog.models import KeyState


def _verify_via_certificates(token: str) -> dict:
    """Verify `token` using only the root JWKS and the tenant's certificates, with PyJWT."""
    root_keys = {key["kid"]: key for key in root_jwks()["keys"]}
    tenant_keys = {}
    for certificate in tenant_key_certificates():
        root_kid = jwt.get_unverified_header(certificate)["kid"]
        root_key = public_key_from_jwk(root_keys[root_kid])
        claims = jwt.decode(certificate, root_key, algorithms=["EdDSA"])
        tenant_keys[claims["jwk"]["kid"]] = public_key_from_jwk(claims["jwk"])
    kid = jwt.get_unverified_header(token)["kid"]
    return jwt.decode(token, tenant_keys[kid], algorithms=["EdDSA"], options={"verify_aud": False})


def test_sign_tenant_object_verifies_through_root(in_alpha) -> None:
    token = sign_tenant_object({"hello": "world"}, typ="kp-overlay+jwt")
    assert _verify_via_certificates(token) == {"hello": "world"}


def test_certificate_names_tenant(in_alpha) -> None:
    certificate = tenant_key_certificates()[0]
    assert jwt.get_unverified_header(certificate)["typ"] == "kp-key-cert+jwt"
    assert jwt.decode(certificate, options={"verify_signature": False})["tid"] == "alpha"


def test_tenant_keys_differ_between_tenants(in_alpha, tenant_beta) -> None:
    from django_tenants.utils import schema_context

    alpha_kid = jws_parse_header(sign_tenant_object({}, typ="t"))["kid"]
    with schema_context(tenant_beta.schema_name):
        connection.tenant = tenant_beta
        beta_kid = jws_parse_header(sign_tenant_object({}, typ="t"))["kid"]
    assert alpha_kid != beta_kid


def test_tenant_key_rotate_keeps_old_key_published(in_alpha) -> None:
    old_token = sign_tenant_object({"n": 1}, typ="t")
    new_key = tenant_key_rotate(reason="scheduled")
    new_token = sign_tenant_object({"n": 2}, typ="t")
    assert jws_parse_header(new_token)["kid"] == new_key.kid
    assert _verify_via_certificates(old_token) == {"n": 1}
    assert _verify_via_certificates(new_token) == {"n": 2}


def test_tenant_key_rotate_compromised_drops_old_key(in_alpha) -> None:
    old_token = sign_tenant_object({"n": 1}, typ="t")
    tenant_key_rotate(reason="leak", compromised=True)
    with pytest.raises(KeyError):
        _verify_via_certificates(old_token)
    assert SigningKey.objects.filter(state=KeyState.COMPROMISED).count() == 1


def test_root_key_rotate_recertifies_tenant_keys(in_alpha) -> None:
    token = sign_tenant_object({"n": 1}, typ="t")
    new_root = root_key_rotate(reason="scheduled")
    certificate = tenant_key_certificates()[0]
    assert jwt.get_unverified_header(certificate)["kid"] == new_root.kid
    assert _verify_via_certificates(token) == {"n": 1}


def test_private_key_not_stored_in_clear(in_alpha) -> None:
    from cryptography.hazmat.primitives import serialization

    from licensing.signing import _signing_key

    loaded = _signing_key()
    raw = loaded.private_key.private_bytes(
        serialization.Encoding.Raw, serialization.PrivateFormat.Raw, serialization.NoEncryption()
    )
    stored = bytes(SigningKey.objects.get(kid=loaded.kid).private_key_envelope)
    assert raw not in stored


def test_certificate_renewed_before_expiry(in_alpha) -> None:
    from datetime import timedelta

    from django.utils import timezone

    from licensing.jws import jws_sign
    from licensing.signing import _open_private_key, root_key_active, tenant_key_active

    key = tenant_key_active()
    root = root_key_active()
    root_private = _open_private_key(bytes(root.private_key_envelope), root.kid)
    soon = int((timezone.now() + timedelta(days=5)).timestamp())
    claims = jwt.decode(key.certificate, options={"verify_signature": False})
    key.certificate = jws_sign(
        {**claims, "exp": soon}, typ="kp-key-cert+jwt", kid=root.kid, private_key=root_private
    )
    key.save(update_fields=["certificate"])
    renewed = jwt.decode(tenant_key_certificates()[0], options={"verify_signature": False})
    assert renewed["exp"] > soon
    assert renewed["nbf"] == claims["nbf"]
