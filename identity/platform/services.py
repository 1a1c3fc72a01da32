"""Writes to the per-tenant sign-in settings."""

import logging
from typing import Any

from django.db import transaction

from identity.platform.models import TenantOidcConfig

logger = logging.getLogger(__name__)


def oidc_config_save(
    *, config: TenantOidcConfig, client_secret: str | None, acting_user: Any
) -> TenantOidcConfig:
    """Validate and save a tenant's sign-in settings.

    `client_secret` None keeps the stored secret, "" removes it (a public
    client), and any other value replaces it.
    """
    if client_secret is not None:
        if client_secret:
            config.client_secret_set(client_secret)
        else:
            config.client_secret_envelope = b""
    config.full_clean(exclude=["client_secret_envelope"])
    config._history_user = acting_user  # type: ignore[attr-defined]  # read by simple_history
    with transaction.atomic():
        config.save()
    logger.info(
        "identity.oidc_config.saved tenant=%s enabled=%s local_password=%s secret_changed=%s",
        config.tenant_id,
        config.enabled,
        config.local_password_signin,
        client_secret is not None,
    )
    return config
