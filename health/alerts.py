"""Alerts about findings: critical ones at once, warnings in a daily digest.

Rate limiting: a critical finding is claimed for alerting with a conditional
UPDATE that also sets `alerted_at`, and it is claimed again only after the
tenant's `alert_repeat_hours`. A drift that resolves and reopens gets a new
finding row with the same code and subject. That row is not claimed while
another row of that code and subject was alerted within the window, so a
flapping device cannot flood the admins. Because the claim commits before sending,
an alert is sent at most once per window even if two workers race. A failed
send is logged and not retried until the next window.

The optional webhook receives `{"alert": <JWS>}`, the JWS signed with the
tenant's active key and `typ` `kp-alert+jwt`, so the receiver can verify it
with the tenant key set from `GET /t/<slug>/api/v1/client/keys`.
"""

import datetime as dt
import ipaddress
import logging
import socket
import time
from dataclasses import dataclass
from urllib.parse import urlsplit

import requests
from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.mail import send_mail
from django.db import connection, transaction
from django.db.models import Q
from django.utils import timezone

from health.checkins import health_settings_get
from health.models import Finding, HealthSettings
from portal.access.roles import IT_ADMIN

logger = logging.getLogger(__name__)

ALERT_TYP = "kp-alert+jwt"
WEBHOOK_TIMEOUT_SECONDS = 5
MAX_LISTED = 50

_CLAIM_CRITICAL = f"""
UPDATE {Finding._meta.db_table} f SET alerted_at = %(now)s
WHERE f.severity = 'critical' AND f.state = 'open'
  AND (f.alerted_at IS NULL OR f.alerted_at < %(cutoff)s)
  AND NOT EXISTS (
      SELECT 1 FROM {Finding._meta.db_table} other
      WHERE other.code = f.code AND other.subject = f.subject AND other.id <> f.id
        AND other.alerted_at >= %(cutoff)s
  )
RETURNING id
"""  # noqa: S608  # table names from model metadata; values are bound parameters


@dataclass(frozen=True)
class AlertResult:
    findings: int
    emailed: int
    webhook_status: int | None = None


def alert_recipients() -> list[str]:
    """Return the e-mail addresses of the tenant's administrators (superusers and IT admins)."""
    users = get_user_model().objects.filter(is_active=True).exclude(email="")
    users = users.filter(Q(is_superuser=True) | Q(groups__name=IT_ADMIN)).distinct()
    return sorted(set(users.values_list("email", flat=True)))


def _claimed(sql: str, now: dt.datetime, cutoff: dt.datetime | None = None) -> list[Finding]:
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(sql, {"now": now, "cutoff": cutoff})
        ids = [row[0] for row in cursor.fetchall()]
    return list(Finding.objects.filter(pk__in=ids).order_by("code", "subject"))


def _tenant_slug() -> str:
    from licensing.signing import current_tenant_slug

    return current_tenant_slug()


def _listing(findings: list[Finding]) -> str:
    lines = [
        f"- [{finding.severity}] {finding.code} on {finding.subject} ({finding.state}): "
        f"{finding.summary}\n  Fix: {finding.remediation}"
        for finding in findings[:MAX_LISTED]
    ]
    if len(findings) > MAX_LISTED:
        lines.append(f"... and {len(findings) - MAX_LISTED} more in the health dashboard.")
    return "\n".join(lines)


def findings_alert_critical(*, now: dt.datetime | None = None) -> AlertResult:
    """E-mail the admins about critical findings due for an alert, then post the webhook."""
    now = now or timezone.now()
    health = health_settings_get()
    cutoff = now - dt.timedelta(hours=health.alert_repeat_hours)
    findings = _claimed(_CLAIM_CRITICAL, now, cutoff)
    if not findings:
        return AlertResult(findings=0, emailed=0)

    slug = _tenant_slug()
    recipients = alert_recipients()
    if recipients:
        send_mail(
            subject=f"Keyplane: {len(findings)} critical license health findings for {slug}",
            message=(
                f"Reconciliation found critical drift in tenant {slug}:\n\n{_listing(findings)}\n\n"
                f"Dashboard: {settings.KEYPLANE_BASE_URL}/t/{slug}/admin/health/finding/dashboard/"
            ),
            from_email=None,
            recipient_list=recipients,
        )
    webhook_status = _webhook_send(health, findings, slug=slug, now=now)
    logger.info(
        "health.alert schema=%s findings=%d recipients=%d webhook=%s",
        connection.schema_name,
        len(findings),
        len(recipients),
        webhook_status,
    )
    return AlertResult(
        findings=len(findings), emailed=len(recipients), webhook_status=webhook_status
    )


def alert_claims(findings: list[Finding], *, slug: str, now: dt.datetime) -> dict[str, object]:
    """Return the claims of a signed alert about `findings`."""
    return {
        "iss": settings.KEYPLANE_BASE_URL,
        "tid": slug,
        "iat": int(now.timestamp()),
        "findings": [
            {
                "id": finding.pk,
                "code": finding.code,
                "severity": finding.severity,
                "subject": finding.subject,
                "summary": finding.summary,
                "remediation": finding.remediation,
                "first_seen": finding.first_seen.isoformat(),
            }
            for finding in findings[:MAX_LISTED]
        ],
        "more": max(0, len(findings) - MAX_LISTED),
    }


def webhook_target_allowed(url: str) -> bool:
    """Return whether the webhook URL's host resolves only to public addresses.

    Tenant admins choose the URL, so without this check a webhook could
    reach services on the platform's own network (SSRF). Setting
    KEYPLANE_ALERT_WEBHOOK_ALLOW_PRIVATE allows private and loopback
    targets, for development and tests.
    """
    if getattr(settings, "KEYPLANE_ALERT_WEBHOOK_ALLOW_PRIVATE", False):
        return True
    host = urlsplit(url).hostname
    if not host:
        return False
    try:
        addresses = {str(info[4][0]) for info in socket.getaddrinfo(host, None)}
    except OSError:
        return False
    # NOTE: requests resolves the name again, so a DNS answer that changes
    # between the two lookups (DNS rebinding) is not caught here.
    return all(ipaddress.ip_address(address.split("%")[0]).is_global for address in addresses)


def _webhook_send(
    health: HealthSettings, findings: list[Finding], *, slug: str, now: dt.datetime
) -> int | None:
    if not health.alert_webhook_url:
        return None
    if not webhook_target_allowed(health.alert_webhook_url):
        logger.warning(
            "health.webhook_blocked schema=%s reason=private_address", connection.schema_name
        )
        return None
    from licensing.signing import sign_tenant_object

    token = sign_tenant_object(alert_claims(findings, slug=slug, now=now), typ=ALERT_TYP)
    started = time.monotonic()
    try:
        response = requests.post(
            health.alert_webhook_url,
            json={"alert": token},
            timeout=WEBHOOK_TIMEOUT_SECONDS,
            allow_redirects=False,
        )
    except requests.RequestException as error:
        logger.warning(
            "health.webhook_failed schema=%s error=%s", connection.schema_name, type(error).__name__
        )
        return None
    if response.status_code >= 300:
        logger.warning(
            "health.webhook_rejected schema=%s status=%d seconds=%.2f",
            connection.schema_name,
            response.status_code,
            time.monotonic() - started,
        )
    return response.status_code


_CLAIM_DIGEST = f"""
UPDATE {Finding._meta.db_table} SET digested_at = %(now)s
WHERE severity = 'warning' AND digested_at IS NULL
RETURNING id
"""  # noqa: S608  # table names from model metadata; values are bound parameters


def findings_digest(*, now: dt.datetime | None = None) -> int:
    """E-mail one digest of the warnings found since the last digest; return how many it lists.

    Warnings that resolved in the meantime are listed too, with their state,
    so a silent device whose seat was released still reaches the admins.
    """
    now = now or timezone.now()
    findings = _claimed(_CLAIM_DIGEST, now)
    health = health_settings_get()
    HealthSettings.objects.filter(pk=health.pk).update(last_digest_at=now)
    if not findings:
        return 0
    slug = _tenant_slug()
    recipients = alert_recipients()
    if recipients:
        send_mail(
            subject=f"Keyplane: daily license health digest for {slug} ({len(findings)} warnings)",
            message=(
                f"Warnings found in tenant {slug} since the last digest:\n\n{_listing(findings)}\n"
            ),
            from_email=None,
            recipient_list=recipients,
        )
    logger.info(
        "health.digest schema=%s findings=%d recipients=%d",
        connection.schema_name,
        len(findings),
        len(recipients),
    )
    return len(findings)
