"""Cross-tenant isolation of sessions, admin and cache."""

import pytest
from django.core.cache import cache
from django.test import Client
from django_tenants.utils import schema_context

from portal.cache import tenant_cache_purge
from portal.tenants.models import Tenant


def _login(client: Client, slug: str) -> None:
    response = client.post(
        f"/t/{slug}/admin/login/",
        {"username": f"{slug}-admin", "password": "correct-horse-battery"},
    )
    assert response.status_code == 302, response.content


def test_session_cookie_is_scoped_to_tenant_path(tenant_alpha: Tenant) -> None:
    client = Client()
    _login(client, "alpha")
    morsel = client.cookies["sessionid_alpha"]
    assert morsel["path"] == "/t/alpha/"
    assert "sessionid" not in client.cookies


def test_session_from_alpha_is_refused_on_beta(tenant_alpha: Tenant, tenant_beta: Tenant) -> None:
    client = Client()
    _login(client, "alpha")
    stolen = client.cookies["sessionid_alpha"].value
    client.cookies["sessionid_beta"] = stolen
    response = client.get("/t/beta/admin/")
    assert response.status_code == 302
    assert "/t/beta/admin/login/" in response["Location"]


def test_alpha_credentials_fail_on_beta(tenant_alpha: Tenant, tenant_beta: Tenant) -> None:
    client = Client()
    response = client.post(
        "/t/beta/admin/login/",
        {"username": "alpha-admin", "password": "correct-horse-battery"},
    )
    assert response.status_code == 200
    assert "Please enter the correct username and password" in response.content.decode()


def test_cache_entry_is_invisible_to_other_tenant(
    tenant_alpha: Tenant, tenant_beta: Tenant
) -> None:
    with schema_context("alpha"):
        cache.set("grant:1", "alpha-value", 60)
    with schema_context("beta"):
        assert cache.get("grant:1") is None


def test_cache_purge_keeps_other_tenant(tenant_alpha: Tenant, tenant_beta: Tenant) -> None:
    with schema_context("alpha"):
        cache.set("purge-check", "alpha", 60)
    with schema_context("beta"):
        cache.set("purge-check", "beta", 60)

    removed = tenant_cache_purge(schema_name="alpha")

    assert removed >= 1
    with schema_context("alpha"):
        assert cache.get("purge-check") is None
    with schema_context("beta"):
        assert cache.get("purge-check") == "beta"


@pytest.mark.parametrize("slug", ["alpha", "beta"])
def test_each_tenant_has_its_own_roles(slug: str, db: None) -> None:
    from django.contrib.auth.models import Group

    with schema_context(slug):
        names = set(Group.objects.values_list("name", flat=True))
    assert {"Procurement admin", "IT admin", "Approver", "Auditor"} <= names
