"""`POST checkin` through the real URL conf, device proofs and problem details."""

import json
from typing import Any

import pytest

from health.models import CheckIn, DeviceState
from licensing.models import Device
from licensing.services import device_revoke
from tests.health.conftest import Fleet
from tests.licensing.conftest import ClientApi, DeviceKey


def _body(**overrides: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "product": "atlas",
        "token_jti": "jti-1",
        "manifest_version": 3,
        "overlay_release": None,
        "decision": {"state": "valid", "reason": "token_valid"},
        "client_version": "2.1.0",
        "timings_ms": {"license_validation": 2.5, "startup": 812.0, "refresh": 40.1},
        "overlay_apply": [],
    }
    body.update(overrides)
    return body


def _problem(response: Any) -> str:
    assert response["Content-Type"] == "application/problem+json"
    return str(response.json()["code"])


@pytest.fixture
def enrolled(fleet: Fleet, in_alpha: Any) -> tuple[ClientApi, DeviceKey, Device]:
    """A device whose key is registered in tenant alpha, holding a seat."""
    from licensing.jws import jwk_thumbprint

    key = DeviceKey()
    device = fleet.device()
    Device.objects.filter(pk=device.pk).update(
        public_jwk=key.jwk, thumbprint=jwk_thumbprint(key.jwk)
    )
    return ClientApi(in_alpha), key, Device.objects.get(pk=device.pk)


def test_checkin_stores_latest_state(enrolled: tuple[ClientApi, DeviceKey, Device]) -> None:
    api, key, device = enrolled

    response = api.post("checkin", _body(), key=key)

    assert response.status_code == 202
    state = DeviceState.objects.get(device=device)
    assert state.manifest_version == 3
    assert state.decision == "valid"
    assert state.reason == "token_valid"
    assert state.validation_ms == 2.5
    assert state.startup_ms == 812.0
    assert CheckIn.objects.filter(device_id=device.pk).count() == 1


def test_checkin_repeat_upserts_one_row(enrolled: tuple[ClientApi, DeviceKey, Device]) -> None:
    api, key, device = enrolled

    api.post("checkin", _body(), key=key)
    response = api.post("checkin", _body(manifest_version=4, client_version="2.2.0"), key=key)

    assert response.status_code == 202
    [state] = DeviceState.objects.filter(device=device)
    assert state.manifest_version == 4
    assert state.client_version == "2.2.0"
    assert CheckIn.objects.filter(device_id=device.pk).count() == 2


def test_checkin_unknown_field_rejected(enrolled: tuple[ClientApi, DeviceKey, Device]) -> None:
    api, key, device = enrolled

    response = api.post("checkin", _body(user_email="someone@example.com"), key=key)

    assert response.status_code == 400
    assert _problem(response) == "request_invalid"
    assert response.json()["errors"][0]["field"] == "user_email"
    assert not DeviceState.objects.filter(device=device).exists()


def test_checkin_nested_unknown_field_rejected(
    enrolled: tuple[ClientApi, DeviceKey, Device],
) -> None:
    api, key, _ = enrolled

    body = _body(decision={"state": "valid", "reason": "ok", "hostname": "pc-17"})
    response = api.post("checkin", body, key=key)

    assert response.status_code == 400
    assert _problem(response) == "request_invalid"


@pytest.mark.parametrize(
    "overrides",
    [
        {"decision": {"state": "maybe"}},
        {"client_version": "2.0 <script>"},
        {"client_version": "2.0\n.0"},
        {"timings_ms": {"startup\n": 1.0}},
        {"manifest_version": -1},
        {"timings_ms": {f"t{i}": 1.0 for i in range(17)}},
        {"timings_ms": {"Startup Time": 1.0}},
        {"overlay_apply": [{"release": 1, "ok": False, "error": "x"}] * 17},
        {"product": "ATLAS!"},
    ],
)
def test_checkin_invalid_values_rejected(
    enrolled: tuple[ClientApi, DeviceKey, Device], overrides: dict[str, Any]
) -> None:
    api, key, _ = enrolled

    response = api.post("checkin", _body(**overrides), key=key)

    assert response.status_code == 400
    assert _problem(response) == "request_invalid"


def test_checkin_oversized_body_rejected(enrolled: tuple[ClientApi, DeviceKey, Device]) -> None:
    api, key, _ = enrolled
    raw = json.dumps(_body(reason_padding="x" * 20000)).encode()

    response = api.post("checkin", None, key=key, raw=raw)

    assert response.status_code == 413
    assert _problem(response) == "request_too_large"


def test_checkin_without_proof_rejected(enrolled: tuple[ClientApi, DeviceKey, Device]) -> None:
    api, _, _ = enrolled

    response = api.post("checkin", _body())

    assert response.status_code == 401
    assert _problem(response) == "proof_missing"


def test_checkin_unknown_device_rejected(fleet: Fleet, in_alpha: Any) -> None:
    api = ClientApi(in_alpha)

    response = api.post("checkin", _body(), key=DeviceKey())

    assert response.status_code == 404
    assert _problem(response) == "device_unknown"


def test_checkin_revoked_device_still_recorded(
    enrolled: tuple[ClientApi, DeviceKey, Device],
) -> None:
    api, key, device = enrolled
    device_revoke(device_id=device.pk, reason="lost", acting_user=None)

    response = api.post(
        "checkin", _body(decision={"state": "revoked", "reason": "device_revoked"}), key=key
    )

    assert response.status_code == 202
    assert DeviceState.objects.get(device=device).decision == "revoked"


def test_checkin_apply_results_reach_overlays(
    enrolled: tuple[ClientApi, DeviceKey, Device],
) -> None:
    from overlays.models import ApplyReport, Release

    api, key, device = enrolled
    release = Release.objects.create(
        product_code="atlas", number=1, sha256="0" * 64, content={}, schema_version=1
    )
    body = _body(
        overlay_release=1,
        overlay_apply=[
            {"release": 1, "ok": False, "error": "KeyError"},
            {"release": 99, "ok": True, "error": None},
        ],
    )

    response = api.post("checkin", body, key=key)

    assert response.status_code == 202
    report = ApplyReport.objects.get(device=device, release=release)
    assert report.ok is False
    assert report.code == "KeyError"
    state = DeviceState.objects.get(device=device)
    assert state.apply_release == 99
    assert state.apply_ok is True
