"""Periodic audit work per tenant: chaining, checkpoints, retention purge and verification.

Each task runs in the schema it was sent to (see portal/celery.py) and calls
one service, so each has a management command that does the same.
"""

import logging

from celery import shared_task
from django.db import connection

from audit.exceptions import CheckpointSignerMissing
from audit.services import (
    checkpoint_create,
    decision_log_chain_pass,
    decision_log_purge,
    verification_alert,
)

logger = logging.getLogger(__name__)

# Well below the task's time limit, so a held lock never gets the task killed.
CHAIN_LOCK_TIMEOUT_SECONDS = 30


@shared_task(name="audit.chain", time_limit=120)
def chain_entries() -> int:
    """Chain entries that no chainer thread chained, for example after a worker died.

    Waits up to CHAIN_LOCK_TIMEOUT_SECONDS for the chaining lock. When it
    returns, every entry committed before the task started is chained,
    unless another connection kept the lock or the backlog exceeded one
    pass. The next run then goes on. Returns how many it chained.
    """
    result = decision_log_chain_pass(wait=True, lock_timeout=CHAIN_LOCK_TIMEOUT_SECONDS)
    if result.chained or not result.done:
        logger.info(
            "audit.chain_caught_up schema=%s entries=%d pending_left=%s",
            connection.schema_name,
            result.chained,
            not result.done,
        )
    return result.chained


@shared_task(name="audit.checkpoint", time_limit=120)
def checkpoint() -> int | None:
    """Sign the tenant's chain head; return the sequence number covered, or None."""
    try:
        created = checkpoint_create()
    except CheckpointSignerMissing:
        logger.warning(
            "audit.checkpoint_skipped schema=%s reason=no_signer", connection.schema_name
        )
        return None
    return created.seq if created is not None else None


@shared_task(name="audit.purge", time_limit=600)
def purge() -> int:
    """Delete the tenant's decision-log entries past retention; return how many."""
    return decision_log_purge()


@shared_task(name="audit.verify", time_limit=600)
def verify() -> bool:
    """Verify the tenant's chain and alert the configured recipients on failure."""
    from audit.selectors import chain_verify

    report = chain_verify()
    if not report.ok:
        verification_alert(report=report)
    return report.ok
