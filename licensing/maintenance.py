"""Periodic licensing upkeep of one tenant: key retirement and idempotency records."""

import logging
from datetime import timedelta

from django.db import connection
from django.utils import timezone

from licensing.models import IdempotencyRecord, IssuedToken
from licensing.signing import tenant_keys_retire_expired

logger = logging.getLogger(__name__)

# Clients retry an activation within minutes; a day covers long outages.
IDEMPOTENCY_RETENTION = timedelta(days=1)
# Token records are kept this long after expiry, for revocation lookups and audits.
ISSUED_TOKEN_RETENTION = timedelta(days=30)


def licensing_sweep() -> dict[str, int]:
    """Retire signing keys past their window; purge old idempotency and token records.

    Returns how many rows each step changed.
    """
    retired = tenant_keys_retire_expired()
    cutoff = timezone.now() - IDEMPOTENCY_RETENTION
    purged, _ = IdempotencyRecord.objects.filter(created_at__lt=cutoff).delete()
    token_cutoff = timezone.now() - ISSUED_TOKEN_RETENTION
    tokens, _ = IssuedToken.objects.filter(expires_at__lt=token_cutoff).delete()
    logger.info(
        "licensing.sweep schema=%s keys_retired=%d idempotency_purged=%d tokens_purged=%d",
        connection.schema_name,
        retired,
        purged,
        tokens,
    )
    return {"keys_retired": retired, "idempotency_purged": purged, "tokens_purged": tokens}
