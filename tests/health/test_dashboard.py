"""Dashboards in the tenant and platform admin, the admin API and the metrics endpoint."""

import datetime as dt
from typing import Any

from django.contrib.auth import get_user_model
from django.db import connection
from django.test import Client
from django.utils import timezone

from health.models import Finding
from health.reconcile import findings_reconcile
from licensing.models import LicenseGrant
from tests.health.conftest import Fleet, settings_set

CHART = 'class="pygal-chart"'


class TenantClient(Client):
    """A test client that puts the connection back on the tenant schema after each request."""

    schema = "alpha"

    def request(self, **request: Any) -> Any:
        try:
            return super().request(**request)
        finally:
            connection.set_schema(self.schema)


def _signed_in(slug: str) -> TenantClient:
    client = TenantClient()
    client.schema = slug
    response = client.post(
        f"/t/{slug}/admin/login/",
        {"username": f"{slug}-admin", "password": "correct-horse-battery"},
    )
    assert response.status_code == 302, response.content
    return client


def _fleet_with_drift(fleet: Fleet) -> None:
    settings_set(minimum_client_version="2.1.0")
    for version in ("2.0.0", "2.1.0", "2.1.0"):
        fleet.checkin(fleet.device(), client_version=version)
    LicenseGrant.objects.filter(pk=fleet.grant.pk).update(
        term_end=timezone.now() + dt.timedelta(days=20)
    )
    findings_reconcile()


def test_tenant_dashboard_renders_with_data(fleet: Fleet) -> None:
    _fleet_with_drift(fleet)
    client = _signed_in("alpha")

    response = client.get("/t/alpha/admin/health/finding/dashboard/")

    assert response.status_code == 200
    page = response.content.decode()
    assert "License status per grant" in page
    assert page.count(CHART) == 4
    assert "client_version_below_minimum" in page
    assert "2.1.0" in page
    assert "kozea.github.io" not in page  # no script from a CDN


def test_tenant_dashboard_renders_for_empty_tenant(in_beta: Any) -> None:
    client = _signed_in("beta")

    response = client.get("/t/beta/admin/health/finding/dashboard/")

    assert response.status_code == 200
    page = response.content.decode()
    assert "This organisation has no license grants yet." in page
    assert "No device has checked in yet." in page
    assert page.count(CHART) == 4


def test_tenant_dashboard_needs_sign_in(in_alpha: Any) -> None:
    response = TenantClient().get("/t/alpha/admin/health/finding/dashboard/")

    assert response.status_code == 302
    assert "/t/alpha/admin/login/" in response["Location"]


def test_tenant_dashboard_escapes_device_strings(fleet: Fleet) -> None:
    fleet.checkin(fleet.device(), client_version="1.0.0-<b>x")
    client = _signed_in("alpha")

    page = client.get("/t/alpha/admin/health/finding/dashboard/").content.decode()

    assert "1.0.0-<b>x" not in page
    assert "1.0.0-&lt;b&gt;x" in page


def test_finding_admin_acknowledge_action(fleet: Fleet) -> None:
    _fleet_with_drift(fleet)
    finding = Finding.objects.get(code="client_version_below_minimum")
    client = _signed_in("alpha")

    response = client.post(
        "/t/alpha/admin/health/finding/",
        {"action": "acknowledge", "_selected_action": [finding.pk]},
    )

    assert response.status_code == 302
    finding.refresh_from_db()
    assert finding.state == "acknowledged"
    assert finding.acknowledged_by.username == "alpha-admin"


def test_findings_api_lists_unresolved(fleet: Fleet) -> None:
    _fleet_with_drift(fleet)
    client = _signed_in("alpha")

    response = client.get("/t/alpha/api/v1/admin/findings", {"severity": "warning"})

    assert response.status_code == 200
    codes = [item["code"] for item in response.json()["results"]]
    assert codes == ["client_version_below_minimum"]


def test_findings_api_invalid_filter_rejected(fleet: Fleet) -> None:
    client = _signed_in("alpha")

    response = client.get("/t/alpha/api/v1/admin/findings", {"state": "closed"})

    assert response.status_code == 400
    assert response.json()["code"] == "request_invalid"


def test_findings_api_acknowledge(fleet: Fleet) -> None:
    _fleet_with_drift(fleet)
    finding = Finding.objects.get(code="client_version_below_minimum")
    client = _signed_in("alpha")

    response = client.post(f"/t/alpha/api/v1/admin/findings/{finding.pk}/acknowledge")

    assert response.status_code == 200
    assert response.json()["state"] == "acknowledged"


def test_findings_api_needs_sign_in(in_alpha: Any) -> None:
    response = TenantClient().get("/t/alpha/api/v1/admin/findings")

    assert response.status_code in (401, 403)
    assert response.json()["code"] in ("not_authenticated", "permission_denied")


def _platform_client() -> Client:
    connection.set_schema_to_public()
    user = get_user_model().objects.create_superuser(
        username="platform-operator", email="ops@example.com", password="correct-horse-battery"
    )
    client = Client()
    client.force_login(user)
    return client


def test_platform_dashboard_sorted_by_risk(fleet: Fleet) -> None:
    _fleet_with_drift(fleet)
    client = _platform_client()

    response = client.get("/admin/health/")

    assert response.status_code == 200
    page = response.content.decode()
    assert page.index("(alpha)") < page.index("(beta)")
    assert CHART in page


def test_platform_dashboard_sorted_by_name(fleet: Fleet) -> None:
    client = _platform_client()

    response = client.get("/admin/health/", {"sort": "name"})

    assert response.status_code == 200
    page = response.content.decode()
    assert page.index("(alpha)") < page.index("(beta)")


def test_platform_dashboard_needs_staff(in_alpha: Any) -> None:
    connection.set_schema_to_public()

    response = Client().get("/admin/health/")

    assert response.status_code == 302


def test_metrics_findings_by_tenant_and_severity(fleet: Fleet) -> None:
    _fleet_with_drift(fleet)
    connection.set_schema_to_public()

    response = Client().get("/metrics")

    assert response.status_code == 200
    text = response.content.decode()
    assert 'keyplane_findings_open{severity="warning",tenant="alpha"} 1.0' in text
    assert 'keyplane_findings_open{severity="info",tenant="alpha"} 1.0' in text
    assert 'keyplane_findings_open{severity="critical",tenant="beta"} 0.0' in text


def _bearer(scopes: list[str]) -> dict[str, str]:
    from portal.access.services import api_token_issue

    user = get_user_model().objects.get(username="alpha-admin")
    _, secret = api_token_issue(name="health", user=user, scopes=scopes)
    return {"Authorization": f"Bearer {secret}"}


def test_findings_api_token_with_devices_scope(fleet: Fleet) -> None:
    _fleet_with_drift(fleet)

    response = TenantClient().get(
        "/t/alpha/api/v1/admin/findings", headers=_bearer(["devices:read"])
    )

    assert response.status_code == 200
    assert len(response.json()["results"]) == 2


def test_findings_api_token_without_scope_rejected(fleet: Fleet) -> None:
    response = TenantClient().get(
        "/t/alpha/api/v1/admin/findings", headers=_bearer(["grants:read"])
    )

    assert response.status_code == 403
    assert response.json()["code"] == "permission_denied"
