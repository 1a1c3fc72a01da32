"""The renewal path on a real Celery worker and Redis, with committed rows in tenant beta."""

import threading
import time
from datetime import timedelta
from typing import Any

import pytest
from celery import group
from django.db import connection
from django.utils import timezone
from django_tenants.utils import schema_context

from approvals import renewals, services
from approvals.models import ChangeRequest
from approvals.tasks import renewals_scan
from licensing.models import LicenseGrant
from portal.access.roles import APPROVER, PROCUREMENT_ADMIN
from tests.approvals.conftest import grant_ending, user_make
from tests.conftest import chained_decisions

pytestmark = pytest.mark.live

RESULT_TIMEOUT = 60


def _scan_requests(grant_id: int) -> int:
    with schema_context("beta"):
        return ChangeRequest.objects.filter(
            grant_id=grant_id, origin=ChangeRequest.Origin.RENEWAL_SCAN
        ).count()


@pytest.fixture
def beta_grants(committed_db: None) -> list[int]:
    """Five committed grants in tenant beta whose terms end within the renewal window."""
    with schema_context("beta"):
        return [grant_ending(timezone.now() + timedelta(days=20 + i)).pk for i in range(5)]


def test_scan_task_twice_raises_one_request(celery_worker: Any, beta_grants: list[int]) -> None:
    with schema_context("beta"):
        first = renewals_scan.delay().get(timeout=RESULT_TIMEOUT)
        second = renewals_scan.delay().get(timeout=RESULT_TIMEOUT)

    assert first >= len(beta_grants)
    assert second == 0
    assert [_scan_requests(pk) for pk in beta_grants] == [1] * len(beta_grants)


def test_scan_task_concurrent_raises_one_request(
    celery_worker: Any, beta_grants: list[int]
) -> None:
    with schema_context("beta"):
        created = group(renewals_scan.s() for _ in range(4)).apply_async()
        counts = created.get(timeout=RESULT_TIMEOUT)

    assert sum(counts) >= len(beta_grants)
    assert [_scan_requests(pk) for pk in beta_grants] == [1] * len(beta_grants)


def test_scan_concurrent_threads_raise_one_request(beta_grants: list[int]) -> None:
    start = threading.Barrier(2)
    results: list[int] = []
    errors: list[BaseException] = []

    def scan() -> None:
        try:
            with schema_context("beta"):
                start.wait(timeout=10)
                results.append(renewals.renewals_scan().created)
        except BaseException as error:  # reported by the assert below
            errors.append(error)
        finally:
            connection.close()

    threads = [threading.Thread(target=scan) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)

    assert errors == []
    assert sum(results) >= len(beta_grants)
    assert [_scan_requests(pk) for pk in beta_grants] == [1] * len(beta_grants)


def test_approval_applies_renewal_on_worker(celery_worker: Any, committed_db: None) -> None:
    with schema_context("beta"):
        grant = grant_ending(timezone.now() + timedelta(days=25))
        old_end = grant.term_end
        requester = user_make(PROCUREMENT_ADMIN)
        approver = user_make(APPROVER)
        request = services.changerequest_create(
            kind=ChangeRequest.Kind.RENEWAL,
            payload={"grant": grant.pk},
            reason="Renew before the budget freeze",
            acting_user=requester,
        )

        services.changerequest_approve(request_id=request.pk, acting_user=approver)

        deadline = time.monotonic() + RESULT_TIMEOUT
        while time.monotonic() < deadline:
            request.refresh_from_db()
            if request.state != ChangeRequest.State.APPROVED:
                break
            time.sleep(0.2)
        grant.refresh_from_db()
        history_user = grant.history.first().history_user

    assert request.state == ChangeRequest.State.APPLIED
    assert grant.term_end == old_end + timedelta(days=365)
    assert grant.status == LicenseGrant.Status.ACTIVE
    assert history_user == approver


def test_sweep_task_moves_lapsed_grant_once(celery_worker: Any, committed_db: None) -> None:
    from approvals.models import TermTransition
    from approvals.tasks import sweep

    with schema_context("beta"):
        grant = grant_ending(timezone.now() - timedelta(days=20), grace_days=14)
        first = sweep.delay().get(timeout=RESULT_TIMEOUT)
        second = sweep.delay().get(timeout=RESULT_TIMEOUT)
        kinds = sorted(
            TermTransition.objects.filter(grant_id=grant.pk).values_list("kind", flat=True)
        )
        grant.refresh_from_db()

    assert first["expired"] >= 1
    assert second["expired"] == 0
    assert kinds == ["expired", "grace_entered"]
    assert grant.status == LicenseGrant.Status.EXPIRED


def test_concurrent_approvals_reach_quorum_once(committed_db: None) -> None:
    from approvals.models import ApprovalSettings

    with schema_context("beta"):
        ApprovalSettings.objects.update_or_create(pk=1, defaults={"quorum": 2})
        grant = grant_ending(timezone.now() + timedelta(days=25))
        requester = user_make(PROCUREMENT_ADMIN)
        approvers = [user_make(APPROVER), user_make(APPROVER)]
        request = services.changerequest_create(
            kind=ChangeRequest.Kind.SEAT_INCREASE,
            payload={"grant": grant.pk, "seat_count": 9},
            reason="Two approvers at once",
            acting_user=requester,
        )
        ApprovalSettings.objects.filter(pk=1).update(quorum=1)
    start = threading.Barrier(2)
    errors: list[BaseException] = []

    def approve(user: Any) -> None:
        try:
            with schema_context("beta"):
                start.wait(timeout=10)
                services.changerequest_approve(request_id=request.pk, acting_user=user)
        except BaseException as error:  # reported by the assert below
            errors.append(error)
        finally:
            connection.close()

    threads = [threading.Thread(target=approve, args=(user,)) for user in approvers]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)

    with schema_context("beta"):
        request.refresh_from_db()
        approved_entries = (
            chained_decisions()
            .filter(event="change_request.approved", subject=str(request.pk))
            .count()
        )
    assert errors == []
    assert request.state in (ChangeRequest.State.APPROVED, ChangeRequest.State.APPLIED)
    assert approved_entries == 1
