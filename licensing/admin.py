"""Tenant admin for licensing: procurement (policies, grants, seats) and IT (devices, revocations).

Writes that clients must learn about (grant creation, revocations, seat
releases) go through licensing.services, so the admin, the API and the
commands share one write path.
"""

import difflib
import json
from typing import Any

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import get_object_or_404
from django.template.response import TemplateResponse
from django.urls import URLPattern, path, reverse
from django.utils.html import format_html
from simple_history.admin import SimpleHistoryAdmin

from licensing.models import (
    Device,
    DeviceGroup,
    LicenseGrant,
    Manifest,
    Policy,
    Revocation,
    Seat,
    SigningKey,
)
from licensing.services import (
    device_revoke,
    grant_create,
    grant_revoke,
    grant_update,
    seat_force_release,
)
from licensing.signing import tenant_key_rotate
from portal.admin_sites import tenant_admin_site
from portal.catalog.models import KeyState
from portal.problems import KeyplaneError


@admin.register(Policy, site=tenant_admin_site)
class PolicyAdmin(SimpleHistoryAdmin):
    list_display = (
        "name",
        "product_code",
        "seat_limit",
        "renewal_cadence",
        "term_days",
        "grace_days",
    )
    list_filter = ("product_code", "renewal_cadence")
    search_fields = ("name", "product_code")
    fieldsets = (
        (None, {"fields": ("name", "product_code", "entitlements")}),
        ("Limits", {"fields": ("seat_limit", "devices_per_user")}),
        (
            "Term and renewal",
            {
                "fields": (
                    "term_days",
                    "renewal_cadence",
                    "grace_days",
                    "renewal_requires_approval",
                    "seat_increase_requires_approval",
                )
            },
        ),
        ("Tokens", {"fields": ("token_lifetime_hours", "offline_tolerance_hours")}),
        ("Compliance", {"fields": ("allowed_regions", "compliance")}),
    )


class GrantCreateForm(forms.ModelForm):
    class Meta:
        model = LicenseGrant
        fields = ("policy", "seat_count", "term_start", "term_end")


@admin.register(LicenseGrant, site=tenant_admin_site)
class LicenseGrantAdmin(SimpleHistoryAdmin):
    """Grants; the license key is shown once, in the message after creation."""

    list_display = ("id", "policy", "seat_count", "status", "term_start", "term_end", "key_hint")
    list_filter = ("status", "policy__product_code")
    list_select_related = ("policy",)
    readonly_fields = ("key_hint", "created_at", "status", "status_reason")
    actions = ("revoke_grants",)

    def get_form(
        self, request: HttpRequest, obj: Any = None, change: bool = False, **kwargs: Any
    ) -> Any:
        if obj is None:
            kwargs["form"] = GrantCreateForm
        return super().get_form(request, obj, change=change, **kwargs)

    def get_fields(self, request: HttpRequest, obj: Any = None) -> Any:
        if obj is None:
            return ("policy", "seat_count", "term_start", "term_end")
        return ("policy", "seat_count", "term_start", "term_end", *self.readonly_fields)

    def save_model(self, request: HttpRequest, obj: LicenseGrant, form: Any, change: bool) -> None:
        if change:
            grant_update(
                grant_id=obj.pk,
                seat_count=obj.seat_count,
                term_start=obj.term_start,
                term_end=obj.term_end,
                acting_user=request.user,
            )
            return
        grant, license_key = grant_create(
            policy_id=obj.policy_id,
            seat_count=obj.seat_count,
            term_start=obj.term_start,
            term_end=obj.term_end,
            acting_user=request.user,
        )
        obj.pk = obj.id = grant.pk
        messages.warning(
            request,
            format_html(
                "License key for grant {}: <code>{}</code>. Copy it now; it is never shown again.",
                grant.pk,
                license_key,
            ),
        )

    @admin.action(description="Revoke selected grants (publishes a new manifest)")
    def revoke_grants(self, request: HttpRequest, queryset: QuerySet[LicenseGrant]) -> None:
        for grant in queryset:
            try:
                grant_revoke(
                    grant_id=grant.pk, reason="revoked in the admin", acting_user=request.user
                )
            except KeyplaneError as error:
                messages.error(request, error.detail)


@admin.register(Seat, site=tenant_admin_site)
class SeatAdmin(SimpleHistoryAdmin):
    list_display = (
        "id",
        "grant",
        "device",
        "status",
        "activated_at",
        "released_at",
        "release_link",
    )
    list_filter = ("status",)
    list_select_related = ("grant__policy", "device")
    readonly_fields = (
        "grant",
        "device",
        "status",
        "activated_at",
        "released_at",
        "released_reason",
    )

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    @admin.display(description="Force release")
    def release_link(self, seat: Seat) -> str:
        if seat.status != Seat.Status.ACTIVE:
            return ""
        url = reverse("tenant_admin:licensing_seat_release", args=[seat.pk])
        return format_html('<a href="{}">Release…</a>', url)

    def get_urls(self) -> list[URLPattern]:
        custom = [
            path(
                "<int:seat_id>/release/",
                self.admin_site.admin_view(self.release_view),
                name="licensing_seat_release",
            )
        ]
        return custom + super().get_urls()

    def release_view(self, request: HttpRequest, seat_id: int) -> HttpResponse:
        """Ask for a reason, then release the seat through the service (audited)."""
        seat = get_object_or_404(Seat, pk=seat_id)
        if not self.has_change_permission(request, seat):
            raise PermissionDenied
        error = ""
        if request.method == "POST":
            reason = request.POST.get("reason", "").strip()
            try:
                seat_force_release(seat_id=seat.pk, reason=reason, acting_user=request.user)
            except KeyplaneError as exc:
                error = exc.detail
            else:
                messages.success(request, f"Seat {seat.pk} released.")
                return HttpResponseRedirect(reverse("tenant_admin:licensing_seat_changelist"))
        context = {
            **self.admin_site.each_context(request),
            "title": f"Release seat {seat.pk}",
            "seat": seat,
            "error": error,
            "opts": self.model._meta,
        }
        return TemplateResponse(request, "admin/licensing/seat_release.html", context)


@admin.register(DeviceGroup, site=tenant_admin_site)
class DeviceGroupAdmin(SimpleHistoryAdmin):
    list_display = ("name", "description")
    search_fields = ("name",)


@admin.register(Device, site=tenant_admin_site)
class DeviceAdmin(SimpleHistoryAdmin):
    list_display = ("id", "name", "platform", "group", "user", "status", "last_seen")
    list_filter = ("status", "group", "platform")
    list_select_related = ("group", "user")
    search_fields = ("name", "thumbprint")
    readonly_fields = ("thumbprint", "public_jwk", "first_seen", "last_seen", "status")
    fields = ("name", "platform", "group", "user", *readonly_fields)
    actions = ("revoke_devices",)

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    @admin.action(description="Revoke selected devices (publishes a new manifest)")
    def revoke_devices(self, request: HttpRequest, queryset: QuerySet[Device]) -> None:
        for device in queryset:
            try:
                device_revoke(
                    device_id=device.pk, reason="revoked in the admin", acting_user=request.user
                )
            except KeyplaneError as error:
                messages.error(request, error.detail)


@admin.register(Revocation, site=tenant_admin_site)
class RevocationAdmin(admin.ModelAdmin):
    list_display = (
        "id",
        "kind",
        "grant",
        "device",
        "token_jti",
        "reason",
        "created_at",
        "created_by",
    )
    list_filter = ("kind",)
    list_select_related = ("grant", "device", "created_by")

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(SigningKey, site=tenant_admin_site)
class SigningKeyAdmin(admin.ModelAdmin):
    """Read-only; rotate with `manage.py rotate_tenant_key --tenant SLUG`."""

    list_display = ("kid", "state", "created_at", "verify_until")
    fields = ("kid", "state", "created_at", "state_changed_at", "verify_until", "certificate")
    readonly_fields = fields
    actions = ("rotate_key", "rotate_compromised_key")

    def _rotate(
        self, request: HttpRequest, queryset: QuerySet[SigningKey], compromised: bool
    ) -> None:
        if not request.user.is_superuser:
            raise PermissionDenied
        if not queryset.filter(state=KeyState.ACTIVE).exists():
            messages.error(request, "Select the active key to rotate it.")
            return
        reason = "compromised, rotated in the admin" if compromised else "rotated in the admin"
        key = tenant_key_rotate(reason=reason, compromised=compromised)
        messages.success(request, f"Signing key {key.kid} is now active.")

    @admin.action(description="Rotate the selected active key (old key keeps verifying)")
    def rotate_key(self, request: HttpRequest, queryset: QuerySet[SigningKey]) -> None:
        self._rotate(request, queryset, compromised=False)

    @admin.action(description="Rotate the selected active key as compromised (drops it at once)")
    def rotate_compromised_key(self, request: HttpRequest, queryset: QuerySet[SigningKey]) -> None:
        self._rotate(request, queryset, compromised=True)

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


def _pretty(manifest: Manifest) -> list[str]:
    return json.dumps(manifest.content, indent=2, sort_keys=True).splitlines()


@admin.register(Manifest, site=tenant_admin_site)
class ManifestAdmin(admin.ModelAdmin):
    """Manifest history; compare any two versions of a product with the diff view."""

    list_display = ("product_code", "version", "reason", "created_at", "created_by", "diff_link")
    list_filter = ("product_code",)
    list_select_related = ("created_by",)
    fields = (
        "product_code",
        "version",
        "reason",
        "created_at",
        "created_by",
        "etag",
        "pretty_content",
    )
    readonly_fields = fields

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    @admin.display(description="Content")
    def pretty_content(self, manifest: Manifest) -> str:
        return format_html("<pre>{}</pre>", "\n".join(_pretty(manifest)))

    @admin.display(description="Diff")
    def diff_link(self, manifest: Manifest) -> str:
        if manifest.version <= 1:
            return ""
        url = reverse("tenant_admin:licensing_manifest_diff")
        return format_html(
            '<a href="{}?product={}&from={}&to={}">against v{}</a>',
            url,
            manifest.product_code,
            manifest.version - 1,
            manifest.version,
            manifest.version - 1,
        )

    def get_urls(self) -> list[URLPattern]:
        custom = [
            path(
                "diff/", self.admin_site.admin_view(self.diff_view), name="licensing_manifest_diff"
            )
        ]
        return custom + super().get_urls()

    def diff_view(self, request: HttpRequest) -> HttpResponse:
        """Show a unified diff between two versions of one product's manifest."""
        if not self.has_view_permission(request):
            raise PermissionDenied
        product = request.GET.get("product", "")
        versions = Manifest.objects.filter(product_code=product)
        try:
            old_version = int(request.GET.get("from", ""))
            new_version = int(request.GET.get("to", ""))
        except ValueError:
            old_version = new_version = 0
        old = versions.filter(version=old_version).first()
        new = versions.filter(version=new_version).first()
        lines: list[str] = []
        if old is not None and new is not None:
            lines = list(
                difflib.unified_diff(
                    _pretty(old), _pretty(new), f"v{old.version}", f"v{new.version}", lineterm=""
                )
            )
        context = {
            **self.admin_site.each_context(request),
            "title": f"Manifest diff: {product}",
            "product": product,
            "versions": list(versions.order_by("version").values_list("version", flat=True)),
            "old": old,
            "new": new,
            "lines": lines,
            "opts": self.model._meta,
        }
        return TemplateResponse(request, "admin/licensing/manifest_diff.html", context)
