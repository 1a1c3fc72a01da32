"""The overlay pages of the tenant admin and the platform admin."""

import json

from django.contrib.auth import get_user_model
from django.db import connection
from django.test import Client

from licensing.models import DeviceGroup
from overlays.models import GroupOverlay, Release, TenantOverlay
from overlays.selectors import head_current
from overlays.services import overlay_draft_save, release_publish
from tests.overlays.test_validation import PRIVATE_KEY


def _admin(tenant):
    client = Client()
    client.post(
        f"/t/{tenant.slug}/admin/login/",
        {"username": f"{tenant.slug}-admin", "password": "correct-horse-battery"},
    )
    connection.set_tenant(tenant)
    return client


def test_group_overlay_page_shows_provenance(in_alpha, product):
    group = DeviceGroup.objects.create(name="eng")
    overlay_draft_save(
        product_code=product.code,
        acting_user=None,
        tenant_patch={"ui": {"theme": "dark"}},
        group_entries=[{"group": "eng", "overlay": {"telemetry": "off"}}],
    )
    overlay = GroupOverlay.objects.get(group=group)
    client = _admin(in_alpha)

    page = client.get(f"/t/alpha/admin/overlays/groupoverlay/{overlay.pk}/change/")
    connection.set_tenant(in_alpha)
    html = page.content.decode()

    assert page.status_code == 200
    assert (
        "<code>/telemetry</code></td><td><code>&quot;off&quot;</code></td><td>group:eng</td>"
        in html
    )
    assert (
        "<code>/ui/theme</code></td><td><code>&quot;dark&quot;</code></td><td>tenant</td>" in html
    )


def test_tenant_overlay_form_rejects_private_key(in_alpha, product):
    client = _admin(in_alpha)

    page = client.post(
        "/t/alpha/admin/overlays/tenantoverlay/add/",
        {"product_code": product.code, "patch": json.dumps({"support_url": PRIVATE_KEY})},
    )
    connection.set_tenant(in_alpha)

    assert page.status_code == 200
    assert "looks like a private key block" in page.content.decode()
    assert not TenantOverlay.objects.exists()


def test_publish_action_then_rollback_action(in_alpha, product):
    overlay_draft_save(
        product_code=product.code, acting_user=None, tenant_patch={"ui": {"theme": "dark"}}
    )
    client = _admin(in_alpha)
    overlay = TenantOverlay.objects.get()

    client.post(
        "/t/alpha/admin/overlays/tenantoverlay/",
        {"action": "publish", "_selected_action": [overlay.pk]},
    )
    connection.set_tenant(in_alpha)
    release_publish(product_code=product.code, base_release=1, acting_user=None, tenant_patch={})
    first = Release.objects.get(number=1)
    client.post(
        "/t/alpha/admin/overlays/release/",
        {"action": "roll_back_to", "_selected_action": [first.pk]},
    )
    connection.set_tenant(in_alpha)

    current = head_current(product.code)
    assert current.number == 3
    assert current.sha256 == first.sha256
    assert current.created_by.username == "alpha-admin"


def test_platform_admin_rejects_open_schema(db, product):
    from overlays.catalog.models import OverlaySchema

    user = get_user_model().objects.create_superuser(
        "platform-op", "op@example.com", "x-long-password-1"
    )
    client = Client()
    client.force_login(user)

    page = client.post(
        "/admin/overlay_catalog/overlayschema/add/",
        {
            "product": product.pk,
            "version": 2,
            "schema": '{"type": "object", "properties": {}}',
            "notes": "",
        },
    )

    assert page.status_code == 200
    assert "allow unknown keys" in page.content.decode()
    assert not OverlaySchema.objects.filter(version=2).exists()


def test_effective_page_for_device_shows_layers(in_alpha, product):
    from tests.overlays.conftest import make_device

    group = DeviceGroup.objects.create(name="eng")
    device = make_device(group)
    release_publish(
        product_code=product.code,
        base_release=None,
        acting_user=None,
        tenant_patch={"ui": {"theme": "dark"}},
        group_entries=[{"group": "eng", "overlay": {"ui": {"locale": "de"}}}],
    )
    client = _admin(in_alpha)

    page = client.get(
        "/t/alpha/admin/overlays/tenantoverlay/effective/",
        {"product": product.code, "device": device.pk, "release": 1},
    )
    connection.set_tenant(in_alpha)
    html = page.content.decode()

    assert page.status_code == 200
    assert "group:eng, release 1" in html
    assert (
        "<code>/ui/locale</code></td><td><code>&quot;de&quot;</code></td><td>group:eng</td>" in html
    )
    assert (
        "<code>/ui/theme</code></td><td><code>&quot;dark&quot;</code></td><td>tenant</td>" in html
    )


def test_effective_page_unknown_device_reports_error(in_alpha, product):
    release_publish(product_code=product.code, base_release=None, acting_user=None, tenant_patch={})
    client = _admin(in_alpha)

    page = client.get(
        "/t/alpha/admin/overlays/tenantoverlay/effective/",
        {"product": product.code, "device": 999999},
    )
    connection.set_tenant(in_alpha)

    assert page.status_code == 200
    assert "No device has the id 999999." in page.content.decode()


def test_tenant_overlay_page_links_effective_view(in_alpha, product):
    overlay_draft_save(
        product_code=product.code, acting_user=None, tenant_patch={"ui": {"theme": "dark"}}
    )
    overlay = TenantOverlay.objects.get()
    client = _admin(in_alpha)

    page = client.get(f"/t/alpha/admin/overlays/tenantoverlay/{overlay.pk}/change/")
    connection.set_tenant(in_alpha)

    assert (
        f"/t/alpha/admin/overlays/tenantoverlay/effective/?product={product.code}"
        in page.content.decode()
    )


def test_tenant_overlay_form_rejects_product_without_schema(in_alpha, product):
    client = _admin(in_alpha)

    page = client.post(
        "/t/alpha/admin/overlays/tenantoverlay/add/",
        {"product_code": "no-such-product", "patch": "{}"},
    )
    connection.set_tenant(in_alpha)

    assert "has no overlay schema" in page.content.decode()
    assert not TenantOverlay.objects.exists()
