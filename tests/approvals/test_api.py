"""The change-request admin API with scoped bearer tokens, in-process."""

from typing import Any

from django.db import connection
from django.test import Client

from approvals.models import ChangeRequest
from licensing.models import LicenseGrant
from portal.access.services import api_token_issue

ALL_SCOPES = ["approvals:read", "approvals:write", "approvals:decide"]


class AdminApi:
    """Calls /t/alpha/api/v1/admin/ as one user, returning the connection to alpha afterwards."""

    def __init__(self, user: Any, scopes: list[str]) -> None:
        self.tenant = connection.tenant
        _, secret = api_token_issue(name="test", user=user, scopes=scopes)
        self.http = Client(headers={"Authorization": f"Bearer {secret}"})

    def call(self, method: str, path: str, body: Any = None) -> Any:
        url = f"/t/alpha/api/v1/admin/{path}"
        try:
            if method == "GET":
                return self.http.get(url)
            if method == "PATCH":
                return self.http.patch(url, data=body, content_type="application/json")
            return self.http.post(url, data=body or {}, content_type="application/json")
        finally:
            connection.set_tenant(self.tenant)


def _raise(api: AdminApi, grant: Any) -> Any:
    return api.call(
        "POST",
        "change-requests/",
        {
            "kind": "seat_increase",
            "payload": {"grant": grant.pk, "seat_count": 9},
            "reason": "Hiring",
        },
    )


def test_api_raise_approve_apply(grant: Any, requester: Any, approver: Any) -> None:
    created = _raise(AdminApi(requester, ALL_SCOPES), grant)
    request_id = created.json()["id"]
    approver_api = AdminApi(approver, ALL_SCOPES)

    approved = approver_api.call("POST", f"change-requests/{request_id}/approve/")
    applied = approver_api.call("POST", f"change-requests/{request_id}/apply/")

    assert created.status_code == 201
    assert created.json()["before"] == {"seat_count": 5}
    assert approved.json()["state"] == "approved"
    assert applied.json()["state"] == "applied"
    assert LicenseGrant.objects.get(pk=grant.pk).seat_count == 9


def test_api_self_approval_is_problem(grant: Any, superuser: Any) -> None:
    api = AdminApi(superuser, ALL_SCOPES)
    request_id = _raise(api, grant).json()["id"]

    response = api.call("POST", f"change-requests/{request_id}/approve/")

    assert response.status_code == 403
    assert response["Content-Type"] == "application/problem+json"
    assert response.json()["code"] == "self_approval_forbidden"


def test_api_decide_needs_scope(grant: Any, requester: Any, approver: Any) -> None:
    request_id = _raise(AdminApi(requester, ALL_SCOPES), grant).json()["id"]

    response = AdminApi(approver, ["approvals:read"]).call(
        "POST", f"change-requests/{request_id}/approve/"
    )

    assert response.status_code == 403
    assert ChangeRequest.objects.get(pk=request_id).state == "pending"


def test_api_reject_without_reason_is_problem(grant: Any, requester: Any, approver: Any) -> None:
    request_id = _raise(AdminApi(requester, ALL_SCOPES), grant).json()["id"]

    response = AdminApi(approver, ALL_SCOPES).call("POST", f"change-requests/{request_id}/reject/")

    assert response.status_code == 400
    assert response.json()["code"] == "decision_reason_missing"


def test_api_edit_voids_approval(
    grant: Any, requester: Any, approver: Any, second_approver: Any
) -> None:
    from tests.approvals.conftest import settings_set

    settings_set(quorum=2)
    requester_api = AdminApi(requester, ALL_SCOPES)
    request_id = _raise(requester_api, grant).json()["id"]
    AdminApi(approver, ALL_SCOPES).call("POST", f"change-requests/{request_id}/approve/")

    edited = requester_api.call(
        "PATCH",
        f"change-requests/{request_id}/",
        {"payload": {"grant": grant.pk, "seat_count": 11}},
    )

    body = edited.json()
    assert edited.status_code == 200
    assert body["revision"] == 2
    assert body["approvals"][0]["voided_at"] is not None


def test_api_list_waiting_for_me(grant: Any, requester: Any, approver: Any) -> None:
    request_id = _raise(AdminApi(requester, ALL_SCOPES), grant).json()["id"]

    listing = AdminApi(approver, ALL_SCOPES).call("GET", "change-requests/?waiting_for_me=true")

    assert [row["id"] for row in listing.json()["results"]] == [request_id]


def test_api_whatif_rejects_bad_days(grant: Any, approver: Any) -> None:
    api = AdminApi(approver, ALL_SCOPES)

    bad = api.call("GET", "renewals/whatif/?days=abc")
    good = api.call("GET", "renewals/whatif/?days=60")

    assert bad.json()["code"] == "request_invalid"
    assert {row["event"] for row in good.json() if row["grant_id"] == grant.pk} == {
        "renewal_requested",
        "grace_entered",
        "expired",
    }
