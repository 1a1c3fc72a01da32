"""Reconciliation: each finding type from a constructed fleet, and its resolution."""

import datetime as dt
from typing import Any

import pytest
from django.core.exceptions import ValidationError
from django.utils import timezone

from health.models import Finding, HealthSettings
from health.reconcile import findings_reconcile
from licensing.manifests import manifest_publish
from licensing.models import Device, LicenseGrant, Manifest, Seat
from licensing.services import device_revoke, token_revoke
from tests.conftest import chained_decisions
from tests.health.conftest import Fleet, settings_set


def _open(code: str) -> list[Finding]:
    return list(Finding.objects.filter(code=code).exclude(state=Finding.State.RESOLVED))


def _state_of(finding: Finding) -> str:
    finding.refresh_from_db()
    return finding.state


def test_reconcile_healthy_fleet_no_findings(fleet: Fleet) -> None:
    for _ in range(3):
        fleet.checkin(fleet.device())

    result = findings_reconcile()

    assert result.devices == 3
    assert result.opened == 0
    assert Finding.objects.count() == 0


def test_reconcile_empty_tenant_no_findings(in_alpha: Any) -> None:
    result = findings_reconcile()

    assert result.devices == 0
    assert Finding.objects.count() == 0


def test_device_revoked_checking_in_found_and_resolved(fleet: Fleet) -> None:
    device = fleet.device()
    device_revoke(device_id=device.pk, reason="stolen", acting_user=None)
    fleet.checkin(device)

    findings_reconcile()

    [finding] = _open("device_revoked_checking_in")
    assert finding.severity == "critical"
    assert finding.subject == f"device:{device.pk}:atlas"
    assert finding.affected["device"] == device.pk

    # Fixed: the revoked machine stopped checking in for longer than the silent window.
    later = timezone.now() + dt.timedelta(hours=73)
    findings_reconcile(now=later)
    assert _state_of(finding) == "resolved"


def test_token_revoked_in_use_found_and_resolved(fleet: Fleet) -> None:
    device = fleet.device()
    jti = fleet.token(device)
    fleet.checkin(device, token_jti=jti)
    token_revoke(jti=jti, reason="leaked", acting_user=None)
    fleet.checkin(device, token_jti=jti, manifest_version=Manifest.objects.count())

    findings_reconcile()

    [finding] = _open("token_revoked_in_use")
    assert finding.severity == "critical"
    assert finding.subject == f"token:{jti}"

    fleet.checkin(device, token_jti=fleet.token(device))
    findings_reconcile()
    assert _state_of(finding) == "resolved"


def test_grant_over_seats_found_and_resolved(fleet: Fleet) -> None:
    devices = [fleet.device() for _ in range(3)]
    for device in devices:
        fleet.checkin(device)
    LicenseGrant.objects.filter(pk=fleet.grant.pk).update(seat_count=2)

    findings_reconcile()

    [finding] = _open("grant_over_seats")
    assert finding.severity == "critical"
    assert finding.affected == {"grant": fleet.grant.pk, "in_use": 3, "seat_count": 2}

    Seat.objects.filter(device=devices[0]).update(status=Seat.Status.RELEASED)
    findings_reconcile()
    assert _state_of(finding) == "resolved"


def test_grant_over_seats_counts_devices_without_seat(fleet: Fleet) -> None:
    LicenseGrant.objects.filter(pk=fleet.grant.pk).update(seat_count=1)
    holder = fleet.device()
    fleet.checkin(holder)
    # A device whose seat was released keeps running with its token.
    ghost = fleet.device(seat=False)
    fleet.checkin(ghost, token_jti=fleet.token(ghost))

    findings_reconcile()

    [finding] = _open("grant_over_seats")
    assert finding.affected["in_use"] == 2


def test_device_silent_found_and_resolved(fleet: Fleet) -> None:
    device = fleet.device()
    long_ago = timezone.now() - dt.timedelta(hours=100)
    fleet.checkin(device, at=long_ago)
    Device.objects.filter(pk=device.pk).update(last_seen=long_ago)
    Seat.objects.filter(device=device).update(activated_at=long_ago)

    findings_reconcile()

    [finding] = _open("device_silent")
    assert finding.severity == "warning"
    assert finding.affected["seat"] == fleet.seat(device).pk

    fleet.checkin(device)
    findings_reconcile()
    assert _state_of(finding) == "resolved"


def test_device_silent_seat_released_when_enabled(fleet: Fleet) -> None:
    settings_set(release_seat_when_silent=True, silent_after_hours=48)
    device = fleet.device()
    long_ago = timezone.now() - dt.timedelta(hours=50)
    fleet.checkin(device, at=long_ago)
    Device.objects.filter(pk=device.pk).update(last_seen=long_ago)
    Seat.objects.filter(device=device).update(activated_at=long_ago)

    result = findings_reconcile()

    seat = Seat.objects.get(device=device)
    assert result.seats_released == 1
    assert seat.status == Seat.Status.RELEASED
    assert "silent for more than 48 hours" in seat.released_reason
    assert "system:reconcile" in seat.released_reason
    entry = chained_decisions().filter(event="seat.force_released").latest("seq")
    assert entry.subject == str(seat.pk)

    # The seat is free now, so the drift is gone.
    findings_reconcile()
    assert _open("device_silent") == []


def test_device_silent_seat_kept_when_disabled(fleet: Fleet) -> None:
    device = fleet.device()
    long_ago = timezone.now() - dt.timedelta(hours=100)
    fleet.checkin(device, at=long_ago)
    Device.objects.filter(pk=device.pk).update(last_seen=long_ago)
    Seat.objects.filter(device=device).update(activated_at=long_ago)

    result = findings_reconcile()

    assert result.seats_released == 0
    assert fleet.seat(device).status == Seat.Status.ACTIVE


def test_manifest_stale_found_and_resolved(fleet: Fleet) -> None:
    settings_set(stale_after_hours=0)
    device = fleet.device()
    manifest_publish(product_code="atlas", reason="test")
    current = Manifest.objects.filter(product_code="atlas").order_by("-version").first()
    assert current is not None
    fleet.checkin(device, manifest_version=current.version - 1)

    findings_reconcile()

    [finding] = _open("manifest_stale")
    assert finding.affected["required"] == current.version

    fleet.checkin(device, manifest_version=current.version)
    findings_reconcile()
    assert _state_of(finding) == "resolved"


def test_manifest_stale_waits_for_grace(fleet: Fleet) -> None:
    settings_set(stale_after_hours=24)
    device = fleet.device()
    manifest_publish(product_code="atlas", reason="fresh")
    fleet.checkin(device, manifest_version=1)

    findings_reconcile()

    assert _open("manifest_stale") == []


def _release(number: int, *, head: bool = True) -> Any:
    from overlays.models import Release, ReleaseHead

    release = Release.objects.create(
        product_code="atlas", number=number, sha256="0" * 64, content={}, schema_version=1
    )
    if head:
        ReleaseHead.objects.update_or_create(product_code="atlas", defaults={"current": release})
    return release


def test_overlay_release_stale_found_and_resolved(fleet: Fleet) -> None:
    settings_set(stale_after_hours=0)
    device = fleet.device()
    _release(1)
    _release(2)
    fleet.checkin(device, overlay_release=1)

    findings_reconcile()

    [finding] = _open("overlay_release_stale")
    assert finding.affected["required"] == 2

    fleet.checkin(device, overlay_release=2)
    findings_reconcile()
    assert _state_of(finding) == "resolved"


def test_overlay_release_stale_skips_devices_outside_rollout(fleet: Fleet) -> None:
    from overlays.models import Rollout

    settings_set(stale_after_hours=0)
    device = fleet.device()
    _release(1)
    release = _release(2)
    Rollout.objects.create(release=release, steps=[{"percent": 10}], step_started_at=timezone.now())
    fleet.checkin(device, overlay_release=1)

    findings_reconcile()

    assert _open("overlay_release_stale") == []


def test_client_version_below_minimum_found_and_resolved(fleet: Fleet) -> None:
    settings_set(minimum_client_version="2.4.0")
    device = fleet.device()
    fleet.checkin(device, client_version="2.3.9")
    fleet.checkin(fleet.device(), client_version="2.10.0")

    findings_reconcile()

    [finding] = _open("client_version_below_minimum")
    assert finding.subject == f"device:{device.pk}:atlas"
    assert finding.affected == {
        "device": device.pk,
        "product": "atlas",
        "running": "2.3.9",
        "minimum": "2.4.0",
    }

    fleet.checkin(device, client_version="2.4.0")
    findings_reconcile()
    assert _state_of(finding) == "resolved"


def test_release_apply_failed_found_and_resolved(fleet: Fleet) -> None:
    from overlays.models import ApplyReport

    device = fleet.device()
    release = _release(1)
    ApplyReport.objects.create(device=device, release=release, ok=False, code="schema_mismatch")
    ApplyReport.objects.create(device=fleet.device(), release=release, ok=True)

    findings_reconcile()

    [finding] = _open("release_apply_failed")
    assert finding.subject == "release:atlas:1"
    assert finding.affected["failed"] == 1
    assert finding.affected["reported"] == 2
    assert finding.affected["codes"] == {"schema_mismatch": 1}

    # Fixed: a corrected release replaces the failing one.
    _release(2)
    findings_reconcile()
    assert _state_of(finding) == "resolved"


def test_grant_expiring_found_and_resolved(fleet: Fleet) -> None:
    now = timezone.now()
    LicenseGrant.objects.filter(pk=fleet.grant.pk).update(term_end=now + dt.timedelta(days=10))

    findings_reconcile()

    [finding] = _open("grant_expiring")
    assert finding.severity == "info"

    LicenseGrant.objects.filter(pk=fleet.grant.pk).update(term_end=now + dt.timedelta(days=300))
    findings_reconcile()
    assert _state_of(finding) == "resolved"


def test_grant_in_grace_found_and_resolved(fleet: Fleet) -> None:
    now = timezone.now()
    LicenseGrant.objects.filter(pk=fleet.grant.pk).update(
        term_start=now - dt.timedelta(days=400), term_end=now - dt.timedelta(days=2)
    )

    findings_reconcile()

    [finding] = _open("grant_in_grace")
    assert finding.severity == "warning"

    # Fixed: the grant was renewed for another term.
    LicenseGrant.objects.filter(pk=fleet.grant.pk).update(term_end=now + dt.timedelta(days=363))
    findings_reconcile()
    assert _state_of(finding) == "resolved"


def test_reconcile_rerun_creates_no_duplicates(fleet: Fleet) -> None:
    settings_set(minimum_client_version="3.0.0")
    for _ in range(4):
        fleet.checkin(fleet.device(), client_version="2.0.0")

    first = findings_reconcile()
    second = findings_reconcile()

    assert first.opened == 4
    assert second.opened == 0
    assert second.resolved == 0
    assert Finding.objects.count() == 4


def test_reconcile_acknowledged_finding_kept_then_resolved(fleet: Fleet) -> None:
    from health.services import finding_acknowledge

    settings_set(minimum_client_version="3.0.0")
    device = fleet.device()
    fleet.checkin(device, client_version="2.0.0")
    findings_reconcile()
    [finding] = _open("client_version_below_minimum")
    finding_acknowledge(finding_id=finding.pk, acting_user=None)

    findings_reconcile()
    assert Finding.objects.count() == 1
    assert _state_of(finding) == "acknowledged"

    fleet.checkin(device, client_version="3.0.0")
    findings_reconcile()
    assert _state_of(finding) == "resolved"


def test_reconcile_reopened_drift_gets_new_finding(fleet: Fleet) -> None:
    settings_set(minimum_client_version="3.0.0")
    device = fleet.device()
    fleet.checkin(device, client_version="2.0.0")
    findings_reconcile()
    fleet.checkin(device, client_version="3.0.0")
    findings_reconcile()
    fleet.checkin(device, client_version="2.0.0")

    findings_reconcile()

    states = sorted(Finding.objects.values_list("state", flat=True))
    assert states == ["open", "resolved"]


def test_reconcile_writes_history_rows(fleet: Fleet) -> None:
    settings_set(minimum_client_version="3.0.0")
    device = fleet.device()
    fleet.checkin(device, client_version="2.0.0")
    findings_reconcile()
    fleet.checkin(device, client_version="3.0.0")
    findings_reconcile()

    [finding] = Finding.objects.all()
    kinds = list(finding.history.order_by("history_id").values_list("history_type", "state"))
    assert kinds == [("+", "open"), ("~", "resolved")]
    assert finding.history.first().history_user.username == "system:reconcile"


def test_reconcile_records_decision(fleet: Fleet) -> None:
    fleet.checkin(fleet.device())

    findings_reconcile()

    entry = chained_decisions().filter(event="health.reconcile").latest("seq")
    assert entry.actor == "system:reconcile"
    assert entry.data["devices"] == 1


def test_health_settings_invalid_minimum_version_rejected(in_alpha: Any) -> None:
    with pytest.raises(ValidationError) as raised:
        HealthSettings(minimum_client_version="latest").full_clean()

    assert "minimum_client_version" in raised.value.message_dict
