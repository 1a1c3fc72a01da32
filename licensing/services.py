"""Admin-side licensing writes: policies, grants, seat release and revocations.

Every function opens its own transaction, locks the row it changes, records
its decision-log entry in that transaction, and publishes a new manifest
when clients must learn about the change (revocations).
"""

import logging
from datetime import datetime, timedelta
from typing import Any

from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone

from licensing.decisions import decision
from licensing.exceptions import AlreadyRevoked, ObjectNotFound, PolicyInvalid
from licensing.licensekeys import license_key_generate, license_key_hash, license_key_hint
from licensing.manifests import manifest_publish
from licensing.models import Device, IssuedToken, LicenseGrant, Policy, Revocation, Seat
from portal.problems import RequestInvalid

logger = logging.getLogger(__name__)

POLICY_FIELDS = {
    "name",
    "product_code",
    "seat_limit",
    "devices_per_user",
    "entitlements",
    "term_days",
    "renewal_cadence",
    "grace_days",
    "offline_tolerance_hours",
    "token_lifetime_hours",
    "allowed_regions",
    "compliance",
    "renewal_requires_approval",
    "seat_increase_requires_approval",
}


def _actor(acting_user: Any) -> str:
    return getattr(acting_user, "username", "") or ""


def _raise_invalid(error: ValidationError, what: str) -> None:
    errors = [
        {"field": field, "message": message, "code": "invalid"}
        for field, messages in error.message_dict.items()
        for message in messages
    ]
    summary = "; ".join(f"{item['field']}: {item['message']}" for item in errors[:5])
    raise PolicyInvalid(f"The {what} is invalid: {summary}", extra={"errors": errors}) from error


def policy_create(*, acting_user: Any, **fields: Any) -> Policy:
    """Create a policy after checking it for contradictions; raise PolicyInvalid if any."""
    unknown = set(fields) - POLICY_FIELDS
    if unknown:
        raise RequestInvalid(f"Unknown policy fields: {sorted(unknown)}.")
    policy = Policy(**fields)
    try:
        policy.full_clean()
    except ValidationError as error:
        _raise_invalid(error, "policy")
    with transaction.atomic():
        policy.save()
        decision(
            event="policy.created",
            outcome="done",
            actor=_actor(acting_user),
            subject=str(policy.pk),
        )
    return policy


def grant_create(
    *,
    policy_id: int,
    seat_count: int,
    acting_user: Any,
    term_start: datetime | None = None,
    term_end: datetime | None = None,
) -> tuple[LicenseGrant, str]:
    """Create a grant and return it with its license key, which is never stored or shown again."""
    policy = Policy.objects.filter(pk=policy_id).first()
    if policy is None:
        raise ObjectNotFound(f"No policy has the id {policy_id}.")
    start = term_start or timezone.now()
    license_key = license_key_generate()
    grant = LicenseGrant(
        policy=policy,
        seat_count=seat_count,
        term_start=start,
        term_end=term_end or start + timedelta(days=policy.term_days),
        key_hash=license_key_hash(license_key),
        key_hint=license_key_hint(license_key),
    )
    try:
        grant.full_clean()
    except ValidationError as error:
        _raise_invalid(error, "grant")
    with transaction.atomic():
        grant.save()
        decision(
            event="grant.created",
            outcome="done",
            actor=_actor(acting_user),
            subject=str(grant.pk),
            data={"policy": policy.pk, "seats": seat_count},
        )
        manifest_publish(
            product_code=policy.product_code,
            reason=f"grant {grant.pk} created",
            acting_user=acting_user,
        )
    logger.info("grant.created grant=%s policy=%s seats=%d", grant.pk, policy.pk, seat_count)
    return grant, license_key


def grant_update(
    *,
    grant_id: int,
    acting_user: Any,
    seat_count: int | None = None,
    term_start: datetime | None = None,
    term_end: datetime | None = None,
) -> LicenseGrant:
    """Change a grant's seat count or term, checked like a new grant, and publish a manifest.

    Lowering the seat count below the seats in use releases no seat: the
    surplus devices keep theirs, and no new device gets one until enough are
    released.
    """
    with transaction.atomic():
        grant = (
            LicenseGrant.objects.select_for_update(no_key=True)
            .select_related("policy")
            .filter(pk=grant_id)
            .first()
        )
        if grant is None:
            raise ObjectNotFound(f"No license grant has the id {grant_id}.")
        changes = {
            "seat_count": seat_count,
            "term_start": term_start,
            "term_end": term_end,
        }
        fields = [name for name, value in changes.items() if value is not None]
        if not fields:
            return grant
        previous = {name: str(getattr(grant, name)) for name in fields}
        for name in fields:
            setattr(grant, name, changes[name])
        try:
            grant.full_clean()
        except ValidationError as error:
            _raise_invalid(error, "grant")
        grant.save(update_fields=fields)
        decision(
            event="grant.updated",
            outcome="done",
            actor=_actor(acting_user),
            subject=str(grant.pk),
            data={"previous": previous, "fields": fields},
        )
        manifest_publish(
            product_code=grant.policy.product_code,
            reason=f"grant {grant.pk} changed",
            acting_user=acting_user,
        )
    return grant


def grant_status_set(*, grant_id: int, status: str, reason: str, acting_user: Any) -> LicenseGrant:
    """Suspend, reactivate or expire a grant (revocation goes through `grant_revoke`)."""
    if status not in {
        LicenseGrant.Status.ACTIVE,
        LicenseGrant.Status.SUSPENDED,
        LicenseGrant.Status.EXPIRED,
    }:
        raise RequestInvalid(f"Status {status!r} cannot be set here; use the revocation instead.")
    with transaction.atomic():
        grant = (
            LicenseGrant.objects.select_for_update(no_key=True)
            .select_related("policy")
            .filter(pk=grant_id)
            .first()
        )
        if grant is None:
            raise ObjectNotFound(f"No license grant has the id {grant_id}.")
        if grant.status == LicenseGrant.Status.REVOKED:
            raise AlreadyRevoked(f"License grant {grant_id} is revoked and cannot change status.")
        grant.status = status
        grant.status_reason = reason[:500]
        grant.save(update_fields=["status", "status_reason"])
        decision(
            event="grant.status_changed",
            outcome=status,
            note=reason,
            actor=_actor(acting_user),
            subject=str(grant.pk),
        )
        manifest_publish(
            product_code=grant.policy.product_code,
            reason=f"grant {grant.pk} is now {status}",
            acting_user=acting_user,
        )
    return grant


def _release_seats(seats: Any, reason: str) -> int:
    now = timezone.now()
    released = 0
    for seat in seats.select_for_update():
        seat.status = Seat.Status.RELEASED
        seat.released_at = now
        seat.released_reason = reason[:500]
        seat.save(update_fields=["status", "released_at", "released_reason"])
        released += 1
    return released


def seat_force_release(*, seat_id: int, reason: str, acting_user: Any) -> Seat:
    """Release a seat whose device is lost; the reason is required and audited."""
    if not reason or not reason.strip():
        raise RequestInvalid(
            "A reason is required to release a seat by force.",
            remediation="State why the seat is released, for example 'laptop stolen'.",
        )
    with transaction.atomic():
        seat = Seat.objects.select_for_update().filter(pk=seat_id).first()
        if seat is None:
            raise ObjectNotFound(f"No seat has the id {seat_id}.")
        if seat.status == Seat.Status.ACTIVE:
            seat.status = Seat.Status.RELEASED
            seat.released_at = timezone.now()
            seat.released_reason = (
                f"released by {_actor(acting_user) or 'an administrator'}: {reason}"[:500]
            )
            seat.save(update_fields=["status", "released_at", "released_reason"])
        decision(
            event="seat.force_released",
            outcome="done",
            note=reason,
            actor=_actor(acting_user),
            subject=str(seat.pk),
            data={"grant": seat.grant_id, "device": seat.device_id},
        )
    logger.info("seat.force_released seat=%s", seat.pk)
    return seat


def _products_of_device(device: Device) -> set[str]:
    return set(
        Seat.objects.filter(device=device).values_list("grant__policy__product_code", flat=True)
    )


def grant_revoke(*, grant_id: int, reason: str, acting_user: Any) -> Revocation:
    """Revoke a grant, release its seats and publish a manifest listing it."""
    with transaction.atomic():
        grant = (
            LicenseGrant.objects.select_for_update(no_key=True)
            .select_related("policy")
            .filter(pk=grant_id)
            .first()
        )
        if grant is None:
            raise ObjectNotFound(f"No license grant has the id {grant_id}.")
        if grant.status == LicenseGrant.Status.REVOKED:
            raise AlreadyRevoked(f"License grant {grant_id} is already revoked.")
        grant.status = LicenseGrant.Status.REVOKED
        grant.status_reason = reason[:500]
        grant.save(update_fields=["status", "status_reason"])
        _release_seats(grant.seats.filter(status=Seat.Status.ACTIVE), f"grant revoked: {reason}")
        revocation = Revocation.objects.create(
            kind=Revocation.Kind.GRANT,
            grant=grant,
            reason=reason[:500],
            created_by=_user(acting_user),
        )
        decision(
            event="grant.revoked",
            outcome="done",
            note=reason,
            actor=_actor(acting_user),
            subject=str(grant.pk),
        )
        manifest_publish(
            product_code=grant.policy.product_code,
            reason=f"grant {grant.pk} revoked",
            acting_user=acting_user,
        )
    return revocation


def device_revoke(*, device_id: int, reason: str, acting_user: Any) -> Revocation:
    """Revoke a device, release its seats and publish manifests listing it."""
    with transaction.atomic():
        device = Device.objects.select_for_update(no_key=True).filter(pk=device_id).first()
        if device is None:
            raise ObjectNotFound(f"No device has the id {device_id}.")
        if device.status == Device.Status.REVOKED:
            raise AlreadyRevoked(f"Device {device_id} is already revoked.")
        device.status = Device.Status.REVOKED
        device.save(update_fields=["status"])
        products = _products_of_device(device)
        _release_seats(device.seats.filter(status=Seat.Status.ACTIVE), f"device revoked: {reason}")
        revocation = Revocation.objects.create(
            kind=Revocation.Kind.DEVICE,
            device=device,
            reason=reason[:500],
            created_by=_user(acting_user),
        )
        decision(
            event="device.revoked",
            outcome="done",
            note=reason,
            actor=_actor(acting_user),
            subject=str(device.pk),
        )
        for product_code in sorted(products):
            manifest_publish(
                product_code=product_code,
                reason=f"device {device.pk} revoked",
                acting_user=acting_user,
            )
    return revocation


def token_revoke(*, jti: str, reason: str, acting_user: Any) -> Revocation:
    """Revoke one issued token by its `jti` and publish a manifest listing it."""
    with transaction.atomic():
        # The row lock serializes concurrent revocations of the same token.
        token = (
            IssuedToken.objects.select_for_update(of=("self",))
            .select_related("grant__policy")
            .filter(jti=jti)
            .first()
        )
        if token is None:
            raise ObjectNotFound(f"No issued token has the jti {jti!r}.")
        if Revocation.objects.filter(kind=Revocation.Kind.TOKEN, token_jti=jti).exists():
            raise AlreadyRevoked(f"Token {jti!r} is already revoked.")
        revocation = Revocation.objects.create(
            kind=Revocation.Kind.TOKEN,
            token_jti=jti,
            reason=reason[:500],
            created_by=_user(acting_user),
        )
        decision(
            event="token.revoked",
            outcome="done",
            note=reason,
            actor=_actor(acting_user),
            subject=jti,
        )
        manifest_publish(
            product_code=token.grant.policy.product_code,
            reason=f"token {jti} revoked",
            acting_user=acting_user,
        )
    return revocation


def _user(acting_user: Any) -> Any:
    return acting_user if getattr(acting_user, "pk", None) else None
