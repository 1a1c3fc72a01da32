"""Admin pages: enrollment tokens in the tenant admin, provider settings in the platform admin."""

import re
import uuid
from typing import Any

import pytest
from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError
from django.db import connection
from django.test import Client
from django_tenants.utils import schema_context

from identity.enrollment import enrollment_token_hash
from identity.models import EnrollmentToken
from identity.platform.models import TenantOidcConfig
from licensing.models import DeviceGroup
from portal.problems import KeyplaneError
from tests.licensing.conftest import grant_make, product_ensure

TENANT_ADMIN_PASSWORD = "correct-horse-battery"


def _tenant_admin(tenant: Any) -> Client:
    browser = Client()
    response = browser.post(
        f"/t/{tenant.slug}/admin/login/",
        {"username": f"{tenant.slug}-admin", "password": TENANT_ADMIN_PASSWORD},
    )
    connection.set_schema_to_public()
    assert response.status_code == 302
    return browser


def _grant_and_group(tenant: Any, seats: int = 3) -> tuple[Any, DeviceGroup]:
    product_ensure()
    with schema_context(tenant.schema_name):
        grant, _ = grant_make(seat_count=seats)
        group = DeviceGroup.objects.create(name=f"group-{uuid.uuid4().hex[:6]}")
    return grant, group


def test_admin_enrollment_create_shows_token_once(tenant_alpha: Any) -> None:
    grant, group = _grant_and_group(tenant_alpha)
    browser = _tenant_admin(tenant_alpha)
    response = browser.post(
        "/t/alpha/admin/identity/enrollmenttoken/add/",
        {
            "label": "lab machines",
            "grant": grant.pk,
            "group": group.pk,
            "max_uses": 2,
            "expires_in_days": 14,
        },
        follow=True,
    )
    connection.set_schema_to_public()
    page = response.content.decode()
    tokens = re.findall(r"kpe_[A-Za-z0-9_-]{43}", page)
    assert response.status_code == 200
    assert len(set(tokens)) == 1
    with schema_context(tenant_alpha.schema_name):
        row = EnrollmentToken.objects.get(token_hash=enrollment_token_hash(tokens[0]))
        assert row.created_by is not None
        assert row.created_by.username == "alpha-admin"

    listing = browser.get("/t/alpha/admin/identity/enrollmenttoken/")
    connection.set_schema_to_public()
    assert tokens[0] not in listing.content.decode()
    assert "0 / 2" in listing.content.decode()


def test_admin_enrollment_over_seats_rejected(tenant_alpha: Any) -> None:
    grant, group = _grant_and_group(tenant_alpha, seats=1)
    browser = _tenant_admin(tenant_alpha)
    response = browser.post(
        "/t/alpha/admin/identity/enrollmenttoken/add/",
        {"label": "x", "grant": grant.pk, "group": group.pk, "max_uses": 5, "expires_in_days": 1},
    )
    connection.set_schema_to_public()
    assert response.status_code == 200
    assert "must be between 1 and the grant&#x27;s 1 seats" in response.content.decode()
    with schema_context(tenant_alpha.schema_name):
        assert not EnrollmentToken.objects.filter(grant=grant).exists()


def test_admin_enrollment_revoke_action(tenant_alpha: Any) -> None:
    from identity.enrollment import enrollment_token_create

    grant, group = _grant_and_group(tenant_alpha)
    with schema_context(tenant_alpha.schema_name):
        row, _ = enrollment_token_create(
            grant_id=grant.pk,
            group_name=group.name,
            max_uses=1,
            expires_in_days=1,
            label="x",
            acting_user=None,
        )
    browser = _tenant_admin(tenant_alpha)
    response = browser.post(
        "/t/alpha/admin/identity/enrollmenttoken/",
        {"action": "revoke_selected", "_selected_action": [row.pk]},
    )
    connection.set_schema_to_public()
    assert response.status_code == 302
    with schema_context(tenant_alpha.schema_name):
        row.refresh_from_db()
        assert row.revoked_at is not None


def test_platform_admin_stores_secret_encrypted(tenant_beta: Any) -> None:
    operator = get_user_model().objects.create_superuser(
        username=f"operator-{uuid.uuid4().hex[:8]}", password="operator-password-1"
    )
    browser = Client()
    browser.force_login(operator)
    secret = f"client-secret-{uuid.uuid4().hex}"
    response = browser.post(
        "/admin/identity_platform/tenantoidcconfig/add/",
        {
            "tenant": tenant_beta.pk,
            "enabled": "on",
            "issuer": "https://idp.beta.example",
            "client_id": "keyplane-beta",
            "client_secret": secret,
            "scopes": "openid email profile",
            "groups_claim": "groups",
            "allowed_email_domains": "beta.example, @Corp.Beta.example",
            "local_password_signin": "on",
        },
    )
    assert response.status_code == 302, response.content.decode()[:2000]
    config = TenantOidcConfig.objects.get(tenant=tenant_beta)
    assert secret.encode() not in bytes(config.client_secret_envelope)
    assert config.client_secret() == secret
    assert config.allowed_email_domains == ["beta.example", "corp.beta.example"]
    change_page = browser.get(f"/admin/identity_platform/tenantoidcconfig/{config.pk}/change/")
    assert secret not in change_page.content.decode()
    history = config.history.first()
    assert history is not None
    assert not hasattr(history, "client_secret_envelope")


def test_config_secret_bound_to_tenant(tenant_alpha: Any, tenant_beta: Any) -> None:
    from licensing.keystore import KeyStoreError

    alpha = TenantOidcConfig(tenant=tenant_alpha)
    alpha.client_secret_set("alpha-secret")
    moved = TenantOidcConfig(
        tenant=tenant_beta, client_secret_envelope=alpha.client_secret_envelope
    )
    with pytest.raises(KeyStoreError):
        moved.client_secret()


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("issuer", "http://idp.example.com", "must use https"),
        ("issuer", "https://idp.example.com/", "ends with a slash"),
        ("scopes", "email profile", "must include openid"),
        ("allowed_email_domains", [], "at least one e-mail domain"),
    ],
)
def test_config_clean_rejects(tenant_alpha: Any, field: str, value: Any, message: str) -> None:
    config = TenantOidcConfig(
        tenant=tenant_alpha,
        issuer="https://idp.example.com",
        client_id="keyplane",
        allowed_email_domains=["example.com"],
    )
    setattr(config, field, value)
    with pytest.raises(ValidationError) as caught:
        config.full_clean()
    assert message in str(caught.value.message_dict[field])


def test_unreadable_secret_raises_coded_error(tenant_alpha: Any) -> None:
    from identity.oidc import authorization_url

    config = TenantOidcConfig(
        tenant=tenant_alpha,
        issuer="https://idp.example.com",
        client_id="keyplane",
        client_secret_envelope=b"KPE1" + b"\x00" * 80,
    )
    with pytest.raises(KeyplaneError) as caught:
        authorization_url(
            config=config,
            metadata={"authorization_endpoint": "https://idp.example.com/authorize"},
            redirect_uri="https://keyplane.example/t/alpha/oidc/callback/",
            state="state",
            nonce="nonce",
            code_verifier="v" * 48,
        )
    assert caught.value.code == "oidc_client_secret_unreadable"
