"""The admin API with scoped bearer tokens, in-process."""

from typing import Any

import pytest
from django.contrib.auth import get_user_model
from django.db import connection
from django.test import Client

from licensing.licensekeys import license_key_hash
from licensing.models import LicenseGrant, Manifest, Revocation
from portal.access.services import api_token_issue
from tests.licensing.conftest import ClientApi, DeviceKey, grant_make, policy_make

ALL_SCOPES = [
    "policies:read",
    "policies:write",
    "grants:read",
    "grants:write",
    "devices:read",
    "devices:write",
    "revocations:write",
    "manifests:read",
]


class AdminApi:
    def __init__(self, tenant: Any, token: str) -> None:
        self.tenant = tenant
        self.http = Client(headers={"Authorization": f"Bearer {token}"})

    def call(self, method: str, path: str, body: Any = None) -> Any:
        url = f"/t/{self.tenant.slug}/api/v1/admin/{path}"
        try:
            if method == "GET":
                return self.http.get(url)
            return self.http.post(url, data=body, content_type="application/json")
        finally:
            connection.set_tenant(self.tenant)


def _api(tenant: Any, scopes: list[str]) -> AdminApi:
    user = get_user_model().objects.get(username=f"{tenant.slug}-admin")
    _, secret = api_token_issue(name="test", user=user, scopes=scopes)
    return AdminApi(tenant, secret)


@pytest.fixture
def admin_api(in_alpha: Any, product: Any) -> AdminApi:
    connection.set_tenant(in_alpha)
    return _api(in_alpha, ALL_SCOPES)


def test_policies_list_paginated(admin_api: AdminApi) -> None:
    first = policy_make()
    policy_make()
    response = admin_api.call("GET", "policies/")
    assert response.status_code == 200, response.content
    body = response.json()
    assert [item["id"] for item in body["results"]][:1] == [first.pk]
    assert "next" in body


def test_grant_create_returns_license_key_once(admin_api: AdminApi) -> None:
    policy = policy_make()
    response = admin_api.call("POST", "grants/", {"policy": policy.pk, "seat_count": 3})
    assert response.status_code == 201, response.content
    body = response.json()
    grant = LicenseGrant.objects.get(pk=body["id"])
    assert grant.key_hash == license_key_hash(body["license_key"])
    detail = admin_api.call("GET", f"grants/{grant.pk}/").json()
    assert "license_key" not in detail
    assert grant.history.first().history_user.username == "alpha-admin"


def test_grant_create_seat_count_above_limit(admin_api: AdminApi) -> None:
    policy = policy_make(seat_limit=5)
    response = admin_api.call("POST", "grants/", {"policy": policy.pk, "seat_count": 6})
    assert response.status_code == 400
    assert response.json()["code"] == "policy_invalid"
    assert "seat_count" in response.json()["detail"]


def test_grant_create_zero_seats_rejected(admin_api: AdminApi) -> None:
    policy = policy_make()
    response = admin_api.call("POST", "grants/", {"policy": policy.pk, "seat_count": 0})
    assert response.json()["code"] == "request_invalid"


def test_grant_create_unknown_policy(admin_api: AdminApi) -> None:
    response = admin_api.call("POST", "grants/", {"policy": 999999, "seat_count": 1})
    assert response.status_code == 404
    assert response.json()["code"] == "not_found"


def test_policy_create_contradiction_names_fields(admin_api: AdminApi) -> None:
    body = {
        "name": "Bad",
        "product_code": "atlas",
        "token_lifetime_hours": 200,
        "offline_tolerance_hours": 100,
        "grace_days": 120,
    }
    response = admin_api.call("POST", "policies/", body)
    assert response.status_code == 400
    fields = {item["field"] for item in response.json()["errors"]}
    assert fields == {"token_lifetime_hours", "grace_days"}


def test_grant_revoke_publishes_manifest(admin_api: AdminApi) -> None:
    grant, _ = grant_make()
    before = Manifest.objects.filter(product_code="atlas").count()
    response = admin_api.call("POST", f"grants/{grant.pk}/revoke/", {"reason": "contract ended"})
    assert response.status_code == 201, response.content
    latest = Manifest.objects.filter(product_code="atlas").order_by("-version").first()
    assert Manifest.objects.filter(product_code="atlas").count() == before + 1
    assert str(grant.pk) in latest.content["revoked"]["grants"]


def test_grant_revoke_twice_conflict(admin_api: AdminApi) -> None:
    grant, _ = grant_make()
    admin_api.call("POST", f"grants/{grant.pk}/revoke/", {"reason": "x"})
    response = admin_api.call("POST", f"grants/{grant.pk}/revoke/", {"reason": "x"})
    assert response.status_code == 409
    assert response.json()["code"] == "already_revoked"


def test_token_revoke_listed_in_manifest(admin_api: AdminApi) -> None:
    import jwt

    _, license_key = grant_make()
    client_api = ClientApi(admin_api.tenant)
    body = {"license_key": license_key, "product": "atlas"}
    token = client_api.post("activate", body, key=DeviceKey()).json()["token"]
    jti = jwt.decode(token, options={"verify_signature": False})["jti"]
    response = admin_api.call("POST", "tokens/revoke/", {"jti": jti, "reason": "leaked"})
    assert response.status_code == 201, response.content
    latest = Manifest.objects.filter(product_code="atlas").order_by("-version").first()
    assert jti in latest.content["revoked"]["tokens"]


def test_device_revoke_and_seat_release(admin_api: AdminApi) -> None:
    _, license_key = grant_make()
    client_api = ClientApi(admin_api.tenant)
    key = DeviceKey()
    device_id = client_api.post(
        "activate", {"license_key": license_key, "product": "atlas"}, key=key
    ).json()["device_id"]
    seat_id = admin_api.call("GET", "seats/").json()["results"][0]["id"]
    missing_reason = admin_api.call("POST", f"seats/{seat_id}/release/", {"reason": ""})
    assert missing_reason.json()["code"] == "request_invalid"
    released = admin_api.call("POST", f"seats/{seat_id}/release/", {"reason": "laptop stolen"})
    assert released.json()["status"] == "released"
    revoked = admin_api.call("POST", f"devices/{device_id}/revoke/", {"reason": "lost"})
    assert revoked.status_code == 201
    assert Revocation.objects.filter(kind="device", device_id=device_id).exists()


def test_missing_token_rejected(in_alpha: Any) -> None:
    response = Client().get("/t/alpha/api/v1/admin/policies/")
    connection.set_tenant(in_alpha)
    assert response.status_code == 401
    assert response.json()["code"] == "not_authenticated"


def test_wrong_scope_rejected(in_alpha: Any) -> None:
    api = _api(in_alpha, ["devices:read"])
    response = api.call("GET", "policies/")
    assert response.status_code == 403
    assert response.json()["code"] == "permission_denied"


def test_token_of_other_tenant_rejected(in_alpha: Any, tenant_beta: Any) -> None:
    from django_tenants.utils import schema_context

    with schema_context("beta"):
        user = get_user_model().objects.get(username="beta-admin")
        _, secret = api_token_issue(name="beta", user=user, scopes=ALL_SCOPES)
    connection.set_tenant(in_alpha)
    response = AdminApi(in_alpha, secret).call("GET", "policies/")
    assert response.status_code == 401


def test_revoked_token_rejected(in_alpha: Any) -> None:
    from portal.access.services import api_token_revoke

    user = get_user_model().objects.get(username="alpha-admin")
    token, secret = api_token_issue(name="t", user=user, scopes=ALL_SCOPES)
    api_token_revoke(token_id=token.pk, acting_user=None)
    assert AdminApi(in_alpha, secret).call("GET", "policies/").status_code == 401


def test_manifests_filter_rejects_control_characters(admin_api: AdminApi) -> None:
    response = admin_api.call("GET", "manifests/?product=%08%00x")
    assert response.status_code == 400
    assert response.json()["code"] == "request_invalid"
