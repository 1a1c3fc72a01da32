"""Client-side licensing: activation, refresh and deactivation of a device.

Each function receives a device key that the API layer has already proven
the caller has (a verified DPoP proof), so the thumbprint identifies the
device. Seat and device limits are enforced under a row lock on the grant:
concurrent activations of one grant run one after another, and a partial
unique index keeps one active seat per grant and device even if that lock
were bypassed. A refused request changes nothing except the decision log.
"""

import logging
from dataclasses import dataclass
from typing import Any

from django.db import transaction
from django.utils import timezone

from licensing.decisions import decision
from licensing.exceptions import (
    DeviceLimitReached,
    DeviceRevoked,
    DeviceUnknown,
    IdempotencyKeyReused,
    LicenseExpired,
    LicenseInvalid,
    LicenseRevoked,
    LicenseSuspended,
    ProductNotLicensed,
    SeatLimitReached,
)
from licensing.licensekeys import license_key_hash
from licensing.manifests import manifest_current
from licensing.models import Device, IdempotencyRecord, LicenseGrant, Seat
from licensing.selectors import device_active_seat, grant_grace_end
from licensing.tokens import token_issue
from portal.problems import KeyplaneError

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class ClientAnswer:
    """A status code and JSON body for the client API."""

    status: int
    body: dict[str, Any]


def _check_grant_usable(grant: LicenseGrant) -> None:
    now = timezone.now()
    if grant.status == LicenseGrant.Status.REVOKED:
        raise LicenseRevoked(f"License grant {grant.pk} was revoked.")
    if grant.status == LicenseGrant.Status.SUSPENDED:
        raise LicenseSuspended(f"License grant {grant.pk} is suspended.")
    if grant.status == LicenseGrant.Status.EXPIRED or grant_grace_end(grant) < now:
        raise LicenseExpired(
            f"License grant {grant.pk} ended on {grant.term_end:%Y-%m-%d} and its grace "
            "period is over."
        )
    if grant.term_start > now:
        raise LicenseInvalid(
            f"License grant {grant.pk} starts on {grant.term_start:%Y-%m-%d}.",
            remediation="Activate again on or after the start date of the license.",
        )


def _answer_body(seat: Seat) -> dict[str, Any]:
    product_code = seat.grant.policy.product_code
    manifest = manifest_current(product_code)
    token, _ = token_issue(seat=seat, manifest=manifest)
    return {
        "device_id": str(seat.device_id),
        "token": token,
        "manifest": manifest.jws,
        "overlay": manifest.content.get("overlay"),
    }


def _refused(event: str, error: KeyplaneError, subject: str) -> None:
    # Runs outside the failed transaction, so the refusal itself is kept.
    decision(event=event, outcome="refused", reason=error.code, actor=subject, subject=subject)


def seat_activate(
    *,
    license_key: str,
    product_code: str,
    public_jwk: dict[str, str],
    thumbprint: str,
    device_name: str,
    platform: str,
    idempotency_key: str | None,
    request_hash: str = "",
) -> ClientAnswer:
    """Assign a seat of the license to the device and issue its first token.

    1. Find the grant by the license key's hash; stop if unknown or for another product.
    2. Lock the grant row; return the stored answer of a retried `Idempotency-Key`.
    3. Check the grant's status and term, then the device's status.
    4. Return the device's existing seat (200), or take a free seat (201)
       unless the seat or per-user device limit is reached.
    5. Issue the token with the current manifest, store the idempotent answer.
    """
    subject = f"device:{thumbprint}"
    try:
        grant = (
            LicenseGrant.objects.select_related("policy")
            .filter(key_hash=license_key_hash(license_key))
            .first()
        )
        if grant is None:
            raise LicenseInvalid("The license key matches no license of this organisation.")
        if grant.policy.product_code != product_code:
            raise ProductNotLicensed(
                f"The license key is for product {grant.policy.product_code!r}, "
                f"not {product_code!r}."
            )
        with transaction.atomic():
            # FOR NO KEY UPDATE still serialises activations of one grant, but
            # unlike FOR UPDATE it lets the key-share locks of deferred foreign
            # key checks through. A refresh takes such a lock at COMMIT, after
            # it holds the decision-log head that this activation waits for,
            # so FOR UPDATE here deadlocked with concurrent refreshes.
            grant = (
                LicenseGrant.objects.select_for_update(no_key=True)
                .select_related("policy")
                .get(pk=grant.pk)
            )
            if idempotency_key:
                stored = IdempotencyRecord.objects.filter(
                    key=idempotency_key, thumbprint=thumbprint
                ).first()
                if stored is not None:
                    if stored.request_hash != request_hash:
                        raise IdempotencyKeyReused(
                            f"Idempotency-Key {idempotency_key!r} was first used with another "
                            "request body."
                        )
                    return ClientAnswer(stored.status_code, stored.body)
            _check_grant_usable(grant)
            answer = _activate_locked(
                grant=grant,
                public_jwk=public_jwk,
                thumbprint=thumbprint,
                device_name=device_name,
                platform=platform,
            )
            if idempotency_key:
                IdempotencyRecord.objects.create(
                    key=idempotency_key,
                    thumbprint=thumbprint,
                    request_hash=request_hash,
                    status_code=answer.status,
                    body=answer.body,
                )
            decision(
                event="license.activate",
                outcome="granted",
                reason="existing_seat" if answer.status == 200 else "new_seat",
                actor=subject,
                subject=subject,
                data={"grant": grant.pk, "device": answer.body["device_id"]},
            )
            return answer
    except KeyplaneError as error:
        _refused("license.activate", error, subject)
        raise


def _activate_locked(
    *,
    grant: LicenseGrant,
    public_jwk: dict[str, str],
    thumbprint: str,
    device_name: str,
    platform: str,
) -> ClientAnswer:
    now = timezone.now()
    device, created = Device.objects.get_or_create(
        thumbprint=thumbprint,
        defaults={"public_jwk": public_jwk, "name": device_name, "platform": platform},
    )
    if not created:
        device = Device.objects.select_for_update(no_key=True).get(pk=device.pk)
    if device.status == Device.Status.REVOKED:
        raise DeviceRevoked(f"Device {device.pk} was revoked by an administrator.")

    existing = (
        Seat.objects.filter(grant=grant, device=device, status=Seat.Status.ACTIVE)
        .select_related("grant__policy", "device")
        .first()
    )
    if existing is not None:
        status = 200
        seat = existing
    else:
        taken = Seat.objects.filter(grant=grant, status=Seat.Status.ACTIVE).count()
        if taken >= grant.seat_count:
            raise SeatLimitReached(
                f"All {grant.seat_count} seats of license grant {grant.pk} are in use."
            )
        if device.user_id is not None:
            user_devices = (
                Seat.objects.filter(
                    device__user_id=device.user_id,
                    status=Seat.Status.ACTIVE,
                    grant__policy__product_code=grant.policy.product_code,
                )
                .values("device_id")
                .distinct()
                .count()
            )
            if user_devices >= grant.policy.devices_per_user:
                raise DeviceLimitReached(
                    f"User {device.user_id} already has {user_devices} active devices; the "
                    f"policy allows {grant.policy.devices_per_user}."
                )
        seat = Seat.objects.create(grant=grant, device=device)
        seat.grant = grant
        seat.device = device
        status = 201

    device.last_seen = now
    fields = ["last_seen"]
    if device_name and device.name != device_name:
        device.name = device_name
        fields.append("name")
    if platform and device.platform != platform:
        device.platform = platform
        fields.append("platform")
    device.save(update_fields=fields)
    return ClientAnswer(status, _answer_body(seat))


def _device_for(thumbprint: str) -> Device:
    device = Device.objects.filter(thumbprint=thumbprint).first()
    if device is None:
        raise DeviceUnknown("No device of this organisation has the proof's key.")
    if device.status == Device.Status.REVOKED:
        raise DeviceRevoked(f"Device {device.pk} was revoked by an administrator.")
    return device


def token_refresh(*, thumbprint: str, product_code: str) -> ClientAnswer:
    """Issue a new token that reflects the grant's current terms and entitlements."""
    subject = f"device:{thumbprint}"
    try:
        with transaction.atomic():
            device = _device_for(thumbprint)
            seat = device_active_seat(device, product_code)
            if seat is None:
                raise DeviceUnknown(f"Device {device.pk} has no seat for product {product_code!r}.")
            _check_grant_usable(seat.grant)
            # Record the contact at most once a minute, to keep refreshes light.
            now = timezone.now()
            if device.last_seen is None or (now - device.last_seen).total_seconds() > 60:
                Device.objects.filter(pk=device.pk).update(last_seen=now)
            body = _answer_body(seat)
            body.pop("device_id")
            decision(
                event="license.refresh",
                outcome="granted",
                actor=subject,
                subject=subject,
                data={"grant": seat.grant_id, "device": device.pk},
            )
            return ClientAnswer(200, body)
    except KeyplaneError as error:
        _refused("license.refresh", error, subject)
        raise


def seat_deactivate(*, thumbprint: str, product_code: str) -> None:
    """Release the device's seat for the product, at the device's own request."""
    subject = f"device:{thumbprint}"
    try:
        with transaction.atomic():
            device = _device_for(thumbprint)
            seat = device_active_seat(device, product_code)
            if seat is None:
                raise DeviceUnknown(f"Device {device.pk} has no seat for product {product_code!r}.")
            seat = Seat.objects.select_for_update().get(pk=seat.pk)
            released = seat.status == Seat.Status.ACTIVE
            if released:
                seat.status = Seat.Status.RELEASED
                seat.released_at = timezone.now()
                seat.released_reason = "deactivated by the device"
                seat.save(update_fields=["status", "released_at", "released_reason"])
            decision(
                event="license.deactivate",
                outcome="done" if released else "already_released",
                actor=subject,
                subject=subject,
                data={"grant": seat.grant_id, "seat": seat.pk},
            )
    except KeyplaneError as error:
        _refused("license.deactivate", error, subject)
        raise
