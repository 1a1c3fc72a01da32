"""Device enrollment tokens: activation without a license key.

An IT admin creates a token bound to one license grant (and so one
product) and one device group, with an expiry and a maximum number of uses,
and ships it with the installer through a device-management tool. A device
that presents it, with its proof of possession, activates on the grant and
joins the group.

A token is `kpe_` followed by 43 URL-safe base64 characters (256 random
bits). Only its SHA-256 is stored: guessing a token is as hard as guessing
256 random bits, so neither a slow nor a keyed hash adds protection, and the
stored hash stays valid when SECRET_KEY rotates.

A token never grants more than its grant's seats: `max_uses` may not exceed
the grant's seat count, and every activation still takes a seat under the
grant's row lock in licensing, which refuses once all seats are in use.
"""

import datetime as dt
import hashlib
import logging
import secrets
from dataclasses import dataclass
from typing import Any

from django.db import transaction
from django.db.models import F
from django.utils import timezone

from audit.services import decision_record
from identity.exceptions import (
    EnrollmentExhausted,
    EnrollmentExpired,
    EnrollmentInvalid,
    EnrollmentRevoked,
    EnrollmentTokenInvalid,
)
from identity.models import EnrollmentToken
from licensing.exceptions import ProductNotLicensed
from licensing.models import DeviceGroup, LicenseGrant
from portal.problems import KeyplaneError

logger = logging.getLogger(__name__)

TOKEN_PREFIX = "kpe_"  # noqa: S105  # a public prefix, not a secret
EVENT_REDEEM = "enrollment.redeem"
# Maximum lifetime of a token in days, so that installers are rebuilt with fresh ones.
MAX_LIFETIME_DAYS = 400


@dataclass(frozen=True)
class EnrollmentGrant:
    """The grant and the device group that a redeemed token entitles a device to."""

    token_id: int
    grant: LicenseGrant
    group: DeviceGroup
    uses: int
    max_uses: int


def enrollment_token_generate() -> str:
    return TOKEN_PREFIX + secrets.token_urlsafe(32)


def enrollment_token_hash(token: str) -> str:
    return hashlib.sha256(token.strip().encode("utf-8")).hexdigest()


def _actor(acting_user: Any) -> str:
    return getattr(acting_user, "username", "") or ""


def enrollment_token_settings_check(
    *, grant: LicenseGrant, max_uses: int, expires_in_days: int
) -> None:
    """Raise EnrollmentTokenInvalid unless a token with these settings may be created."""
    if grant.status != LicenseGrant.Status.ACTIVE:
        raise EnrollmentTokenInvalid(
            f"License grant {grant.pk} is {grant.status}; enrollment needs an active grant."
        )
    if not 1 <= max_uses <= grant.seat_count:
        raise EnrollmentTokenInvalid(
            f"max_uses {max_uses} must be between 1 and the grant's {grant.seat_count} seats."
        )
    if not 1 <= expires_in_days <= MAX_LIFETIME_DAYS:
        raise EnrollmentTokenInvalid(
            f"The lifetime of {expires_in_days} days must be between 1 and "
            f"{MAX_LIFETIME_DAYS} days."
        )


def enrollment_token_create(
    *,
    grant_id: int,
    group_name: str,
    max_uses: int,
    expires_in_days: int,
    label: str,
    acting_user: Any,
) -> tuple[EnrollmentToken, str]:
    """Create a token and return it with its secret value, which is never stored or shown again.

    Raises EnrollmentTokenInvalid when the grant or group does not exist, the
    grant is not active, `max_uses` is outside 1..seat count, or the lifetime
    is outside 1..MAX_LIFETIME_DAYS days.
    """
    grant = LicenseGrant.objects.select_related("policy").filter(pk=grant_id).first()
    if grant is None:
        raise EnrollmentTokenInvalid(f"No license grant has the id {grant_id}.")
    group = DeviceGroup.objects.filter(name=group_name).first()
    if group is None:
        raise EnrollmentTokenInvalid(
            f"No device group is named {group_name!r}; create it in the admin first."
        )
    enrollment_token_settings_check(grant=grant, max_uses=max_uses, expires_in_days=expires_in_days)

    token = enrollment_token_generate()
    row = EnrollmentToken(
        label=label[:200] or f"{group.name} enrollment",
        grant=grant,
        product_code=grant.policy.product_code,
        group=group,
        token_hash=enrollment_token_hash(token),
        token_hint=token[-6:],
        expires_at=timezone.now() + dt.timedelta(days=expires_in_days),
        max_uses=max_uses,
        created_by=acting_user if getattr(acting_user, "pk", None) else None,
    )
    row._history_user = acting_user if getattr(acting_user, "pk", None) else None  # type: ignore[attr-defined]
    with transaction.atomic():
        row.save()
        decision_record(
            event="enrollment.token_created",
            outcome="done",
            actor=_actor(acting_user),
            subject=f"enrollment:{row.pk}",
            data={
                "grant": grant.pk,
                "group": group.pk,
                "max_uses": max_uses,
                "expires_at": row.expires_at.isoformat(),
            },
        )
    logger.info(
        "enrollment.token_created token=%s grant=%s group=%s max_uses=%d",
        row.pk,
        grant.pk,
        group.pk,
        max_uses,
    )
    return row, token


def enrollment_token_revoke(*, token_id: int, reason: str, acting_user: Any) -> EnrollmentToken:
    """Revoke a token so that no further device can use it; devices already enrolled stay."""
    with transaction.atomic():
        row = EnrollmentToken.objects.select_for_update().filter(pk=token_id).first()
        if row is None:
            raise EnrollmentTokenInvalid(f"No enrollment token has the id {token_id}.")
        if row.revoked_at is not None:
            return row
        row.revoked_at = timezone.now()
        row.revoked_reason = reason[:500]
        row._history_user = acting_user if getattr(acting_user, "pk", None) else None  # type: ignore[attr-defined]
        row.save(update_fields=["revoked_at", "revoked_reason"])
        decision_record(
            event="enrollment.token_revoked",
            outcome="done",
            actor=_actor(acting_user),
            subject=f"enrollment:{row.pk}",
            data={"note": reason[:500]},
        )
    logger.info("enrollment.token_revoked token=%s", row.pk)
    return row


def _lock_usable(token: str, product_code: str) -> EnrollmentToken:
    """Lock the token's row and check it may be used now for `product_code`."""
    row = (
        EnrollmentToken.objects.select_for_update()
        .filter(token_hash=enrollment_token_hash(token))
        .first()
    )
    if row is None:
        raise EnrollmentInvalid("The enrollment token matches no token of this organisation.")
    if row.revoked_at is not None:
        raise EnrollmentRevoked(f"Enrollment token {row.pk} was revoked.")
    if row.expires_at <= timezone.now():
        raise EnrollmentExpired(
            f"Enrollment token {row.pk} expired on {row.expires_at:%Y-%m-%d %H:%M} UTC."
        )
    if row.product_code != product_code:
        raise ProductNotLicensed(
            f"The enrollment token is for product {row.product_code!r}, not {product_code!r}."
        )
    if row.uses >= row.max_uses:
        raise EnrollmentExhausted(
            f"Enrollment token {row.pk} has been used {row.uses} of {row.max_uses} times."
        )
    return row


def _count_use(row: EnrollmentToken) -> EnrollmentToken:
    now = timezone.now()
    # Conditional on the limit, so that the check constraint is never what refuses.
    updated = EnrollmentToken.objects.filter(pk=row.pk, uses__lt=F("max_uses")).update(
        uses=F("uses") + 1, last_used_at=now
    )
    if updated != 1:
        raise EnrollmentExhausted(f"Enrollment token {row.pk} has no uses left.")
    row.refresh_from_db(fields=["uses", "last_used_at"])
    return row


def _refused(error: KeyplaneError, subject: str) -> None:
    decision_record(event=EVENT_REDEEM, outcome="refused", reason=error.code, subject=subject)


def enrollment_redeem(*, token: str, product_code: str, subject: str = "") -> EnrollmentGrant:
    """Use a token once and return the grant and device group it entitles to.

    Locks the token row, checks revocation, expiry, product and remaining
    uses, and increments `uses` in the same transaction. Call it inside the
    transaction that activates the device, so a refused activation does not
    use up the token. A refusal is recorded in the decision log after this
    function's own transaction, so it is kept unless an outer transaction
    rolls back.

    Raises EnrollmentInvalid, EnrollmentRevoked, EnrollmentExpired,
    ProductNotLicensed or EnrollmentExhausted.
    """
    try:
        with transaction.atomic():
            row = _count_use(_lock_usable(token, product_code))
            granted = _granted(row)
            decision_record(
                event=EVENT_REDEEM,
                outcome="granted",
                subject=subject or f"enrollment:{row.pk}",
                data={"enrollment": row.pk, "grant": row.grant_id, "uses": row.uses},
            )
    except KeyplaneError as error:
        _refused(error, subject)
        raise
    return granted


def _granted(row: EnrollmentToken) -> EnrollmentGrant:
    grant = LicenseGrant.objects.select_related("policy").get(pk=row.grant_id)
    group = DeviceGroup.objects.get(pk=row.group_id)
    return EnrollmentGrant(
        token_id=row.pk, grant=grant, group=group, uses=row.uses, max_uses=row.max_uses
    )
