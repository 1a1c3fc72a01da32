"""Client API rate limits: per address, per license, isolated between tenants."""

from typing import Any

from django.db import connection
from django.test import override_settings

from tests.licensing.conftest import ClientApi, DeviceKey, grant_make

TIGHT = {"address": (3, 60), "license": (100, 60), "device": (100, 60)}


def test_address_limit_returns_retry_after(alpha_api: ClientApi) -> None:
    with override_settings(KEYPLANE_CLIENT_RATE_LIMITS=TIGHT):
        statuses = [alpha_api.get("keys").status_code for _ in range(4)]
        response = alpha_api.get("keys")
    assert statuses == [200, 200, 200, 429]
    assert response.json()["code"] == "rate_limited"
    assert 1 <= int(response["Retry-After"]) <= 61


def test_limit_of_one_tenant_spares_other(alpha_api: ClientApi, tenant_beta: Any) -> None:
    with override_settings(KEYPLANE_CLIENT_RATE_LIMITS=TIGHT):
        for _ in range(4):
            alpha_api.get("keys")
        beta_api = ClientApi(tenant_beta)
        response = beta_api.get("keys")
        connection.set_tenant(alpha_api.tenant)
    assert response.status_code == 200


def test_license_limit(alpha_api: ClientApi) -> None:
    _, license_key = grant_make()
    limits = {"address": (100, 60), "license": (2, 60), "device": (100, 60)}
    body = {"license_key": license_key, "product": "atlas"}
    with override_settings(KEYPLANE_CLIENT_RATE_LIMITS=limits):
        statuses = [alpha_api.post("activate", body, key=DeviceKey()).status_code for _ in range(3)]
    assert statuses == [201, 201, 429]


def test_device_limit_counts_refreshes(alpha_api: ClientApi) -> None:
    _, license_key = grant_make()
    key = DeviceKey()
    alpha_api.post("activate", {"license_key": license_key, "product": "atlas"}, key=key)
    limits = {"address": (100, 60), "license": (100, 60), "device": (2, 60)}
    with override_settings(KEYPLANE_CLIENT_RATE_LIMITS=limits):
        statuses = [
            alpha_api.post("refresh", {"product": "atlas"}, key=key).status_code for _ in range(3)
        ]
    assert statuses == [200, 200, 429]
