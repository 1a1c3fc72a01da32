"""Onboarding and offboarding a tenant on the real database (schemas are really created)."""

import json
import secrets
from datetime import timedelta

import pytest
from django.contrib.auth import get_user_model
from django.core.management import CommandError, call_command
from django.utils import timezone
from django_tenants.utils import schema_context, schema_exists

from portal.tenants.models import Tenant
from portal.tenants.services import (
    TenantExists,
    TenantSlugInvalid,
    TenantStateInvalid,
    tenant_drop,
    tenant_export,
    tenant_onboard,
    tenant_suspend,
)


def _fresh_slug() -> str:
    return "lc-" + "".join(secrets.choice("abcdefghijklmnopqrstuvwxyz") for _ in range(8))


@pytest.fixture
def fresh_tenant(committed_db: None):  # type: ignore[no-untyped-def]
    slug = _fresh_slug()
    onboarded = tenant_onboard(
        slug=slug,
        display_name="Lifecycle Ltd",
        admin_username="first-admin",
        admin_email="admin@lifecycle.example",
        admin_password="a-long-test-password",
    )
    yield onboarded.tenant
    if schema_exists(onboarded.tenant.schema_name):
        onboarded.tenant.status = Tenant.Status.OFFBOARDING
        onboarded.tenant.exported_at = timezone.now()
        onboarded.tenant.drop_after = None
        tenant_drop(tenant=onboarded.tenant)


def test_tenant_onboard_creates_schema_roles_and_admin(fresh_tenant: Tenant) -> None:
    assert schema_exists(fresh_tenant.schema_name)
    with schema_context(fresh_tenant.schema_name):
        admin = get_user_model().objects.get(username="first-admin")
        assert admin.is_superuser
        assert admin.check_password("a-long-test-password")


def test_tenant_onboard_rejects_taken_slug(fresh_tenant: Tenant) -> None:
    with pytest.raises(TenantExists):
        tenant_onboard(
            slug=fresh_tenant.slug,
            display_name="Again",
            admin_username="x",
            admin_email="x@example.com",
        )


def test_tenant_onboard_rejects_invalid_slug_without_writing(committed_db: None) -> None:
    with pytest.raises(TenantSlugInvalid, match="upper case"):
        tenant_onboard(
            slug="Bad-Slug", display_name="Bad", admin_username="x", admin_email="x@example.com"
        )
    assert not Tenant.objects.filter(slug="Bad-Slug").exists()


def test_tenant_onboard_failure_removes_partial_schema(committed_db: None) -> None:
    slug = _fresh_slug()
    with pytest.raises(ValueError, match="username must be set"):
        tenant_onboard(slug=slug, display_name="Broken", admin_username="", admin_email="")
    assert not Tenant.objects.filter(slug=slug).exists()
    assert not schema_exists(slug.replace("-", "_"))


def test_tenant_export_requires_offboarding_state(fresh_tenant: Tenant) -> None:
    with pytest.raises(TenantStateInvalid, match="suspend it for offboarding first"):
        tenant_export(tenant=fresh_tenant)


def test_tenant_offboarding_steps_in_order(fresh_tenant: Tenant) -> None:
    suspended = tenant_suspend(tenant=fresh_tenant, offboarding=True)
    folder = tenant_export(tenant=suspended)
    manifest = json.loads((folder / "manifest.json").read_text())
    assert manifest["rows"]["auth.user"] == 1
    assert fresh_tenant.schema_name in str(folder)

    with pytest.raises(TenantStateInvalid, match="is kept until"):
        tenant_drop(tenant=suspended)

    tenant_drop(tenant=suspended, now=suspended.drop_after + timedelta(seconds=1))
    assert not schema_exists(suspended.schema_name)
    assert not Tenant.objects.filter(pk=suspended.pk).exists()


def test_offboard_command_names_missing_tenant(committed_db: None) -> None:
    with pytest.raises(CommandError, match="No tenant has the slug 'nosuch'"):
        call_command("offboard_tenant", "nosuch", "--suspend")
