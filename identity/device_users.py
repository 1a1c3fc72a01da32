"""Binding a signed-in user to a device at activation.

A desktop application that signs its user in with the tenant's provider
(as its own client, listed in `device_client_ids`) sends the ID token with
the activation. Keyplane validates it like an admin sign-in, except for the
nonce, which only the application knows, so the token must instead be
fresh: issued at most `MAX_ID_TOKEN_AGE_SECONDS` ago. The user it names is
found or provisioned without roles and passed to activation, so that the
license token carries `usr` and the policy's per-user device limit applies.
"""

import logging
import time
from typing import Any

from django.contrib.auth.models import User
from django.db import connection

from identity.exceptions import OidcIdTokenInvalid, OidcNotConfigured
from identity.oidc import discovery_fetch, id_token_validate
from identity.platform.selectors import oidc_enabled_config_for
from identity.provisioning import federated_user_for_device

logger = logging.getLogger(__name__)

# An ID token older than this cannot bind a user, which limits the use of a
# token copied from another machine.
MAX_ID_TOKEN_AGE_SECONDS = 600


def device_user_from_id_token(*, id_token: str) -> User:
    """Return the current tenant's user named by a desktop application's ID token.

    Raises OidcNotConfigured when the tenant has no provider or no desktop
    client ids, OidcIssuerMismatch or OidcIdTokenInvalid for a token that
    fails validation or is older than MAX_ID_TOKEN_AGE_SECONDS, and
    OidcEmailDomainNotAllowed, OidcUsernameTaken or OidcUserInactive for
    the account it names.
    """
    config = oidc_enabled_config_for(getattr(connection, "tenant", None))
    if config is None or not config.device_client_ids:
        raise OidcNotConfigured(
            "This organisation has no desktop client configured for single sign-on, so "
            "devices cannot be bound to users.",
            remediation="Activate without an ID token, or ask the platform operator to add "
            "the desktop application's client id.",
        )
    metadata = discovery_fetch(config)
    error: Exception | None = None
    claims: dict[str, Any] | None = None
    for client_id in config.device_client_ids:
        try:
            claims = id_token_validate(
                config=config, metadata=metadata, id_token=id_token, nonce="", audience=client_id
            )
            break
        except OidcIdTokenInvalid as invalid:
            error = invalid
    if claims is None:
        raise error or OidcIdTokenInvalid("The ID token matches no desktop client id.")

    age = time.time() - float(claims.get("iat", 0))
    if age > MAX_ID_TOKEN_AGE_SECONDS:
        raise OidcIdTokenInvalid(
            f"The ID token was issued {int(age)} s ago; a device accepts one issued within "
            f"{MAX_ID_TOKEN_AGE_SECONDS} s.",
            remediation="Sign in again in the desktop application, then activate.",
        )
    user = federated_user_for_device(config=config, claims=claims)
    logger.info("identity.device_user_bound user=%s", user.pk)
    return user
