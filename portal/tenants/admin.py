"""Platform admin for tenants: onboarding form and lifecycle actions."""

from typing import Any

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import ValidationError
from django.db.models import QuerySet
from django.http import HttpRequest
from simple_history.admin import SimpleHistoryAdmin

from portal.tenants import services
from portal.tenants.models import Domain, Tenant
from portal.tenants.naming import validate_tenant_slug


class TenantOnboardingForm(forms.ModelForm):  # type: ignore[type-arg]
    admin_username = forms.CharField(
        max_length=150, help_text="User name of the tenant's first administrator."
    )
    admin_email = forms.EmailField()
    admin_password = forms.CharField(
        widget=forms.PasswordInput,
        required=False,
        help_text="Leave empty to create the user without a password (set it later).",
    )

    class Meta:
        model = Tenant
        fields = ("slug", "display_name", "region", "is_sandbox", "sandbox_of")

    def clean_slug(self) -> str:
        slug: str = self.cleaned_data["slug"]
        validate_tenant_slug(slug)
        return slug


class DomainInline(admin.TabularInline):  # type: ignore[type-arg]
    model = Domain
    extra = 0


@admin.register(Tenant)
class TenantAdmin(SimpleHistoryAdmin):  # type: ignore[type-arg]
    list_display = ("slug", "display_name", "status", "region", "is_sandbox", "created_at")
    list_filter = ("status", "region", "is_sandbox")
    search_fields = ("slug", "display_name")
    readonly_fields = (
        "schema_name",
        "created_at",
        "suspended_at",
        "exported_at",
        "export_path",
        "drop_after",
    )
    actions = ("suspend_tenants", "reactivate_tenants", "start_offboarding")
    inlines = (DomainInline,)

    def get_form(self, request: HttpRequest, obj: Any = None, **kwargs: Any) -> Any:
        if obj is None:
            kwargs["form"] = TenantOnboardingForm
        return super().get_form(request, obj, **kwargs)

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> Any:
        if obj is not None:
            return (*self.readonly_fields, "slug", "status")
        return self.readonly_fields

    def get_inlines(self, request: HttpRequest, obj: Any = None) -> Any:
        return self.inlines if obj is not None else ()

    def save_model(self, request: HttpRequest, obj: Tenant, form: Any, change: bool) -> None:
        if change:
            super().save_model(request, obj, form, change)
            return
        data = form.cleaned_data
        try:
            onboarded = services.tenant_onboard(
                slug=data["slug"],
                display_name=data["display_name"],
                region=data["region"],
                is_sandbox=data["is_sandbox"],
                sandbox_of=data.get("sandbox_of"),
                admin_username=data["admin_username"],
                admin_email=data["admin_email"],
                admin_password=data["admin_password"] or None,
            )
        except services.TenantError as error:
            raise ValidationError(error.detail) from error
        obj.pk = onboarded.tenant.pk
        obj.schema_name = onboarded.tenant.schema_name

    @admin.action(description="Suspend selected tenants")
    def suspend_tenants(self, request: HttpRequest, queryset: QuerySet[Tenant]) -> None:
        for tenant in queryset:
            services.tenant_suspend(tenant=tenant)
        self.message_user(request, f"Suspended {queryset.count()} tenant(s).", messages.SUCCESS)

    @admin.action(description="Reactivate selected tenants")
    def reactivate_tenants(self, request: HttpRequest, queryset: QuerySet[Tenant]) -> None:
        for tenant in queryset:
            try:
                services.tenant_reactivate(tenant=tenant)
            except services.TenantError as error:
                self.message_user(request, error.detail, messages.ERROR)

    @admin.action(description="Start offboarding (suspend and export)")
    def start_offboarding(self, request: HttpRequest, queryset: QuerySet[Tenant]) -> None:
        for tenant in queryset:
            suspended = services.tenant_suspend(tenant=tenant, offboarding=True)
            folder = services.tenant_export(tenant=suspended)
            self.message_user(
                request, f"{tenant.slug}: exported to {folder}; drop after the retention period."
            )


@admin.register(Domain)
class DomainAdmin(admin.ModelAdmin):  # type: ignore[type-arg]
    list_display = ("domain", "tenant", "is_primary")
    list_select_related = ("tenant",)
