"""Single sign-on to the tenant admin through a real provider process.

Keyplane runs under gunicorn (`live_site`) and the provider under gunicorn
(`oidc_provider`); the test drives both over HTTP the way a browser does.
Tenant alpha trusts the provider for e-mail domain alpha.example, tenant
beta trusts the same provider with its own client for beta.example only.
"""

from collections.abc import Iterator
from typing import Any

import pytest
import requests
from django.contrib.auth import get_user_model
from django_tenants.utils import schema_context

from audit.models import DecisionLogEntry
from identity.models import FederatedIdentity, RoleMapping
from identity.platform.models import TenantOidcConfig
from identity.platform.services import oidc_config_save
from portal.access.roles import AUDITOR, IT_ADMIN
from portal.tenants.models import Tenant
from tests.conftest import chained_decisions
from tests.identity.conftest import Provider, sso_sign_in

pytestmark = [pytest.mark.live]

CLIENT_SECRETS = {"alpha": "alpha-client-secret-1", "beta": "beta-client-secret-1"}
GROUP_IT = "kp-it-admins"
GROUP_AUDIT = "kp-auditors"


def _configure(slug: str, *, issuer: str, domains: list[str]) -> TenantOidcConfig:
    tenant = Tenant.objects.get(slug=slug)
    config = TenantOidcConfig.objects.filter(tenant=tenant).first() or TenantOidcConfig(
        tenant=tenant
    )
    config.enabled = True
    config.issuer = issuer
    config.client_id = f"keyplane-{slug}"
    config.allowed_email_domains = domains
    config.local_password_signin = True
    return oidc_config_save(config=config, client_secret=CLIENT_SECRETS[slug], acting_user=None)


@pytest.fixture(scope="module")
def provider_clients(oidc_provider: Provider, live_site: str) -> Provider:
    oidc_provider.seed(
        clients=[
            {
                "client_id": f"keyplane-{slug}",
                "client_secret": secret,
                "redirect_uris": [f"{live_site}/t/{slug}/oidc/callback/"],
            }
            for slug, secret in CLIENT_SECRETS.items()
        ]
    )
    return oidc_provider


@pytest.fixture
def federation(provider_clients: Provider, committed_db: None) -> Iterator[Provider]:
    """Both tenants configured for the provider, with alpha's group mappings.

    The rows are committed for the server processes and removed afterwards,
    so tests in other modules start without a provider configured.
    """
    _configure("alpha", issuer=provider_clients.issuer, domains=["alpha.example"])
    _configure("beta", issuer=provider_clients.issuer, domains=["beta.example"])
    with schema_context(Tenant.objects.get(slug="alpha").schema_name):
        RoleMapping.objects.get_or_create(idp_group=GROUP_IT, role=IT_ADMIN)
        RoleMapping.objects.get_or_create(idp_group=GROUP_AUDIT, role=AUDITOR)
    yield provider_clients
    TenantOidcConfig.objects.filter(tenant__slug__in=CLIENT_SECRETS).delete()
    with schema_context(Tenant.objects.get(slug="alpha").schema_name):
        RoleMapping.objects.filter(idp_group__in=[GROUP_IT, GROUP_AUDIT]).delete()


def _in(slug: str) -> Any:
    return schema_context(Tenant.objects.get(slug=slug).schema_name)


def _roles(slug: str, username: str) -> set[str]:
    with _in(slug):
        user = get_user_model().objects.get(username=username)
        return set(user.groups.values_list("name", flat=True))


def _last_decision(slug: str, event: str) -> DecisionLogEntry:
    with _in(slug):
        entry = chained_decisions().filter(event=event).order_by("-seq").first()
        assert entry is not None
        return entry


def test_discovery_document_matches_issuer(federation: Provider) -> None:
    from identity.oidc import discovery_fetch

    config = TenantOidcConfig.objects.get(tenant__slug="alpha")
    metadata = discovery_fetch(config)
    assert metadata["issuer"] == federation.issuer
    assert metadata["authorization_endpoint"] == f"{federation.issuer}/authorize/"
    assert "S256" in metadata["code_challenge_methods_supported"]
    assert requests.get(metadata["jwks_uri"], timeout=10).json()["keys"]


def test_login_redirect_carries_pkce_state_nonce(federation: Provider, live_site: str) -> None:
    response = requests.get(f"{live_site}/t/alpha/oidc/login/", allow_redirects=False, timeout=30)
    location = response.headers["Location"]
    assert response.status_code == 302
    assert location.startswith(f"{federation.issuer}/authorize/")
    assert "code_challenge_method=S256" in location
    assert "code_challenge=" in location
    assert "nonce=" in location
    assert "state=" in location
    assert "client_id=keyplane-alpha" in location


def test_sso_signin_grants_mapped_role(federation: Provider, live_site: str) -> None:
    user = federation.user(email_domain="alpha.example", groups=[GROUP_IT, "unmapped"])
    signin = sso_sign_in(live_site, "alpha", user)
    assert signin.callback is not None
    assert signin.callback.status_code == 302, signin.callback.text[:500]
    assert signin.callback.headers["Location"] == "/t/alpha/admin/"

    index = signin.browser.get(f"{live_site}/t/alpha/admin/", allow_redirects=False, timeout=30)
    assert index.status_code == 200
    assert "Tenant administration" in index.text
    devices = signin.browser.get(f"{live_site}/t/alpha/admin/licensing/device/", timeout=30)
    assert devices.status_code == 200
    decision_log = signin.browser.get(
        f"{live_site}/t/alpha/admin/audit/decisionlogentry/", allow_redirects=False, timeout=30
    )
    assert decision_log.status_code == 403
    assert _roles("alpha", user["email"]) == {IT_ADMIN}
    with _in("alpha"):
        account = get_user_model().objects.get(username=user["email"])
        assert account.is_staff
        assert not account.is_superuser
        assert not account.has_usable_password()
        assert FederatedIdentity.objects.get(user=account).issuer == federation.issuer
    entry = _last_decision("alpha", "signin.oidc")
    assert entry.outcome == "granted"
    assert entry.subject == f"user:{account.pk}"
    assert entry.data["roles"] == [IT_ADMIN]


def test_sso_signin_second_tenant_refuses_user(federation: Provider, live_site: str) -> None:
    user = federation.user(email_domain="alpha.example", groups=[GROUP_IT])
    at_alpha = sso_sign_in(live_site, "alpha", user)
    assert at_alpha.callback is not None
    assert at_alpha.callback.status_code == 302

    # The same browser, already signed in at the provider, tries tenant beta.
    at_beta = sso_sign_in(live_site, "beta", user, browser=at_alpha.browser)
    assert at_beta.callback is not None
    assert at_beta.callback.status_code == 403
    assert "oidc_email_domain_not_allowed" in at_beta.callback.text
    with _in("beta"):
        assert not get_user_model().objects.filter(username=user["email"]).exists()
    assert _last_decision("beta", "signin.oidc").reason == "oidc_email_domain_not_allowed"

    beta_admin = at_alpha.browser.get(
        f"{live_site}/t/beta/admin/", allow_redirects=False, timeout=30
    )
    assert beta_admin.status_code == 302
    assert beta_admin.headers["Location"].startswith("/t/beta/admin/login/")


def test_sso_callback_at_other_tenant_rejected(federation: Provider, live_site: str) -> None:
    user = federation.user(email_domain="alpha.example", groups=[GROUP_IT])
    browser = requests.Session()
    start = browser.get(f"{live_site}/t/alpha/oidc/login/", allow_redirects=False, timeout=30)
    from tests.identity.conftest import provider_authorize

    callback_url = provider_authorize(browser, start.headers["Location"], user)
    moved = callback_url.replace("/t/alpha/", "/t/beta/")
    response = browser.get(moved, allow_redirects=False, timeout=30)
    assert response.status_code == 400
    assert "oidc_state_invalid" in response.text
    with _in("beta"):
        assert not get_user_model().objects.filter(username=user["email"]).exists()


def test_sso_callback_replay_rejected(federation: Provider, live_site: str) -> None:
    user = federation.user(email_domain="alpha.example", groups=[GROUP_AUDIT])
    signin = sso_sign_in(live_site, "alpha", user)
    assert signin.callback is not None
    assert signin.callback.status_code == 302
    replay = signin.browser.get(signin.callback_url, allow_redirects=False, timeout=30)
    assert replay.status_code == 400
    assert "oidc_state_invalid" in replay.text


def test_sso_signin_role_follows_groups(federation: Provider, live_site: str) -> None:
    user = federation.user(email_domain="alpha.example", groups=[GROUP_IT])
    first = sso_sign_in(live_site, "alpha", user)
    assert first.callback is not None
    assert first.callback.status_code == 302
    assert _roles("alpha", user["email"]) == {IT_ADMIN}

    federation.seed(users=[{**user, "groups": [GROUP_AUDIT]}])
    second = sso_sign_in(live_site, "alpha", user)
    assert second.callback is not None
    assert second.callback.status_code == 302
    assert _roles("alpha", user["email"]) == {AUDITOR}

    federation.seed(users=[{**user, "groups": ["unmapped"]}])
    third = sso_sign_in(live_site, "alpha", user)
    assert third.callback is not None
    assert third.callback.status_code == 403
    assert "oidc_no_role" in third.callback.text
    assert _roles("alpha", user["email"]) == set()
    with _in("alpha"):
        assert not get_user_model().objects.get(username=user["email"]).is_staff
    assert _last_decision("alpha", "signin.oidc").reason == "oidc_no_role"


def test_sso_wrong_issuer_refused(federation: Provider, live_site: str) -> None:
    # The provider states its issuer with 127.0.0.1; the same server reached
    # as localhost is a different issuer string, so discovery must fail.
    wrong = federation.issuer.replace("127.0.0.1", "localhost")
    _configure("alpha", issuer=wrong, domains=["alpha.example"])
    response = requests.get(f"{live_site}/t/alpha/oidc/login/", allow_redirects=False, timeout=30)
    assert response.status_code == 401
    assert "oidc_issuer_mismatch" in response.text
    assert _last_decision("alpha", "signin.oidc").reason == "oidc_issuer_mismatch"


def test_login_page_shows_sso_link_for_tenant_only(federation: Provider, live_site: str) -> None:
    tenant_page = requests.get(f"{live_site}/t/alpha/admin/login/", timeout=30)
    platform_page = requests.get(f"{live_site}/admin/login/", timeout=30)
    assert 'href="/t/alpha/oidc/login/"' in tenant_page.text
    assert "sso-signin" not in platform_page.text
    assert "id_password" in platform_page.text
