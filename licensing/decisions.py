"""Decision-log entries for licensing decisions.

A thin layer over `audit.services.decision_record`, which appends a
hash-chained entry in the caller's transaction and locks the tenant's chain
head until that transaction ends: callers record their decision as the last
step of a short transaction. `reason` is a stable code; free text that an
administrator typed (why a seat was released) goes into `data["note"]`.
"""

import logging
from typing import Any

from audit.services import decision_record

logger = logging.getLogger(__name__)


def decision(
    *,
    event: str,
    outcome: str,
    reason: str = "",
    actor: str = "",
    subject: str = "",
    note: str = "",
    data: dict[str, Any] | None = None,
) -> None:
    """Append a decision-log entry and log it."""
    logger.info("%s outcome=%s reason=%s subject=%s", event, outcome, reason, subject)
    payload = dict(data or {})
    if note:
        payload["note"] = note[:500]
    decision_record(
        event=event, outcome=outcome, reason=reason, actor=actor, subject=subject, data=payload
    )
