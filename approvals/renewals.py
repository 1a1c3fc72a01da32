"""Renewal automation: the renewal scan, grace and expiry transitions, and the what-if replay.

The scan raises one renewal request per grant and term. A partial unique
constraint on (grant, term_end, kind) for scan-raised requests keeps it at
one however often the scan runs and however many processes run it at once.
A concurrent insert of the same key waits for the first one's commit and
then fails on the constraint, so the later scan skips that grant.

Due dates are the grant's `term_end` (grace starts) and `term_end` plus the
policy's grace days (the grant expires). The sweep compares them with the
clock. A unique `TermTransition` row per grant, term and kind makes each
transition happen once.
"""

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.db import IntegrityError, transaction
from django.utils import timezone

from approvals import appliers
from approvals.models import ChangeRequest, TermTransition
from approvals.selectors import (
    approval_settings,
    grants_for_renewal_scan,
    kind_is_gated,
    renewal_lead,
)
from approvals.services import apply_due_time, notify_on_commit
from audit.actors import system_user
from audit.services import decision_record
from licensing.manifests import manifest_publish
from licensing.models import LicenseGrant

logger = logging.getLogger(__name__)

SCAN_ACTOR = "renewals_scan"
SWEEP_ACTOR = "renewals_sweep"


@dataclass(frozen=True)
class ScanResult:
    """Counts of one renewal scan."""

    considered: int
    created: int


def _renewal_request_get_or_create(grant: LicenseGrant, actor: Any, now: datetime) -> bool:
    """Raise the scan's renewal request for the grant's current term; return whether it was new."""
    settings = approval_settings()
    gated = kind_is_gated(ChangeRequest.Kind.RENEWAL, policy=grant.policy, settings=settings)
    prepared = appliers.change_prepare(ChangeRequest.Kind.RENEWAL, {"grant": grant.pk})
    request = ChangeRequest(
        kind=ChangeRequest.Kind.RENEWAL,
        origin=ChangeRequest.Origin.RENEWAL_SCAN,
        payload={"grant": grant.pk},
        reason=f"Term of grant {grant.pk} ends on {grant.term_end:%Y-%m-%d}; renewal raised "
        "by the renewal scan.",
        requester=actor,
        grant=grant,
        term_end=grant.term_end,
        quorum_required=settings.quorum if gated else 0,
        before=prepared.before,
        after=prepared.after,
        base=prepared.base,
        # A renewal stays open until the grace period ends, because approving it
        # any time before then still extends the term from its old end.
        expires_at=max(
            now + timedelta(hours=settings.request_expiry_hours),
            grant.term_end + timedelta(days=grant.policy.grace_days),
        ),
        next_escalation_at=now + timedelta(hours=settings.reminder_after_hours) if gated else None,
    )
    if not gated:
        request.state = ChangeRequest.State.APPROVED
        request.decided_at = now
        request.apply_due_at = apply_due_time(request, settings, now)
    try:
        with transaction.atomic():
            request._history_user = actor  # type: ignore[attr-defined]  # read by simple-history
            request.save()
            decision_record(
                event="renewal.requested",
                outcome="pending" if gated else "approved",
                reason="" if gated else "not_gated",
                actor=getattr(actor, "username", ""),
                subject=str(grant.pk),
                data={"request": request.pk, "term_end": grant.term_end.isoformat()},
            )
            if gated:
                notify_on_commit(request.pk, "raised")
    except IntegrityError:
        # Another scan raised the request for this term first.
        return False
    logger.info("renewal.requested grant=%s request=%s gated=%s", grant.pk, request.pk, gated)
    return True


def renewals_scan(*, now: datetime | None = None) -> ScanResult:
    """Raise a renewal request for every grant whose term enters its renewal window.

    Grants whose policy does not gate renewals get an approved request,
    which the scheduled-application sweep applies.
    """
    now = now or timezone.now()
    actor = system_user(SCAN_ACTOR)
    settings = approval_settings()
    considered = created = 0
    for grant in grants_for_renewal_scan().order_by("id"):
        if grant.term_end - renewal_lead(grant.policy, settings) > now:
            continue
        considered += 1
        exists = ChangeRequest.objects.filter(
            grant=grant,
            term_end=grant.term_end,
            kind=ChangeRequest.Kind.RENEWAL,
            origin=ChangeRequest.Origin.RENEWAL_SCAN,
        ).exists()
        if not exists and _renewal_request_get_or_create(grant, actor, now):
            created += 1
    logger.info("renewal.scan considered=%d created=%d", considered, created)
    return ScanResult(considered=considered, created=created)


def _transition_record(
    grant: LicenseGrant, kind: str, due_at: datetime, actor: Any
) -> TermTransition | None:
    """Insert the transition row; return it, or None if it already happened for this term."""
    transition = TermTransition(
        grant=grant, term_end=grant.term_end, kind=kind, due_at=due_at, actor=actor
    )
    transition._history_user = actor  # type: ignore[attr-defined]  # read by simple-history
    try:
        with transaction.atomic():
            transition.save()
    except IntegrityError:
        return None
    return transition


def _grace_enter(grant_id: int, actor: Any, now: datetime) -> bool:
    with transaction.atomic():
        grant = (
            LicenseGrant.objects.select_for_update(no_key=True)
            .select_related("policy")
            .get(pk=grant_id)
        )
        if grant.status != LicenseGrant.Status.ACTIVE or grant.term_end > now:
            return False
        if (
            _transition_record(grant, TermTransition.Kind.GRACE_ENTERED, grant.term_end, actor)
            is None
        ):
            return False
        decision_record(
            event="grant.grace_entered",
            outcome="grace",
            actor=getattr(actor, "username", ""),
            subject=str(grant.pk),
            data={"term_end": grant.term_end.isoformat(), "grace_days": grant.policy.grace_days},
        )
        waiting = ChangeRequest.objects.filter(
            grant=grant,
            term_end=grant.term_end,
            kind=ChangeRequest.Kind.RENEWAL,
            state=ChangeRequest.State.PENDING,
        ).values_list("pk", flat=True)
        for request_id in waiting:
            notify_on_commit(request_id, "alert")
    logger.info("grant.grace_entered grant=%s", grant_id)
    return True


def _expire(grant_id: int, actor: Any, now: datetime) -> bool:
    with transaction.atomic():
        grant = (
            LicenseGrant.objects.select_for_update(no_key=True)
            .select_related("policy")
            .get(pk=grant_id)
        )
        grace_end = grant.term_end + timedelta(days=grant.policy.grace_days)
        if grant.status != LicenseGrant.Status.ACTIVE or grace_end > now:
            return False
        if _transition_record(grant, TermTransition.Kind.EXPIRED, grace_end, actor) is None:
            return False
        grant.status = LicenseGrant.Status.EXPIRED
        grant.status_reason = (
            f"term ended {grant.term_end:%Y-%m-%d}, grace ended {grace_end:%Y-%m-%d}"
        )
        grant._history_user = actor  # type: ignore[attr-defined]  # read by simple-history
        grant.save(update_fields=["status", "status_reason"])
        decision_record(
            event="grant.expired",
            outcome="expired",
            actor=getattr(actor, "username", ""),
            subject=str(grant.pk),
            data={"term_end": grant.term_end.isoformat()},
        )
        manifest_publish(
            product_code=grant.policy.product_code,
            reason=f"grant {grant.pk} expired",
            acting_user=actor,
        )
    logger.info("grant.expired grant=%s", grant_id)
    return True


def terms_sweep(*, now: datetime | None = None) -> dict[str, int]:
    """Move active grants past their term end into grace, and past grace to expired.

    Returns the number of grants of each transition made by this call.
    """
    now = now or timezone.now()
    actor = system_user(SWEEP_ACTOR)
    counts = {"grace_entered": 0, "expired": 0}
    lapsed = (
        LicenseGrant.objects.filter(status=LicenseGrant.Status.ACTIVE, term_end__lte=now)
        .select_related("policy")
        .order_by("id")
    )
    for grant in lapsed:
        if _grace_enter(grant.pk, actor, now):
            counts["grace_entered"] += 1
        if grant.term_end + timedelta(days=grant.policy.grace_days) <= now and _expire(
            grant.pk, actor, now
        ):
            counts["expired"] += 1
    return counts


# --- what-if ----------------------------------------------------------------------------


@dataclass(frozen=True)
class WhatIfEvent:
    """One event of the replayed calendar."""

    date: datetime
    grant_id: int
    product_code: str
    event: str  # renewal_requested, renewed, grace_entered or expired
    detail: str = ""

    def line(self) -> str:
        text = (
            f"{self.date:%Y-%m-%d}  grant {self.grant_id:<6} {self.product_code:<16} {self.event}"
        )
        return f"{text}  {self.detail}".rstrip()


def renewals_whatif(*, days: int, now: datetime | None = None) -> list[WhatIfEvent]:
    """Replay the next `days` days and return what happens to each grant, changing nothing.

    The replay keeps the current approvals. A renewal request that is approved
    and not yet applied renews its term when it is due. Every other term runs
    out, so the grant enters grace at the term end and expires when grace
    ends. Renewal requests the scan would raise are listed, but the
    replay treats them as never approved.
    """
    now = now or timezone.now()
    horizon = now + timedelta(days=days)
    settings = approval_settings()
    approved = {
        (request.grant_id, request.term_end): request
        for request in ChangeRequest.objects.filter(
            kind=ChangeRequest.Kind.RENEWAL, state=ChangeRequest.State.APPROVED
        )
    }
    raised = set(
        ChangeRequest.objects.filter(kind=ChangeRequest.Kind.RENEWAL)
        .exclude(state__in=[ChangeRequest.State.APPLIED])
        .values_list("grant_id", "term_end")
    )
    grace_done = set(
        TermTransition.objects.filter(kind=TermTransition.Kind.GRACE_ENTERED).values_list(
            "grant_id", "term_end"
        )
    )
    events: list[WhatIfEvent] = []
    for grant in grants_for_renewal_scan().order_by("id"):
        # An expired grant's current term already ran through grace; only a renewal changes it.
        expired = grant.status == LicenseGrant.Status.EXPIRED
        if expired:
            grace_done.add((grant.pk, grant.term_end))
        policy = grant.policy
        term_end = grant.term_end
        grace = timedelta(days=policy.grace_days)
        lead = renewal_lead(policy, settings)
        code = policy.product_code
        while True:
            request_at = max(term_end - lead, now)
            if request_at <= horizon and (grant.pk, term_end) not in raised:
                events.append(WhatIfEvent(request_at, grant.pk, code, "renewal_requested"))
            request = approved.get((grant.pk, term_end))
            due = (request.apply_due_at or now) if request is not None else None
            if request is not None and due is not None and due <= horizon:
                if due >= term_end and (grant.pk, term_end) not in grace_done:
                    events.append(WhatIfEvent(term_end, grant.pk, code, "grace_entered"))
                lapsed = due >= term_end + grace
                if lapsed and not expired:
                    events.append(WhatIfEvent(term_end + grace, grant.pk, code, "expired"))
                new_end = (due if lapsed else term_end) + timedelta(days=policy.term_days)
                events.append(
                    WhatIfEvent(
                        max(due, now), grant.pk, code, "renewed", f"until {new_end:%Y-%m-%d}"
                    )
                )
                term_end = new_end
                expired = False
                continue
            if term_end <= horizon and (grant.pk, term_end) not in grace_done:
                events.append(WhatIfEvent(max(term_end, now), grant.pk, code, "grace_entered"))
            if term_end + grace <= horizon and not expired:
                events.append(WhatIfEvent(max(term_end + grace, now), grant.pk, code, "expired"))
            break
    events.sort(key=lambda event: (event.date, event.grant_id, _EVENT_ORDER[event.event]))
    return events


_EVENT_ORDER = {"renewal_requested": 0, "grace_entered": 1, "expired": 2, "renewed": 3}
