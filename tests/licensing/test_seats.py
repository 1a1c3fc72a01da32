"""Seat rules beyond the client API basics: device limits, tenant isolation, decision log."""

from typing import Any

from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.db import connection

from licensing.models import Device, Seat, SigningKey
from portal.catalog.models import KeyState
from tests.conftest import chained_decisions
from tests.licensing.conftest import ClientApi, DeviceKey, grant_make


def _activate(api: ClientApi, key: DeviceKey, license_key: str) -> Any:
    return api.post("activate", {"license_key": license_key, "product": "atlas"}, key=key)


def test_device_limit_per_user(alpha_api: ClientApi) -> None:
    from licensing.jws import jwk_thumbprint

    _, license_key = grant_make(devices_per_user=1)
    user = get_user_model().objects.get(username="alpha-admin")
    first, second = DeviceKey(), DeviceKey()
    assert _activate(alpha_api, first, license_key).status_code == 201
    Device.objects.update(user=user)
    # An IT admin registered the second device for the same user before it activates.
    Device.objects.create(
        public_jwk=second.jwk, thumbprint=jwk_thumbprint(second.jwk), name="second", user=user
    )
    response = _activate(alpha_api, second, license_key)
    assert response.status_code == 409
    assert response.json()["code"] == "device_limit_reached"
    assert Seat.objects.count() == 1


def test_license_key_unknown_in_other_tenant(alpha_api: ClientApi, tenant_beta: Any) -> None:
    _, license_key = grant_make()
    beta_api = ClientApi(tenant_beta)
    response = _activate(beta_api, DeviceKey(), license_key)
    connection.set_tenant(alpha_api.tenant)
    assert response.status_code == 403
    assert response.json()["code"] == "license_invalid"


def test_decision_log_records_grant_and_refusal(alpha_api: ClientApi) -> None:
    _, license_key = grant_make(seat_count=1)
    _activate(alpha_api, DeviceKey(), license_key)
    _activate(alpha_api, DeviceKey(), license_key)
    entries = list(
        chained_decisions()
        .filter(event="license.activate")
        .order_by("seq")
        .values_list("outcome", "reason")
    )
    assert entries[-2:] == [("granted", "new_seat"), ("refused", "seat_limit_reached")]


def test_rotate_tenant_key_command(in_alpha: Any) -> None:
    from licensing.signing import tenant_key_active

    old = tenant_key_active()
    call_command("rotate_tenant_key", "--tenant", "alpha", "--reason", "scheduled")
    connection.set_tenant(in_alpha)
    assert SigningKey.objects.get(pk=old.pk).state == KeyState.RETIRING
    assert SigningKey.objects.get(state=KeyState.ACTIVE).pk != old.pk


def test_release_seat_command(alpha_api: ClientApi) -> None:
    _, license_key = grant_make()
    _activate(alpha_api, DeviceKey(), license_key)
    seat = Seat.objects.get()
    call_command("release_seat", "--tenant", "alpha", "--seat", str(seat.pk), "--reason", "lost")
    connection.set_tenant(alpha_api.tenant)
    seat.refresh_from_db()
    assert seat.status == "released"
    entry = chained_decisions().filter(event="seat.force_released").order_by("seq").last()
    assert entry.data["note"] == "lost"


def test_sweep_purges_old_idempotency_records(in_alpha: Any) -> None:
    from datetime import timedelta

    from django.utils import timezone

    from licensing.maintenance import licensing_sweep
    from licensing.models import IdempotencyRecord

    old = IdempotencyRecord.objects.create(key="old", thumbprint="t", status_code=201, body={})
    IdempotencyRecord.objects.filter(pk=old.pk).update(
        created_at=timezone.now() - timedelta(days=2)
    )
    IdempotencyRecord.objects.create(key="new", thumbprint="t", status_code=201, body={})
    assert licensing_sweep()["idempotency_purged"] == 1
    assert list(IdempotencyRecord.objects.values_list("key", flat=True)) == ["new"]


def test_sweep_retires_key_after_window(in_alpha: Any) -> None:
    from datetime import timedelta

    from django.utils import timezone

    from licensing.maintenance import licensing_sweep
    from licensing.signing import tenant_key_active, tenant_key_rotate

    old = tenant_key_active()
    tenant_key_rotate(reason="scheduled")
    assert licensing_sweep()["keys_retired"] == 0
    SigningKey.objects.filter(pk=old.pk).update(verify_until=timezone.now() - timedelta(seconds=1))
    assert licensing_sweep()["keys_retired"] == 1
    assert SigningKey.objects.get(pk=old.pk).state == KeyState.RETIRED
