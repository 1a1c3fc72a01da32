"""The acting user on history rows: admin, API, tasks, bulk actions and failed requests."""

import uuid

import pytest
from django.contrib.auth import get_user_model
from django.db import connection
from django.http import HttpResponse
from django.test import Client, RequestFactory
from django_tenants.utils import schema_context
from rest_framework.authentication import BaseAuthentication
from rest_framework.permissions import IsAuthenticated
from rest_framework.response import Response
from rest_framework.views import APIView
from simple_history.middleware import HistoryRequestMiddleware

from audit.actors import SystemUserNameInvalid, system_user
from audit.models import AuditSettings, LegalHold
from audit.services import audit_settings_get
from tests.celery_tasks import audit_release_hold
from tests.conftest import chained_decisions

RESULT_TIMEOUT = 30


class AlphaClient(Client):
    """A test client that returns the connection to alpha's schema after each request.

    The routing middleware leaves the connection on the public schema when a
    request ends, while the test body keeps reading alpha's rows.
    """

    def request(self, **request):
        try:
            return super().request(**request)
        finally:
            connection.set_schema("alpha")


def admin_client() -> Client:
    client = AlphaClient()
    response = client.post(
        "/t/alpha/admin/login/",
        {"username": "alpha-admin", "password": "correct-horse-battery"},
    )
    assert response.status_code == 302, response.content
    return client


def alpha_admin():
    return get_user_model().objects.get(username="alpha-admin")


# --- Admin ------------------------------------------------------------------------


def test_admin_change_records_admin_user(in_alpha):
    audit_settings_get()
    client = admin_client()

    response = client.post(
        "/t/alpha/admin/audit/auditsettings/1/change/",
        {"retention_days": "123", "alert_recipients": [str(alpha_admin().pk)], "_save": "Save"},
    )

    assert response.status_code == 302, response.content
    record = AuditSettings.history.filter(id=1).order_by("-history_id").first()
    assert record.retention_days == 123
    assert record.history_user.username == "alpha-admin"


def test_admin_m2m_change_is_recorded(in_alpha):
    audit_settings_get()
    client = admin_client()
    admin_pk = alpha_admin().pk

    client.post(
        "/t/alpha/admin/audit/auditsettings/1/change/",
        {"retention_days": "400", "alert_recipients": [str(admin_pk)], "_save": "Save"},
    )
    client.post(
        "/t/alpha/admin/audit/auditsettings/1/change/",
        {"retention_days": "400", "_save": "Save"},
    )

    records = list(AuditSettings.history.filter(id=1).order_by("-history_id")[:2])
    assert [row.user_id for row in records[1].alert_recipients.all()] == [admin_pk]
    assert list(records[0].alert_recipients.all()) == []


def test_admin_history_page_shows_diff(in_alpha):
    settings_row = audit_settings_get()
    client = admin_client()
    client.post(
        "/t/alpha/admin/audit/auditsettings/1/change/",
        {"retention_days": "321", "_save": "Save"},
    )

    response = client.get(f"/t/alpha/admin/audit/auditsettings/{settings_row.pk}/history/")

    assert response.status_code == 200
    assert "321" in response.content.decode()


def test_admin_bulk_action_one_row_each(in_alpha):
    holds = [LegalHold.objects.create(subject=f"grant:{i}", reason="case 7") for i in range(3)]
    client = admin_client()

    response = client.post(
        "/t/alpha/admin/audit/legalhold/",
        {"action": "release_holds", "_selected_action": [str(h.pk) for h in holds]},
    )

    assert response.status_code == 302, response.content
    for hold in holds:
        changes = LegalHold.history.filter(id=hold.pk, history_type="~")
        assert changes.count() == 1
        change = changes.get()
        assert change.history_user.username == "alpha-admin"
        assert change.history_change_reason == "released in the admin"
        assert change.active is False


def test_admin_bulk_action_records_decisions(in_alpha):
    holds = [LegalHold.objects.create(subject=f"grant:{i}", reason="case 7") for i in range(3)]

    admin_client().post(
        "/t/alpha/admin/audit/legalhold/",
        {"action": "release_holds", "_selected_action": [str(h.pk) for h in holds]},
    )

    entries = chained_decisions().filter(event="audit.legal_hold_release")
    assert sorted(entries.values_list("subject", flat=True)) == sorted(
        f"legal_hold:{h.pk}" for h in holds
    )
    assert set(entries.values_list("actor", flat=True)) == {"alpha-admin"}


def test_admin_as_of_view_shows_past_state(in_alpha):
    hold = LegalHold.objects.create(subject="grant:77", reason="case 8")
    created = LegalHold.history.get(id=hold.pk, history_type="+").history_date
    hold.delete()
    client = admin_client()

    past = client.get("/t/alpha/admin/audit/legalhold/as-of/", {"when": created.isoformat()})
    now = client.get("/t/alpha/admin/audit/legalhold/as-of/", {"when": "2999-01-01"})

    assert past.status_code == 200
    assert "grant:77" in past.content.decode()
    assert "grant:77" not in now.content.decode()


def test_admin_as_of_view_rejects_bad_date(in_alpha):
    response = admin_client().get("/t/alpha/admin/audit/legalhold/as-of/", {"when": "yesterday"})

    assert response.status_code == 200
    assert "is not a date" in response.content.decode()


def test_admin_decision_log_is_read_only(in_alpha):
    entry = chained_decisions().order_by("-seq").first() or None
    client = admin_client()

    listing = client.get("/t/alpha/admin/audit/decisionlogentry/")
    add = client.get("/t/alpha/admin/audit/decisionlogentry/add/")

    assert listing.status_code == 200
    assert add.status_code == 403
    if entry is not None:
        change = client.post(
            f"/t/alpha/admin/audit/decisionlogentry/{entry.seq}/change/", {"outcome": "x"}
        )
        assert change.status_code == 403


# --- API --------------------------------------------------------------------------


class HeaderUserAuthentication(BaseAuthentication):
    """Test-only DRF authentication: the user named in the X-Test-User header."""

    def authenticate(self, request):
        username = request.META.get("HTTP_X_TEST_USER")
        if not username:
            return None
        return get_user_model().objects.get(username=username), None


class HoldCreateView(APIView):
    authentication_classes = (HeaderUserAuthentication,)
    permission_classes = (IsAuthenticated,)

    def post(self, request):
        hold = LegalHold.objects.create(subject=request.data["subject"], reason="api")
        return Response({"id": hold.pk}, status=201)


def call_through_history_middleware(view, request):
    return HistoryRequestMiddleware(view)(request)


def test_api_change_records_api_user(in_alpha):
    request = RequestFactory().post(
        "/t/alpha/api/v1/admin/holds/",
        {"subject": "grant:5"},
        content_type="application/json",
        HTTP_X_TEST_USER="alpha-admin",
    )

    response = call_through_history_middleware(HoldCreateView.as_view(), request)

    assert response.status_code == 201
    record = LegalHold.history.get(id=response.data["id"])
    assert record.history_user.username == "alpha-admin"


def test_failed_request_leaves_no_user(in_alpha):
    def failing_view(request):
        request.user = alpha_admin()
        raise RuntimeError("view failed")

    with pytest.raises(RuntimeError):
        call_through_history_middleware(failing_view, RequestFactory().get("/"))
    hold = LegalHold.objects.create(subject="grant:6", reason="after failure")

    record = LegalHold.history.get(id=hold.pk)
    assert record.history_user.username == "system:unattributed"


def test_history_user_outside_request_is_system(in_alpha):
    def ok_view(request):
        request.user = alpha_admin()
        return HttpResponse("ok")

    call_through_history_middleware(ok_view, RequestFactory().get("/"))
    hold = LegalHold.objects.create(subject="grant:8", reason="after request")

    assert LegalHold.history.get(id=hold.pk).history_user.username == "system:unattributed"


# --- Tasks ------------------------------------------------------------------------


@pytest.mark.live
def test_task_change_records_passed_user(celery_worker, committed_db):
    subject = f"grant:{uuid.uuid4().hex[:8]}"
    with schema_context("alpha"):
        hold = LegalHold.objects.create(subject=subject, reason="task test")
        admin_pk = alpha_admin().pk
        audit_release_hold.delay(hold.pk, admin_pk).get(timeout=RESULT_TIMEOUT)
        change = LegalHold.history.get(id=hold.pk, history_type="~")

        assert change.history_user.username == "alpha-admin"
        assert change.history_change_reason == "released by task"


@pytest.mark.live
def test_task_change_without_actor_records_task(celery_worker, committed_db):
    subject = f"grant:{uuid.uuid4().hex[:8]}"
    with schema_context("alpha"):
        hold = LegalHold.objects.create(subject=subject, reason="task test")
        audit_release_hold.delay(hold.pk, None).get(timeout=RESULT_TIMEOUT)
        change = LegalHold.history.get(id=hold.pk, history_type="~")

        assert change.history_user.username == "system:tests.audit_release_hold"


# --- System users and sign-ins ----------------------------------------------------


def test_system_user_cannot_sign_in(in_alpha):
    user = system_user("renewals_scan")

    assert user.username == "system:renewals_scan"
    assert not user.is_active
    assert not user.has_usable_password()


def test_system_user_is_reused(in_alpha):
    assert system_user("reconcile").pk == system_user("reconcile").pk


def test_system_user_rejects_bad_name(in_alpha):
    with pytest.raises(SystemUserNameInvalid):
        system_user("Bad Name")


def test_signin_recorded_once(in_alpha):
    before = chained_decisions().order_by("-seq").values_list("seq", flat=True).first() or 0

    admin_client()

    entries = list(chained_decisions().filter(seq__gt=before))
    assert len(entries) == 1
    assert entries[0].outcome == "granted"
    assert entries[0].actor == "alpha-admin"


def test_failed_signin_keeps_no_typed_name(in_alpha):
    before = chained_decisions().order_by("-seq").values_list("seq", flat=True).first() or 0

    AlphaClient().post(
        "/t/alpha/admin/login/", {"username": "correct-horse-typed-here", "password": "x"}
    )

    entries = list(chained_decisions().filter(seq__gt=before))
    assert len(entries) == 1
    assert entries[0].outcome == "refused"
    assert entries[0].actor == "unknown"
    assert "correct-horse" not in str(entries[0].data)


def test_admin_as_of_view_shows_past_m2m(in_alpha):
    audit_settings_get()
    reader = get_user_model().objects.create_user("alert-reader", "reader@alpha.example")
    client = admin_client()
    change_url = "/t/alpha/admin/audit/auditsettings/1/change/"
    client.post(
        change_url,
        {"retention_days": "400", "alert_recipients": [str(reader.pk)], "_save": "Save"},
    )
    with_recipient = AuditSettings.history.filter(id=1).latest("history_id").history_date
    client.post(change_url, {"retention_days": "400", "_save": "Save"})

    past = client.get(
        "/t/alpha/admin/audit/auditsettings/as-of/", {"when": with_recipient.isoformat()}
    )
    now = client.get("/t/alpha/admin/audit/auditsettings/as-of/", {"when": "2999-01-01"})

    assert "<td>alert-reader</td>" in past.content.decode()
    assert "<td>alert-reader</td>" not in now.content.decode()


def test_admin_changelist_links_as_of(in_alpha):
    response = admin_client().get("/t/alpha/admin/audit/legalhold/")

    assert 'href="/t/alpha/admin/audit/legalhold/as-of/"' in response.content.decode()
