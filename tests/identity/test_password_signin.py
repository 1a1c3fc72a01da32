"""Password sign-in to the tenant admin: decision log, lockout and the tenant's switch."""

import uuid
from typing import Any

import pytest
from django.contrib.auth import get_user_model
from django.db import connection
from django.test import Client
from django_tenants.utils import schema_context

from audit.models import DecisionLogEntry
from identity.platform.models import TenantOidcConfig
from identity.platform.services import oidc_config_save
from tests.conftest import chained_decisions

PASSWORD = "a-long-test-password-1"


def _staff_user(tenant: Any, username: str | None = None) -> Any:
    with schema_context(tenant.schema_name):
        return get_user_model().objects.create_user(
            username=username or f"staff-{uuid.uuid4().hex[:8]}",
            password=PASSWORD,
            is_staff=True,
        )


def _sign_in(
    tenant: Any, username: str, password: str, *, client: Client | None = None, address: str = ""
) -> Any:
    browser = client or Client()
    extra = {"REMOTE_ADDR": address} if address else {}
    response = browser.post(
        f"/t/{tenant.slug}/admin/login/?next=/t/{tenant.slug}/admin/",
        {"username": username, "password": password},
        **extra,
    )
    connection.set_schema_to_public()
    return response


def _last_password_decision(tenant: Any) -> DecisionLogEntry:
    with schema_context(tenant.schema_name):
        entry = chained_decisions().filter(event="signin.password").order_by("-seq").first()
        assert entry is not None
        return entry


def _config_for(tenant: Any, **fields: Any) -> None:
    """Save the tenant's sign-in settings (rolled back with the test's transaction)."""
    config = TenantOidcConfig.objects.filter(tenant=tenant).first() or TenantOidcConfig(
        tenant=tenant
    )
    config.enabled = True
    config.issuer = "https://idp.alpha.example"
    config.client_id = "keyplane"
    config.allowed_email_domains = ["alpha.example"]
    config.local_password_signin = True
    for name, value in fields.items():
        setattr(config, name, value)
    oidc_config_save(config=config, client_secret="s3cret-value", acting_user=None)


def _password_signin_off(tenant: Any) -> None:
    _config_for(tenant, local_password_signin=False)


def test_password_signin_granted_recorded(tenant_alpha: Any) -> None:
    user = _staff_user(tenant_alpha)
    response = _sign_in(tenant_alpha, user.username, PASSWORD)
    assert response.status_code == 302
    assert response["Location"] == "/t/alpha/admin/"
    entry = _last_password_decision(tenant_alpha)
    assert entry.outcome == "granted"
    assert entry.subject == f"user:{user.pk}"


def test_password_signin_failure_recorded(tenant_alpha: Any) -> None:
    user = _staff_user(tenant_alpha)
    response = _sign_in(tenant_alpha, user.username, "wrong-password")
    assert response.status_code == 200
    entry = _last_password_decision(tenant_alpha)
    assert entry.outcome == "refused"
    assert entry.reason == "invalid_credentials"
    assert entry.data["failures"] == 1
    assert "password" not in str(entry.data).replace("signin.password", "")


def test_password_signin_locked_after_failures(tenant_alpha: Any, settings: Any) -> None:
    settings.KEYPLANE_SIGNIN_MAX_FAILURES = 3
    settings.KEYPLANE_SIGNIN_LOCKOUT_SECONDS = 900
    user = _staff_user(tenant_alpha)
    for _ in range(3):
        assert _sign_in(tenant_alpha, user.username, "wrong-password").status_code == 200

    locked = _sign_in(tenant_alpha, user.username, PASSWORD)
    assert locked.status_code == 200
    assert "try again in 15 minutes" in locked.content.decode()
    assert _last_password_decision(tenant_alpha).reason == "signin_throttled"

    elsewhere = _sign_in(tenant_alpha, user.username, PASSWORD, address="10.0.0.9")
    assert elsewhere.status_code == 302


def test_password_signin_lockout_per_tenant(
    tenant_alpha: Any, tenant_beta: Any, settings: Any
) -> None:
    settings.KEYPLANE_SIGNIN_MAX_FAILURES = 2
    username = f"shared-{uuid.uuid4().hex[:8]}"
    _staff_user(tenant_alpha, username)
    _staff_user(tenant_beta, username)
    for _ in range(2):
        _sign_in(tenant_alpha, username, "wrong-password")
    assert _sign_in(tenant_alpha, username, PASSWORD).status_code == 200
    assert _sign_in(tenant_beta, username, PASSWORD).status_code == 302


def test_password_signin_success_clears_failures(tenant_alpha: Any, settings: Any) -> None:
    settings.KEYPLANE_SIGNIN_MAX_FAILURES = 2
    user = _staff_user(tenant_alpha)
    _sign_in(tenant_alpha, user.username, "wrong-password")
    assert _sign_in(tenant_alpha, user.username, PASSWORD).status_code == 302
    _sign_in(tenant_alpha, user.username, "wrong-password")
    assert _sign_in(tenant_alpha, user.username, PASSWORD).status_code == 302


def test_password_signin_disabled_by_tenant(tenant_alpha: Any) -> None:
    user = _staff_user(tenant_alpha)
    _password_signin_off(tenant_alpha)
    response = _sign_in(tenant_alpha, user.username, PASSWORD)
    assert response.status_code == 200
    assert "single sign-on only" in response.content.decode()
    assert _last_password_decision(tenant_alpha).reason == "signin_password_disabled"


def test_password_session_ends_when_disabled(tenant_alpha: Any) -> None:
    user = _staff_user(tenant_alpha)
    browser = Client()
    assert _sign_in(tenant_alpha, user.username, PASSWORD, client=browser).status_code == 302
    assert browser.get("/t/alpha/admin/").status_code == 200
    _password_signin_off(tenant_alpha)
    after = browser.get("/t/alpha/admin/")
    connection.set_schema_to_public()
    assert after.status_code == 302
    assert after["Location"].startswith("/t/alpha/admin/login/")


def test_platform_admin_password_unaffected(tenant_alpha: Any) -> None:
    _password_signin_off(tenant_alpha)
    operator = get_user_model().objects.create_superuser(
        username=f"operator-{uuid.uuid4().hex[:8]}", password=PASSWORD
    )
    browser = Client()
    response = browser.post(
        "/admin/login/?next=/admin/", {"username": operator.username, "password": PASSWORD}
    )
    assert response.status_code == 302
    assert response["Location"] == "/admin/"


def test_login_page_without_sso_has_no_link(tenant_beta: Any) -> None:
    response = Client().get("/t/beta/admin/login/")
    connection.set_schema_to_public()
    assert response.status_code == 200
    assert "sso-signin" not in response.content.decode()


@pytest.mark.parametrize("enabled", [True, False])
def test_login_page_sso_link_follows_enabled(tenant_alpha: Any, enabled: bool) -> None:
    _config_for(tenant_alpha, enabled=enabled)
    response = Client().get("/t/alpha/admin/login/?next=/t/alpha/admin/licensing/")
    connection.set_schema_to_public()
    page = response.content.decode()
    assert ("sso-signin" in page) is enabled
    if enabled:
        assert "/t/alpha/oidc/login/?next=%2Ft%2Falpha%2Fadmin%2Flicensing%2F" in page
