"""Reads of overlay state: layer sets, effective configurations, previews."""

from collections import Counter
from collections.abc import Mapping, Sequence
from typing import Any

from django.db import connection

from licensing.models import Device, DeviceGroup, Policy
from licensing.selectors import tenant_entitlements
from overlays.catalog.models import OverlaySchema, defaults_values, schema_current
from overlays.exceptions import OverlayGroupUnknown, OverlayInvalid, OverlaySchemaMissing
from overlays.merge import diff
from overlays.models import GroupOverlay, Release, ReleaseHead, Rollout, TenantOverlay
from overlays.resolution import GroupLayer, LayerSet, Resolver
from overlays.rollout import device_included, steps_parse
from overlays.validation import OverlayValidator, TenantFacts
from portal.tenants.models import Tenant


def tenant_facts(product_code: str) -> TenantFacts:
    """Return the entitlements and regions that gate the tenant's overlay values.

    The regions are those the manifest lists for the product, which is the
    union of its policies' allowed regions. When no policy restricts regions,
    the tenant's data-residency region applies.
    """
    regions = {
        region
        for allowed in Policy.objects.filter(product_code=product_code).values_list(
            "allowed_regions", flat=True
        )
        for region in allowed or []
    }
    if not regions:
        tenant = (
            Tenant.objects.filter(schema_name=getattr(connection, "schema_name", ""))
            .only("region")
            .first()
        )
        if tenant is not None and tenant.region:
            regions = {tenant.region}
    return TenantFacts(
        entitlements=frozenset(tenant_entitlements(product_code)), regions=frozenset(regions)
    )


def schema_in_force(product_code: str) -> OverlaySchema:
    schema = schema_current(product_code)
    if schema is None:
        raise OverlaySchemaMissing(
            f"Product {product_code!r} has no overlay schema, so no overlay can be validated."
        )
    return schema


def _patch_object(value: Any, where: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise OverlayInvalid(
            f"The {where} must be a JSON object, not {type(value).__name__}.",
            issues=[{"path": "", "layer": where, "rule": "type", "message": "not a JSON object"}],
        )
    return value


def group_layers_from_request(
    product_code: str, entries: Sequence[Mapping[str, Any]]
) -> tuple[GroupLayer, ...]:
    """Turn `[{"group": name, "position": n, "overlay": {...}}]` into group layers.

    Raises `OverlayGroupUnknown` naming every group that does not exist.
    """
    names = [str(entry.get("group", "")) for entry in entries]
    groups = {g.name: g for g in DeviceGroup.objects.filter(name__in=names)}
    unknown = sorted(set(names) - set(groups))
    if unknown:
        raise OverlayGroupUnknown(
            f"The overlay names device groups that do not exist: {unknown}.",
            extra={"groups": unknown},
        )
    if len(set(names)) != len(names):
        duplicates = sorted(name for name, count in Counter(names).items() if count > 1)
        raise OverlayInvalid(
            f"Each group may have one overlay; repeated: {duplicates}.",
            issues=[
                {"path": "", "layer": f"group:{n}", "rule": "unique", "message": "repeated"}
                for n in duplicates
            ],
        )
    layers = []
    for entry, name in zip(entries, names, strict=True):
        position = entry.get("position", 100)
        if isinstance(position, bool) or not isinstance(position, int) or position < 0:
            raise OverlayInvalid(
                f"The position of group {name!r} must be a non-negative integer, not {position!r}.",
                issues=[
                    {
                        "path": "/position",
                        "layer": f"group:{name}",
                        "rule": "type",
                        "message": "not a non-negative integer",
                    }
                ],
            )
        patch = _patch_object(entry.get("overlay", {}), f"group:{name}")
        layers.append(GroupLayer(groups[name].pk, name, position, patch))
    return tuple(layers)


def layer_set_build(
    product_code: str,
    *,
    tenant_patch: Any = None,
    group_entries: Sequence[Mapping[str, Any]] | None = None,
) -> LayerSet:
    """Return the layer set from the drafts, with any given layer replacing its draft."""
    schema = schema_in_force(product_code)
    if tenant_patch is None:
        draft = TenantOverlay.objects.filter(product_code=product_code).first()
        tenant_patch = draft.patch if draft else {}
    tenant = _patch_object(tenant_patch, "tenant")
    if group_entries is None:
        groups = tuple(
            GroupLayer(o.group_id, o.group.name, o.position, o.patch)
            for o in GroupOverlay.objects.filter(product_code=product_code).select_related("group")
        )
    else:
        groups = group_layers_from_request(product_code, group_entries)
    return LayerSet(
        product_code=product_code,
        schema_version=schema.version,
        defaults=defaults_values(product_code),
        tenant=tenant,
        groups=groups,
    )


def validator_for(schema_version: int, product_code: str) -> OverlayValidator:
    row = OverlaySchema.objects.filter(product__code=product_code, version=schema_version).first()
    if row is None:
        raise OverlaySchemaMissing(
            f"Product {product_code!r} has no overlay schema version {schema_version}."
        )
    return OverlayValidator(row.schema)


def head_current(product_code: str) -> Release | None:
    head = ReleaseHead.objects.filter(product_code=product_code).select_related("current").first()
    return head.current if head else None


def device_group_ids(device: Device) -> list[int]:
    return [device.group_id] if device.group_id else []


def release_for_device(
    device: Device, product_code: str, *, served_number: int | None = None
) -> Release | None:
    """Return the release a device should run, or None when none reaches it yet.

    A device gets the current release when the current release's rollout
    reaches it. It also gets it when it was already served a release newer
    than the current release's base, so its release number never goes down.
    Otherwise it keeps the base release.
    """
    current = head_current(product_code)
    if current is None:
        return None
    rollout = Rollout.objects.filter(release=current).first()
    if rollout is None or rollout.status != Rollout.Status.ACTIVE:
        return current
    group_names = [device.group.name] if device.group_id and device.group else []
    steps = steps_parse(rollout.steps)
    if device_included(steps, rollout.step_index, device_id=device.pk, group_slugs=group_names):
        return current
    base = current.base
    if base is None:
        return None
    if served_number is not None and served_number > base.number:
        return current
    return base


def effective_for(
    product_code: str, *, group: DeviceGroup | None = None, release: Release | None = None
) -> dict[str, Any]:
    """Return the effective configuration and per-key provenance of a group (None: no group).

    Reads the given release, or the drafts when `release` is None.
    """
    layer_set = LayerSet.from_content(release.content) if release else layer_set_build(product_code)
    resolver = Resolver(layer_set)
    combination = resolver.combination_of([group.pk] if group else [])
    resolution = resolver.resolve(combination)
    return {
        "product": product_code,
        "release": release.number if release else None,
        "target": resolver.target_name(combination),
        "config": resolution.config,
        "provenance": dict(sorted(resolution.provenance.items())),
    }


def release_preview(product_code: str, proposed: LayerSet) -> dict[str, Any]:
    """Return the blast radius of publishing `proposed`: per device group, devices and diffs.

    Devices are counted by their group; `group` None stands for devices in
    no group. A rollout later decides when each device gets the change.
    """
    current = head_current(product_code)
    before = Resolver(LayerSet.from_content(current.content)) if current else None
    after = Resolver(proposed)
    counts: Counter[int | None] = Counter(
        Device.objects.filter(status=Device.Status.ACTIVE).values_list("group_id", flat=True)
    )
    group_ids: set[int | None] = {None, *counts, *(g.group_id for g in proposed.groups)}
    if before is not None:
        group_ids |= {g.group_id for g in before.layer_set.groups}
    known = [g for g in group_ids if g is not None]
    names: dict[int | None, str] = dict(
        DeviceGroup.objects.filter(pk__in=known).values_list("pk", "name")
    )

    targets = []
    for group_id in sorted(group_ids, key=lambda g: (g is not None, names.get(g, ""))):
        if group_id is not None and group_id not in names:
            continue  # a group deleted since the current release
        ids = [group_id]
        old = before.resolve(before.combination_of(ids)).config if before else {}
        new = after.resolve(after.combination_of(ids)).config
        targets.append(
            {
                "group": names.get(group_id) if group_id is not None else None,
                "devices": counts.get(group_id, 0),
                "changes": diff(old, new),
            }
        )
    return {
        "product": product_code,
        "current_release": current.number if current else None,
        "devices_changed": sum(t["devices"] for t in targets if t["changes"]),
        "targets": targets,
    }
