"""Sandbox tenants cloned from a production tenant's configuration (committed rows)."""

import secrets
import uuid

import pytest
from django.db import connection
from django.utils import timezone
from django_tenants.utils import schema_context, schema_exists

from tests.overlays.schemas import desktop_defaults, desktop_schema


@pytest.fixture
def source_config(committed_db):  # type: ignore[no-untyped-def]
    """Configuration in a fresh source tenant: a product, policy, grant, group, overlays, device."""
    from licensing.models import DeviceGroup
    from overlays.catalog.models import GlobalDefaults, OverlaySchema
    from overlays.services import overlay_draft_save
    from portal.catalog.models import Feature, Product
    from portal.tenants.services import tenant_drop, tenant_onboard
    from tests.overlays.conftest import grant_entitlements, make_device

    created = []
    with schema_context("public"):
        product = Product.objects.create(code=f"sbx-{uuid.uuid4().hex[:8]}", name="Sandboxed")
        Feature.objects.create(product=product, code="sso")
        OverlaySchema.objects.create(product=product, version=1, schema=desktop_schema())
        GlobalDefaults.objects.create(product=product, values=desktop_defaults())
    source = tenant_onboard(
        slug="sb-" + "".join(secrets.choice("abcdefghijklmnopqrstuvwxyz") for _ in range(8)),
        display_name="Source Ltd",
        admin_username="src-admin",
        admin_email="a@src.example",
        admin_password="a-long-test-password",
    ).tenant
    created.append(source)
    with schema_context(source.schema_name):
        _, license_key = grant_entitlements(product.code, ["sso"])
        group = DeviceGroup.objects.create(name="eng")
        make_device(group)
        overlay_draft_save(
            product_code=product.code,
            acting_user=None,
            tenant_patch={"auth": {"sso_enabled": True}},
            group_entries=[{"group": "eng", "position": 5, "overlay": {"ui": {"theme": "dark"}}}],
        )
    yield {"source": source, "product": product, "license_key": license_key, "created": created}

    connection.set_schema_to_public()
    for tenant in created:
        if schema_exists(tenant.schema_name):
            tenant.status = tenant.Status.OFFBOARDING
            tenant.exported_at = timezone.now()
            tenant.drop_after = None
            tenant_drop(tenant=tenant)


def test_sandbox_copies_configuration_not_devices(source_config):
    from licensing.licensekeys import license_key_hash
    from licensing.models import Device, DeviceGroup, LicenseGrant, Policy
    from licensing.selectors import tenant_entitlements
    from overlays.models import GroupOverlay, TenantOverlay
    from overlays.services import release_publish
    from portal.tenants.sandbox import sandbox_create, sandbox_slug_suggest

    source, product = source_config["source"], source_config["product"]
    sandbox = sandbox_create(
        source=source,
        slug=sandbox_slug_suggest(source),
        admin_username="sbx-admin",
        admin_email="a@sbx.example",
        acting_user=None,
    )
    source_config["created"].append(sandbox)

    assert sandbox.is_sandbox
    assert sandbox.sandbox_of_id == source.pk
    with schema_context(sandbox.schema_name):
        assert Policy.objects.filter(product_code=product.code).count() == 1
        assert list(DeviceGroup.objects.values_list("name", flat=True)) == ["eng"]
        assert TenantOverlay.objects.get(product_code=product.code).patch == {
            "auth": {"sso_enabled": True}
        }
        group_overlay = GroupOverlay.objects.get(product_code=product.code)
        assert (group_overlay.group.name, group_overlay.position) == ("eng", 5)
        assert not Device.objects.exists()
        copied = LicenseGrant.objects.get()
        assert copied.key_hash != license_key_hash(source_config["license_key"])
        assert tenant_entitlements(product.code) == {"sso"}
        # The gated flag validates in the sandbox as it would in production.
        assert release_publish(
            product_code=product.code, base_release=None, acting_user=None
        ).created


def test_sandbox_command_unknown_source_fails(committed_db):
    from django.core.management import CommandError, call_command

    with pytest.raises(CommandError, match="No tenant has the slug 'no-such-tenant'"):
        call_command(
            "sandbox_create",
            "no-such-tenant",
            "--admin-username",
            "a",
            "--admin-email",
            "a@x.example",
        )
