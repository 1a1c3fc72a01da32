"""Writes of overlay state: drafts, releases, rollbacks, rollouts and apply reports.

Every publish and rollback locks the product's `ReleaseHead` row for the
rest of its transaction, so two of them never interleave. The second one
waits, then finds that the head moved and fails with `release_conflict`.
For identical content it returns the release the first one created.
"""

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import Count, Q
from django.utils import timezone

from audit.services import decision_record
from licensing.models import Device, DeviceGroup
from licensing.signing import current_tenant_slug, sign_tenant_object
from overlays.canonical import content_address
from overlays.exceptions import (
    OverlayGroupUnknown,
    OverlayInvalid,
    ReleaseConflict,
    ReleaseNotFound,
    RolloutInvalid,
)
from overlays.models import (
    ApplyReport,
    DeviceRelease,
    GroupOverlay,
    MaintenanceWindow,
    OverlayFinding,
    OverlaySettings,
    Release,
    ReleaseHead,
    ReleaseVariant,
    Rollout,
    TenantOverlay,
)
from overlays.resolution import LayerSet, Resolver, combination_key
from overlays.rollout import RolloutPlanInvalid, steps_parse, window_contains
from overlays.selectors import (
    device_group_ids,
    layer_set_build,
    release_for_device,
    tenant_facts,
    validator_for,
)
from overlays.validation import ValidationIssue, secrets_scan

logger = logging.getLogger(__name__)

OVERLAY_TYP = "kp-overlay+jwt"
IMMEDIATE = [{"percent": 100}]
_DECISION_REASONS: dict[str, str] = {
    Release.Kind.PUBLISH: "overlay_changed",
    Release.Kind.ROLLBACK: "rollback_requested",
    Release.Kind.AUTO_ROLLBACK: "apply_failure_threshold",
}


def _actor(acting_user: Any) -> str:
    return getattr(acting_user, "username", "") or "system"


def _user_or_none(acting_user: Any) -> Any:
    return acting_user if getattr(acting_user, "pk", None) else None


def _raise_if_issues(issues: list[ValidationIssue], what: str) -> None:
    if issues:
        summary = "; ".join(str(issue) for issue in issues[:5])
        more = f" (and {len(issues) - 5} more)" if len(issues) > 5 else ""
        raise OverlayInvalid(
            f"The {what} is invalid: {summary}{more}.",
            issues=[issue.as_dict() for issue in issues],
        )


# --- drafts ---------------------------------------------------------------------


def _drafts_store(layer_set: LayerSet) -> None:
    """Make the draft layers equal to `layer_set` (in the caller's transaction)."""
    TenantOverlay.objects.update_or_create(
        product_code=layer_set.product_code, defaults={"patch": dict(layer_set.tenant)}
    )
    kept = []
    for group in layer_set.groups:
        GroupOverlay.objects.update_or_create(
            product_code=layer_set.product_code,
            group_id=group.group_id,
            defaults={"patch": dict(group.patch), "position": group.position},
        )
        kept.append(group.group_id)
    for stale in GroupOverlay.objects.filter(product_code=layer_set.product_code).exclude(
        group_id__in=kept
    ):
        stale.delete()


def overlay_draft_save(
    *,
    product_code: str,
    acting_user: Any,
    tenant_patch: Any = None,
    group_entries: list[dict[str, Any]] | None = None,
) -> LayerSet:
    """Replace the given draft layers after checking shape, groups and plaintext secrets.

    Drafts may be incomplete, so schema rules are checked when publishing;
    plaintext secrets are rejected here already, so they are never stored.
    """
    layer_set = layer_set_build(
        product_code, tenant_patch=tenant_patch, group_entries=group_entries
    )
    issues = [i for layer in layer_set.layers()[1:] for i in secrets_scan(layer)]
    _raise_if_issues(issues, "overlay draft")
    with transaction.atomic():
        _drafts_store(layer_set)
    logger.info(
        "overlay.draft_saved product=%s groups=%d actor=%s",
        product_code,
        len(layer_set.groups),
        _actor(acting_user),
    )
    return layer_set


def layer_set_check(layer_set: LayerSet) -> None:
    """Raise `OverlayInvalid` listing every issue of every target of `layer_set`."""
    validator = validator_for(layer_set.schema_version, layer_set.product_code)
    facts = tenant_facts(layer_set.product_code)
    _raise_if_issues(Resolver(layer_set).validate_all(validator, facts), "overlay")


# --- releases -------------------------------------------------------------------


@dataclass(frozen=True)
class PublishResult:
    release: Release
    created: bool


def _head_lock(product_code: str) -> ReleaseHead:
    """Return the product's head row locked for this transaction, creating it if needed."""
    head = ReleaseHead.objects.select_for_update().filter(product_code=product_code).first()
    if head is not None:
        return head
    try:
        with transaction.atomic():
            ReleaseHead.objects.create(product_code=product_code)
    except IntegrityError:
        pass  # another transaction created it first
    return ReleaseHead.objects.select_for_update().get(product_code=product_code)


def _release_create(
    *,
    head: ReleaseHead,
    layer_set: LayerSet,
    sha256: str,
    kind: str,
    steps: list[dict[str, Any]],
    promote_every_minutes: int | None,
    acting_user: Any,
    reason: str,
    restores_number: int | None = None,
) -> Release:
    """Create the next release and its rollout and make it current (caller holds the lock)."""
    current = head.current
    last = Release.objects.filter(product_code=head.product_code).order_by("-number").first()
    number = (last.number if last else 0) + 1

    base = None
    if current is not None:
        rollout = Rollout.objects.filter(release=current).first()
        finished = rollout is None or rollout.status == Rollout.Status.COMPLETE
        base = current if finished else current.base
        if rollout is not None and rollout.status == Rollout.Status.ACTIVE:
            rollout.status = Rollout.Status.SUPERSEDED
            rollout.save(update_fields=["status"])

    release = Release.objects.create(
        product_code=head.product_code,
        number=number,
        sha256=sha256,
        content=layer_set.content(),
        schema_version=layer_set.schema_version,
        kind=kind,
        restores_number=restores_number,
        base=base,
        reason=reason[:500],
        created_by=_user_or_none(acting_user),
    )
    complete = steps_parse(steps)[0].percent == 100
    Rollout.objects.create(
        release=release,
        steps=steps,
        promote_every_minutes=promote_every_minutes,
        status=Rollout.Status.COMPLETE if complete else Rollout.Status.ACTIVE,
        step_started_at=timezone.now(),
    )
    head.current = release
    head.save(update_fields=["current", "updated_at"])

    decision_record(
        event=f"overlay.release_{kind}",
        outcome="done",
        reason=_DECISION_REASONS[kind],
        actor=_actor(acting_user),
        subject=f"{head.product_code}@{number}",
        data={"sha256": sha256, "restores": restores_number, "steps": steps, "note": reason[:200]},
    )
    product_code = head.product_code
    why = f"overlay release {number} became current"
    transaction.on_commit(lambda: _manifest_republish(product_code, why, acting_user))
    return release


def _manifest_republish(product_code: str, reason: str, acting_user: Any) -> None:
    """Publish a manifest whose overlay pointer reflects the current release and rollout."""
    from licensing.manifests import manifest_publish

    try:
        manifest_publish(
            product_code=product_code,
            reason=reason,
            acting_user=acting_user,
        )
    except Exception:
        # The release is committed; the next manifest publish carries the pointer.
        logger.exception("overlay.manifest_publish_failed product=%s", product_code)


def release_publish(
    *,
    product_code: str,
    base_release: int | None,
    acting_user: Any,
    tenant_patch: Any = None,
    group_entries: list[dict[str, Any]] | None = None,
    steps: list[dict[str, Any]] | None = None,
    promote_every_minutes: int | None = None,
    reason: str = "",
) -> PublishResult:
    """Validate the overlay and publish it as the next release of the product.

    1. Build the layer set from the drafts and the layers given here, and
       validate every target (no group, and each group) and every layer.
    2. Lock the product's release head.
    3. If the content equals the current release's, return that release.
    4. If the current release is not `base_release` (the one the caller
       built on), raise `ReleaseConflict`; nothing changes.
    5. Create the release and its rollout, store the given layers as the
       drafts, record the decision, and publish a manifest after commit.
    """
    steps = steps or IMMEDIATE
    try:
        parsed = steps_parse(steps)
    except RolloutPlanInvalid as error:
        raise RolloutInvalid(f"The rollout steps are invalid: {error}") from error
    ring_names = {name for step in parsed for name in step.groups}
    unknown = sorted(
        ring_names
        - set(DeviceGroup.objects.filter(name__in=ring_names).values_list("name", flat=True))
    )
    if unknown:
        raise OverlayGroupUnknown(
            f"The rollout steps name device groups that do not exist: {unknown}.",
            extra={"groups": unknown},
        )
    if promote_every_minutes is not None and promote_every_minutes < 1:
        raise RolloutInvalid(
            f"promote_every_minutes must be at least 1, not {promote_every_minutes}."
        )

    layer_set = layer_set_build(
        product_code, tenant_patch=tenant_patch, group_entries=group_entries
    )
    layer_set_check(layer_set)
    sha256 = content_address(layer_set.content())

    with transaction.atomic():
        head = _head_lock(product_code)
        current = head.current
        if current is not None and current.sha256 == sha256:
            logger.info(
                "overlay.publish_unchanged product=%s release=%d", product_code, current.number
            )
            return PublishResult(current, created=False)
        current_number = current.number if current else None
        if base_release != current_number:
            raise ReleaseConflict(
                f"Release {current_number} of {product_code!r} is current, but this publish was "
                f"built on release {base_release}; another publish changed it first."
            )
        release = _release_create(
            head=head,
            layer_set=layer_set,
            sha256=sha256,
            kind=Release.Kind.PUBLISH,
            steps=steps,
            promote_every_minutes=promote_every_minutes,
            acting_user=acting_user,
            reason=reason or "published",
        )
        if tenant_patch is not None or group_entries is not None:
            _drafts_store(layer_set)
    logger.info(
        "overlay.published product=%s release=%d sha256=%s", product_code, release.number, sha256
    )
    return PublishResult(release, created=True)


def release_rollback(
    *,
    product_code: str,
    to_number: int,
    acting_user: Any,
    reason: str = "",
    kind: str = Release.Kind.ROLLBACK,
) -> Release:
    """Publish the content of release `to_number` again, as a new, higher release number.

    Clients reject a release number lower than one they have seen, so a
    rollback never serves the old number again. It reaches every device at
    once, and the drafts are reset to the restored content.
    """
    with transaction.atomic():
        head = _head_lock(product_code)
        target = Release.objects.filter(product_code=product_code, number=to_number).first()
        if target is None:
            raise ReleaseNotFound(f"Product {product_code!r} has no release {to_number}.")
        current = head.current
        if current is not None and current.sha256 == target.sha256:
            return current

        layer_set = LayerSet.from_content(target.content)
        # A group deleted since then keeps no overlay; its devices left it.
        existing = set(
            DeviceGroup.objects.filter(pk__in=[g.group_id for g in layer_set.groups]).values_list(
                "pk", flat=True
            )
        )
        kept = tuple(g for g in layer_set.groups if g.group_id in existing)
        layer_set = LayerSet(
            product_code, layer_set.schema_version, layer_set.defaults, layer_set.tenant, kept
        )
        layer_set_check(layer_set)
        release = _release_create(
            head=head,
            layer_set=layer_set,
            sha256=content_address(layer_set.content()),
            kind=kind,
            steps=IMMEDIATE,
            promote_every_minutes=None,
            acting_user=acting_user,
            reason=reason or f"rollback to release {to_number}",
            restores_number=to_number,
        )
        _drafts_store(layer_set)
    logger.info(
        "overlay.rolled_back product=%s release=%d restores=%d",
        product_code,
        release.number,
        to_number,
    )
    return release


# --- rollouts -------------------------------------------------------------------


def maintenance_window_open(moment: datetime) -> bool:
    """Return whether `moment` is inside a maintenance window (always, when none is set)."""
    windows = list(MaintenanceWindow.objects.all())
    return not windows or any(
        window_contains(weekdays=w.weekdays, start=w.start_time, end=w.end_time, moment=moment)
        for w in windows
    )


def rollout_promote(
    *, product_code: str, acting_user: Any, ignore_window: bool = False, now: datetime | None = None
) -> Rollout:
    """Move the current release's rollout to its next step.

    Outside every maintenance window this raises `RolloutInvalid` unless
    `ignore_window` is set (an admin's explicit decision).
    """
    now = now or timezone.now()
    with transaction.atomic():
        head = _head_lock(product_code)
        rollout = (
            Rollout.objects.select_for_update().filter(release=head.current).first()
            if head.current
            else None
        )
        if rollout is None or rollout.status != Rollout.Status.ACTIVE:
            raise RolloutInvalid(f"Product {product_code!r} has no rollout in progress.")
        if not ignore_window and not maintenance_window_open(now):
            raise RolloutInvalid(
                f"{now:%Y-%m-%d %H:%M} UTC is outside every maintenance window; promote inside "
                "a window or confirm the promotion outside it."
            )
        rollout.step_index += 1
        rollout.step_started_at = now
        if rollout.step_index >= len(rollout.steps) - 1:
            rollout.step_index = len(rollout.steps) - 1
            rollout.status = Rollout.Status.COMPLETE
        rollout.save(update_fields=["step_index", "step_started_at", "status"])
        if rollout.status == Rollout.Status.COMPLETE:
            # The manifest stops naming a base release once every device gets the current one.
            why = f"overlay release {rollout.release.number} reached every device"
            transaction.on_commit(lambda: _manifest_republish(product_code, why, acting_user))
        decision_record(
            event="overlay.rollout_promoted",
            outcome="done",
            actor=_actor(acting_user),
            subject=f"{product_code}@{rollout.release.number}",
            data={"step": rollout.step_index, "steps": rollout.steps},
        )
    logger.info(
        "overlay.promoted product=%s release=%d step=%d",
        product_code,
        rollout.release.number,
        rollout.step_index,
    )
    return rollout


def rollouts_advance(*, now: datetime | None = None) -> int:
    """Promote every scheduled rollout whose step has lasted long enough; return how many.

    Runs only inside a maintenance window. Safe to run twice: a promoted
    rollout starts a new step, so it is not due again at once.
    """
    now = now or timezone.now()
    if not maintenance_window_open(now):
        return 0
    promoted = 0
    due = Rollout.objects.filter(
        status=Rollout.Status.ACTIVE, promote_every_minutes__isnull=False
    ).select_related("release")
    for rollout in due:
        assert rollout.promote_every_minutes is not None
        if rollout.step_started_at + timedelta(minutes=rollout.promote_every_minutes) > now:
            continue
        try:
            rollout_promote(product_code=rollout.release.product_code, acting_user=None, now=now)
        except RolloutInvalid as error:
            # The release was superseded or promoted by someone else meanwhile.
            logger.info("overlay.promote_skipped release=%d reason=%s", rollout.release_id, error)
            continue
        promoted += 1
    return promoted


# --- serving and apply reports --------------------------------------------------


def _variant_sign(
    release: Release, combination_key_text: str, resolver: Resolver, combination: tuple[int, ...]
) -> ReleaseVariant:
    resolution = resolver.resolve(combination)
    config_sha = content_address(resolution.config)
    tenant_slug = current_tenant_slug()
    claims = {
        "iss": f"{settings.KEYPLANE_BASE_URL}/t/{tenant_slug}",
        "tid": tenant_slug,
        "aud": release.product_code,
        "rel": release.number,
        "sha256": release.sha256,
        "cfg": resolution.config,
        "cfg_sha256": config_sha,
        "grp": [resolver.target_name(combination)],
        "iat": int(timezone.now().timestamp()),
    }
    variant, _ = ReleaseVariant.objects.get_or_create(
        release=release,
        combination=combination_key_text,
        defaults={
            "config": resolution.config,
            "provenance": resolution.provenance,
            "config_sha256": config_sha,
            "jws": sign_tenant_object(claims, typ=OVERLAY_TYP),
        },
    )
    return variant


def overlay_serve(*, device: Device, product_code: str) -> ReleaseVariant | None:
    """Return the signed overlay the device should apply, recording what it was served."""
    record = DeviceRelease.objects.filter(device=device, product_code=product_code).first()
    served = record.served_number if record else None
    release = release_for_device(device, product_code, served_number=served)
    if release is None:
        return None

    resolver = Resolver(LayerSet.from_content(release.content))
    combination = resolver.combination_of(device_group_ids(device))
    key = combination_key(combination)
    variant = ReleaseVariant.objects.filter(release=release, combination=key).first()
    if variant is None:
        variant = _variant_sign(release, key, resolver, combination)

    if served != release.number:
        DeviceRelease.objects.update_or_create(
            device=device,
            product_code=product_code,
            defaults={"served_number": release.number, "served_at": timezone.now()},
        )
    return variant


@dataclass(frozen=True)
class ApplyResult:
    report: ApplyReport
    created: bool
    rolled_back_to: Release | None = None


def release_report_apply(
    *, device: Device, product_code: str, release_number: int, ok: bool, code: str = ""
) -> ApplyResult:
    """Record a device's result of applying a release; roll back when failures pass the threshold.

    A second report for the same device and release changes nothing. When
    the failed share of the current release's reports reaches the tenant's
    threshold (after its minimum number of reports), the release is rolled
    back to its base and an `OverlayFinding` is raised.
    """
    release = Release.objects.filter(product_code=product_code, number=release_number).first()
    if release is None:
        raise ReleaseNotFound(f"Product {product_code!r} has no release {release_number}.")

    with transaction.atomic():
        report, created = ApplyReport.objects.get_or_create(
            device=device, release=release, defaults={"ok": ok, "code": code[:64]}
        )
        if not created:
            return ApplyResult(report, created=False)
        if ok:
            DeviceRelease.objects.update_or_create(
                device=device,
                product_code=product_code,
                defaults={"applied_number": release_number, "applied_at": timezone.now()},
            )
        decision_record(
            event="overlay.apply_reported",
            outcome="applied" if ok else "failed",
            reason=_failure_code(code) if not ok else "",
            actor=f"device:{device.pk}",
            subject=f"{product_code}@{release_number}",
        )

    if ok:
        return ApplyResult(report, created=True)
    return ApplyResult(report, created=True, rolled_back_to=_rollback_if_failing(release))


def _failure_code(code: str) -> str:
    """Return the client's failure code as a decision-log reason code (lower-case, at most 64)."""
    cleaned = "".join(c if c.isalnum() else "_" for c in code.lower()).strip("_")[:64]
    return cleaned if cleaned and cleaned[0].isalpha() else "apply_failed"


def _rollback_if_failing(release: Release) -> Release | None:
    limits = OverlaySettings.objects.first() or OverlaySettings()
    tally = ApplyReport.objects.filter(release=release).aggregate(
        total=Count("id"), failed=Count("id", filter=Q(ok=False))
    )
    total, failed = tally["total"], tally["failed"]
    if total < limits.failure_min_reports:
        return None
    if failed * 100 < limits.failure_threshold_percent * total:
        return None

    summary = (
        f"Release {release.number} of {release.product_code} failed to apply on {failed} of "
        f"{total} devices (threshold {limits.failure_threshold_percent} %)"
    )
    with transaction.atomic():
        head = _head_lock(release.product_code)
        if head.current_id != release.pk:
            return None  # already replaced, for example by a concurrent automatic rollback
        return _rollback_failing(release, summary, failed, total)


def _rollback_failing(release: Release, summary: str, failed: int, total: int) -> Release | None:
    """Roll `release` back to its base and raise a finding (caller holds the head lock)."""
    if release.base is None:
        OverlayFinding.objects.create(
            product_code=release.product_code,
            release=release,
            kind="apply_failures",
            summary=summary + "; there is no earlier release to roll back to.",
            data={"failed": failed, "total": total},
        )
        return None

    try:
        with transaction.atomic():  # a savepoint, so a failed rollback still records the finding
            restored = release_rollback(
                product_code=release.product_code,
                to_number=release.base.number,
                acting_user=None,
                reason=summary,
                kind=Release.Kind.AUTO_ROLLBACK,
            )
            OverlayFinding.objects.create(
                product_code=release.product_code,
                release=release,
                kind="auto_rollback",
                summary=f"{summary}; rolled back as release {restored.number}.",
                data={"failed": failed, "total": total, "rolled_back_as": restored.number},
            )
    except OverlayInvalid as error:
        logger.warning("overlay.auto_rollback_failed release=%d error=%s", release.pk, error.detail)
        OverlayFinding.objects.create(
            product_code=release.product_code,
            release=release,
            kind="apply_failures",
            summary=summary + "; the automatic rollback failed validation.",
            data={"failed": failed, "total": total, "errors": error.issues},
        )
        return None
    logger.warning(
        "overlay.auto_rolled_back product=%s release=%d restored_as=%d",
        release.product_code,
        release.number,
        restored.number,
    )
    return restored


def overlay_pointer(product_code: str) -> dict[str, Any]:
    """Manifest contribution: the number and content address of the current release.

    While the current release is still rolling out, `base` names the release
    that devices outside the rollout keep, so a client accepts either one.
    """
    head = (
        ReleaseHead.objects.filter(product_code=product_code)
        .select_related("current__base")
        .first()
    )
    if head is None or head.current is None:
        return {}
    current = head.current
    pointer: dict[str, Any] = {"release": current.number, "sha256": current.sha256}
    rollout = Rollout.objects.filter(release=current).only("status").first()
    if rollout is not None and rollout.status == Rollout.Status.ACTIVE and current.base:
        pointer["base"] = {"release": current.base.number, "sha256": current.base.sha256}
    return {"overlay": pointer}
