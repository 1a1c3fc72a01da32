"""License tokens: the short-lived JWS a device presents to its application.

Claims (all times in seconds since the epoch): `iss` (the tenant's URL),
`aud` (product code), `sub` (grant id), `tid` (tenant slug), `did` (device
id), `cnf.jkt` (RFC 7638 thumbprint of the device key, binding the token to
that key), `ent` (entitlement codes), `iat`, `nbf`, `exp`, `grace_until`,
`offline_until`, `mver` (manifest version), `jti`, and `usr` when the device
is assigned to a user. `exp` never passes the grant's grace end.
"""

import secrets
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.utils import timezone

from licensing.models import IssuedToken, Manifest, Seat
from licensing.selectors import grant_grace_end
from licensing.signing import current_tenant_slug, sign_tenant_object

LICENSE_TYP = "kp-license+jwt"


def _ts(moment: datetime) -> int:
    return int(moment.timestamp())


def token_issue(*, seat: Seat, manifest: Manifest) -> tuple[str, IssuedToken]:
    """Sign a license token for the seat's device and record its `jti`."""
    grant = seat.grant
    policy = grant.policy
    device = seat.device
    now = timezone.now()
    grace_end = grant_grace_end(grant)
    expires = min(now + timedelta(hours=policy.token_lifetime_hours), grace_end)
    jti = secrets.token_urlsafe(16)
    claims: dict[str, Any] = {
        "iss": f"{settings.KEYPLANE_BASE_URL}/t/{current_tenant_slug()}",
        "aud": policy.product_code,
        "sub": str(grant.pk),
        "tid": current_tenant_slug(),
        "did": str(device.pk),
        "cnf": {"jkt": device.thumbprint},
        "ent": sorted(policy.entitlements),
        "iat": _ts(now),
        "nbf": _ts(now),
        "exp": _ts(expires),
        "term_end": _ts(grant.term_end),
        "grace_until": _ts(grace_end),
        "offline_until": _ts(now + timedelta(hours=policy.offline_tolerance_hours)),
        "mver": manifest.version,
        "jti": jti,
    }
    if device.user_id is not None:
        claims["usr"] = str(device.user_id)
    token = sign_tenant_object(claims, typ=LICENSE_TYP)
    from licensing.jws import jws_parse_header

    record = IssuedToken.objects.create(
        jti=jti,
        grant=grant,
        device=device,
        kid=jws_parse_header(token)["kid"],
        issued_at=now,
        expires_at=expires,
    )
    return token, record
