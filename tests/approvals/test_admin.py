"""The tenant admin pages of change requests: queue, diff, decisions and the what-if."""

from typing import Any

from django.db import connection
from django.test import Client

from approvals import services
from approvals.models import ChangeRequest

BASE = "/t/alpha/admin/approvals/changerequest"


def _renewal(grant: Any, requester: Any) -> ChangeRequest:
    return services.changerequest_create(
        kind=ChangeRequest.Kind.RENEWAL,
        payload={"grant": grant.pk},
        reason="Renew for next year",
        acting_user=requester,
    )


class TenantClient(Client):
    """A test client that returns the connection to the test's tenant after each request.

    The routing middleware leaves the connection in the public schema after a
    request, so without this the test body would read the wrong schema.
    """

    def request(self, **request: Any) -> Any:
        tenant = connection.tenant
        try:
            return super().request(**request)
        finally:
            connection.set_tenant(tenant)


def _client(user: Any) -> Client:
    client = TenantClient()
    response = client.post(
        "/t/alpha/admin/login/",
        {"username": user.username, "password": "correct-horse-battery"},
    )
    assert response.status_code == 302
    return client


def test_queue_lists_waiting_requests(grant: Any, requester: Any, approver: Any) -> None:
    request = _renewal(grant, requester)

    approver_page = _client(approver).get(f"{BASE}/queue/")
    requester_page = _client(requester).get(f"{BASE}/queue/")

    assert approver_page.status_code == 200
    assert f"{BASE}/{request.pk}/change/" in approver_page.content.decode()
    assert f"{BASE}/{request.pk}/change/" not in requester_page.content.decode()


def test_change_page_shows_diff(grant: Any, requester: Any, approver: Any) -> None:
    request = _renewal(grant, requester)

    page = _client(approver).get(f"{BASE}/{request.pk}/change/")

    body = page.content.decode()
    assert page.status_code == 200
    assert "What will change" in body
    assert request.after["term_end"] in body
    assert 'value="approve"' in body
    # The decision form must come before the change form opens, or the button submits the edit.
    assert body.index('value="approve"') < body.index('id="changerequest_form"')
    assert f'action="{BASE}/{request.pk}/decide/"' in body
    assert 'name="_save"' not in body  # approvers cannot edit the request


def test_decide_view_approves(grant: Any, requester: Any, approver: Any) -> None:
    request = _renewal(grant, requester)

    response = _client(approver).post(f"{BASE}/{request.pk}/decide/", {"action": "approve"})

    request.refresh_from_db()
    assert response.status_code == 302
    assert request.state == ChangeRequest.State.APPROVED


def test_decide_view_self_approval_refused(grant: Any, superuser: Any) -> None:
    request = _renewal(grant, superuser)

    response = _client(superuser).post(
        f"{BASE}/{request.pk}/decide/", {"action": "approve"}, follow=True
    )

    request.refresh_from_db()
    assert request.state == ChangeRequest.State.PENDING
    assert "cannot decide" in response.content.decode()


def test_whatif_page_renders(grant: Any, approver: Any) -> None:
    page = _client(approver).get(f"{BASE}/whatif/?days=60")

    assert page.status_code == 200
    assert "grace_entered" in page.content.decode()


def test_add_form_raises_request(grant: Any, requester: Any) -> None:
    response = _client(requester).post(
        f"{BASE}/add/",
        {
            "kind": "seat_increase",
            "payload": f'{{"grant": {grant.pk}, "seat_count": 8}}',
            "reason": "New team",
            "schedule": "immediate",
        },
    )

    assert response.status_code == 302, response.content.decode()[-3000:]
    created = ChangeRequest.objects.get(grant=grant)
    assert created.requester == requester
    assert created.after == {"seat_count": 8}


def test_add_form_shows_invalid_payload(grant: Any, requester: Any) -> None:
    response = _client(requester).post(
        f"{BASE}/add/",
        {
            "kind": "seat_increase",
            "payload": f'{{"grant": {grant.pk}, "seat_count": 2}}',
            "reason": "Fewer seats",
            "schedule": "immediate",
        },
    )

    assert response.status_code == 200
    assert "is not above the grant" in response.content.decode()
    assert not ChangeRequest.objects.filter(grant=grant).exists()


def test_change_form_edit_voids_approval(grant: Any, requester: Any, approver: Any) -> None:
    from tests.approvals.conftest import settings_set

    settings_set(quorum=2)
    request = services.changerequest_create(
        kind=ChangeRequest.Kind.SEAT_INCREASE,
        payload={"grant": grant.pk, "seat_count": 8},
        reason="New team",
        acting_user=requester,
    )
    services.changerequest_approve(request_id=request.pk, acting_user=approver)

    response = _client(requester).post(
        f"{BASE}/{request.pk}/change/",
        {
            "payload": f'{{"grant": {grant.pk}, "seat_count": 10}}',
            "reason": "Bigger team",
            "schedule": "immediate",
            "approvals-TOTAL_FORMS": "0",
            "approvals-INITIAL_FORMS": "0",
            "approvals-MIN_NUM_FORMS": "0",
            "approvals-MAX_NUM_FORMS": "1000",
        },
    )

    request.refresh_from_db()
    assert response.status_code == 302, response.content.decode()[-3000:]
    assert request.revision == 2
    assert request.after == {"seat_count": 10}
    assert request.approvals.get().voided_at is not None


def test_add_form_shows_ungated_kind(grant: Any, requester: Any) -> None:
    response = _client(requester).post(
        f"{BASE}/add/",
        {
            "kind": "grant_revocation",
            "payload": f'{{"grant": {grant.pk}}}',
            "reason": "Contract cancelled",
            "schedule": "immediate",
        },
    )

    assert response.status_code == 200
    assert "need no approval" in response.content.decode()
