"""The tenant admin in headless Chromium: a seat increase from request to dashboard.

A procurement admin raises a seat increase, an approver approves it from the
queue, the Celery worker applies it, and the license health dashboard shows
the new seat count. Runs against the live site and a real worker, with the
system's Chromium (`/usr/bin/chromium`); skips when it is missing. Screenshots
of the key pages are saved to `test-artifacts/e2e/`.
"""

import json
import os
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.db import connection
from django.test import override_settings
from django_tenants.utils import schema_context

CHROMIUM = Path(os.environ.get("KEYPLANE_CHROMIUM", "/usr/bin/chromium"))
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts" / "e2e"
SLUG = "browser-e2e"
PASSWORD = "correct-horse-battery-staple"
SEATS_BEFORE = 10
SEATS_AFTER = 25
# The worker applies an approved request after commit; the dashboard waits this long for it.
APPLY_TIMEOUT_SECONDS = 60

pytestmark = [
    pytest.mark.live,
    pytest.mark.skipif(
        not CHROMIUM.exists(),
        reason=f"no Chromium at {CHROMIUM}; install the Debian package chromium "
        "(make test does so as root) to run the browser test",
    ),
]


@pytest.fixture(scope="module")
def tenant_with_grant(
    django_db_setup: None, django_db_blocker: Any, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[dict[str, Any]]:
    """A tenant with one 10-seat grant, a procurement admin and an approver (committed)."""
    from licensing.services import grant_create, policy_create
    from portal.access.roles import APPROVER, PROCUREMENT_ADMIN
    from portal.demo.seed import catalog_seed
    from portal.tenants.models import Tenant
    from portal.tenants.services import (
        tenant_drop,
        tenant_export,
        tenant_onboard,
        tenant_suspend,
    )

    data_dir = tmp_path_factory.mktemp("tenant-data")
    with django_db_blocker.unblock(), override_settings(KEYPLANE_DATA_DIR=data_dir):
        catalog_seed()
        tenant = tenant_onboard(
            slug=SLUG,
            display_name="Browser Test Ltd",
            admin_username="browser-admin",
            admin_email="admin@browser.example",
            admin_password=PASSWORD,
        ).tenant
        with schema_context(tenant.schema_name):
            users = get_user_model().objects
            procurement = users.create_user(
                "pat-procurement", password=PASSWORD, is_staff=True, first_name="Pat"
            )
            procurement.groups.add(Group.objects.get(name=PROCUREMENT_ADMIN))
            approver = users.create_user(
                "alex-approver", password=PASSWORD, is_staff=True, first_name="Alex"
            )
            approver.groups.add(Group.objects.get(name=APPROVER))
            policy = policy_create(
                acting_user=procurement,
                name="Vectra CAD Team",
                product_code="vectra-cad",
                seat_limit=50,
                entitlements=["view", "edit"],
            )
            grant, _ = grant_create(
                policy_id=policy.pk, seat_count=SEATS_BEFORE, acting_user=procurement
            )
        connection.set_schema_to_public()
        yield {"grant_id": grant.pk, "schema": tenant.schema_name}

        connection.set_schema_to_public()
        tenant = tenant_suspend(tenant=Tenant.objects.get(slug=SLUG), offboarding=True)
        tenant_export(tenant=tenant)
        tenant.refresh_from_db()
        tenant_drop(tenant=tenant, now=tenant.drop_after)


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        instance = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        yield instance
        instance.close()


def _shot(page: Any, name: str) -> None:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)


def _log_in(browser: Any, admin_url: str, username: str) -> Any:
    page = browser.new_context(viewport={"width": 1280, "height": 900}).new_page()
    page.goto(f"{admin_url}login/")
    page.fill("#id_username", username)
    page.fill("#id_password", PASSWORD)
    page.click("input[type=submit]")
    page.wait_for_load_state()
    return page


def test_seat_increase_approved_in_browser(
    live_site: str, celery_worker: object, tenant_with_grant: dict[str, Any], browser: Any
) -> None:
    admin_url = f"{live_site}/t/{SLUG}/admin/"
    grant_id = tenant_with_grant["grant_id"]

    # 1. The procurement admin raises the seat increase.
    procurement = _log_in(browser, admin_url, "pat-procurement")
    assert "/login/" not in procurement.url, "the procurement admin could not log in"
    _shot(procurement, "01-procurement-home")
    procurement.goto(f"{admin_url}approvals/changerequest/add/")
    procurement.select_option("#id_kind", "seat_increase")
    procurement.fill("#id_payload", json.dumps({"grant": grant_id, "seat_count": SEATS_AFTER}))
    procurement.fill("#id_reason", "Fifteen more designers join in January.")
    _shot(procurement, "02-seat-increase-form")
    procurement.click("input[name=_save]")
    procurement.wait_for_load_state()
    _shot(procurement, "03-seat-increase-raised")
    assert procurement.locator(".messagelist .success").count() == 1

    # 2. The approver finds it in the queue and approves it. The ORM is not
    # used while the browser runs: Playwright's event loop makes Django
    # refuse database calls from this thread.
    approver = _log_in(browser, admin_url, "alex-approver")
    approver.goto(f"{admin_url}approvals/changerequest/queue/")
    _shot(approver, "04-approver-queue")
    queued = approver.locator("#content-main table tbody tr")
    assert queued.count() == 1
    assert "Seat increase" in queued.first.inner_text()
    queued.first.locator("a").first.click()
    approver.wait_for_load_state()
    assert "Waiting for approval" in approver.inner_text("#content-main")
    _shot(approver, "05-request-before-decision")
    approver.fill("#decision-reason", "Budget confirmed.")
    approver.click("button[name=action][value=approve]")
    approver.wait_for_load_state()
    _shot(approver, "06-request-approved")
    assert approver.locator(".messagelist .success").count() == 1

    # 3. The dashboard shows the new seat count once the worker applied it.
    expected = f"of {SEATS_AFTER} "
    deadline = time.monotonic() + APPLY_TIMEOUT_SECONDS
    while True:
        procurement.goto(f"{admin_url}health/finding/dashboard/")
        # The tenant has one grant, so the table has one row.
        row = procurement.locator("table.health tbody tr").first
        if expected in row.inner_text() or time.monotonic() > deadline:
            break
        time.sleep(1)
    _shot(procurement, "07-dashboard-new-seat-count")
    assert expected in row.inner_text()
