"""Alerts: immediate critical e-mails and webhooks, rate limiting, the warning digest."""

import datetime as dt
import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, HTTPServer
from typing import Any

import jwt
import pytest
from django.core import mail
from django.utils import timezone

from health.alerts import findings_alert_critical, findings_digest
from health.models import Finding
from health.reconcile import findings_reconcile
from licensing.models import LicenseGrant, Seat
from licensing.signing import tenant_public_keys
from tests.health.conftest import Fleet, settings_set


def _over_seats(fleet: Fleet) -> None:
    """Make grant_over_seats (critical) true: three seats held, two allowed."""
    for _ in range(3):
        fleet.checkin(fleet.device())
    LicenseGrant.objects.filter(pk=fleet.grant.pk).update(seat_count=2)


def test_alert_critical_emails_tenant_admins(fleet: Fleet) -> None:
    _over_seats(fleet)
    findings_reconcile()

    result = findings_alert_critical()

    assert result.findings == 1
    [message] = mail.outbox
    assert message.to == ["admin@alpha.example"]
    assert "grant_over_seats" in message.body
    assert "Release the seats" in message.body


def test_alert_critical_ignores_warnings(fleet: Fleet) -> None:
    settings_set(minimum_client_version="9.0.0")
    fleet.checkin(fleet.device())
    findings_reconcile()

    result = findings_alert_critical()

    assert result.findings == 0
    assert mail.outbox == []


def test_alert_repeat_rate_limited(fleet: Fleet) -> None:
    settings_set(alert_repeat_hours=24)
    _over_seats(fleet)
    findings_reconcile()
    now = timezone.now()

    first = findings_alert_critical(now=now)
    again = findings_alert_critical(now=now + dt.timedelta(hours=1))
    next_day = findings_alert_critical(now=now + dt.timedelta(hours=25))

    assert first.findings == 1
    assert again.findings == 0
    assert next_day.findings == 1
    assert len(mail.outbox) == 2


def test_alert_flapping_drift_rate_limited(fleet: Fleet) -> None:
    _over_seats(fleet)
    findings_reconcile()
    findings_alert_critical()
    # The drift goes away and comes back: a new finding row with the same code and subject.
    LicenseGrant.objects.filter(pk=fleet.grant.pk).update(seat_count=5)
    findings_reconcile()
    LicenseGrant.objects.filter(pk=fleet.grant.pk).update(seat_count=2)
    findings_reconcile()
    assert Finding.objects.filter(code="grant_over_seats").count() == 2

    result = findings_alert_critical()

    assert result.findings == 0
    assert len(mail.outbox) == 1


def test_alert_acknowledged_finding_not_repeated(fleet: Fleet) -> None:
    from health.services import finding_acknowledge

    _over_seats(fleet)
    findings_reconcile()
    [finding] = Finding.objects.all()
    finding_acknowledge(finding_id=finding.pk, acting_user=None)

    result = findings_alert_critical()

    assert result.findings == 0


class _Receiver(BaseHTTPRequestHandler):
    received: list[dict[str, Any]] = []

    def do_POST(self) -> None:
        length = int(self.headers["Content-Length"])
        self.received.append(
            {"body": json.loads(self.rfile.read(length)), "type": self.headers["Content-Type"]}
        )
        self.send_response(204)
        self.end_headers()

    def log_message(self, *args: Any) -> None:
        return


@pytest.fixture
def webhook_url() -> Iterator[str]:
    """A tiny HTTP server on 127.0.0.1 that records the alerts posted to it."""
    _Receiver.received = []
    server = HTTPServer(("127.0.0.1", 0), _Receiver)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}/hooks/keyplane"
    finally:
        server.shutdown()
        server.server_close()


def test_alert_webhook_signed_with_tenant_key(
    fleet: Fleet, webhook_url: str, settings: Any
) -> None:
    settings.KEYPLANE_ALERT_WEBHOOK_ALLOW_PRIVATE = True
    settings_set(alert_webhook_url=webhook_url)
    _over_seats(fleet)
    findings_reconcile()

    result = findings_alert_critical()

    assert result.webhook_status == 204
    [call] = _Receiver.received
    assert call["type"] == "application/json"
    token = call["body"]["alert"]
    header = jwt.get_unverified_header(token)
    assert header["typ"] == "kp-alert+jwt"
    claims = jwt.decode(token, tenant_public_keys()[header["kid"]], algorithms=["EdDSA"])
    assert claims["tid"] == "alpha"
    assert [f["code"] for f in claims["findings"]] == ["grant_over_seats"]


def test_alert_webhook_private_address_blocked(fleet: Fleet, webhook_url: str) -> None:
    settings_set(alert_webhook_url=webhook_url)
    _over_seats(fleet)
    findings_reconcile()

    result = findings_alert_critical()

    assert result.webhook_status is None
    assert _Receiver.received == []
    assert len(mail.outbox) == 1


def test_alert_webhook_down_still_emails(fleet: Fleet, settings: Any) -> None:
    from tests.conftest import free_port

    settings.KEYPLANE_ALERT_WEBHOOK_ALLOW_PRIVATE = True
    settings_set(alert_webhook_url=f"http://127.0.0.1:{free_port()}/gone")
    _over_seats(fleet)
    findings_reconcile()

    result = findings_alert_critical()

    assert result.webhook_status is None
    assert len(mail.outbox) == 1


def test_digest_lists_warnings_once(fleet: Fleet) -> None:
    settings_set(minimum_client_version="9.0.0")
    fleet.checkin(fleet.device())
    fleet.checkin(fleet.device())
    findings_reconcile()

    listed = findings_digest()
    listed_again = findings_digest()

    assert listed == 2
    assert listed_again == 0
    [message] = mail.outbox
    assert "client_version_below_minimum" in message.subject + message.body
    assert "daily license health digest" in message.subject


def test_digest_includes_resolved_silent_device(fleet: Fleet) -> None:
    settings_set(release_seat_when_silent=True)
    device = fleet.device()
    long_ago = timezone.now() - dt.timedelta(days=10)
    fleet.checkin(device, at=long_ago)
    Seat.objects.filter(device=device).update(activated_at=long_ago)
    findings_reconcile()
    findings_reconcile()
    assert Finding.objects.get(code="device_silent").state == "resolved"

    listed = findings_digest()

    assert listed == 1
    assert "(resolved)" in mail.outbox[0].body
