"""Change requests on the real database: raising, deciding, editing, applying, escalating."""

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import time_machine
from django.core import mail
from django.utils import timezone

from approvals import services
from approvals.exceptions import (
    AlreadyDecided,
    ApproverNotAllowed,
    BaseChanged,
    ChangeNotGated,
    ChangeRequestInvalid,
    ChangeRequestStateConflict,
    DecisionReasonMissing,
    NotRequester,
    SelfApprovalForbidden,
)
from approvals.models import Approval, ChangeRequest
from approvals.notifications import request_notify
from licensing.models import LicenseGrant, Manifest, Policy
from portal.problems import KeyplaneError
from tests.approvals.conftest import grant_ending, settings_set, user_make
from tests.conftest import chained_decisions

State = ChangeRequest.State


def _renewal(grant: Any, requester: Any, **extra: Any) -> ChangeRequest:
    return services.changerequest_create(
        kind=ChangeRequest.Kind.RENEWAL,
        payload={"grant": grant.pk},
        reason="Renew for next year",
        acting_user=requester,
        **extra,
    )


def test_create_records_diff_and_base(grant: Any, requester: Any) -> None:
    request = _renewal(grant, requester)

    assert request.state == State.PENDING
    assert request.before["term_end"] == grant.term_end.isoformat()
    assert request.after["term_end"] == (grant.term_end + timedelta(days=365)).isoformat()
    assert request.base[0]["model"] == "licensing.licensegrant"
    assert request.base[0]["fields"] == {"term_end": grant.term_end.isoformat()}
    assert request.base[0]["history_id"] is not None
    assert request.quorum_required == 1


def test_create_ungated_kind_rejected(grant: Any, requester: Any) -> None:
    with pytest.raises(ChangeNotGated):
        services.changerequest_create(
            kind=ChangeRequest.Kind.GRANT_REVOCATION,
            payload={"grant": grant.pk},
            reason="Contract cancelled",
            acting_user=requester,
        )


def test_create_seat_increase_below_current_rejected(grant: Any, requester: Any) -> None:
    with pytest.raises(ChangeRequestInvalid) as caught:
        services.changerequest_create(
            kind=ChangeRequest.Kind.SEAT_INCREASE,
            payload={"grant": grant.pk, "seat_count": 3},
            reason="More staff",
            acting_user=requester,
        )
    assert caught.value.code == "change_request_invalid"


def test_approve_by_superuser_requester_refused_and_audited(grant: Any, superuser: Any) -> None:
    request = _renewal(grant, superuser)

    with pytest.raises(SelfApprovalForbidden) as caught:
        services.changerequest_approve(request_id=request.pk, acting_user=superuser)

    assert caught.value.code == "self_approval_forbidden"
    request.refresh_from_db()
    assert request.state == State.PENDING
    assert not Approval.objects.filter(request=request).exists()
    entry = (
        chained_decisions()
        .filter(event="change_request.decision_refused", subject=str(request.pk))
        .get()
    )
    assert entry.outcome == "denied"
    assert entry.reason == "self_approval_forbidden"
    assert entry.actor == superuser.username


def test_approve_without_permission_refused(grant: Any, requester: Any) -> None:
    request = _renewal(grant, requester)
    other_procurement = user_make("Procurement admin")

    with pytest.raises(ApproverNotAllowed):
        services.changerequest_approve(request_id=request.pk, acting_user=other_procurement)


def test_approve_twice_counts_once(
    grant: Any, requester: Any, approver: Any, second_approver: Any
) -> None:
    settings_set(quorum=2)
    request = _renewal(grant, requester)
    services.changerequest_approve(request_id=request.pk, acting_user=approver)

    with pytest.raises(AlreadyDecided):
        services.changerequest_approve(request_id=request.pk, acting_user=approver)

    request.refresh_from_db()
    assert request.state == State.PENDING


def test_quorum_two_needs_two_approvers(
    grant: Any, requester: Any, approver: Any, second_approver: Any
) -> None:
    settings_set(quorum=2)
    request = _renewal(grant, requester)

    services.changerequest_approve(request_id=request.pk, acting_user=approver)
    request.refresh_from_db()
    assert request.state == State.PENDING

    services.changerequest_approve(request_id=request.pk, acting_user=second_approver)
    request.refresh_from_db()
    assert request.state == State.APPROVED
    assert request.apply_due_at is not None


def test_edit_voids_approvals(
    grant: Any, requester: Any, approver: Any, second_approver: Any
) -> None:
    settings_set(quorum=2)
    request = services.changerequest_create(
        kind=ChangeRequest.Kind.SEAT_INCREASE,
        payload={"grant": grant.pk, "seat_count": 8},
        reason="New team",
        acting_user=requester,
    )
    services.changerequest_approve(request_id=request.pk, acting_user=approver)

    edited = services.changerequest_edit(
        request_id=request.pk, acting_user=requester, payload={"grant": grant.pk, "seat_count": 9}
    )

    assert edited.revision == 2
    assert Approval.objects.get(request=request, approver=approver).voided_at is not None
    services.changerequest_approve(request_id=request.pk, acting_user=second_approver)
    edited.refresh_from_db()
    assert edited.state == State.PENDING  # the voided approval does not count
    services.changerequest_approve(request_id=request.pk, acting_user=approver)
    edited.refresh_from_db()
    assert edited.state == State.APPROVED
    assert edited.after == {"seat_count": 9}


def test_edit_by_other_user_refused(grant: Any, requester: Any, approver: Any) -> None:
    request = _renewal(grant, requester)

    with pytest.raises(NotRequester):
        services.changerequest_edit(request_id=request.pk, acting_user=approver, reason="mine now")


def test_apply_stale_base_refused(grant: Any, requester: Any, approver: Any) -> None:
    request = _renewal(grant, requester)
    services.changerequest_approve(request_id=request.pk, acting_user=approver)
    newer_end = grant.term_end + timedelta(days=10)
    LicenseGrant.objects.filter(pk=grant.pk).update(term_end=newer_end)

    with pytest.raises(BaseChanged) as caught:
        services.changerequest_apply(request_id=request.pk, acting_user=approver)

    assert caught.value.code == "change_request_base_changed"
    assert "changed since the request was raised" in caught.value.detail
    grant.refresh_from_db()
    assert grant.term_end == newer_end
    request.refresh_from_db()
    assert request.state == State.FAILED
    assert "term_end" in request.failure_reason


def test_apply_renewal_extends_from_old_end(grant: Any, requester: Any, approver: Any) -> None:
    old_end = grant.term_end
    versions_before = Manifest.objects.filter(product_code="atlas").count()
    request = _renewal(grant, requester)
    services.changerequest_approve(request_id=request.pk, acting_user=approver)

    applied = services.changerequest_apply(request_id=request.pk, acting_user=approver)

    grant.refresh_from_db()
    assert applied.state == State.APPLIED
    assert grant.term_end == old_end + timedelta(days=365)
    assert Manifest.objects.filter(product_code="atlas").count() == versions_before + 1
    assert grant.history.first().history_user == approver


def test_apply_renewal_of_lapsed_grant_extends_from_now(requester: Any, approver: Any) -> None:
    lapsed = grant_ending(timezone.now() - timedelta(days=40), grace_days=14)
    request = _renewal(lapsed, requester)
    services.changerequest_approve(request_id=request.pk, acting_user=approver)

    services.changerequest_apply(request_id=request.pk, acting_user=approver)

    lapsed.refresh_from_db()
    expected = timezone.now() + timedelta(days=365)
    assert abs((lapsed.term_end - expected).total_seconds()) < 60
    assert lapsed.status == LicenseGrant.Status.ACTIVE


def test_apply_is_atomic(
    grant: Any, requester: Any, approver: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    old_end = grant.term_end
    request = _renewal(grant, requester)
    services.changerequest_approve(request_id=request.pk, acting_user=approver)

    def publish_fails(**_: Any) -> None:
        raise KeyplaneError("signing failed on purpose")

    monkeypatch.setattr("approvals.appliers.manifest_publish", publish_fails)
    with pytest.raises(KeyplaneError):
        services.changerequest_apply(request_id=request.pk, acting_user=approver)

    grant.refresh_from_db()
    assert grant.term_end == old_end
    request.refresh_from_db()
    assert request.state == State.FAILED
    assert not chained_decisions().filter(event="grant.renewed", subject=str(grant.pk)).exists()


def test_apply_seat_increase(grant: Any, requester: Any, approver: Any) -> None:
    request = services.changerequest_create(
        kind=ChangeRequest.Kind.SEAT_INCREASE,
        payload={"grant": grant.pk, "seat_count": 12},
        reason="New team",
        acting_user=requester,
    )
    services.changerequest_approve(request_id=request.pk, acting_user=approver)

    services.changerequest_apply(request_id=request.pk, acting_user=approver)

    grant.refresh_from_db()
    assert grant.seat_count == 12


def test_apply_new_grant_returns_key_once(grant: Any, requester: Any, approver: Any) -> None:
    settings_set(gated_kinds=["new_grant"])
    request = services.changerequest_create(
        kind=ChangeRequest.Kind.NEW_GRANT,
        payload={"policy": grant.policy_id, "seat_count": 3},
        reason="Second site",
        acting_user=requester,
    )
    services.changerequest_approve(request_id=request.pk, acting_user=approver)

    applied = services.changerequest_apply(request_id=request.pk, acting_user=approver)

    new_grant = LicenseGrant.objects.get(pk=applied.result["grant"])
    assert new_grant.seat_count == 3
    assert applied.issued_license_key
    assert applied.issued_license_key not in str(ChangeRequest.objects.get(pk=request.pk).result)


def test_apply_entitlement_change(grant: Any, requester: Any, approver: Any) -> None:
    settings_set(gated_kinds=["entitlement_change"])
    request = services.changerequest_create(
        kind=ChangeRequest.Kind.ENTITLEMENT_CHANGE,
        payload={"policy": grant.policy_id, "entitlements": ["export", "render"]},
        reason="Rendering bought",
        acting_user=requester,
    )
    services.changerequest_approve(request_id=request.pk, acting_user=approver)

    services.changerequest_apply(request_id=request.pk, acting_user=approver)

    assert Policy.objects.get(pk=grant.policy_id).entitlements == ["export", "render"]


def test_apply_grant_revocation(grant: Any, requester: Any, approver: Any) -> None:
    settings_set(gated_kinds=["grant_revocation"])
    request = services.changerequest_create(
        kind=ChangeRequest.Kind.GRANT_REVOCATION,
        payload={"grant": grant.pk},
        reason="Contract cancelled",
        acting_user=requester,
    )
    services.changerequest_approve(request_id=request.pk, acting_user=approver)

    services.changerequest_apply(request_id=request.pk, acting_user=approver)

    grant.refresh_from_db()
    assert grant.status == LicenseGrant.Status.REVOKED


def test_reject_requires_reason(grant: Any, requester: Any, approver: Any) -> None:
    request = _renewal(grant, requester)

    with pytest.raises(DecisionReasonMissing):
        services.changerequest_reject(request_id=request.pk, acting_user=approver, reason=" ")


def test_reject_ends_request(grant: Any, requester: Any, approver: Any) -> None:
    request = _renewal(grant, requester)

    services.changerequest_reject(request_id=request.pk, acting_user=approver, reason="Too costly")

    request.refresh_from_db()
    assert request.state == State.REJECTED
    assert request.decision_reason == "Too costly"
    with pytest.raises(ChangeRequestStateConflict):
        services.changerequest_approve(request_id=request.pk, acting_user=user_make("Approver"))


def test_withdraw_by_requester(grant: Any, requester: Any, approver: Any) -> None:
    request = _renewal(grant, requester)

    with pytest.raises(NotRequester):
        services.changerequest_withdraw(request_id=request.pk, acting_user=approver, reason="no")
    services.changerequest_withdraw(
        request_id=request.pk, acting_user=requester, reason="Not needed"
    )

    request.refresh_from_db()
    assert request.state == State.WITHDRAWN
    assert request.history.first().history_user == requester


def test_escalation_reminder_then_alert_once(grant: Any, requester: Any, approver: Any) -> None:
    settings_set(reminder_after_hours=24, alert_after_hours=48, request_expiry_hours=96)
    request = _renewal(grant, requester)
    start = request.created_at

    assert services.changerequests_escalate(now=start + timedelta(hours=1)) == 0
    assert services.changerequests_escalate(now=start + timedelta(hours=25)) == 1
    assert services.changerequests_escalate(now=start + timedelta(hours=26)) == 0
    assert services.changerequests_escalate(now=start + timedelta(hours=49)) == 1
    assert services.changerequests_escalate(now=start + timedelta(hours=90)) == 0
    request.refresh_from_db()
    assert request.escalation_level == 2
    outcomes = list(
        chained_decisions()
        .filter(event="change_request.escalated", subject=str(request.pk))
        .order_by("seq")
        .values_list("outcome", flat=True)
    )
    assert outcomes == ["reminder", "alert"]


def test_expire_pending_request_once(grant: Any, requester: Any) -> None:
    settings_set(request_expiry_hours=48)
    request = _renewal(grant, requester)
    later = request.created_at + timedelta(hours=49)

    assert services.changerequests_expire(now=later) == 1
    assert services.changerequests_expire(now=later) == 0
    request.refresh_from_db()
    assert request.state == State.EXPIRED
    assert request.history.first().history_user.username == "system:approvals_expiry"


def test_notify_raised_mails_approvers_with_link(grant: Any, requester: Any, approver: Any) -> None:
    request = _renewal(grant, requester)
    mail.outbox.clear()

    sent = request_notify(request, "raised")

    recipients = {address for message in mail.outbox for address in message.to}
    assert sent == len(mail.outbox)
    assert approver.email in recipients
    assert requester.email not in recipients
    assert f"/t/alpha/admin/approvals/changerequest/{request.pk}/change/" in mail.outbox[0].body


def test_scheduled_apply_in_maintenance_window(grant: Any, requester: Any, approver: Any) -> None:
    from overlays.models import MaintenanceWindow

    window = MaintenanceWindow.objects.create(
        weekdays=[5],
        start_time=datetime(2000, 1, 1, 2).time(),
        end_time=datetime(2000, 1, 1, 4).time(),
    )
    settings_set(maintenance_window=window)
    wednesday = datetime(2027, 3, 3, 10, 0, tzinfo=UTC)
    saturday_open = datetime(2027, 3, 6, 2, 0, tzinfo=UTC)
    old_end = grant.term_end

    with time_machine.travel(wednesday, tick=False):
        request = services.changerequest_create(
            kind=ChangeRequest.Kind.SEAT_INCREASE,
            payload={"grant": grant.pk, "seat_count": 20},
            reason="Rollout week",
            acting_user=requester,
            schedule=ChangeRequest.Schedule.MAINTENANCE_WINDOW,
        )
        services.changerequest_approve(request_id=request.pk, acting_user=approver)
        request.refresh_from_db()
        assert request.apply_due_at == saturday_open
        assert services.changerequests_apply_due() == 0

    with time_machine.travel(datetime(2027, 3, 5, 23, 0, tzinfo=UTC), tick=False):
        assert services.changerequests_apply_due() == 0
    grant.refresh_from_db()
    assert grant.seat_count == 5

    with time_machine.travel(saturday_open + timedelta(minutes=30), tick=False):
        assert services.changerequests_apply_due() == 1

    grant.refresh_from_db()
    request.refresh_from_db()
    assert grant.seat_count == 20
    assert grant.term_end == old_end
    assert request.state == State.APPLIED
    assert request.applied_at == saturday_open + timedelta(minutes=30)


def test_scheduled_apply_at_time(grant: Any, requester: Any, approver: Any) -> None:
    at = timezone.now() + timedelta(days=2)
    request = services.changerequest_create(
        kind=ChangeRequest.Kind.SEAT_INCREASE,
        payload={"grant": grant.pk, "seat_count": 7},
        reason="From Monday",
        acting_user=requester,
        schedule=ChangeRequest.Schedule.AT_TIME,
        apply_after=at,
    )
    services.changerequest_approve(request_id=request.pk, acting_user=approver)

    assert services.changerequests_apply_due(now=at - timedelta(minutes=1)) == 0
    assert services.changerequests_apply_due(now=at) == 1
    grant.refresh_from_db()
    assert grant.seat_count == 7


def test_settings_reject_unknown_gated_kind(in_alpha: Any) -> None:
    from django.core.exceptions import ValidationError

    from approvals.selectors import approval_settings

    row = approval_settings()
    row.gated_kinds = ["renewal", "new_grant"]

    with pytest.raises(ValidationError) as caught:
        row.full_clean()

    assert "gated_kinds" in caught.value.message_dict
