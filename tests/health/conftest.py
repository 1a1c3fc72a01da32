"""Health fixtures: a constructed fleet (grant, devices, seats, check-ins) in tenant alpha."""

import datetime as dt
import uuid
from typing import Any

import pytest
from django.conf import settings
from django.utils import timezone

from health.checkins import CheckInReport, checkin_record, health_settings_get
from health.models import HealthSettings
from licensing.models import Device, IssuedToken, LicenseGrant, Seat
from tests.licensing.conftest import grant_make, product_ensure


def report(**overrides: Any) -> CheckInReport:
    """A check-in of a healthy device on manifest 1, no overlay release, client 2.0.0."""
    fields: dict[str, Any] = {
        "product_code": "atlas",
        "token_jti": "",
        "manifest_version": 1,
        "overlay_release": None,
        "decision": "valid",
        "reason": "",
        "client_version": "2.0.0",
        "validation_ms": 3.5,
        "startup_ms": 420.0,
        "apply_results": (),
    }
    fields.update(overrides)
    return CheckInReport(**fields)


class Fleet:
    """Builds devices with seats of one grant and records their check-ins."""

    def __init__(self, grant: LicenseGrant) -> None:
        self.grant = grant

    def device(self, *, seat: bool = True, name: str = "laptop") -> Device:
        thumbprint = uuid.uuid4().hex + uuid.uuid4().hex[:32]
        device = Device.objects.create(
            public_jwk={"kty": "OKP", "crv": "Ed25519", "x": thumbprint[:43]},
            thumbprint=thumbprint,
            name=name,
        )
        if seat:
            Seat.objects.create(grant=self.grant, device=device)
        return device

    def token(self, device: Device) -> str:
        jti = uuid.uuid4().hex
        now = timezone.now()
        IssuedToken.objects.create(
            jti=jti,
            grant=self.grant,
            device=device,
            kid="test",
            issued_at=now,
            expires_at=now + dt.timedelta(hours=24),
        )
        return jti

    def checkin(self, device: Device, *, at: dt.datetime | None = None, **overrides: Any) -> None:
        checkin_record(device=device, report=report(**overrides), now=at or timezone.now())

    def seat(self, device: Device) -> Seat:
        return Seat.objects.get(grant=self.grant, device=device)


def settings_set(**fields: Any) -> HealthSettings:
    row = health_settings_get()
    for name, value in fields.items():
        setattr(row, name, value)
    row.save()
    return row


@pytest.fixture
def fleet(in_alpha: Any) -> Fleet:
    product_ensure("atlas")
    grant, _ = grant_make(seat_count=10)
    return Fleet(grant)


@pytest.fixture(autouse=True)
def redis_counters_reset() -> None:
    """Start every test with empty rate-limit and metrics counters of this test run."""
    from licensing.redis_store import redis_client

    prefix = settings.CACHES["default"]["KEY_PREFIX"]
    client = redis_client()
    for pattern in (f"{prefix}:*:rl:*", f"{prefix}:metrics:*"):
        keys = list(client.scan_iter(match=pattern, count=500))
        if keys:
            client.delete(*keys)
