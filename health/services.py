"""Admin-side writes on findings and health settings."""

import logging
from typing import Any

from django.db import transaction
from django.utils import timezone

from audit.services import decision_record
from health.models import Finding
from portal.problems import KeyplaneError, NotFound

logger = logging.getLogger(__name__)


class FindingResolved(KeyplaneError):
    """Raised when an admin acknowledges a finding that is already resolved."""

    code = "finding_resolved"
    status = 409
    title = "Finding already resolved"
    remediation = "Nothing to do: the drift is gone; list open findings to see what remains."


def finding_acknowledge(*, finding_id: int, acting_user: Any) -> Finding:
    """Mark an open finding as acknowledged by `acting_user`; acknowledging twice changes nothing.

    An acknowledged finding stays on the dashboard and still resolves by
    itself when the drift is gone, but it is no longer re-alerted.
    """
    with transaction.atomic():
        finding = Finding.objects.select_for_update().filter(pk=finding_id).first()
        if finding is None:
            raise NotFound(f"No finding has the id {finding_id}.")
        if finding.state == Finding.State.RESOLVED:
            raise FindingResolved(f"Finding {finding_id} was resolved at {finding.resolved_at}.")
        if finding.state == Finding.State.ACKNOWLEDGED:
            return finding
        finding.state = Finding.State.ACKNOWLEDGED
        finding.acknowledged_at = timezone.now()
        finding.acknowledged_by = acting_user
        finding._history_user = acting_user  # type: ignore[attr-defined]  # read by simple-history
        finding.save(update_fields=["state", "acknowledged_at", "acknowledged_by"])
        decision_record(
            event="health.finding_acknowledged",
            outcome="done",
            actor=getattr(acting_user, "username", ""),
            subject=f"finding:{finding.pk}",
            data={"code": finding.code, "subject": finding.subject},
        )
    logger.info("health.finding_acknowledged finding=%s", finding.pk)
    return finding
