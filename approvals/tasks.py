"""Celery tasks of the approvals app; each loads by id and calls one service.

Every task runs in the tenant schema it was sent from (see portal/celery.py).
The periodic ones are scheduled per tenant in portal/schedule.py and each
has a management command doing the same.
"""

import logging

from celery import shared_task
from django.contrib.auth import get_user_model

from approvals import renewals, services
from approvals.models import ChangeRequest
from approvals.notifications import request_notify
from audit.actors import system_user
from portal.problems import KeyplaneError

logger = logging.getLogger(__name__)


@shared_task(name="approvals.renewals_scan", time_limit=3600, soft_time_limit=3540)
def renewals_scan() -> int:
    """Raise the renewal requests that are due; return how many were raised."""
    return renewals.renewals_scan().created


@shared_task(name="approvals.sweep", time_limit=600, soft_time_limit=540)
def sweep() -> dict[str, int]:
    """Send due reminders and alerts, expire unanswered requests, move lapsed grants on."""
    counts = {
        "escalated": services.changerequests_escalate(),
        "expired_requests": services.changerequests_expire(),
    }
    counts.update(renewals.terms_sweep())
    return counts


@shared_task(name="approvals.apply_due", time_limit=600, soft_time_limit=540)
def apply_due() -> int:
    """Apply the approved requests whose time or maintenance window has come."""
    return services.changerequests_apply_due()


@shared_task(name="approvals.apply", time_limit=300, soft_time_limit=270)
def apply(request_id: int, user_id: int | None) -> str:
    """Apply one approved request for the user whose approval completed the quorum."""
    user = get_user_model().objects.filter(pk=user_id).first() if user_id else None
    try:
        request = services.changerequest_apply(
            request_id=request_id, acting_user=user or system_user(services.APPLY_ACTOR)
        )
    except KeyplaneError as error:
        logger.warning(
            "change_request.apply_task_failed request=%s code=%s", request_id, error.code
        )
        return error.code
    return request.state


@shared_task(name="approvals.notify", time_limit=120, soft_time_limit=100)
def notify(request_id: int, event: str) -> int:
    """E-mail the audience of a request event; a missing request is logged and skipped."""
    request = ChangeRequest.objects.select_related("requester").filter(pk=request_id).first()
    if request is None:
        logger.warning("change_request.notify_missing request=%s", request_id)
        return 0
    return request_notify(request, event)
