"""Sign-in bookkeeping shared by the password and single sign-on paths.

Failed password sign-ins are counted in Redis per tenant, username and
client address. After `KEYPLANE_SIGNIN_MAX_FAILURES` failures within
`KEYPLANE_SIGNIN_LOCKOUT_SECONDS` of the first one, further attempts are
refused without checking the password until that window ends. Keys carry
the tenant schema (licensing/redis_store.py) and a hash of the username and
address, so no personal data is stored in key names. Every sign-in and
failed sign-in is recorded in the tenant's decision log.
"""

import hashlib
import logging
import math
from typing import Any

from django.conf import settings
from django.http import HttpRequest

from audit.services import decision_record
from identity.exceptions import SigninThrottled
from licensing.redis_store import redis_client, tenant_key

logger = logging.getLogger(__name__)

EVENT_PASSWORD = "signin.password"  # noqa: S105  # an event name
EVENT_OIDC = "signin.oidc"


def client_address(request: HttpRequest | None) -> str:
    if request is None:
        return "unknown"
    return str(request.META.get("REMOTE_ADDR") or "unknown")


def _failure_key(username: str, address: str) -> str:
    digest = hashlib.sha256(f"{username.strip().lower()}|{address}".encode()).hexdigest()[:32]
    return tenant_key("signin-fail", digest)


def signin_throttle_check(*, username: str, address: str) -> None:
    """Raise SigninThrottled when this username and address are locked out."""
    key = _failure_key(username, address)
    failures = int(redis_client().get(key) or 0)
    if failures < settings.KEYPLANE_SIGNIN_MAX_FAILURES:
        return
    retry_after = max(1, int(redis_client().ttl(key)))
    minutes = math.ceil(retry_after / 60)
    raise SigninThrottled(
        f"Too many failed sign-ins for this username from your address; try again in "
        f"{minutes} minute{'s' if minutes != 1 else ''}.",
        retry_after=retry_after,
    )


def signin_failure_count(*, username: str, address: str) -> int:
    """Count one failed password sign-in and return the failures in the current window."""
    key = _failure_key(username, address)
    pipeline = redis_client().pipeline(transaction=True)
    pipeline.incr(key)
    # The window starts at the first failure and is not extended by later ones.
    pipeline.expire(key, settings.KEYPLANE_SIGNIN_LOCKOUT_SECONDS, nx=True)
    failures, _ = pipeline.execute()
    return int(failures)


def signin_failures_clear(*, username: str, address: str) -> None:
    redis_client().delete(_failure_key(username, address))


def signin_record(
    *,
    event: str,
    outcome: str,
    reason: str = "",
    user: Any = None,
    request: HttpRequest | None = None,
    data: dict[str, Any] | None = None,
) -> None:
    """Append a sign-in decision to the tenant's decision log and the server log."""
    subject = f"user:{user.pk}" if user is not None and user.pk else ""
    payload = {"address": client_address(request), **(data or {})}
    logger.info("%s outcome=%s reason=%s subject=%s", event, outcome, reason, subject)
    decision_record(
        event=event,
        outcome=outcome,
        reason=reason,
        actor=getattr(user, "username", "") if outcome == "granted" else "",
        subject=subject,
        data=payload,
    )
