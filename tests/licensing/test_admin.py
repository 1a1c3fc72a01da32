"""The licensing pages of the tenant admin."""

import re
from typing import Any

from django.db import connection
from django.test import Client

from licensing.licensekeys import license_key_hash
from licensing.models import LicenseGrant, Seat
from tests.licensing.conftest import ClientApi, DeviceKey, grant_make, policy_make


def _admin(tenant: Any) -> Client:
    client = Client()
    client.post(
        f"/t/{tenant.slug}/admin/login/",
        {"username": f"{tenant.slug}-admin", "password": "correct-horse-battery"},
    )
    connection.set_tenant(tenant)
    return client


def test_grant_add_shows_license_key_once(in_alpha: Any, product: Any) -> None:
    policy = policy_make()
    client = _admin(in_alpha)
    response = client.post(
        "/t/alpha/admin/licensing/licensegrant/add/",
        {
            "policy": policy.pk,
            "seat_count": 2,
            "term_start_0": "2026-01-01",
            "term_start_1": "00:00:00",
            "term_end_0": "2027-01-01",
            "term_end_1": "00:00:00",
        },
        follow=True,
    )
    connection.set_tenant(in_alpha)
    match = re.search(r"KP-[A-Z2-7-]{39}", response.content.decode())
    assert match is not None, response.content.decode()[:2000]
    grant = LicenseGrant.objects.get(policy=policy)
    assert grant.key_hash == license_key_hash(match.group(0))
    page = client.get(f"/t/alpha/admin/licensing/licensegrant/{grant.pk}/change/")
    connection.set_tenant(in_alpha)
    assert match.group(0) not in page.content.decode()


def test_seat_release_requires_reason(alpha_api: ClientApi) -> None:
    _, license_key = grant_make()
    alpha_api.post("activate", {"license_key": license_key, "product": "atlas"}, key=DeviceKey())
    seat = Seat.objects.get()
    client = _admin(alpha_api.tenant)
    url = f"/t/alpha/admin/licensing/seat/{seat.pk}/release/"
    empty = client.post(url, {"reason": "  "})
    connection.set_tenant(alpha_api.tenant)
    assert "reason is required" in empty.content.decode()
    assert Seat.objects.get().status == "active"
    client.post(url, {"reason": "laptop stolen"})
    connection.set_tenant(alpha_api.tenant)
    seat.refresh_from_db()
    assert seat.status == "released"
    assert "laptop stolen" in seat.released_reason


def test_manifest_diff_shows_revocation(alpha_api: ClientApi) -> None:
    from licensing.services import grant_revoke

    grant, _ = grant_make()
    grant_revoke(grant_id=grant.pk, reason="ended", acting_user=None)
    client = _admin(alpha_api.tenant)
    response = client.get(
        "/t/alpha/admin/licensing/manifest/diff/", {"product": "atlas", "from": 1, "to": 2}
    )
    connection.set_tenant(alpha_api.tenant)
    assert response.status_code == 200
    diff = response.content.decode().split('class="manifest-diff">', 1)[1].split("</pre>", 1)[0]
    assert "+" in diff
    assert f"&quot;{grant.pk}&quot;" in diff


def test_signing_key_rotate_action(in_alpha: Any) -> None:
    from licensing.models import SigningKey
    from licensing.signing import tenant_key_active
    from portal.catalog.models import KeyState

    old = tenant_key_active()
    client = _admin(in_alpha)
    client.post(
        "/t/alpha/admin/licensing/signingkey/",
        {"action": "rotate_key", "_selected_action": [old.pk]},
    )
    connection.set_tenant(in_alpha)
    assert SigningKey.objects.get(pk=old.pk).state == KeyState.RETIRING
    assert SigningKey.objects.filter(state=KeyState.ACTIVE).exclude(pk=old.pk).exists()
