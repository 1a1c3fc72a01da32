"""Tenant admin of overlays: drafts with their effective configuration, releases, rollouts.

Every write goes through `overlays.services`; the admin only renders forms,
the provenance tables and the actions that call those services.
"""

import json
from typing import Any, ClassVar

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.db.models import QuerySet
from django.http import HttpRequest
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.html import format_html, format_html_join
from simple_history.admin import SimpleHistoryAdmin

from licensing.models import Device, DeviceGroup
from overlays.catalog.models import schema_current
from overlays.merge import Layer, flatten
from overlays.models import (
    GroupOverlay,
    MaintenanceWindow,
    OverlayFinding,
    OverlaySettings,
    Release,
    Rollout,
    TenantOverlay,
)
from overlays.selectors import effective_for, head_current
from overlays.services import (
    overlay_draft_save,
    release_publish,
    release_rollback,
    rollout_promote,
)
from overlays.validation import secrets_scan
from portal.admin_sites import tenant_admin_site
from portal.problems import KeyplaneError, NotFound


def _provenance_table(view: dict[str, Any]) -> str:
    """Render an effective configuration as rows of path, value and the layer that set it."""
    leaves = view["provenance"]
    flat = flatten(view["config"])
    rows = format_html_join(
        "",
        "<tr><td><code>{}</code></td><td><code>{}</code></td><td>{}</td></tr>",
        ((path, json.dumps(flat.get(path)), layer) for path, layer in leaves.items()),
    )
    return format_html(
        "<table><thead><tr><th>Path</th><th>Value</th><th>Set by layer</th></tr></thead>"
        "<tbody>{}</tbody></table>",
        rows,
    )


def _report(
    request: HttpRequest, modeladmin: "admin.ModelAdmin[Any]", error: KeyplaneError
) -> None:
    details = error.extra.get("errors") or []
    lines = "; ".join(
        f"{d.get('path') or '/'} ({d.get('layer')}, {d.get('rule')}): {d.get('message')}"
        for d in details[:10]
    )
    modeladmin.message_user(request, f"{error.detail} {lines}".strip(), level=messages.ERROR)


def _effective_lookup(context: dict[str, Any]) -> dict[str, Any]:
    """Resolve the device, group and release named in the admin form."""
    product = context["product"]
    group = None
    if context["device_id"]:
        device = Device.objects.filter(pk=int(context["device_id"])).select_related("group").first()
        if device is None:
            raise NotFound(f"No device has the id {context['device_id']}.")
        group = device.group
    elif context["group"]:
        group = DeviceGroup.objects.filter(name=context["group"]).first()
        if group is None:
            raise NotFound(f"No device group is named {context['group']!r}.")
    release = None
    if context["release"]:
        release = Release.objects.filter(
            product_code=product, number=int(context["release"])
        ).first()
        if release is None:
            raise NotFound(f"Product {product!r} has no release {context['release']}.")
    return effective_for(product, group=group, release=release)


class PatchForm(forms.ModelForm):  # type: ignore[type-arg]  # generic only in the stubs
    """Edits a merge patch as JSON; schema rules are checked when publishing."""

    def clean_patch(self) -> Any:
        patch = self.cleaned_data["patch"]
        if not isinstance(patch, dict):
            raise forms.ValidationError("The overlay must be a JSON object.")
        issues = secrets_scan(Layer("draft", patch))
        if issues:
            raise forms.ValidationError([f"{i.path or '/'}: {i.message}" for i in issues])
        return patch

    def clean_product_code(self) -> str:
        code = str(self.cleaned_data["product_code"])
        if schema_current(code) is None:
            raise forms.ValidationError(
                f"Product {code!r} has no overlay schema; ask the platform operator for one."
            )
        return code


@admin.register(TenantOverlay, site=tenant_admin_site)
class TenantOverlayAdmin(SimpleHistoryAdmin):
    form = PatchForm
    list_display = ("product_code", "current_release", "updated_at")
    readonly_fields = ("effective_configuration", "updated_at")
    actions: ClassVar = ["publish"]

    def get_urls(self) -> list[Any]:
        view = self.admin_site.admin_view(self.effective_view)
        return [path("effective/", view, name="overlays_effective"), *super().get_urls()]

    def effective_view(self, request: HttpRequest) -> TemplateResponse:
        """Show the effective configuration of a device or group with the layer of each key."""
        if not self.has_view_permission(request):
            raise PermissionDenied
        products = list(TenantOverlay.objects.values_list("product_code", flat=True))
        params = request.GET
        context: dict[str, Any] = {
            **self.admin_site.each_context(request),
            "title": "Effective configuration",
            "products": products,
            "groups": list(DeviceGroup.objects.values_list("name", flat=True)),
            "product": params.get("product") or (products[0] if products else ""),
            "device_id": params.get("device", ""),
            "group": params.get("group", ""),
            "release": params.get("release", ""),
        }
        if context["product"]:
            try:
                context["view"] = _effective_lookup(context)
                context["table"] = _provenance_table(context["view"])
            except (KeyplaneError, ValueError) as error:
                context["error"] = getattr(error, "detail", str(error))
        return TemplateResponse(request, "admin/overlays/effective.html", context)

    @admin.display(description="Current release")
    def current_release(self, obj: TenantOverlay) -> str:
        release = head_current(obj.product_code)
        return str(release.number) if release else "none"

    @admin.display(description="Effective configuration of devices in no group")
    def effective_configuration(self, obj: TenantOverlay) -> str:
        if not obj.pk:
            return "Save first."
        link = format_html(
            '<p><a href="{}?product={}">Show it for a device, a group or a release</a></p>',
            reverse("tenant_admin:overlays_effective"),
            obj.product_code,
        )
        try:
            return format_html("{}{}", link, _provenance_table(effective_for(obj.product_code)))
        except KeyplaneError as error:
            return error.detail

    def save_model(self, request: HttpRequest, obj: TenantOverlay, form: Any, change: bool) -> None:
        try:
            overlay_draft_save(
                product_code=obj.product_code, acting_user=request.user, tenant_patch=obj.patch
            )
        except KeyplaneError as error:
            _report(request, self, error)

    @admin.action(description="Publish the drafts as a new release (all devices at once)")
    def publish(self, request: HttpRequest, queryset: QuerySet[TenantOverlay]) -> None:
        for overlay in queryset:
            current = head_current(overlay.product_code)
            try:
                result = release_publish(
                    product_code=overlay.product_code,
                    base_release=current.number if current else None,
                    acting_user=request.user,
                    reason="published in the admin",
                )
            except KeyplaneError as error:
                _report(request, self, error)
                continue
            verb = "Published" if result.created else "Unchanged, still"
            self.message_user(
                request, f"{verb} release {result.release.number} of {overlay.product_code}."
            )


@admin.register(GroupOverlay, site=tenant_admin_site)
class GroupOverlayAdmin(SimpleHistoryAdmin):
    form = PatchForm
    list_display = ("product_code", "group", "position", "updated_at")
    list_select_related = ("group",)
    readonly_fields = ("effective_configuration", "updated_at")

    @admin.display(description="Effective configuration of the group's devices")
    def effective_configuration(self, obj: GroupOverlay) -> str:
        if not obj.pk:
            return "Save first."
        try:
            return _provenance_table(effective_for(obj.product_code, group=obj.group))
        except KeyplaneError as error:
            return error.detail

    def save_model(self, request: HttpRequest, obj: GroupOverlay, form: Any, change: bool) -> None:
        others = GroupOverlay.objects.filter(product_code=obj.product_code).exclude(pk=obj.pk)
        entries = [
            {"group": o.group.name, "position": o.position, "overlay": o.patch}
            for o in others.select_related("group")
        ]
        entries.append({"group": obj.group.name, "position": obj.position, "overlay": obj.patch})
        try:
            overlay_draft_save(
                product_code=obj.product_code, acting_user=request.user, group_entries=entries
            )
        except KeyplaneError as error:
            _report(request, self, error)


class RolloutInline(admin.StackedInline):  # type: ignore[type-arg]  # generic only in the stubs
    model = Rollout
    can_delete = False
    extra = 0
    readonly_fields = ("steps", "promote_every_minutes", "step_index", "status", "step_started_at")

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(Release, site=tenant_admin_site)
class ReleaseAdmin(SimpleHistoryAdmin):
    list_display = (
        "product_code",
        "number",
        "kind",
        "short_sha",
        "base",
        "created_at",
        "created_by",
    )
    list_filter = ("product_code", "kind")
    list_select_related = ("base", "created_by")
    readonly_fields = (
        "product_code",
        "number",
        "sha256",
        "kind",
        "restores_number",
        "base",
        "schema_version",
        "reason",
        "created_at",
        "created_by",
        "content_json",
        "effective_configuration",
    )
    exclude = ("content",)
    inlines: ClassVar = [RolloutInline]
    actions: ClassVar = ["roll_back_to", "promote_rollout", "promote_rollout_now"]

    @admin.display(description="SHA-256")
    def short_sha(self, obj: Release) -> str:
        return obj.sha256[:12]

    @admin.display(description="Content")
    def content_json(self, obj: Release) -> str:
        return format_html("<pre>{}</pre>", json.dumps(obj.content, indent=2, sort_keys=True))

    @admin.display(description="Effective configuration of devices in no group")
    def effective_configuration(self, obj: Release) -> str:
        return _provenance_table(effective_for(obj.product_code, release=obj))

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    @admin.action(description="Roll back to the selected release (as a new release)")
    def roll_back_to(self, request: HttpRequest, queryset: QuerySet[Release]) -> None:
        if queryset.count() != 1:
            self.message_user(request, "Select exactly one release.", level=messages.ERROR)
            return
        target = queryset.get()
        try:
            release = release_rollback(
                product_code=target.product_code,
                to_number=target.number,
                acting_user=request.user,
                reason="rolled back in the admin",
            )
        except KeyplaneError as error:
            _report(request, self, error)
            return
        self.message_user(request, f"Release {release.number} restores release {target.number}.")

    def _promote(
        self, request: HttpRequest, queryset: QuerySet[Release], ignore_window: bool
    ) -> None:
        for code in sorted(set(queryset.values_list("product_code", flat=True))):
            try:
                rollout = rollout_promote(
                    product_code=code, acting_user=request.user, ignore_window=ignore_window
                )
            except KeyplaneError as error:
                _report(request, self, error)
                continue
            self.message_user(
                request,
                f"{code}: release {rollout.release.number} at step {rollout.step_index + 1}.",
            )

    @admin.action(description="Promote the product's rollout to its next step")
    def promote_rollout(self, request: HttpRequest, queryset: QuerySet[Release]) -> None:
        self._promote(request, queryset, ignore_window=False)

    @admin.action(description="Promote now, even outside the maintenance windows")
    def promote_rollout_now(self, request: HttpRequest, queryset: QuerySet[Release]) -> None:
        self._promote(request, queryset, ignore_window=True)


@admin.register(MaintenanceWindow, site=tenant_admin_site)
class MaintenanceWindowAdmin(SimpleHistoryAdmin):
    list_display = ("__str__", "start_time", "end_time")


@admin.register(OverlaySettings, site=tenant_admin_site)
class OverlaySettingsAdmin(SimpleHistoryAdmin):
    list_display = ("failure_threshold_percent", "failure_min_reports")

    def has_add_permission(self, request: HttpRequest) -> bool:
        return not OverlaySettings.objects.exists()


@admin.register(OverlayFinding, site=tenant_admin_site)
class OverlayFindingAdmin(SimpleHistoryAdmin):
    list_display = ("created_at", "product_code", "kind", "summary", "resolved_at")
    list_filter = ("kind", "product_code")
    readonly_fields = ("product_code", "release", "kind", "summary", "data", "created_at")
