"""Sandbox tenants: a copy of a production tenant's configuration to try changes on.

A sandbox receives the source tenant's policies, device groups, overlay
drafts (tenant and group layers), maintenance windows and rollback
thresholds, plus copies of its license grants so that entitlement gating
behaves the same. It receives no devices, seats, tokens, signing keys,
releases or decision log, and the copied grants get fresh license keys that
are never shown, so no client can activate against a sandbox with a
production key.
"""

import logging
import secrets
from dataclasses import dataclass
from typing import Any

from django.db import transaction
from django_tenants.utils import schema_context

from portal.tenants.models import Tenant
from portal.tenants.services import tenant_onboard

logger = logging.getLogger(__name__)

_POLICY_SKIPPED_FIELDS = {"id", "created_at"}


@dataclass(frozen=True)
class SandboxSnapshot:
    """The configuration read from the source tenant, as plain data."""

    policies: list[dict[str, Any]]
    grants: list[dict[str, Any]]
    groups: list[dict[str, Any]]
    tenant_overlays: list[dict[str, Any]]
    group_overlays: list[dict[str, Any]]
    windows: list[dict[str, Any]]
    overlay_settings: dict[str, Any] | None


def _rows(queryset: Any) -> list[dict[str, Any]]:
    return [dict(row) for row in queryset]


def _snapshot(source: Tenant) -> SandboxSnapshot:
    from licensing.models import DeviceGroup, LicenseGrant, Policy
    from overlays.models import GroupOverlay, MaintenanceWindow, OverlaySettings, TenantOverlay

    with schema_context(source.schema_name):
        policy_fields = [
            f.name for f in Policy._meta.concrete_fields if f.name not in _POLICY_SKIPPED_FIELDS
        ]
        settings_row = OverlaySettings.objects.values(
            "failure_threshold_percent", "failure_min_reports"
        ).first()
        return SandboxSnapshot(
            policies=_rows(Policy.objects.order_by("id").values("id", *policy_fields)),
            grants=_rows(
                LicenseGrant.objects.order_by("id").values(
                    "policy_id", "seat_count", "term_start", "term_end", "status"
                )
            ),
            groups=_rows(DeviceGroup.objects.values("name", "description")),
            tenant_overlays=_rows(TenantOverlay.objects.values("product_code", "patch")),
            group_overlays=_rows(
                GroupOverlay.objects.values("product_code", "group__name", "position", "patch")
            ),
            windows=_rows(MaintenanceWindow.objects.values("weekdays", "start_time", "end_time")),
            overlay_settings=dict(settings_row) if settings_row else None,
        )


def _restore(snapshot: SandboxSnapshot) -> None:
    """Write `snapshot` into the current (sandbox) schema."""
    from licensing.licensekeys import license_key_generate, license_key_hash, license_key_hint
    from licensing.models import DeviceGroup, LicenseGrant, Policy
    from overlays.models import GroupOverlay, MaintenanceWindow, OverlaySettings, TenantOverlay

    policy_ids: dict[int, Policy] = {}
    for row in snapshot.policies:
        fields = dict(row)
        source_id = fields.pop("id")
        policy_ids[source_id] = Policy.objects.create(**fields)
    for row in snapshot.grants:
        # A fresh key that is never shown, because the copy carries entitlements, not access.
        unusable_key = license_key_generate()
        LicenseGrant.objects.create(
            policy=policy_ids[row["policy_id"]],
            seat_count=row["seat_count"],
            term_start=row["term_start"],
            term_end=row["term_end"],
            status=row["status"],
            key_hash=license_key_hash(unusable_key),
            key_hint=license_key_hint(unusable_key),
        )
        del unusable_key
    groups = {row["name"]: DeviceGroup.objects.create(**row) for row in snapshot.groups}
    for row in snapshot.tenant_overlays:
        TenantOverlay.objects.create(**row)
    for row in snapshot.group_overlays:
        GroupOverlay.objects.create(
            product_code=row["product_code"],
            group=groups[row["group__name"]],
            position=row["position"],
            patch=row["patch"],
        )
    for row in snapshot.windows:
        MaintenanceWindow.objects.create(**row)
    if snapshot.overlay_settings:
        OverlaySettings.objects.create(**snapshot.overlay_settings)


def sandbox_create(
    *,
    source: Tenant,
    slug: str,
    admin_username: str,
    admin_email: str,
    acting_user: Any,
    display_name: str | None = None,
) -> Tenant:
    """Create a sandbox tenant holding a copy of `source`'s configuration; return it.

    1. Read the source's configuration (policies, grants, groups, overlays).
    2. Onboard the sandbox tenant (its schema, roles and first admin, whose
       password must be set by a reset, because none is generated here).
    3. Write the configuration into the sandbox schema in one transaction.
       If this step fails, the sandbox tenant exists but is empty; drop it
       and try again.
    """
    snapshot = _snapshot(source)
    onboarded = tenant_onboard(
        slug=slug,
        display_name=display_name or f"{source.display_name} (sandbox)",
        admin_username=admin_username,
        admin_email=admin_email,
        admin_password=None,
        region=source.region,
        is_sandbox=True,
        sandbox_of=source,
    )
    sandbox = onboarded.tenant
    with schema_context(sandbox.schema_name), transaction.atomic():
        _restore(snapshot)
    logger.info(
        "sandbox.created source=%s sandbox=%s policies=%d groups=%d actor=%s",
        source.slug,
        sandbox.slug,
        len(snapshot.policies),
        len(snapshot.groups),
        getattr(acting_user, "pk", None) or "system",
    )
    return sandbox


def sandbox_slug_suggest(source: Tenant) -> str:
    """Return an unused sandbox slug derived from the source's, such as `alpha-sbx-3f9a`."""
    while True:
        candidate = f"{source.slug}-sbx-{secrets.token_hex(2)}"
        if not Tenant.objects.filter(slug=candidate).exists():
            return candidate
