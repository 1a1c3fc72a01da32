"""Activation with an enrollment token through the client API."""

import uuid
from typing import Any

from identity.enrollment import enrollment_token_create
from identity.models import EnrollmentToken
from licensing.jws import jwk_thumbprint
from licensing.models import Device, DeviceGroup
from tests.licensing.conftest import ClientApi, DeviceKey, grant_make


def _enrollment_token(group_name: str, uses: int = 2) -> tuple[Any, str]:
    grant, _ = grant_make(seat_count=3)
    return enrollment_token_create(
        grant_id=grant.pk,
        group_name=group_name,
        max_uses=uses,
        expires_in_days=7,
        label="installer",
        acting_user=None,
    )


def test_activate_with_enrollment_token_joins_group(alpha_api: ClientApi) -> None:
    group = DeviceGroup.objects.create(name=f"kiosks-{uuid.uuid4().hex[:6]}")
    row, token = _enrollment_token(group.name)
    key = DeviceKey()

    response = alpha_api.post("activate", {"enrollment_token": token, "product": "atlas"}, key=key)

    assert response.status_code == 201, response.content
    device = Device.objects.get(thumbprint=jwk_thumbprint(key.jwk))
    assert device.group_id == group.pk
    assert EnrollmentToken.objects.get(pk=row.pk).uses == 1


def test_activate_with_unknown_enrollment_token_rejected(alpha_api: ClientApi) -> None:
    response = alpha_api.post(
        "activate",
        {"enrollment_token": "kpe_" + uuid.uuid4().hex, "product": "atlas"},
        key=DeviceKey(),
    )

    assert response.status_code == 403
    assert response.json()["code"] == "enrollment_invalid"


def test_activate_with_key_and_token_rejected(alpha_api: ClientApi) -> None:
    response = alpha_api.post(
        "activate",
        {"license_key": "KP-XXXX", "enrollment_token": "kpe_x", "product": "atlas"},
        key=DeviceKey(),
    )

    assert response.status_code == 400
    assert "exactly one of `license_key` and `enrollment_token`" in response.json()["detail"]


def test_activate_without_key_or_token_rejected(alpha_api: ClientApi) -> None:
    response = alpha_api.post("activate", {"product": "atlas"}, key=DeviceKey())

    assert response.status_code == 400
    assert response.json()["code"] == "request_invalid"
