"""Device activation with an enrollment token in place of a license key.

The client API's activate endpoint calls `enrollment_activate` when the body
carries `enrollment_token` instead of `license_key`. One transaction locks
the token row, then the grant row (the same lock order every time, so two
activations cannot deadlock), counts the use, puts the device in the
token's group and takes a seat through licensing's seat rules, so a refused
activation (no free seat, device revoked) leaves the token's use count as
it was.
"""

import logging
from typing import Any

from django.db import transaction

from audit.services import decision_record
from identity.enrollment import EVENT_REDEEM, _count_use, _lock_usable
from licensing.models import Device, LicenseGrant, Seat
from licensing.seats import ClientAnswer, _activate_locked, _check_grant_usable
from portal.problems import KeyplaneError

logger = logging.getLogger(__name__)


def enrollment_activate(
    *,
    token: str,
    product_code: str,
    public_jwk: dict[str, str],
    thumbprint: str,
    device_name: str,
    platform: str,
    user: Any = None,
) -> ClientAnswer:
    """Activate the device on the token's grant and put it in the token's device group.

    1. Lock the token and check revocation, expiry, product and uses left.
    2. Lock the grant and check its status and term.
    3. Create the device, or move an existing one, into the token's group;
       bind `user` when given, so the token carries `usr` and the policy's
       per-user device limit applies.
    4. Take a seat (201), or keep the device's active seat (200) without
       counting a use of the token; refuse when all seats are taken.

    Raises the enrollment errors of identity.enrollment and the activation
    errors of licensing.seats (seat_limit_reached, device_limit_reached,
    device_revoked, license_*).
    """
    subject = f"device:{thumbprint}"
    try:
        with transaction.atomic():
            row = _lock_usable(token, product_code)
            grant = (
                LicenseGrant.objects.select_for_update(no_key=True)
                .select_related("policy")
                .get(pk=row.grant_id)
            )
            _check_grant_usable(grant)

            device, created = Device.objects.get_or_create(
                thumbprint=thumbprint,
                defaults={
                    "public_jwk": public_jwk,
                    "name": device_name,
                    "platform": platform,
                    "group_id": row.group_id,
                    "user": user,
                },
            )
            if not created:
                device = Device.objects.select_for_update(no_key=True).get(pk=device.pk)
                fields = []
                if device.group_id != row.group_id:
                    device.group_id = row.group_id
                    fields.append("group")
                if user is not None and device.user_id != user.pk:
                    device.user = user
                    fields.append("user")
                if fields:
                    device.save(update_fields=fields)

            has_seat = Seat.objects.filter(
                grant=grant, device=device, status=Seat.Status.ACTIVE
            ).exists()
            # NOTE: licensing has no public activation by grant yet, so this
            # reuses its seat rules from licensing.seats directly.
            answer = _activate_locked(
                grant=grant,
                public_jwk=public_jwk,
                thumbprint=thumbprint,
                device_name=device_name,
                platform=platform,
            )
            if not has_seat:
                row = _count_use(row)
            decision_record(
                event=EVENT_REDEEM,
                outcome="granted",
                reason="existing_seat" if has_seat else "new_seat",
                subject=subject,
                data={
                    "enrollment": row.pk,
                    "grant": grant.pk,
                    "group": row.group_id,
                    "device": answer.body["device_id"],
                    "uses": row.uses,
                },
            )
    except KeyplaneError as error:
        decision_record(event=EVENT_REDEEM, outcome="refused", reason=error.code, subject=subject)
        raise
    logger.info(
        "enrollment.activated enrollment=%s device=%s group=%s status=%d",
        row.pk,
        answer.body["device_id"],
        row.group_id,
        answer.status,
    )
    return answer
