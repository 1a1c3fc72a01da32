"""Periodic licensing upkeep of one tenant: key retirement and idempotency records."""

import logging
from datetime import timedelta

from django.db import connection
from django.utils import timezone

from licensing.models import IdempotencyRecord
from licensing.signing import tenant_keys_retire_expired

logger = logging.getLogger(__name__)

# Clients retry an activation within minutes; a day covers long outages.
IDEMPOTENCY_RETENTION = timedelta(days=1)


def licensing_sweep() -> dict[str, int]:
    """Retire signing keys past their verification window and purge old idempotency records.

    Returns how many rows each step changed.
    """
    retired = tenant_keys_retire_expired()
    cutoff = timezone.now() - IDEMPOTENCY_RETENTION
    purged, _ = IdempotencyRecord.objects.filter(created_at__lt=cutoff).delete()
    logger.info(
        "licensing.sweep schema=%s keys_retired=%d idempotency_purged=%d",
        connection.schema_name,
        retired,
        purged,
    )
    return {"keys_retired": retired, "idempotency_purged": purged}
