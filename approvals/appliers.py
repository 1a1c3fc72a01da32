"""Per kind of change request: the preview of the change and the code that applies it.

For every kind, `prepare` reads the current state and returns the
before/after values shown to approvers and the `base`: the fields of each
object the change depends on, with the object's latest history id. `apply`
runs inside the caller's transaction, first checks that every base object
still has those values (`base_check`), then makes the change.

Licensing offers no service to extend a term, change a seat count or change
a policy's entitlements, so those writes are here. Each locks the row, saves
with `update_fields` and an explicit history user, records the decision and
publishes the product's manifest in the caller's transaction. New grants,
grant revocations and overlay releases call the owning app's service.
"""

import importlib
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from django.apps import apps
from django.core.exceptions import ValidationError
from django.db import models
from django.utils import timezone
from django.utils.dateparse import parse_datetime

from approvals.exceptions import ApplyUnavailable, BaseChanged, ChangeRequestInvalid
from approvals.models import ChangeRequest
from audit.services import decision_record
from licensing.manifests import manifest_publish
from licensing.models import LicenseGrant, Policy

logger = logging.getLogger(__name__)

Kind = ChangeRequest.Kind


@dataclass
class Prepared:
    """The preview of a change: shown values, base versions and the grant it concerns."""

    before: dict[str, Any]
    after: dict[str, Any]
    base: list[dict[str, Any]]
    grant: LicenseGrant | None = None
    term_end: datetime | None = None


@dataclass
class Applied:
    """The outcome of applying: ids for the request's result, and a one-time license key."""

    result: dict[str, Any]
    license_key: str | None = field(default=None, repr=False)


def _json_value(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat()
    return value


def _base_entry(obj: models.Model, fields: list[str]) -> dict[str, Any]:
    history = getattr(obj, "history", None)
    history_id = None
    if history is not None:
        history_id = history.order_by("-history_id").values_list("history_id", flat=True).first()
    return {
        "model": obj._meta.label_lower,
        "pk": obj.pk,
        "history_id": history_id,
        "fields": {name: _json_value(getattr(obj, name)) for name in fields},
    }


def base_check(base: list[dict[str, Any]]) -> None:
    """Lock every base object and raise BaseChanged if one of its fields differs or it is gone."""
    for entry in base:
        model = apps.get_model(entry["model"])
        obj = model.objects.select_for_update().filter(pk=entry["pk"]).first()
        if obj is None:
            raise BaseChanged(
                f"{model._meta.verbose_name} {entry['pk']} changed since the request was raised: "
                "it no longer exists."
            )
        for name, expected in entry["fields"].items():
            current = _json_value(getattr(obj, name))
            if current != expected:
                raise BaseChanged(
                    f"{model._meta.verbose_name} {entry['pk']} changed since the request was "
                    f"raised: {name} was {expected!r} and is now {current!r}."
                )


def _payload_int(payload: dict[str, Any], key: str) -> int:
    value = payload.get(key)
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        raise ChangeRequestInvalid(f"payload.{key} must be a positive integer, not {value!r}.")
    return value


def _grant(payload: dict[str, Any]) -> LicenseGrant:
    grant_id = _payload_int(payload, "grant")
    grant = LicenseGrant.objects.select_related("policy").filter(pk=grant_id).first()
    if grant is None:
        raise ChangeRequestInvalid(f"No license grant has the id {grant_id}.")
    if grant.status == LicenseGrant.Status.REVOKED:
        raise ChangeRequestInvalid(f"License grant {grant_id} is revoked and cannot change.")
    return grant


def _policy(payload: dict[str, Any]) -> Policy:
    policy_id = _payload_int(payload, "policy")
    policy = Policy.objects.filter(pk=policy_id).first()
    if policy is None:
        raise ChangeRequestInvalid(f"No policy has the id {policy_id}.")
    return policy


def _actor(acting_user: Any) -> str:
    return getattr(acting_user, "username", "") or ""


# --- renewal --------------------------------------------------------------------


def grant_lapsed(grant: LicenseGrant, now: datetime) -> bool:
    """Return whether the grant expired or is past its grace period."""
    grace_end = grant.term_end + timedelta(days=grant.policy.grace_days)
    return grant.status == LicenseGrant.Status.EXPIRED or now >= grace_end


def renewed_term(grant: LicenseGrant, now: datetime) -> tuple[datetime, datetime]:
    """Return the (start, end) of the next term: from the old end, or from now once lapsed."""
    length = timedelta(days=grant.policy.term_days)
    if grant_lapsed(grant, now):
        return now, now + length
    return grant.term_start, grant.term_end + length


def _renewal_prepare(payload: dict[str, Any]) -> Prepared:
    grant = _grant(payload)
    _, new_end = renewed_term(grant, timezone.now())
    return Prepared(
        before={"term_end": grant.term_end.isoformat(), "status": grant.status},
        after={"term_end": new_end.isoformat(), "status": LicenseGrant.Status.ACTIVE},
        base=[
            _base_entry(grant, ["term_end"]),
            _base_entry(grant.policy, ["term_days"]),
        ],
        grant=grant,
        term_end=grant.term_end,
    )


def _renewal_apply(request: ChangeRequest, acting_user: Any) -> Applied:
    grant = (
        LicenseGrant.objects.select_for_update(no_key=True)
        .select_related("policy")
        .get(pk=request.payload["grant"])
    )
    if grant.status == LicenseGrant.Status.REVOKED:
        raise ChangeRequestInvalid(f"License grant {grant.pk} was revoked; it cannot be renewed.")
    old_end = grant.term_end
    grant.term_start, grant.term_end = renewed_term(grant, timezone.now())
    grant.status = LicenseGrant.Status.ACTIVE
    grant.status_reason = f"renewed by change request {request.pk}"
    grant._history_user = acting_user  # type: ignore[attr-defined]  # read by simple-history
    grant.save(update_fields=["term_start", "term_end", "status", "status_reason"])
    decision_record(
        event="grant.renewed",
        outcome="done",
        reason="change_request",
        actor=_actor(acting_user),
        subject=str(grant.pk),
        data={
            "request": request.pk,
            "old_term_end": old_end.isoformat(),
            "term_end": grant.term_end.isoformat(),
        },
    )
    manifest = manifest_publish(
        product_code=grant.policy.product_code,
        reason=f"grant {grant.pk} renewed until {grant.term_end:%Y-%m-%d}",
        acting_user=acting_user,
    )
    return Applied(
        {"grant": grant.pk, "term_end": grant.term_end.isoformat(), "manifest": manifest.version}
    )


# --- seat increase ----------------------------------------------------------------


def _seat_increase_prepare(payload: dict[str, Any]) -> Prepared:
    grant = _grant(payload)
    seats = _payload_int(payload, "seat_count")
    if seats <= grant.seat_count:
        raise ChangeRequestInvalid(
            f"payload.seat_count {seats} is not above the grant's {grant.seat_count} seats; "
            "a seat increase must raise the count."
        )
    if seats > grant.policy.seat_limit:
        raise ChangeRequestInvalid(
            f"payload.seat_count {seats} exceeds the policy's seat_limit "
            f"{grant.policy.seat_limit}; raise the limit first."
        )
    return Prepared(
        before={"seat_count": grant.seat_count},
        after={"seat_count": seats},
        base=[_base_entry(grant, ["seat_count", "status"])],
        grant=grant,
    )


def _seat_increase_apply(request: ChangeRequest, acting_user: Any) -> Applied:
    grant = LicenseGrant.objects.select_for_update(no_key=True).get(pk=request.payload["grant"])
    old = grant.seat_count
    grant.seat_count = request.payload["seat_count"]
    grant._history_user = acting_user  # type: ignore[attr-defined]  # read by simple-history
    grant.save(update_fields=["seat_count"])
    decision_record(
        event="grant.seats_changed",
        outcome="done",
        reason="change_request",
        actor=_actor(acting_user),
        subject=str(grant.pk),
        data={"request": request.pk, "old_seats": old, "seats": grant.seat_count},
    )
    # Seat counts are enforced by the server and are not part of the manifest.
    return Applied({"grant": grant.pk, "seat_count": grant.seat_count})


# --- new grant --------------------------------------------------------------------


def _new_grant_prepare(payload: dict[str, Any]) -> Prepared:
    policy = _policy(payload)
    seats = _payload_int(payload, "seat_count")
    if seats > policy.seat_limit:
        raise ChangeRequestInvalid(
            f"payload.seat_count {seats} exceeds the policy's seat_limit {policy.seat_limit}."
        )
    return Prepared(
        before={},
        after={"policy": policy.pk, "seat_count": seats, "term_days": policy.term_days},
        base=[_base_entry(policy, ["seat_limit", "term_days", "entitlements"])],
    )


def _new_grant_apply(request: ChangeRequest, acting_user: Any) -> Applied:
    from licensing.services import grant_create

    grant, license_key = grant_create(
        policy_id=request.payload["policy"],
        seat_count=request.payload["seat_count"],
        acting_user=acting_user,
    )
    return Applied({"grant": grant.pk, "key_hint": grant.key_hint}, license_key=license_key)


# --- entitlement change -------------------------------------------------------------


def _entitlements(payload: dict[str, Any]) -> list[str]:
    value = payload.get("entitlements")
    if not isinstance(value, list) or not all(isinstance(code, str) for code in value):
        raise ChangeRequestInvalid(
            f"payload.entitlements must be a list of feature codes, not {value!r}."
        )
    return sorted(set(value))


def _entitlement_change_prepare(payload: dict[str, Any]) -> Prepared:
    policy = _policy(payload)
    codes = _entitlements(payload)
    candidate = Policy.objects.get(pk=policy.pk)
    candidate.entitlements = codes
    try:
        candidate.full_clean()
    except ValidationError as error:
        raise ChangeRequestInvalid(f"The entitlements are invalid: {error.messages}") from error
    return Prepared(
        before={"entitlements": sorted(policy.entitlements)},
        after={"entitlements": codes},
        base=[_base_entry(policy, ["entitlements"])],
    )


def _entitlement_change_apply(request: ChangeRequest, acting_user: Any) -> Applied:
    policy = Policy.objects.select_for_update().get(pk=request.payload["policy"])
    old = list(policy.entitlements)
    policy.entitlements = _entitlements(request.payload)
    policy._history_user = acting_user  # type: ignore[attr-defined]  # read by simple-history
    policy.save(update_fields=["entitlements"])
    decision_record(
        event="policy.entitlements_changed",
        outcome="done",
        reason="change_request",
        actor=_actor(acting_user),
        subject=str(policy.pk),
        data={"request": request.pk, "old": old, "new": policy.entitlements},
    )
    manifest = manifest_publish(
        product_code=policy.product_code,
        reason=f"entitlements of policy {policy.pk} changed",
        acting_user=acting_user,
    )
    return Applied({"policy": policy.pk, "manifest": manifest.version})


# --- grant revocation ---------------------------------------------------------------


def _grant_revocation_prepare(payload: dict[str, Any]) -> Prepared:
    grant = _grant(payload)
    return Prepared(
        before={"status": grant.status},
        after={"status": LicenseGrant.Status.REVOKED},
        base=[_base_entry(grant, ["status"])],
        grant=grant,
    )


def _grant_revocation_apply(request: ChangeRequest, acting_user: Any) -> Applied:
    from licensing.services import grant_revoke

    revocation = grant_revoke(
        grant_id=request.payload["grant"],
        reason=f"change request {request.pk}: {request.reason}",
        acting_user=acting_user,
    )
    return Applied({"grant": request.payload["grant"], "revocation": revocation.pk})


# --- overlay release ----------------------------------------------------------------


def _overlay_services() -> Any:
    try:
        return importlib.import_module("overlays.services")
    except ImportError as error:
        raise ApplyUnavailable(
            "Overlay releases need overlays.services, which is missing."
        ) from error


def _overlay_release_prepare(payload: dict[str, Any]) -> Prepared:
    from overlays.models import ReleaseHead, TenantOverlay

    product_code = payload.get("product_code")
    if not isinstance(product_code, str) or not product_code:
        raise ChangeRequestInvalid(
            f"payload.product_code must be a product code, not {product_code!r}."
        )
    tenant_patch = payload.get("tenant_patch")
    if tenant_patch is not None and not isinstance(tenant_patch, dict):
        raise ChangeRequestInvalid("payload.tenant_patch must be a JSON object (a merge patch).")
    head = ReleaseHead.objects.select_related("current").filter(product_code=product_code).first()
    draft = TenantOverlay.objects.filter(product_code=product_code).first()
    base = []
    if head is not None:
        base.append(_base_entry(head, ["current_id"]))
    if draft is not None:
        base.append(_base_entry(draft, ["patch"]))
    current = head.current.number if head is not None and head.current is not None else None
    return Prepared(
        before={"release": current, "tenant_patch": draft.patch if draft else None},
        after={
            "release": (current or 0) + 1,
            "tenant_patch": tenant_patch
            if tenant_patch is not None
            else (draft.patch if draft else None),
        },
        base=base,
    )


def _overlay_release_apply(request: ChangeRequest, acting_user: Any) -> Applied:
    publish = getattr(_overlay_services(), "release_publish", None)
    if publish is None:
        raise ApplyUnavailable("overlays.services has no release_publish service.")
    from overlays.exceptions import ReleaseConflict

    try:
        outcome = publish(
            product_code=request.payload["product_code"],
            base_release=request.before.get("release"),
            acting_user=acting_user,
            tenant_patch=request.payload.get("tenant_patch"),
            steps=request.payload.get("steps"),
            reason=f"change request {request.pk}",
        )
    except ReleaseConflict as error:
        raise BaseChanged(
            f"The overlay releases of {request.payload['product_code']!r} changed since the "
            f"request was raised: {error.detail}"
        ) from error
    return Applied({"release": outcome.release.number, "created": outcome.created})


PREPARERS: dict[str, Callable[[dict[str, Any]], Prepared]] = {
    Kind.RENEWAL: _renewal_prepare,
    Kind.SEAT_INCREASE: _seat_increase_prepare,
    Kind.NEW_GRANT: _new_grant_prepare,
    Kind.ENTITLEMENT_CHANGE: _entitlement_change_prepare,
    Kind.GRANT_REVOCATION: _grant_revocation_prepare,
    Kind.OVERLAY_RELEASE: _overlay_release_prepare,
}
APPLIERS: dict[str, Callable[[ChangeRequest, Any], Applied]] = {
    Kind.RENEWAL: _renewal_apply,
    Kind.SEAT_INCREASE: _seat_increase_apply,
    Kind.NEW_GRANT: _new_grant_apply,
    Kind.ENTITLEMENT_CHANGE: _entitlement_change_apply,
    Kind.GRANT_REVOCATION: _grant_revocation_apply,
    Kind.OVERLAY_RELEASE: _overlay_release_apply,
}


def change_prepare(kind: str, payload: Any) -> Prepared:
    """Validate a payload for its kind and return the preview of the change."""
    if kind not in PREPARERS:
        raise ChangeRequestInvalid(f"Unknown change kind {kind!r}; use one of {sorted(PREPARERS)}.")
    if not isinstance(payload, dict):
        raise ChangeRequestInvalid("The payload must be a JSON object.")
    return PREPARERS[kind](payload)


def change_apply(request: ChangeRequest, acting_user: Any) -> Applied:
    """Check the request's base objects, then apply it (inside the caller's transaction)."""
    base_check(request.base)
    return APPLIERS[request.kind](request, acting_user)


def parse_moment(value: Any) -> datetime | None:
    """Return an aware datetime from an ISO 8601 string, or None."""
    if isinstance(value, datetime):
        return value
    if not isinstance(value, str):
        return None
    return parse_datetime(value)
