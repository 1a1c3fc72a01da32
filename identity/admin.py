"""Tenant admin: role mappings, federated users and enrollment tokens."""

from typing import Any, ClassVar

from django import forms
from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest
from simple_history.admin import SimpleHistoryAdmin

from identity.enrollment import (
    MAX_LIFETIME_DAYS,
    enrollment_token_create,
    enrollment_token_revoke,
    enrollment_token_settings_check,
)
from identity.models import EnrollmentToken, FederatedIdentity, RoleMapping
from portal.admin_sites import tenant_admin_site
from portal.problems import KeyplaneError


@admin.register(RoleMapping, site=tenant_admin_site)
class RoleMappingAdmin(SimpleHistoryAdmin):
    list_display = ("idp_group", "role", "created_at")
    list_filter = ("role",)
    search_fields = ("idp_group",)


@admin.register(FederatedIdentity, site=tenant_admin_site)
class FederatedIdentityAdmin(SimpleHistoryAdmin):
    list_display = ("user", "issuer", "last_signin_at")
    list_select_related = ("user",)
    search_fields = ("user__username", "subject")
    readonly_fields = ("user", "issuer", "subject", "created_at", "last_signin_at", "last_groups")

    def has_add_permission(self, request: HttpRequest) -> bool:
        # Links are made by the first sign-in through the provider only.
        return False


class EnrollmentTokenCreateForm(forms.ModelForm):  # type: ignore[type-arg]
    expires_in_days = forms.IntegerField(
        min_value=1, max_value=MAX_LIFETIME_DAYS, initial=30, help_text="Days until it expires."
    )

    class Meta:
        model = EnrollmentToken
        fields: ClassVar = ["label", "grant", "group", "max_uses"]

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean() or {}
        grant = cleaned.get("grant")
        if grant is not None and cleaned.get("max_uses") and cleaned.get("expires_in_days"):
            try:
                enrollment_token_settings_check(
                    grant=grant,
                    max_uses=cleaned["max_uses"],
                    expires_in_days=cleaned["expires_in_days"],
                )
            except KeyplaneError as error:
                raise forms.ValidationError(error.detail, code=error.code) from error
        return cleaned


@admin.register(EnrollmentToken, site=tenant_admin_site)
class EnrollmentTokenAdmin(SimpleHistoryAdmin):
    list_display = (
        "label",
        "token_hint",
        "grant",
        "group",
        "use_count",
        "expires_at",
        "state",
    )
    list_select_related = ("grant__policy", "group")
    list_filter = ("group",)
    search_fields = ("label", "token_hint")
    actions: ClassVar = ["revoke_selected"]
    readonly_fields = (
        "label",
        "grant",
        "product_code",
        "group",
        "token_hint",
        "expires_at",
        "max_uses",
        "uses",
        "last_used_at",
        "created_at",
        "created_by",
        "revoked_at",
        "revoked_reason",
    )

    @admin.display(description="uses")
    def use_count(self, obj: EnrollmentToken) -> str:
        return f"{obj.uses} / {obj.max_uses}"

    @admin.display(description="state")
    def state(self, obj: EnrollmentToken) -> str:
        if obj.is_revoked:
            return "revoked"
        if obj.is_expired:
            return "expired"
        if obj.uses >= obj.max_uses:
            return "used up"
        return "usable"

    def get_form(self, request: HttpRequest, obj: Any = None, **kwargs: Any) -> Any:
        if obj is None:
            kwargs["form"] = EnrollmentTokenCreateForm
        return super().get_form(request, obj, **kwargs)

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> Any:
        return self.readonly_fields if obj is not None else ()

    def get_fields(self, request: HttpRequest, obj: Any = None) -> Any:
        if obj is None:
            return ["label", "grant", "group", "max_uses", "expires_in_days"]
        return self.readonly_fields

    def save_model(self, request: HttpRequest, obj: Any, form: Any, change: bool) -> None:
        if change:
            return
        row, token = enrollment_token_create(
            grant_id=form.cleaned_data["grant"].pk,
            group_name=form.cleaned_data["group"].name,
            max_uses=form.cleaned_data["max_uses"],
            expires_in_days=form.cleaned_data["expires_in_days"],
            label=form.cleaned_data["label"],
            acting_user=request.user,
        )
        obj.pk = row.pk
        messages.warning(
            request,
            f"Enrollment token created; copy it now, it is not shown again: {token}",
        )

    @admin.action(description="Revoke selected enrollment tokens")
    def revoke_selected(self, request: HttpRequest, queryset: QuerySet[EnrollmentToken]) -> None:
        count = 0
        for row in queryset:
            enrollment_token_revoke(
                token_id=row.pk, reason="revoked in the admin", acting_user=request.user
            )
            count += 1
        self.message_user(request, f"Revoked {count} enrollment tokens.", messages.SUCCESS)
