"""Device enrollment tokens: creation, redemption, activation into a device group."""

import datetime as dt
import io
import threading
import uuid
from typing import Any

import pytest
from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.db import close_old_connections, connection
from django.utils import timezone
from django_tenants.utils import schema_context

from identity.activation import enrollment_activate
from identity.enrollment import (
    enrollment_redeem,
    enrollment_token_create,
    enrollment_token_hash,
    enrollment_token_revoke,
)
from identity.models import EnrollmentToken
from licensing.jws import b64url_decode, jwk_thumbprint
from licensing.models import Device, DeviceGroup, Seat
from portal.problems import KeyplaneError
from tests.conftest import chained_decisions
from tests.licensing.conftest import DeviceKey, grant_make, product_ensure


@pytest.fixture
def enroll(in_alpha: Any) -> Any:
    """Alpha's schema with the catalog product present."""
    product_ensure()
    connection.set_tenant(in_alpha)
    return in_alpha


def _group(name: str | None = None) -> DeviceGroup:
    return DeviceGroup.objects.create(name=name or f"group-{uuid.uuid4().hex[:6]}")


def _token(grant: Any, group: DeviceGroup, uses: int = 2, days: int = 30) -> tuple[Any, str]:
    return enrollment_token_create(
        grant_id=grant.pk,
        group_name=group.name,
        max_uses=uses,
        expires_in_days=days,
        label="test fleet",
        acting_user=None,
    )


def _activate(token: str, key: DeviceKey | None = None, user: Any = None) -> Any:
    key = key or DeviceKey()
    return enrollment_activate(
        token=token,
        product_code="atlas",
        public_jwk=key.jwk,
        thumbprint=jwk_thumbprint(key.jwk),
        device_name="kiosk",
        platform="windows",
        user=user,
    )


def _code_of(action: Any) -> tuple[str, int]:
    with pytest.raises(KeyplaneError) as caught:
        action()
    return caught.value.code, caught.value.status


def test_token_create_stores_hash_only(enroll: Any) -> None:
    grant, _ = grant_make(seat_count=5)
    row, token = _token(grant, _group())
    assert token.startswith("kpe_")
    assert row.token_hash == enrollment_token_hash(token)
    assert token not in row.token_hash
    assert row.token_hint == token[-6:]
    assert row.product_code == "atlas"
    history = row.history.first()
    assert history is not None
    assert not hasattr(history, "token_hash")


def test_token_create_uses_above_seats_rejected(enroll: Any) -> None:
    grant, _ = grant_make(seat_count=2)
    assert _code_of(lambda: _token(grant, _group(), uses=3)) == ("enrollment_token_invalid", 400)


def test_token_create_unknown_group_rejected(enroll: Any) -> None:
    grant, _ = grant_make()
    code = _code_of(
        lambda: enrollment_token_create(
            grant_id=grant.pk,
            group_name="no-such-group",
            max_uses=1,
            expires_in_days=1,
            label="",
            acting_user=None,
        )
    )
    assert code == ("enrollment_token_invalid", 400)


def test_redeem_counts_use_and_returns_group(enroll: Any) -> None:
    grant, _ = grant_make()
    group = _group()
    row, token = _token(grant, group, uses=2)
    granted = enrollment_redeem(token=token, product_code="atlas")
    assert granted.grant.pk == grant.pk
    assert granted.group.pk == group.pk
    assert granted.uses == 1
    row.refresh_from_db()
    assert row.uses == 1
    assert row.last_used_at is not None


def test_redeem_unknown_token_rejected(enroll: Any) -> None:
    code = _code_of(lambda: enrollment_redeem(token="kpe_unknown", product_code="atlas"))
    assert code == ("enrollment_invalid", 403)


def test_redeem_expired_rejected(enroll: Any) -> None:
    grant, _ = grant_make()
    row, token = _token(grant, _group())
    EnrollmentToken.objects.filter(pk=row.pk).update(
        expires_at=timezone.now() - dt.timedelta(seconds=1)
    )
    code = _code_of(lambda: enrollment_redeem(token=token, product_code="atlas"))
    assert code == ("enrollment_expired", 403)


def test_redeem_revoked_rejected(enroll: Any) -> None:
    grant, _ = grant_make()
    row, token = _token(grant, _group())
    enrollment_token_revoke(token_id=row.pk, reason="leaked", acting_user=None)
    code = _code_of(lambda: enrollment_redeem(token=token, product_code="atlas"))
    assert code == ("enrollment_revoked", 403)


def test_redeem_exhausted_rejected(enroll: Any) -> None:
    grant, _ = grant_make()
    row, token = _token(grant, _group(), uses=1)
    enrollment_redeem(token=token, product_code="atlas")
    code = _code_of(lambda: enrollment_redeem(token=token, product_code="atlas"))
    assert code == ("enrollment_exhausted", 409)
    row.refresh_from_db()
    assert row.uses == 1


def test_redeem_other_product_rejected(enroll: Any) -> None:
    grant, _ = grant_make()
    _, token = _token(grant, _group())
    code = _code_of(lambda: enrollment_redeem(token=token, product_code="other"))
    assert code == ("product_not_licensed", 403)


def test_redeem_recorded_in_decision_log(enroll: Any) -> None:
    grant, _ = grant_make()
    row, token = _token(grant, _group(), uses=1)
    enrollment_redeem(token=token, product_code="atlas")
    _code_of(lambda: enrollment_redeem(token=token, product_code="atlas"))
    entries = list(chained_decisions().filter(event="enrollment.redeem").order_by("seq"))
    assert [(e.outcome, e.reason) for e in entries[-2:]] == [
        ("granted", ""),
        ("refused", "enrollment_exhausted"),
    ]
    assert entries[-2].data["enrollment"] == row.pk
    assert token not in str(entries[-2].data)


def test_activate_joins_token_group(enroll: Any) -> None:
    grant, _ = grant_make()
    group = _group("kiosks")
    row, token = _token(grant, group)
    answer = _activate(token)
    assert answer.status == 201
    device = Device.objects.get(pk=answer.body["device_id"])
    assert device.group_id == group.pk
    assert Seat.objects.filter(grant=grant, device=device, status="active").exists()
    row.refresh_from_db()
    assert row.uses == 1


def test_activate_existing_seat_keeps_use(enroll: Any) -> None:
    grant, _ = grant_make()
    row, token = _token(grant, _group())
    key = DeviceKey()
    first = _activate(token, key)
    second = _activate(token, key)
    assert second.status == 200
    assert second.body["device_id"] == first.body["device_id"]
    row.refresh_from_db()
    assert row.uses == 1


def test_activate_moves_device_to_token_group(enroll: Any) -> None:
    grant, _ = grant_make()
    old_group, new_group = _group(), _group()
    _, first_token = _token(grant, old_group)
    _, second_token = _token(grant, new_group)
    key = DeviceKey()
    answer = _activate(first_token, key)
    _activate(second_token, key)
    assert Device.objects.get(pk=answer.body["device_id"]).group_id == new_group.pk


def test_activate_seat_limit_keeps_token_unused(enroll: Any) -> None:
    grant, _ = grant_make(seat_count=2)
    _, first_token = _token(grant, _group(), uses=2)
    second_row, second_token = _token(grant, _group(), uses=2)
    _activate(first_token)
    _activate(first_token)
    assert _code_of(lambda: _activate(second_token)) == ("seat_limit_reached", 409)
    second_row.refresh_from_db()
    assert second_row.uses == 0
    assert Seat.objects.filter(grant=grant, status="active").count() == 2
    refusal = chained_decisions().filter(event="enrollment.redeem").order_by("-seq").first()
    assert refusal is not None
    assert refusal.reason == "seat_limit_reached"


def test_activate_bound_user_in_token(enroll: Any) -> None:
    import json

    grant, _ = grant_make()
    _, token = _token(grant, _group())
    user = get_user_model().objects.create_user(username=f"u-{uuid.uuid4().hex[:6]}")
    answer = _activate(token, user=user)
    claims = json.loads(b64url_decode(answer.body["token"].split(".")[1]))
    assert claims["usr"] == str(user.pk)
    assert Device.objects.get(pk=answer.body["device_id"]).user_id == user.pk


def test_activate_per_user_device_limit(enroll: Any) -> None:
    grant, _ = grant_make(devices_per_user=1)
    _, token = _token(grant, _group(), uses=3)
    user = get_user_model().objects.create_user(username=f"u-{uuid.uuid4().hex[:6]}")
    _activate(token, user=user)
    assert _code_of(lambda: _activate(token, user=user)) == ("device_limit_reached", 409)


def test_activate_revoked_grant_rejected(enroll: Any) -> None:
    from licensing.services import grant_revoke

    grant, _ = grant_make()
    row, token = _token(grant, _group())
    grant_revoke(grant_id=grant.pk, reason="contract ended", acting_user=None)
    assert _code_of(lambda: _activate(token)) == ("license_revoked", 403)
    row.refresh_from_db()
    assert row.uses == 0


def test_command_prints_usable_token(enroll: Any) -> None:
    grant, _ = grant_make()
    group = _group()
    stdout, stderr = io.StringIO(), io.StringIO()
    call_command(
        "create_enrollment_token",
        tenant="alpha",
        grant=grant.pk,
        group=group.name,
        uses=3,
        expires_in=7,
        stdout=stdout,
        stderr=stderr,
    )
    connection.set_tenant(enroll)
    token = stdout.getvalue().strip()
    assert token.startswith("kpe_")
    assert "not shown again" in stderr.getvalue()
    row = EnrollmentToken.objects.get(token_hash=enrollment_token_hash(token))
    assert row.max_uses == 3
    assert row.group_id == group.pk
    assert row.expires_at > timezone.now() + dt.timedelta(days=6)


@pytest.mark.live
def test_redeem_concurrent_never_exceeds_uses(committed_db: None) -> None:
    from portal.tenants.models import Tenant

    product_ensure()
    tenant = Tenant.objects.get(slug="alpha")
    with schema_context(tenant.schema_name):
        grant, _ = grant_make(seat_count=10)
        row, token = _token(grant, _group(), uses=3)

    outcomes: list[str] = []
    lock = threading.Lock()
    start = threading.Barrier(8)

    def redeem() -> None:
        try:
            connection.set_tenant(tenant)
            start.wait()
            try:
                enrollment_redeem(token=token, product_code="atlas")
                result = "granted"
            except KeyplaneError as error:
                result = error.code
            with lock:
                outcomes.append(result)
        finally:
            close_old_connections()
            connection.close()

    threads = [threading.Thread(target=redeem) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)

    assert sorted(outcomes) == ["enrollment_exhausted"] * 5 + ["granted"] * 3
    with schema_context(tenant.schema_name):
        row.refresh_from_db()
        assert row.uses == 3


def test_revoke_command_blocks_token(enroll: Any) -> None:
    grant, _ = grant_make()
    row, token = _token(grant, _group())
    stdout = io.StringIO()
    call_command(
        "revoke_enrollment_token", tenant="alpha", id=row.pk, reason="laptop lost", stdout=stdout
    )
    connection.set_tenant(enroll)
    assert f"Enrollment token {row.pk} revoked" in stdout.getvalue()
    row.refresh_from_db()
    assert row.revoked_reason == "laptop lost"
    assert _code_of(lambda: enrollment_redeem(token=token, product_code="atlas")) == (
        "enrollment_revoked",
        403,
    )


def test_revoke_command_unknown_id_fails(enroll: Any) -> None:
    from django.core.management.base import CommandError

    with pytest.raises(CommandError, match="No enrollment token has the id 999999"):
        call_command("revoke_enrollment_token", tenant="alpha", id=999999, reason="x")


@pytest.mark.live
def test_activate_concurrent_never_exceeds_seats(committed_db: None) -> None:
    from portal.tenants.models import Tenant

    product_ensure()
    tenant = Tenant.objects.get(slug="alpha")
    with schema_context(tenant.schema_name):
        grant, _ = grant_make(seat_count=3)
        first, first_token = _token(grant, _group(), uses=3)
        second, second_token = _token(grant, _group(), uses=3)

    outcomes: list[str] = []
    lock = threading.Lock()
    start = threading.Barrier(6)

    def activate(token: str) -> None:
        try:
            connection.set_tenant(tenant)
            key = DeviceKey()
            start.wait()
            try:
                result = str(_activate(token, key).status)
            except KeyplaneError as error:
                result = error.code
            with lock:
                outcomes.append(result)
        finally:
            connection.close()

    threads = [
        threading.Thread(target=activate, args=(token,))
        for token in [first_token] * 3 + [second_token] * 3
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)

    assert sorted(outcomes) == ["201"] * 3 + ["seat_limit_reached"] * 3
    with schema_context(tenant.schema_name):
        first.refresh_from_db()
        second.refresh_from_db()
        assert first.uses + second.uses == 3
        assert Seat.objects.filter(grant=grant, status="active").count() == 3
