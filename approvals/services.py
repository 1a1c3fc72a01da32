"""Change-request writes: raise, edit, approve, reject, withdraw, apply, escalate, expire.

Each function opens its own transaction, locks the request row, saves with
`update_fields` and an explicit history user, and records its decision-log
entry in the same transaction. E-mails and applications are sent to Celery
only after commit. Refused approvals are recorded in a transaction of their
own, so the refusal stays in the log even though the caller gets an error.
"""

import logging
from datetime import datetime, timedelta
from typing import Any

from django.db import IntegrityError, transaction
from django.utils import timezone

from approvals import appliers
from approvals.exceptions import (
    AlreadyDecided,
    ApproverNotAllowed,
    ChangeNotGated,
    ChangeRequestInvalid,
    ChangeRequestNotFound,
    ChangeRequestStateConflict,
    DecisionReasonMissing,
    NotRequester,
    QuorumNotMet,
    SelfApprovalForbidden,
)
from approvals.models import Approval, ApprovalSettings, ChangeRequest
from approvals.selectors import (
    APPROVE_PERMISSION,
    approval_settings,
    approvals_counted,
    kind_is_gated,
    maintenance_windows,
    window_is_open,
    window_next_opening,
)
from audit.actors import system_actor, system_user
from audit.services import decision_record
from portal.problems import KeyplaneError

logger = logging.getLogger(__name__)

State = ChangeRequest.State
Schedule = ChangeRequest.Schedule
APPLY_ACTOR = "approvals_apply"
ESCALATION_ACTOR = "approvals_escalation"


def _actor(user: Any) -> str:
    return getattr(user, "username", "") or ""


def _save(request: ChangeRequest, user: Any, fields: list[str]) -> None:
    request._history_user = user  # type: ignore[attr-defined]  # read by simple-history
    request.save(update_fields=[*fields, "updated_at"])


def _locked(request_id: int) -> ChangeRequest:
    request = ChangeRequest.objects.select_for_update().filter(pk=request_id).first()
    if request is None:
        raise ChangeRequestNotFound(f"No change request has the id {request_id}.")
    return request


def notify_on_commit(request_id: int, event: str) -> None:
    from approvals.tasks import notify

    notify.delay_on_commit(request_id, event)


def apply_due_time(request: ChangeRequest, settings: ApprovalSettings, now: datetime) -> datetime:
    """Return when an approved request should be applied first, by its schedule."""
    if request.schedule == Schedule.AT_TIME and request.apply_after is not None:
        return max(request.apply_after, now)
    if request.schedule == Schedule.MAINTENANCE_WINDOW:
        opening = window_next_opening(maintenance_windows(settings), now)
        return opening or now
    return now


def _check_schedule(schedule: str, apply_after: datetime | None) -> None:
    if schedule not in Schedule.values:
        raise ChangeRequestInvalid(f"Unknown schedule {schedule!r}; use one of {Schedule.values}.")
    if schedule == Schedule.AT_TIME and apply_after is None:
        raise ChangeRequestInvalid(
            "A request scheduled at a set time needs apply_after; give the time to apply at."
        )


def _require_reason(reason: str, action: str) -> str:
    reason = (reason or "").strip()
    if not reason:
        raise DecisionReasonMissing(f"A reason is required to {action} a change request.")
    return reason


# --- raise and edit -------------------------------------------------------------------


def changerequest_create(
    *,
    kind: str,
    payload: dict[str, Any],
    reason: str,
    acting_user: Any,
    schedule: str = Schedule.IMMEDIATE,
    apply_after: datetime | None = None,
) -> ChangeRequest:
    """Raise a change request for a gated change and notify the approvers after commit.

    Raises ChangeNotGated when the tenant's policy does not gate the kind,
    ChangeRequestInvalid when the payload does not describe an applicable
    change.
    """
    reason = _require_reason(reason, "raise")
    _check_schedule(schedule, apply_after)
    prepared = appliers.change_prepare(kind, payload)
    settings = approval_settings()
    policy = prepared.grant.policy if prepared.grant is not None else None
    if not kind_is_gated(kind, policy=policy, settings=settings):
        raise ChangeNotGated(
            f"Changes of kind {kind!r} need no approval under this tenant's policy."
        )
    now = timezone.now()
    request = ChangeRequest(
        kind=kind,
        payload=payload,
        reason=reason,
        requester=acting_user,
        grant=prepared.grant,
        term_end=prepared.term_end,
        quorum_required=settings.quorum,
        schedule=schedule,
        apply_after=apply_after,
        before=prepared.before,
        after=prepared.after,
        base=prepared.base,
        expires_at=now + timedelta(hours=settings.request_expiry_hours),
        next_escalation_at=now + timedelta(hours=settings.reminder_after_hours),
    )
    with transaction.atomic():
        request._history_user = acting_user  # type: ignore[attr-defined]  # read by simple-history
        request.save()
        decision_record(
            event="change_request.raised",
            outcome="pending",
            actor=_actor(acting_user),
            subject=str(request.pk),
            data={"kind": kind, "quorum": request.quorum_required},
        )
        notify_on_commit(request.pk, "raised")
    logger.info("change_request.raised request=%s kind=%s", request.pk, kind)
    return request


def changerequest_edit(
    *,
    request_id: int,
    acting_user: Any,
    payload: dict[str, Any] | None = None,
    reason: str | None = None,
    schedule: str | None = None,
    apply_after: datetime | None = None,
) -> ChangeRequest:
    """Change a pending or approved request; every approval given so far is voided.

    The request gets a new revision, returns to pending, and its preview and
    base versions are taken afresh from the current state.
    """
    with transaction.atomic():
        request = _locked(request_id)
        if request.requester_id != getattr(acting_user, "pk", None):
            raise NotRequester(f"Only the requester can edit change request {request_id}.")
        if request.state not in (State.PENDING, State.APPROVED):
            raise ChangeRequestStateConflict(
                f"Change request {request_id} is {request.state} and can no longer be edited."
            )
        new_payload = payload if payload is not None else request.payload
        prepared = appliers.change_prepare(request.kind, new_payload)
        new_schedule = schedule or request.schedule
        new_apply_after = apply_after if apply_after is not None else request.apply_after
        _check_schedule(new_schedule, new_apply_after)

        now = timezone.now()
        voided = 0
        for approval in Approval.objects.select_for_update().filter(
            request=request, voided_at__isnull=True
        ):
            approval.voided_at = now
            approval._history_user = acting_user  # type: ignore[attr-defined]  # simple-history
            approval.save(update_fields=["voided_at"])
            voided += 1

        request.payload = new_payload
        if reason is not None:
            request.reason = _require_reason(reason, "edit")
        request.schedule = new_schedule
        request.apply_after = new_apply_after
        request.before, request.after, request.base = prepared.before, prepared.after, prepared.base
        request.revision += 1
        request.state = State.PENDING
        request.apply_due_at = None
        request.decided_at = None
        _save(
            request,
            acting_user,
            [
                "payload",
                "reason",
                "schedule",
                "apply_after",
                "before",
                "after",
                "base",
                "revision",
                "state",
                "apply_due_at",
                "decided_at",
            ],
        )
        decision_record(
            event="change_request.edited",
            outcome="pending",
            actor=_actor(acting_user),
            subject=str(request.pk),
            data={"revision": request.revision, "approvals_voided": voided},
        )
        notify_on_commit(request.pk, "edited")
    logger.info(
        "change_request.edited request=%s revision=%d voided=%d",
        request.pk,
        request.revision,
        voided,
    )
    return request


# --- decisions ------------------------------------------------------------------------


def _decision_refused(request_id: int, acting_user: Any, error: KeyplaneError) -> None:
    with transaction.atomic():
        decision_record(
            event="change_request.decision_refused",
            outcome="denied",
            reason=error.code,
            actor=_actor(acting_user),
            subject=str(request_id),
        )
    logger.warning(
        "change_request.decision_refused request=%s user=%s code=%s",
        request_id,
        getattr(acting_user, "pk", None),
        error.code,
    )


def _check_decider(request: ChangeRequest, acting_user: Any) -> None:
    # Checked before the permission, so even a superuser is named as the requester.
    if request.requester_id == getattr(acting_user, "pk", None):
        raise SelfApprovalForbidden(
            f"User {acting_user.pk} raised change request {request.pk} and cannot decide it."
        )
    if not (acting_user.is_active and acting_user.has_perm(APPROVE_PERMISSION)):
        raise ApproverNotAllowed(
            f"User {acting_user.pk} lacks the approve_changerequest permission."
        )
    if request.state != State.PENDING:
        raise ChangeRequestStateConflict(
            f"Change request {request.pk} is {request.state}; only pending requests are decided."
        )


def _approval_add(request: ChangeRequest, acting_user: Any, decision: str, reason: str) -> None:
    approval = Approval(
        request=request,
        approver=acting_user,
        decision=decision,
        reason=reason,
        revision=request.revision,
    )
    approval._history_user = acting_user  # type: ignore[attr-defined]  # read by simple-history
    try:
        with transaction.atomic():
            approval.save()
    except IntegrityError as error:
        raise AlreadyDecided(
            f"User {acting_user.pk} already decided revision {request.revision} of change "
            f"request {request.pk}."
        ) from error


def changerequest_approve(*, request_id: int, acting_user: Any, reason: str = "") -> ChangeRequest:
    """Approve a pending request; at quorum it becomes approved and its application is scheduled.

    The requester can never approve, whatever their role; such an attempt
    and every other refusal is recorded in the decision log.
    """
    try:
        with transaction.atomic():
            request = _locked(request_id)
            _check_decider(request, acting_user)
            _approval_add(request, acting_user, Approval.Decision.APPROVE, reason)
            count = approvals_counted(request)
            decision_record(
                event="change_request.approval",
                outcome="approve",
                actor=_actor(acting_user),
                subject=str(request.pk),
                data={
                    "revision": request.revision,
                    "count": count,
                    "quorum": request.quorum_required,
                },
            )
            if count >= request.quorum_required:
                _approved(request, acting_user)
    except (SelfApprovalForbidden, ApproverNotAllowed) as error:
        _decision_refused(request_id, acting_user, error)
        raise
    return request


def _approved(request: ChangeRequest, acting_user: Any) -> None:
    now = timezone.now()
    request.state = State.APPROVED
    request.decided_at = now
    request.apply_due_at = apply_due_time(request, approval_settings(), now)
    request.next_escalation_at = None
    _save(request, acting_user, ["state", "decided_at", "apply_due_at", "next_escalation_at"])
    decision_record(
        event="change_request.approved",
        outcome="approved",
        actor=_actor(acting_user),
        subject=str(request.pk),
        data={"apply_due_at": request.apply_due_at.isoformat()},
    )
    if request.apply_due_at <= now:
        from approvals.tasks import apply

        apply.delay_on_commit(request.pk, getattr(acting_user, "pk", None))
    logger.info("change_request.approved request=%s due=%s", request.pk, request.apply_due_at)


def changerequest_reject(*, request_id: int, acting_user: Any, reason: str) -> ChangeRequest:
    """Reject a pending request with a required reason; one rejection ends it."""
    try:
        with transaction.atomic():
            request = _locked(request_id)
            _check_decider(request, acting_user)
            reason = _require_reason(reason, "reject")
            _approval_add(request, acting_user, Approval.Decision.REJECT, reason)
            request.state = State.REJECTED
            request.decided_at = timezone.now()
            request.decision_reason = reason
            request.next_escalation_at = None
            _save(
                request,
                acting_user,
                ["state", "decided_at", "decision_reason", "next_escalation_at"],
            )
            decision_record(
                event="change_request.rejected",
                outcome="rejected",
                actor=_actor(acting_user),
                subject=str(request.pk),
                data={"revision": request.revision},
            )
            notify_on_commit(request.pk, "rejected")
    except (SelfApprovalForbidden, ApproverNotAllowed) as error:
        _decision_refused(request_id, acting_user, error)
        raise
    return request


def changerequest_withdraw(*, request_id: int, acting_user: Any, reason: str) -> ChangeRequest:
    """Withdraw a pending or approved, not yet applied request; only its requester can."""
    reason = _require_reason(reason, "withdraw")
    with transaction.atomic():
        request = _locked(request_id)
        if request.requester_id != getattr(acting_user, "pk", None):
            raise NotRequester(f"Only the requester can withdraw change request {request_id}.")
        if request.state not in (State.PENDING, State.APPROVED):
            raise ChangeRequestStateConflict(
                f"Change request {request_id} is {request.state} and cannot be withdrawn."
            )
        request.state = State.WITHDRAWN
        request.decision_reason = reason
        request.decided_at = timezone.now()
        request.next_escalation_at = None
        request.apply_due_at = None
        _save(
            request,
            acting_user,
            ["state", "decision_reason", "decided_at", "next_escalation_at", "apply_due_at"],
        )
        decision_record(
            event="change_request.withdrawn",
            outcome="withdrawn",
            actor=_actor(acting_user),
            subject=str(request.pk),
        )
    return request


# --- application ------------------------------------------------------------------------


def changerequest_apply(*, request_id: int, acting_user: Any) -> ChangeRequest:
    """Apply an approved request atomically, or mark it failed and raise.

    1. Lock the request; it must be approved with its quorum still met.
    2. Lock and compare every base object; a changed one raises BaseChanged.
    3. Make the changes, publish the manifest or overlay release, mark the
       request applied and record the decision, all in one transaction.
    If step 2 or 3 raises a Keyplane error, nothing of the change remains;
    the request is then marked failed in a second transaction and the error
    is raised again. A new grant's one-time license key is returned on the
    request as the unsaved attribute `issued_license_key`.
    """
    try:
        with transaction.atomic():
            request = _locked(request_id)
            if request.state != State.APPROVED:
                raise ChangeRequestStateConflict(
                    f"Change request {request_id} is {request.state}; only approved requests apply."
                )
            count = approvals_counted(request)
            if count < request.quorum_required:
                raise QuorumNotMet(
                    f"Change request {request_id} has {count} of {request.quorum_required} "
                    "approvals for its current revision."
                )
            applied = appliers.change_apply(request, acting_user)
            request.state = State.APPLIED
            request.applied_at = timezone.now()
            request.apply_due_at = None
            request.result = applied.result
            _save(request, acting_user, ["state", "applied_at", "apply_due_at", "result"])
            decision_record(
                event="change_request.applied",
                outcome="applied",
                actor=_actor(acting_user),
                subject=str(request.pk),
                data={"kind": request.kind, "result": applied.result},
            )
    except (ChangeRequestStateConflict, ChangeRequestNotFound):
        raise
    except KeyplaneError as error:
        _apply_failed(request_id, acting_user, error)
        raise
    request.issued_license_key = applied.license_key  # type: ignore[attr-defined]  # never saved
    logger.info("change_request.applied request=%s kind=%s", request.pk, request.kind)
    return request


def _apply_failed(request_id: int, acting_user: Any, error: KeyplaneError) -> None:
    with transaction.atomic():
        request = _locked(request_id)
        if request.state != State.APPROVED:
            return
        request.state = State.FAILED
        request.failure_reason = error.detail
        request.apply_due_at = None
        _save(request, acting_user, ["state", "failure_reason", "apply_due_at"])
        decision_record(
            event="change_request.apply_failed",
            outcome="failed",
            reason=error.code,
            actor=_actor(acting_user),
            subject=str(request.pk),
        )
        notify_on_commit(request.pk, "failed")
    logger.warning("change_request.apply_failed request=%s code=%s", request_id, error.code)


def changerequests_apply_due(*, now: datetime | None = None) -> int:
    """Apply every approved request that is due; return how many were applied.

    A request scheduled for a maintenance window that finds the window closed
    is moved to the next opening instead.
    """
    now = now or timezone.now()
    actor = system_user(APPLY_ACTOR)
    settings = approval_settings()
    windows = maintenance_windows(settings)
    applied = 0
    due = ChangeRequest.objects.filter(state=State.APPROVED, apply_due_at__lte=now).order_by(
        "apply_due_at", "id"
    )
    for request in due:
        in_window = request.schedule == Schedule.MAINTENANCE_WINDOW
        if in_window and windows and not window_is_open(windows, now):
            next_opening = window_next_opening(windows, now)
            ChangeRequest.objects.filter(pk=request.pk, state=State.APPROVED).update(
                apply_due_at=next_opening
            )
            continue
        try:
            changerequest_apply(request_id=request.pk, acting_user=actor)
        except ChangeRequestStateConflict:
            continue  # applied or withdrawn by another process meanwhile
        except KeyplaneError:
            logger.exception("change_request.apply_due_failed request=%s", request.pk)
            continue
        applied += 1
    return applied


# --- escalation and expiry ----------------------------------------------------------------


def changerequests_escalate(*, now: datetime | None = None) -> int:
    """Send the reminders and alerts that are due for pending requests; return how many.

    Each step is claimed with a conditional UPDATE on the escalation level,
    so concurrent sweeps send every reminder and alert once.
    """
    now = now or timezone.now()
    settings = approval_settings()
    sent = 0
    due = ChangeRequest.objects.filter(
        state=State.PENDING, next_escalation_at__lte=now, escalation_level__lt=2
    ).values_list("pk", "escalation_level", "created_at")
    for pk, level, created_at in due:
        next_level = level + 1
        next_at = (
            created_at + timedelta(hours=settings.alert_after_hours) if next_level == 1 else None
        )
        with transaction.atomic():
            claimed = ChangeRequest.objects.filter(
                pk=pk, state=State.PENDING, escalation_level=level
            ).update(escalation_level=next_level, next_escalation_at=next_at, updated_at=now)
            if claimed != 1:
                continue
            step = "reminder" if next_level == 1 else "alert"
            decision_record(
                event="change_request.escalated",
                outcome=step,
                actor=system_actor(ESCALATION_ACTOR),
                subject=str(pk),
                data={"level": next_level},
            )
            notify_on_commit(pk, step)
        sent += 1
    return sent


def changerequests_expire(*, now: datetime | None = None) -> int:
    """Expire pending requests past their expiry and alert the tenant admins; return how many."""
    now = now or timezone.now()
    actor = system_user("approvals_expiry")
    expired = 0
    for pk in ChangeRequest.objects.filter(state=State.PENDING, expires_at__lte=now).values_list(
        "pk", flat=True
    ):
        with transaction.atomic():
            request = _locked(pk)
            if request.state != State.PENDING:
                continue
            request.state = State.EXPIRED
            request.decided_at = now
            request.next_escalation_at = None
            _save(request, actor, ["state", "decided_at", "next_escalation_at"])
            decision_record(
                event="change_request.expired",
                outcome="expired",
                actor=_actor(actor),
                subject=str(pk),
            )
            notify_on_commit(pk, "expired")
        expired += 1
    return expired
