"""The client API in-process: activation, refresh, deactivation, manifests and errors."""

import json
import time

import jwt
import pytest
from django.db import connection
from django.test import Client

from licensing.jws import public_key_from_jwk
from licensing.models import Device, LicenseGrant, Manifest, Seat
from licensing.services import device_revoke, grant_revoke, grant_status_set
from tests.licensing.conftest import ClientApi, DeviceKey, grant_make


def _activate(api: ClientApi, key: DeviceKey, license_key: str, **headers: str):  # type: ignore[no-untyped-def]
    body = {
        "license_key": license_key,
        "product": "atlas",
        "device": {"name": "laptop", "platform": "linux"},
    }
    return api.post("activate", body, key=key, headers=headers)


def _verify_token(api: ClientApi, token: str) -> dict:
    """Verify a license token with PyJWT given only the published root and tenant keys."""
    root = Client().get("/.well-known/keyplane/root-keys.json").json()
    connection.set_tenant(api.tenant)
    roots = {key["kid"]: public_key_from_jwk(key) for key in root["keys"]}
    tenant_keys = {}
    for certificate in api.get("keys").json()["keys"]:
        root_kid = jwt.get_unverified_header(certificate)["kid"]
        claims = jwt.decode(certificate, roots[root_kid], algorithms=["EdDSA"])
        assert claims["tid"] == api.tenant.slug
        tenant_keys[claims["jwk"]["kid"]] = public_key_from_jwk(claims["jwk"])
    header = jwt.get_unverified_header(token)
    assert header["typ"] == "kp-license+jwt"
    return jwt.decode(token, tenant_keys[header["kid"]], algorithms=["EdDSA"], audience="atlas")


def _problem(response) -> str:  # type: ignore[no-untyped-def]
    assert response["Content-Type"] == "application/problem+json"
    return response.json()["code"]


def test_activate_new_device_created(alpha_api: ClientApi, device_key: DeviceKey) -> None:
    grant, license_key = grant_make()
    response = _activate(alpha_api, device_key, license_key)
    assert response.status_code == 201, response.content
    body = response.json()
    claims = _verify_token(alpha_api, body["token"])
    device = Device.objects.get(pk=body["device_id"])
    assert claims["cnf"]["jkt"] == device.thumbprint
    assert claims["sub"] == str(grant.pk)
    assert claims["tid"] == "alpha"
    assert claims["ent"] == ["export", "sync"]
    assert device.name == "laptop"


def test_activate_existing_seat_reused(alpha_api: ClientApi, device_key: DeviceKey) -> None:
    grant, license_key = grant_make()
    first = _activate(alpha_api, device_key, license_key)
    second = _activate(alpha_api, device_key, license_key)
    assert second.status_code == 200
    assert second.json()["device_id"] == first.json()["device_id"]
    assert Seat.objects.filter(grant=grant, status="active").count() == 1


def test_activate_idempotency_key_returns_first_answer(
    alpha_api: ClientApi, device_key: DeviceKey
) -> None:
    _, license_key = grant_make()
    first = _activate(alpha_api, device_key, license_key, **{"Idempotency-Key": "retry-1"})
    retried = _activate(alpha_api, device_key, license_key, **{"Idempotency-Key": "retry-1"})
    assert retried.status_code == first.status_code == 201
    assert retried.json() == first.json()


def test_activate_idempotency_key_reused_rejected(
    alpha_api: ClientApi, device_key: DeviceKey
) -> None:
    _, license_key = grant_make()
    _activate(alpha_api, device_key, license_key, **{"Idempotency-Key": "retry-2"})
    body = {"license_key": license_key, "product": "atlas", "device": {"name": "other"}}
    response = alpha_api.post(
        "activate", body, key=device_key, headers={"Idempotency-Key": "retry-2"}
    )
    assert response.status_code == 422
    assert _problem(response) == "idempotency_key_reused"


def test_activate_unknown_license_writes_nothing(
    alpha_api: ClientApi, device_key: DeviceKey
) -> None:
    response = _activate(alpha_api, device_key, "KP-AAAA-BBBB-CCCC")
    assert response.status_code == 403
    assert _problem(response) == "license_invalid"
    assert not Device.objects.exists()


def test_activate_seat_limit_reached(alpha_api: ClientApi) -> None:
    _, license_key = grant_make(seat_count=1)
    assert _activate(alpha_api, DeviceKey(), license_key).status_code == 201
    response = _activate(alpha_api, DeviceKey(), license_key)
    assert response.status_code == 409
    assert _problem(response) == "seat_limit_reached"
    assert response.json()["remediation"]
    assert Device.objects.count() == 1


def test_activate_other_product_rejected(alpha_api: ClientApi, device_key: DeviceKey) -> None:
    _, license_key = grant_make()
    body = {"license_key": license_key, "product": "other"}
    response = alpha_api.post("activate", body, key=device_key)
    assert _problem(response) == "product_not_licensed"


@pytest.mark.parametrize(
    ("status", "code"),
    [("suspended", "license_suspended"), ("expired", "license_expired")],
)
def test_activate_grant_status_rejected(
    alpha_api: ClientApi, device_key: DeviceKey, status: str, code: str
) -> None:
    grant, license_key = grant_make()
    grant_status_set(grant_id=grant.pk, status=status, reason="test", acting_user=None)
    response = _activate(alpha_api, device_key, license_key)
    assert response.status_code == 403
    assert _problem(response) == code


def test_activate_revoked_grant_rejected(alpha_api: ClientApi, device_key: DeviceKey) -> None:
    grant, license_key = grant_make()
    grant_revoke(grant_id=grant.pk, reason="contract ended", acting_user=None)
    assert _problem(_activate(alpha_api, device_key, license_key)) == "license_revoked"


def test_activate_past_grace_rejected(alpha_api: ClientApi, device_key: DeviceKey) -> None:
    from datetime import timedelta

    from django.utils import timezone

    grant, license_key = grant_make(grace_days=1)
    LicenseGrant.objects.filter(pk=grant.pk).update(
        term_start=timezone.now() - timedelta(days=400), term_end=timezone.now() - timedelta(days=2)
    )
    assert _problem(_activate(alpha_api, device_key, license_key)) == "license_expired"


def test_refresh_reflects_entitlement_change(alpha_api: ClientApi, device_key: DeviceKey) -> None:
    grant, license_key = grant_make()
    _activate(alpha_api, device_key, license_key)
    policy = grant.policy
    policy.entitlements = ["export", "render"]
    policy.save(update_fields=["entitlements"])
    response = alpha_api.post("refresh", {"product": "atlas"}, key=device_key)
    assert response.status_code == 200, response.content
    assert _verify_token(alpha_api, response.json()["token"])["ent"] == ["export", "render"]


def test_refresh_unknown_device(alpha_api: ClientApi, device_key: DeviceKey) -> None:
    response = alpha_api.post("refresh", {"product": "atlas"}, key=device_key)
    assert response.status_code == 404
    assert _problem(response) == "device_unknown"


def test_refresh_revoked_device(alpha_api: ClientApi, device_key: DeviceKey) -> None:
    _, license_key = grant_make()
    device_id = _activate(alpha_api, device_key, license_key).json()["device_id"]
    device_revoke(device_id=int(device_id), reason="lost", acting_user=None)
    response = alpha_api.post("refresh", {"product": "atlas"}, key=device_key)
    assert _problem(response) == "device_revoked"
    manifest = Manifest.objects.filter(product_code="atlas").order_by("-version").first()
    assert Device.objects.get(pk=device_id).thumbprint in manifest.content["revoked"]["devices"]


def test_deactivate_releases_seat(alpha_api: ClientApi, device_key: DeviceKey) -> None:
    grant, license_key = grant_make()
    _activate(alpha_api, device_key, license_key)
    response = alpha_api.post("deactivate", {"product": "atlas"}, key=device_key)
    assert response.status_code == 204
    assert Seat.objects.get(grant=grant).status == "released"
    again = alpha_api.post("refresh", {"product": "atlas"}, key=device_key)
    assert _problem(again) == "device_unknown"


def test_manifest_etag_not_modified(alpha_api: ClientApi) -> None:
    grant_make()
    first = alpha_api.get("manifest", product="atlas")
    assert first.status_code == 200
    etag = first["ETag"]
    second = alpha_api.get("manifest", product="atlas", headers={"If-None-Match": etag})
    assert second.status_code == 304


def test_manifest_version_increases_on_revocation(alpha_api: ClientApi) -> None:
    grant, _ = grant_make()
    before = jwt.decode(
        alpha_api.get("manifest", product="atlas").json()["manifest"],
        options={"verify_signature": False},
    )
    grant_revoke(grant_id=grant.pk, reason="test", acting_user=None)
    after = jwt.decode(
        alpha_api.get("manifest", product="atlas").json()["manifest"],
        options={"verify_signature": False},
    )
    assert after["mver"] > before["mver"]
    assert str(grant.pk) in after["revoked"]["grants"]


def test_manifest_unlicensed_product(alpha_api: ClientApi) -> None:
    assert _problem(alpha_api.get("manifest", product="nothing")) == "product_not_licensed"


# --- Device proofs ---------------------------------------------------------


def test_proof_missing(alpha_api: ClientApi) -> None:
    response = alpha_api.post("refresh", {"product": "atlas"})
    assert response.status_code == 401
    assert _problem(response) == "proof_missing"


def test_proof_stale(alpha_api: ClientApi, device_key: DeviceKey) -> None:
    proof = device_key.proof("POST", alpha_api.url("refresh"), iat=int(time.time()) - 600)
    assert _problem(alpha_api.post("refresh", {"product": "atlas"}, proof=proof)) == "proof_stale"


def test_proof_replayed(alpha_api: ClientApi, device_key: DeviceKey) -> None:
    proof = device_key.proof("POST", alpha_api.url("refresh"))
    alpha_api.post("refresh", {"product": "atlas"}, proof=proof)
    response = alpha_api.post("refresh", {"product": "atlas"}, proof=proof)
    assert _problem(response) == "proof_replayed"


def test_proof_other_url_rejected(alpha_api: ClientApi, device_key: DeviceKey) -> None:
    proof = device_key.proof("POST", alpha_api.url("deactivate"))
    assert _problem(alpha_api.post("refresh", {"product": "atlas"}, proof=proof)) == "proof_invalid"


def test_proof_other_method_rejected(alpha_api: ClientApi, device_key: DeviceKey) -> None:
    proof = device_key.proof("GET", alpha_api.url("refresh"))
    assert _problem(alpha_api.post("refresh", {"product": "atlas"}, proof=proof)) == "proof_invalid"


def test_proof_signed_by_other_key_rejected(alpha_api: ClientApi, device_key: DeviceKey) -> None:
    proof = DeviceKey().proof("POST", alpha_api.url("refresh"), jwk=device_key.jwk)
    assert _problem(alpha_api.post("refresh", {"product": "atlas"}, proof=proof)) == "proof_invalid"


def test_proof_wrong_curve_rejected(alpha_api: ClientApi, device_key: DeviceKey) -> None:
    p256 = {
        "kty": "EC",
        "crv": "P-256",
        "x": "f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU",
        "y": "x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0",
    }
    proof = device_key.proof("POST", alpha_api.url("refresh"), jwk=p256)
    assert _problem(alpha_api.post("refresh", {"product": "atlas"}, proof=proof)) == "proof_invalid"


def test_proof_wrong_typ_rejected(alpha_api: ClientApi, device_key: DeviceKey) -> None:
    proof = device_key.proof("POST", alpha_api.url("refresh"), typ="kp-license+jwt")
    assert _problem(alpha_api.post("refresh", {"product": "atlas"}, proof=proof)) == "proof_invalid"


# --- Bad input -------------------------------------------------------------


def test_malformed_json_rejected(alpha_api: ClientApi, device_key: DeviceKey) -> None:
    response = alpha_api.post("activate", None, key=device_key, raw=b"{not json")
    assert response.status_code == 400
    assert _problem(response) == "request_invalid"


def test_unknown_field_rejected(alpha_api: ClientApi, device_key: DeviceKey) -> None:
    body = {"license_key": "KP-X", "product": "atlas", "admin": True}
    response = alpha_api.post("activate", body, key=device_key)
    assert _problem(response) == "request_invalid"
    assert response.json()["errors"][0]["field"] == "admin"


@pytest.mark.parametrize(
    "body",
    [
        {"license_key": 42, "product": "atlas"},
        {"license_key": "KP-X", "product": ["atlas"]},
        {"license_key": "KP-X", "product": "atlas", "device": "laptop"},
        {"license_key": "KP-X", "product": "atlas", "device": {"name": "a", "colour": "red"}},
        ["not", "an", "object"],
    ],
)
def test_wrong_types_rejected(alpha_api: ClientApi, device_key: DeviceKey, body: object) -> None:
    assert _problem(alpha_api.post("activate", body, key=device_key)) == "request_invalid"


def test_oversized_body_rejected(alpha_api: ClientApi, device_key: DeviceKey) -> None:
    body = {"license_key": "KP-X", "product": "atlas", "device": {"name": "x" * 20000}}
    response = alpha_api.post("activate", body, key=device_key)
    assert response.status_code == 413
    assert _problem(response) == "request_too_large"


def test_suspended_tenant_rejected(alpha_api: ClientApi, device_key: DeviceKey) -> None:
    from portal.tenants.models import Tenant

    Tenant.objects.filter(slug="alpha").update(status="suspended")
    connection.set_tenant(alpha_api.tenant)
    response = alpha_api.post("refresh", {"product": "atlas"}, key=device_key)
    assert response.status_code == 403
    assert _problem(response) == "tenant_suspended"


def test_unknown_tenant_rejected(db: None) -> None:
    response = Client().post(
        "/t/nobody/api/v1/client/refresh", data=json.dumps({}), content_type="application/json"
    )
    assert response.status_code == 404
    assert _problem(response) == "tenant_not_found"


def test_manifest_not_accepted_as_token(alpha_api: ClientApi, device_key: DeviceKey) -> None:
    """A license verifier rejects the manifest, though the same key signs both."""
    from keyplane_client.errors import VerificationError
    from keyplane_client.tokens import verify_license
    from keyplane_client.trust import Keyring, RootKeys

    _, license_key = grant_make()
    body = _activate(alpha_api, device_key, license_key).json()
    jwks = Client().get("/.well-known/keyplane/root-keys.json").content
    connection.set_tenant(alpha_api.tenant)
    certificates = alpha_api.get("keys").json()["keys"]
    keyring = Keyring.from_certificates(certificates, RootKeys.from_jwks(jwks), tenant="alpha")
    assert verify_license(body["token"], keyring, product="atlas").tenant == "alpha"
    with pytest.raises(VerificationError):
        verify_license(body["manifest"], keyring, product="atlas")
