"""E-mails about change requests: to approvers, to the requester and alerts to tenant admins.

Each message links to the request in the tenant admin. The mail backend is
Django's (`EMAIL_BACKEND`), the console backend in development.
"""

import logging
from typing import Any

from django.conf import settings
from django.core.mail import send_mass_mail
from django.template.loader import render_to_string

from approvals.models import ChangeRequest
from approvals.selectors import approval_settings, approvers, tenant_admins
from licensing.signing import current_tenant_slug

logger = logging.getLogger(__name__)

# The audience of each event; the message template is templates/approvals/email/<event>.txt.
AUDIENCES = {
    "raised": "approvers",
    "edited": "approvers",
    "reminder": "approvers",
    "alert": "admins",
    "expired": "admins",
    "rejected": "requester",
    "failed": "requester",
}


def request_admin_url(request: ChangeRequest) -> str:
    """Return the absolute URL of the request's page in the tenant admin."""
    return (
        f"{settings.KEYPLANE_BASE_URL}/t/{current_tenant_slug()}"
        f"/admin/approvals/changerequest/{request.pk}/change/"
    )


def _recipients(request: ChangeRequest, audience: str) -> list[str]:
    if audience == "approvers":
        users: Any = approvers(exclude_user_id=request.requester_id)
        return [user.email for user in users]
    if audience == "admins":
        extra = [
            address for address in approval_settings().notify_emails if isinstance(address, str)
        ]
        return sorted({user.email for user in tenant_admins()} | set(extra))
    email = getattr(request.requester, "email", "")
    return [email] if email else []


def request_notify(request: ChangeRequest, event: str) -> int:
    """Send the `event` message about a request to its audience; return the number of e-mails."""
    audience = AUDIENCES[event]
    recipients = _recipients(request, audience)
    if not recipients:
        logger.warning(
            "change_request.notify_skipped request=%s event=%s reason=no_recipients",
            request.pk,
            event,
        )
        return 0
    context = {
        "request": request,
        "event": event,
        "url": request_admin_url(request),
        "tenant": current_tenant_slug(),
    }
    subject = render_to_string("approvals/email/subject.txt", context).strip()
    body = render_to_string(f"approvals/email/{event}.txt", context)
    sent = send_mass_mail(
        [(subject, body, settings.DEFAULT_FROM_EMAIL, [address]) for address in recipients]
    )
    logger.info("change_request.notified request=%s event=%s emails=%d", request.pk, event, sent)
    return sent
