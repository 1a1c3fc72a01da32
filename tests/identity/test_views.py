"""Single sign-on views without a provider: configuration and request budget errors."""

import secrets
from typing import Any

from django.db import connection
from django.test import Client

from tests.conftest import chained_decisions


def _get(path: str, address: str) -> Any:
    response = Client().get(path, REMOTE_ADDR=address)
    connection.set_schema_to_public()
    return response


def test_login_without_provider_not_configured(in_alpha: Any) -> None:
    response = _get("/t/alpha/oidc/login/", "10.1.0.1")
    assert response.status_code == 404
    assert "oidc_not_configured" in response.content.decode()
    connection.set_tenant(in_alpha)
    entry = chained_decisions().filter(event="signin.oidc").order_by("-seq").first()
    assert entry is not None
    assert entry.reason == "oidc_not_configured"


def test_callback_forged_state_rejected(tenant_alpha: Any) -> None:
    from identity.platform.models import TenantOidcConfig
    from identity.platform.services import oidc_config_save

    config = TenantOidcConfig(
        tenant=tenant_alpha,
        issuer="https://idp.alpha.example",
        client_id="keyplane",
        allowed_email_domains=["alpha.example"],
    )
    oidc_config_save(config=config, client_secret=None, acting_user=None)
    response = _get("/t/alpha/oidc/callback/?code=abc&state=forged", "10.1.0.2")
    assert response.status_code == 400
    assert "oidc_state_invalid" in response.content.decode()


def test_signin_views_rate_limited(tenant_alpha: Any, settings: Any) -> None:
    # Fixed windows of a day start at midnight UTC, so the three requests fall
    # into one window unless the test runs across midnight.
    settings.KEYPLANE_CLIENT_RATE_LIMITS = {
        **settings.KEYPLANE_CLIENT_RATE_LIMITS,
        "address": (2, 86400),
    }
    address = f"10.2.{secrets.randbelow(250)}.{secrets.randbelow(250)}"
    assert _get("/t/alpha/oidc/login/", address).status_code == 404
    assert _get("/t/alpha/oidc/callback/", address).status_code == 404
    limited = _get("/t/alpha/oidc/login/", address)
    assert limited.status_code == 429
    assert "rate_limited" in limited.content.decode()
    assert int(limited["Retry-After"]) >= 1
