import pytest
from django.contrib.auth.models import User
from django.db import connection
from rest_framework.test import APIClient

from licensing.jws import jws_parse_header, jws_verify
from licensing.models import DeviceGroup
from licensing.signing import tenant_public_keys
from overlays.models import ApplyReport, Release
from overlays.services import OVERLAY_TYP, release_publish
from portal.access.services import api_token_issue
from tests.licensing.conftest import ClientApi, DeviceKey
from tests.overlays.conftest import grant_entitlements


@pytest.fixture
def client_api(in_alpha, product):
    connection.set_tenant(in_alpha)
    return ClientApi(in_alpha)


@pytest.fixture
def activated(client_api, product):
    _, license_key = grant_entitlements(product.code, [])
    key = DeviceKey()
    response = client_api.post(
        "activate",
        {
            "license_key": license_key,
            "product": product.code,
            "device": {"name": "pc", "platform": "linux"},
        },
        key=key,
    )
    assert response.status_code == 201, response.content
    return key


def _token_client(scopes):
    _, secret = api_token_issue(
        name="overlay tests", user=User.objects.get(username="alpha-admin"), scopes=scopes
    )
    api = APIClient()
    api.credentials(HTTP_AUTHORIZATION=f"Bearer {secret}")
    return api


@pytest.fixture
def admin_api(in_alpha):
    return _token_client(["overlays:read", "overlays:write"])


def _admin_url(product, endpoint):
    return f"/t/alpha/api/v1/admin/overlays/{product.code}/{endpoint}"


def _restore(tenant):
    connection.set_tenant(tenant)


def _overlay_get(client_api, key, product, headers=None):
    proof = key.proof("GET", client_api.url("overlay"))
    return client_api.get(
        "overlay", headers={"DPoP": proof, **(headers or {})}, product=product.code
    )


def test_client_overlay_signed_with_etag(client_api, activated, product):
    release_publish(
        product_code=product.code,
        base_release=None,
        acting_user=None,
        tenant_patch={"ui": {"theme": "dark"}},
    )

    response = _overlay_get(client_api, activated, product)
    body = response.json()
    kid = jws_parse_header(body["overlay"])["kid"]
    _, claims = jws_verify(body["overlay"], typ=OVERLAY_TYP, public_key=tenant_public_keys()[kid])

    assert response.status_code == 200
    assert body["release"] == 1
    assert claims["cfg"]["ui"]["theme"] == "dark"
    assert response["ETag"].startswith('"1-')


def test_client_overlay_not_modified_on_same_etag(client_api, activated, product):
    release_publish(product_code=product.code, base_release=None, acting_user=None, tenant_patch={})
    etag = _overlay_get(client_api, activated, product)["ETag"]

    response = _overlay_get(client_api, activated, product, headers={"If-None-Match": etag})

    assert response.status_code == 304


def test_client_overlay_without_proof_rejected(client_api, product):
    response = client_api.get("overlay", product=product.code)

    assert response.status_code == 401
    assert response.json()["code"] == "proof_missing"


def test_client_overlay_unpublished_not_found(client_api, activated, product):
    response = _overlay_get(client_api, activated, product)

    assert response.status_code == 404
    assert response.json()["code"] == "overlay_not_published"


def test_client_apply_report_accepted(client_api, activated, product):
    release_publish(product_code=product.code, base_release=None, acting_user=None, tenant_patch={})

    response = client_api.post(
        "overlay/apply",
        {"product": product.code, "release": 1, "ok": False, "code": "disk_full"},
        key=activated,
    )

    assert response.status_code == 202
    assert ApplyReport.objects.get().code == "disk_full"


def test_admin_publish_then_same_content_returns_200(admin_api, in_alpha, product):
    body = {"base_release": None, "tenant": {"ui": {"theme": "dark"}}}

    first = admin_api.post(_admin_url(product, "releases"), body, format="json")
    _restore(in_alpha)
    again = admin_api.post(_admin_url(product, "releases"), body, format="json")
    _restore(in_alpha)

    assert first.status_code == 201
    assert first.json()["number"] == 1
    assert again.status_code == 200
    assert again.json()["sha256"] == first.json()["sha256"]


def test_admin_publish_invalid_json_rejected(admin_api, in_alpha, product):
    response = admin_api.generic(
        "POST",
        _admin_url(product, "releases"),
        '{"base_release": null, "tenant": {',
        content_type="application/json",
    )
    _restore(in_alpha)

    assert response.status_code == 400
    assert response.json()["code"] == "request_invalid"
    assert not Release.objects.exists()


def test_admin_publish_schema_violation_lists_errors(admin_api, in_alpha, product):
    body = {"base_release": None, "tenant": {"ui": {"editor": {"font_sise": 3}}}}

    response = admin_api.post(_admin_url(product, "releases"), body, format="json")
    _restore(in_alpha)
    problem = response.json()

    assert response.status_code == 422
    assert problem["code"] == "overlay_invalid"
    assert problem["errors"][0]["path"] == "/ui/editor/font_sise"
    assert problem["errors"][0]["layer"] == "tenant"


def test_admin_publish_stale_base_conflicts(admin_api, in_alpha, product):
    release_publish(product_code=product.code, base_release=None, acting_user=None, tenant_patch={})

    response = admin_api.post(
        _admin_url(product, "releases"),
        {"base_release": None, "tenant": {"ui": {"theme": "dark"}}},
        format="json",
    )
    _restore(in_alpha)

    assert response.status_code == 409
    assert response.json()["code"] == "release_conflict"


def test_admin_effective_shows_provenance(admin_api, in_alpha, product):
    DeviceGroup.objects.create(name="eng")
    release_publish(
        product_code=product.code,
        base_release=None,
        acting_user=None,
        tenant_patch={"ui": {"theme": "dark"}},
        group_entries=[{"group": "eng", "overlay": {"telemetry": "off"}}],
    )

    response = admin_api.get(_admin_url(product, "effective"), {"group": "eng", "release": 1})
    _restore(in_alpha)
    view = response.json()

    assert response.status_code == 200
    assert view["provenance"]["/telemetry"] == "group:eng"
    assert view["provenance"]["/ui/theme"] == "tenant"
    assert view["provenance"]["/ui/editor/font_size"] == "defaults"


def test_admin_preview_counts_devices_and_diffs(admin_api, in_alpha, product):
    from tests.overlays.conftest import make_device

    group = DeviceGroup.objects.create(name="eng")
    for n in range(3):
        make_device(group, name=f"eng{n}")
    make_device(None)
    release_publish(product_code=product.code, base_release=None, acting_user=None, tenant_patch={})

    response = admin_api.post(
        _admin_url(product, "preview"),
        {"groups": [{"group": "eng", "overlay": {"ui": {"theme": "dark"}}}]},
        format="json",
    )
    _restore(in_alpha)
    preview = response.json()
    by_group = {t["group"]: t for t in preview["targets"]}

    assert response.status_code == 200
    assert preview["devices_changed"] == 3
    assert by_group["eng"]["devices"] == 3
    assert by_group["eng"]["changes"] == [
        {"path": "/ui/theme", "op": "replace", "before": "light", "after": "dark"}
    ]
    assert by_group[None]["changes"] == []


def test_admin_rollback_and_promote(admin_api, in_alpha, product):
    release_publish(
        product_code=product.code,
        base_release=None,
        acting_user=None,
        tenant_patch={"ui": {"theme": "dark"}},
    )
    release_publish(
        product_code=product.code,
        base_release=1,
        acting_user=None,
        tenant_patch={},
        steps=[{"percent": 10}, {"percent": 100}],
    )

    promoted = admin_api.post(
        _admin_url(product, "rollout/promote"), {"ignore_window": True}, format="json"
    )
    _restore(in_alpha)
    rolled = admin_api.post(_admin_url(product, "rollback"), {"to_release": 1}, format="json")
    _restore(in_alpha)

    assert promoted.status_code == 200
    assert promoted.json()["status"] == "complete"
    assert rolled.status_code == 201
    assert rolled.json()["number"] == 3
    assert rolled.json()["restores_number"] == 1


def test_admin_api_requires_token(in_alpha, product):
    response = APIClient().get(_admin_url(product, "releases"))
    _restore(in_alpha)

    assert response.status_code == 401
    assert response.json()["code"] == "not_authenticated"


def test_admin_publish_needs_write_scope(in_alpha, product):
    read_only = _token_client(["overlays:read"])

    response = read_only.post(
        _admin_url(product, "releases"), {"base_release": None, "tenant": {}}, format="json"
    )
    _restore(in_alpha)

    assert response.status_code == 403
    assert response.json()["code"] == "permission_denied"
    assert not Release.objects.exists()


def test_admin_api_other_tenant_token_rejected(in_beta, product):
    from django_tenants.utils import schema_context

    with schema_context("alpha"):
        alpha_client = _token_client(["overlays:read"])

    response = alpha_client.get(f"/t/beta/api/v1/admin/overlays/{product.code}/releases")
    connection.set_tenant(in_beta)

    assert response.status_code == 401
