"""Tenant admin for license health: findings, settings, check-in totals and the dashboard."""

from typing import Any

from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse
from django.template.response import TemplateResponse
from django.urls import URLPattern, path

from health import dashboard
from health.models import CheckInDaily, DeviceState, Finding, HealthSettings
from health.services import FindingResolved, finding_acknowledge
from portal.admin_sites import tenant_admin_site


@admin.register(Finding, site=tenant_admin_site)
class FindingAdmin(admin.ModelAdmin):  # type: ignore[type-arg]  # django-stubs generic
    list_display = ("first_seen", "severity", "code", "subject", "state", "summary")
    list_filter = ("state", "severity", "code")
    search_fields = ("subject", "summary")
    ordering = ("-first_seen",)
    readonly_fields = (
        "code",
        "severity",
        "subject",
        "affected",
        "summary",
        "remediation",
        "first_seen",
        "state",
        "acknowledged_at",
        "acknowledged_by",
        "resolved_at",
        "alerted_at",
        "digested_at",
    )
    actions = ("acknowledge",)
    change_list_template = "health/finding_change_list.html"

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    @admin.action(description="Acknowledge selected findings", permissions=["change"])
    def acknowledge(self, request: HttpRequest, queryset: QuerySet[Finding]) -> None:
        done = 0
        for finding_id in queryset.values_list("pk", flat=True):
            try:
                finding_acknowledge(finding_id=finding_id, acting_user=request.user)
                done += 1
            except FindingResolved:
                continue
        self.message_user(request, f"{done} findings acknowledged.", messages.SUCCESS)

    def get_urls(self) -> list[URLPattern]:
        custom = [
            path(
                "dashboard/",
                self.admin_site.admin_view(self.dashboard_view),
                name="health_dashboard",
            )
        ]
        return custom + super().get_urls()

    def dashboard_view(self, request: HttpRequest) -> HttpResponse:
        if not self.has_view_permission(request):
            from django.core.exceptions import PermissionDenied

            raise PermissionDenied
        context = {
            **self.admin_site.each_context(request),
            "title": "License health",
            "opts": self.model._meta,
            **dashboard.tenant_context(),
        }
        return TemplateResponse(request, "health/tenant_dashboard.html", context)


@admin.register(HealthSettings, site=tenant_admin_site)
class HealthSettingsAdmin(admin.ModelAdmin):  # type: ignore[type-arg]
    list_display = ("__str__", "release_seat_when_silent", "minimum_client_version")
    readonly_fields = ("last_digest_at",)

    def has_add_permission(self, request: HttpRequest) -> bool:
        return super().has_add_permission(request) and not HealthSettings.objects.exists()


@admin.register(CheckInDaily, site=tenant_admin_site)
class CheckInDailyAdmin(admin.ModelAdmin):  # type: ignore[type-arg]
    list_display = ("day", "product_code", "checkins", "devices", "apply_failures")
    list_filter = ("product_code",)
    readonly_fields = [f.name for f in CheckInDaily._meta.fields]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(DeviceState, site=tenant_admin_site)
class DeviceStateAdmin(admin.ModelAdmin):  # type: ignore[type-arg]
    list_display = (
        "device",
        "product_code",
        "checked_in_at",
        "decision",
        "client_version",
        "manifest_version",
        "overlay_release",
    )
    list_filter = ("product_code", "decision")
    list_select_related = ("device",)
    search_fields = ("device__name", "device__thumbprint", "token_jti")
    readonly_fields = [f.name for f in DeviceState._meta.fields]
    show_full_result_count = False

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False
