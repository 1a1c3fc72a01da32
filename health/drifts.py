"""The rules of reconciliation: which drifts a device, a grant or a release shows.

Each rule is a plain function of rows already read, so reconcile.py can
stream the fleet through `device_drifts` one row at a time. `grant_drifts`
and `release_drifts` read small per-grant and per-release aggregates.
"""

import datetime as dt
import functools
import logging
from collections.abc import Iterator
from dataclasses import dataclass, field

from django.db import connection
from django.db.models import Count, Max, Q
from packaging.version import InvalidVersion, Version

from health.findings import Detected
from health.models import DeviceState, HealthSettings
from licensing.models import Device, IssuedToken, LicenseGrant, Manifest, Seat

logger = logging.getLogger(__name__)

EXPIRING_WITHIN_DAYS = 30


@dataclass(frozen=True)
class FleetRow:
    """One row of FLEET_SQL."""

    device_id: int
    device_status: str
    device_last_seen: dt.datetime | None
    product_code: str
    checked_in_at: dt.datetime | None
    token_jti: str | None
    manifest_version: int | None
    overlay_release: int | None
    client_version: str | None
    seat_id: int | None
    grant_id: int | None
    seat_activated_at: dt.datetime | None
    device_revoked_at: dt.datetime | None
    token_revoked_at: dt.datetime | None
    token_grant_revoked_at: dt.datetime | None
    token_grant_id: int | None
    served_release: int | None
    served_at: dt.datetime | None


@dataclass
class Targets:
    """Per-product versions that devices should run by now, and the thresholds in force."""

    now: dt.datetime
    settings: HealthSettings
    manifest_version: dict[str, int] = field(default_factory=dict)
    overlay_release: dict[str, int] = field(default_factory=dict)

    @property
    def silent_before(self) -> dt.datetime:
        return self.now - dt.timedelta(hours=self.settings.silent_after_hours)

    @property
    def stale_before(self) -> dt.datetime:
        return self.now - dt.timedelta(hours=self.settings.stale_after_hours)

    @functools.cached_property
    def minimum_version(self) -> Version | None:
        if not self.settings.minimum_client_version:
            return None
        try:
            return Version(self.settings.minimum_client_version)
        except InvalidVersion:
            logger.warning(
                "health.minimum_version_invalid schema=%s value=%s",
                connection.schema_name,
                self.settings.minimum_client_version,
            )
            return None


def targets_load(*, now: dt.datetime, settings: HealthSettings) -> Targets:
    """Compute each product's required manifest version and overlay release.

    A version counts as required only once it is older than the tenant's
    `stale_after_hours`, so devices get time to fetch it. During a staged
    rollout the head overlay release is not required of every device, so
    each device is checked against the release it was served instead.
    """
    from overlays.models import ReleaseHead, Rollout

    targets = Targets(now=now, settings=settings)
    required = (
        Manifest.objects.filter(created_at__lte=targets.stale_before)
        .values("product_code")
        .annotate(version=Max("version"))
        .values_list("product_code", "version")
    )
    targets.manifest_version = dict(required)

    heads = ReleaseHead.objects.filter(current__isnull=False).select_related("current")
    rolling = set(
        Rollout.objects.filter(status=Rollout.Status.ACTIVE).values_list("release_id", flat=True)
    )
    for head in heads:
        release = head.current
        if release is None or release.pk in rolling or release.created_at > targets.stale_before:
            continue
        targets.overlay_release[head.product_code] = release.number
    return targets


@functools.lru_cache(maxsize=4096)
def _parsed_version(text: str) -> Version | None:
    try:
        return Version(text)
    except InvalidVersion:
        return None


def _recent(moment: dt.datetime | None, targets: Targets) -> bool:
    return moment is not None and moment >= targets.silent_before


def device_drifts(row: FleetRow, targets: Targets) -> Iterator[Detected]:
    """Yield the drifts of one device and product."""
    device = f"device:{row.device_id}"
    subject = f"{device}:{row.product_code}"
    base = {"device": row.device_id, "product": row.product_code}
    checked_at = row.checked_in_at

    if checked_at is not None and _recent(checked_at, targets):
        revoked_at = row.device_revoked_at
        device_revoked = row.device_status == Device.Status.REVOKED or revoked_at is not None
        if device_revoked and (revoked_at is None or checked_at > revoked_at):
            yield Detected(
                "device_revoked_checking_in",
                subject,
                f"Device {row.device_id} was revoked but checked in for {row.product_code} "
                f"at {checked_at:%Y-%m-%d %H:%M} UTC.",
                {**base, "checked_in_at": checked_at.isoformat()},
            )
        token_revoked_at = row.token_revoked_at or row.token_grant_revoked_at
        if token_revoked_at is not None and checked_at > token_revoked_at:
            yield Detected(
                "token_revoked_in_use",
                f"token:{row.token_jti}",
                f"Device {row.device_id} still runs {row.product_code} with token "
                f"{row.token_jti}, which is revoked"
                + (
                    f" with its grant {row.token_grant_id}."
                    if row.token_revoked_at is None
                    else "."
                ),
                {**base, "token_jti": row.token_jti, "grant": row.token_grant_id},
            )

    if row.seat_id is not None:
        contacts = [
            t for t in (row.checked_in_at, row.device_last_seen, row.seat_activated_at) if t
        ]
        last_contact = max(contacts) if contacts else None
        if last_contact is None or last_contact < targets.silent_before:
            hours = (
                int((targets.now - last_contact).total_seconds() // 3600) if last_contact else None
            )
            yield Detected(
                "device_silent",
                subject,
                f"Device {row.device_id} holds seat {row.seat_id} of grant {row.grant_id} but "
                f"has not been heard from for {hours} hours "
                f"(limit {targets.settings.silent_after_hours}).",
                {
                    **base,
                    "seat": row.seat_id,
                    "grant": row.grant_id,
                    "last_contact": last_contact.isoformat() if last_contact else None,
                },
            )

    if checked_at is None or row.device_status == Device.Status.REVOKED:
        return

    required_manifest = targets.manifest_version.get(row.product_code)
    if required_manifest is not None and (row.manifest_version or 0) < required_manifest:
        yield Detected(
            "manifest_stale",
            subject,
            f"Device {row.device_id} runs manifest version {row.manifest_version} of "
            f"{row.product_code}; version {required_manifest} is current.",
            {**base, "running": row.manifest_version, "required": required_manifest},
        )

    required_release = targets.overlay_release.get(row.product_code)
    if row.served_release is not None and row.served_at is not None:
        if row.served_at <= targets.stale_before:
            required_release = row.served_release
        elif required_release is not None:
            required_release = min(required_release, row.served_release)
    if required_release is not None and (row.overlay_release or 0) < required_release:
        yield Detected(
            "overlay_release_stale",
            subject,
            f"Device {row.device_id} runs overlay release {row.overlay_release} of "
            f"{row.product_code}; it should run release {required_release}.",
            {**base, "running": row.overlay_release, "required": required_release},
        )

    minimum = targets.minimum_version
    if minimum is not None and row.client_version:
        running = _parsed_version(row.client_version)
        if running is None or running < minimum:
            yield Detected(
                "client_version_below_minimum",
                subject,
                f"Device {row.device_id} runs client version {row.client_version}; "
                f"the minimum is {minimum}.",
                {**base, "running": row.client_version, "minimum": str(minimum)},
            )


def grant_drifts(targets: Targets) -> Iterator[Detected]:
    """Yield seat overuse and renewal risk of the tenant's grants."""
    now = targets.now
    grants = LicenseGrant.objects.filter(status=LicenseGrant.Status.ACTIVE).select_related("policy")
    for grant in grants.annotate(
        seats_active=Count("seats", filter=Q(seats__status=Seat.Status.ACTIVE), distinct=True)
    ):
        in_use = grant.seats_active + _devices_without_seat(grant, targets)
        subject = f"grant:{grant.pk}"
        if in_use > grant.seat_count:
            yield Detected(
                "grant_over_seats",
                subject,
                f"{in_use} devices use grant {grant.pk} ({grant.policy.product_code}), which has "
                f"{grant.seat_count} seats.",
                {"grant": grant.pk, "in_use": in_use, "seat_count": grant.seat_count},
            )
        grace_end = grant.term_end + dt.timedelta(days=grant.policy.grace_days)
        if grant.term_end <= now < grace_end:
            yield Detected(
                "grant_in_grace",
                subject,
                f"Grant {grant.pk} ({grant.policy.product_code}) ended on "
                f"{grant.term_end:%Y-%m-%d}; its grace period ends on {grace_end:%Y-%m-%d}.",
                {"grant": grant.pk, "term_end": grant.term_end.isoformat()},
            )
        elif now < grant.term_end <= now + dt.timedelta(days=EXPIRING_WITHIN_DAYS):
            days = (grant.term_end - now).days
            yield Detected(
                "grant_expiring",
                subject,
                f"Grant {grant.pk} ({grant.policy.product_code}) ends in {days} days, on "
                f"{grant.term_end:%Y-%m-%d}.",
                {"grant": grant.pk, "term_end": grant.term_end.isoformat(), "days": days},
            )


def _devices_without_seat(grant: LicenseGrant, targets: Targets) -> int:
    """Count devices that checked in recently with a token of the grant but hold no seat of it."""
    return (
        DeviceState.objects.filter(
            checked_in_at__gte=targets.silent_before,
            token_jti__in=IssuedToken.objects.filter(grant=grant).values("jti"),
        )
        .exclude(
            device_id__in=Seat.objects.filter(grant=grant, status=Seat.Status.ACTIVE).values(
                "device_id"
            )
        )
        .exclude(decision__in=("revoked", "expired", "invalid"))
        .values("device_id")
        .distinct()
        .count()
    )


def release_drifts() -> Iterator[Detected]:
    """Yield the current overlay releases that devices failed to apply."""
    from overlays.models import ApplyReport, ReleaseHead

    current = ReleaseHead.objects.filter(current__isnull=False).values_list("current_id", flat=True)
    tallies = (
        ApplyReport.objects.filter(release_id__in=current)
        .values("release_id", "release__product_code", "release__number")
        .annotate(total=Count("id"), failed=Count("id", filter=Q(ok=False)))
        .filter(failed__gt=0)
    )
    for tally in tallies:
        codes = list(
            ApplyReport.objects.filter(release_id=tally["release_id"], ok=False)
            .values("code")
            .annotate(n=Count("id"))
            .order_by("-n")
            .values_list("code", "n")[:5]
        )
        product, number = tally["release__product_code"], tally["release__number"]
        yield Detected(
            "release_apply_failed",
            f"release:{product}:{number}",
            f"{tally['failed']} of {tally['total']} devices failed to apply {product} release "
            f"{number}; most frequent codes: {', '.join(code or '-' for code, _ in codes)}.",
            {
                "product": product,
                "release": number,
                "failed": tally["failed"],
                "reported": tally["total"],
                "codes": dict(codes),
            },
        )
