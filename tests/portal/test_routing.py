"""Path routing: platform at /, tenants under /t/<slug>/, no fall-back to public."""

import pytest
from django.test import Client

from portal.tenants.models import Tenant


@pytest.fixture
def client() -> Client:
    return Client()


def test_unknown_slug_page_is_404(db: None, client: Client) -> None:
    response = client.get("/t/nosuch/admin/")
    assert response.status_code == 404


def test_unknown_slug_client_api_is_problem(db: None, client: Client) -> None:
    response = client.get("/t/nosuch/api/v1/client/keys")
    assert response.status_code == 404
    assert response["Content-Type"] == "application/problem+json"
    assert response.json()["code"] == "tenant_not_found"


def test_suspended_tenant_client_api_is_refused(tenant_alpha: Tenant, client: Client) -> None:
    Tenant.objects.filter(pk=tenant_alpha.pk).update(status=Tenant.Status.SUSPENDED)
    response = client.get("/t/alpha/api/v1/client/keys")
    assert response.status_code == 403
    assert response.json()["code"] == "tenant_suspended"


def test_tenant_admin_login_links_stay_under_prefix(tenant_alpha: Tenant, client: Client) -> None:
    response = client.get("/t/alpha/admin/")
    assert response.status_code == 302
    assert response["Location"].startswith("/t/alpha/admin/login/")


def test_tenant_admin_index_lists_only_tenant_models(tenant_alpha: Tenant, client: Client) -> None:
    client.post(
        "/t/alpha/admin/login/",
        {"username": "alpha-admin", "password": "correct-horse-battery"},
    )
    page = client.get("/t/alpha/admin/").content.decode()
    assert "Keyplane · Alpha Corp" in page
    assert "/t/alpha/admin/auth/user/" in page
    assert "tenants/tenant" not in page
    assert "django_celery_beat" not in page


def test_platform_admin_lists_only_platform_models(db: None, client: Client) -> None:
    from django.contrib.auth import get_user_model

    get_user_model().objects.create_superuser("operator", "op@example.com", "pw-operator-1")
    client.post("/admin/login/", {"username": "operator", "password": "pw-operator-1"})
    page = client.get("/admin/").content.decode()
    assert "/admin/tenants/tenant/" in page
    assert "/admin/django_celery_beat/periodictask/" in page
    assert "licensing" not in page
