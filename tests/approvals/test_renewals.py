"""Renewal scan, grace and expiry transitions and the what-if replay, on the real database."""

from datetime import UTC, datetime, timedelta
from io import StringIO
from typing import Any

import time_machine
from django.core.management import call_command
from django.utils import timezone

from approvals import renewals, services
from approvals.models import ChangeRequest, TermTransition
from licensing.models import LicenseGrant
from tests.approvals.conftest import grant_ending, settings_set
from tests.conftest import chained_decisions

NOW = datetime(2027, 1, 4, 9, 0, tzinfo=UTC)


def _scan_requests(grant: Any) -> int:
    return ChangeRequest.objects.filter(
        grant=grant, origin=ChangeRequest.Origin.RENEWAL_SCAN
    ).count()


def test_scan_twice_raises_one_request(in_alpha: Any) -> None:
    grant = grant_ending(timezone.now() + timedelta(days=20))

    renewals.renewals_scan()
    renewals.renewals_scan()

    assert _scan_requests(grant) == 1
    request = ChangeRequest.objects.get(grant=grant)
    assert request.term_end == grant.term_end
    assert request.requester.username == "system:renewals_scan"
    assert request.state == ChangeRequest.State.PENDING
    assert request.expires_at == grant.term_end + timedelta(days=14)  # open until grace ends


def test_scan_skips_grant_outside_window(in_alpha: Any) -> None:
    far = grant_ending(timezone.now() + timedelta(days=200))
    monthly = grant_ending(
        timezone.now() + timedelta(days=10), renewal_cadence="monthly", term_days=30, grace_days=7
    )

    renewals.renewals_scan()

    assert _scan_requests(far) == 0
    assert _scan_requests(monthly) == 0  # a monthly term is raised 7 days ahead


def test_scan_new_term_raises_new_request(in_alpha: Any) -> None:
    grant = grant_ending(timezone.now() + timedelta(days=20))
    renewals.renewals_scan()
    LicenseGrant.objects.filter(pk=grant.pk).update(term_end=grant.term_end + timedelta(days=30))

    renewals.renewals_scan()

    assert _scan_requests(grant) == 2


def test_scan_ungated_renewal_is_approved(in_alpha: Any) -> None:
    grant = grant_ending(timezone.now() + timedelta(days=20), renewal_requires_approval=False)

    renewals.renewals_scan()
    assert services.changerequests_apply_due() >= 1

    request = ChangeRequest.objects.get(grant=grant)
    grant.refresh_from_db()
    assert request.state == ChangeRequest.State.APPLIED
    assert grant.term_end == request.term_end + timedelta(days=365)


def test_grace_and_expiry_happen_once_each(in_alpha: Any) -> None:
    grant = grant_ending(NOW + timedelta(days=1), grace_days=14)
    term_end = grant.term_end

    with time_machine.travel(NOW + timedelta(days=2), tick=False):
        first = renewals.terms_sweep()
        second = renewals.terms_sweep()
    grant.refresh_from_db()
    assert first["grace_entered"] >= 1
    assert second == {"grace_entered": 0, "expired": 0}
    assert grant.status == LicenseGrant.Status.ACTIVE

    with time_machine.travel(NOW + timedelta(days=16), tick=False):
        renewals.terms_sweep()
        again = renewals.terms_sweep()
    grant.refresh_from_db()
    assert again == {"grace_entered": 0, "expired": 0}
    assert grant.status == LicenseGrant.Status.EXPIRED

    transitions = TermTransition.objects.filter(grant=grant, term_end=term_end)
    assert sorted(transitions.values_list("kind", flat=True)) == ["expired", "grace_entered"]
    assert {t.actor.username for t in transitions} == {"system:renewals_sweep"}
    assert grant.history.first().history_user.username == "system:renewals_sweep"
    assert chained_decisions().filter(event="grant.expired", subject=str(grant.pk)).count() == 1


def test_renewal_approved_in_grace_extends_from_old_end(in_alpha: Any, approver: Any) -> None:
    grant = grant_ending(NOW - timedelta(days=3), grace_days=14)
    with time_machine.travel(NOW, tick=False):
        renewals.renewals_scan()
        renewals.terms_sweep()
        request = ChangeRequest.objects.get(grant=grant)
        services.changerequest_approve(request_id=request.pk, acting_user=approver)
        services.changerequest_apply(request_id=request.pk, acting_user=approver)
    grant.refresh_from_db()
    assert grant.term_end == NOW - timedelta(days=3) + timedelta(days=365)


def test_whatif_fixed_calendar(in_alpha: Any, approver: Any) -> None:
    """Four grants, one with an approved renewal; the replay must list exactly these events."""
    settings_set(renewal_lead_days=None)
    with time_machine.travel(NOW, tick=False):
        soon = grant_ending(NOW + timedelta(days=10), grace_days=14)
        renewed = grant_ending(NOW + timedelta(days=40), grace_days=14)
        monthly = grant_ending(
            NOW + timedelta(days=100), renewal_cadence="monthly", term_days=30, grace_days=7
        )
        later = grant_ending(NOW + timedelta(days=300), grace_days=14)
        renewals.renewals_scan()
        request = ChangeRequest.objects.get(grant=renewed)
        services.changerequest_approve(request_id=request.pk, acting_user=approver)
        # The approved renewal waits for its set time, 5 days before the term ends.
        ChangeRequest.objects.filter(pk=request.pk).update(apply_due_at=NOW + timedelta(days=35))
        counts_before = (ChangeRequest.objects.count(), TermTransition.objects.count())

        events = [
            (event.date.date().isoformat(), event.grant_id, event.event, event.detail)
            for event in renewals.renewals_whatif(days=120)
            if event.grant_id in {soon.pk, renewed.pk, monthly.pk, later.pk}
        ]

    assert events == [
        ("2027-01-14", soon.pk, "grace_entered", ""),
        ("2027-01-28", soon.pk, "expired", ""),
        ("2027-02-08", renewed.pk, "renewed", "until 2028-02-13"),
        ("2027-04-07", monthly.pk, "renewal_requested", ""),
        ("2027-04-14", monthly.pk, "grace_entered", ""),
        ("2027-04-21", monthly.pk, "expired", ""),
    ]
    assert (ChangeRequest.objects.count(), TermTransition.objects.count()) == counts_before
    later.refresh_from_db()
    assert later.term_end == NOW + timedelta(days=300)


def test_whatif_command_prints_events(in_alpha: Any) -> None:
    with time_machine.travel(NOW, tick=False):
        grant = grant_ending(NOW + timedelta(days=5), grace_days=14)
        out = StringIO()
        call_command("renewals_whatif", "--tenant", "alpha", "--days", "30", stdout=out)

    lines = [line for line in out.getvalue().splitlines() if f"grant {grant.pk} " in line]
    assert [(line[:10], line.split()[-1]) for line in lines] == [
        ("2027-01-04", "renewal_requested"),
        ("2027-01-09", "grace_entered"),
        ("2027-01-23", "expired"),
    ]
