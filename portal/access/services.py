"""Writes for API tokens: issue and revoke."""

import logging
from datetime import datetime
from typing import Any

from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone

from portal.access.models import SCOPES, ApiToken, api_token_generate, api_token_hash

logger = logging.getLogger(__name__)


def api_token_issue(
    *, name: str, user: Any, scopes: list[str], expires_at: datetime | None = None
) -> tuple[ApiToken, str]:
    """Create a token and return it with its secret, which is shown only this once."""
    unknown = sorted(set(scopes) - set(SCOPES))
    if unknown:
        raise ValidationError(f"Unknown scopes {unknown}; choose from {sorted(SCOPES)}.")
    if not scopes:
        raise ValidationError("A token needs at least one scope.")
    secret = api_token_generate()
    with transaction.atomic():
        token = ApiToken.objects.create(
            name=name,
            user=user,
            scopes=sorted(set(scopes)),
            token_hash=api_token_hash(secret),
            hint=secret[-4:],
            expires_at=expires_at,
        )
    logger.info("api_token.issued token=%s user=%s scopes=%s", token.pk, user.pk, token.scopes)
    return token, secret


def api_token_revoke(*, token_id: int, acting_user: Any) -> None:
    with transaction.atomic():
        token = ApiToken.objects.select_for_update().get(pk=token_id)
        if token.revoked_at is None:
            token.revoked_at = timezone.now()
            token.save(update_fields=["revoked_at"])
    logger.info("api_token.revoked token=%s by=%s", token_id, getattr(acting_user, "pk", None))
