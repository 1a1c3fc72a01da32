"""Celery tasks of the overlays app: thin wrappers around services."""

import logging

from celery import shared_task

from overlays.services import rollouts_advance

logger = logging.getLogger(__name__)


@shared_task(name="overlays.rollouts_advance", time_limit=120, soft_time_limit=100)
def rollouts_advance_task() -> int:
    """Promote the current tenant's scheduled rollouts that are due; return how many."""
    promoted = rollouts_advance()
    if promoted:
        logger.info("overlay.rollouts_advanced promoted=%d", promoted)
    return promoted
