from django import forms
from django.contrib import admin, messages
from django.http import HttpRequest

from portal.access.models import SCOPES, ApiToken
from portal.access.services import api_token_issue
from portal.admin_sites import tenant_admin_site


class ApiTokenForm(forms.ModelForm):
    scopes = forms.MultipleChoiceField(
        choices=sorted(SCOPES.items()), widget=forms.CheckboxSelectMultiple
    )

    class Meta:
        model = ApiToken
        fields = ("name", "user", "scopes", "expires_at")


@admin.register(ApiToken, site=tenant_admin_site)
class ApiTokenAdmin(admin.ModelAdmin):
    """API tokens; the secret is shown once, in the message after creation."""

    form = ApiTokenForm
    list_display = (
        "name",
        "user",
        "hint",
        "created_at",
        "expires_at",
        "revoked_at",
        "last_used_at",
    )
    list_select_related = ("user",)
    readonly_fields = ("hint", "created_at", "last_used_at", "revoked_at")
    actions = ("revoke_tokens",)

    def get_readonly_fields(
        self, request: HttpRequest, obj: ApiToken | None = None
    ) -> tuple[str, ...]:
        if obj is not None:
            return (*self.readonly_fields, "name", "user", "scopes", "expires_at")
        return self.readonly_fields

    def save_model(
        self, request: HttpRequest, obj: ApiToken, form: forms.Form, change: bool
    ) -> None:
        if change:
            return
        token, secret = api_token_issue(
            name=obj.name,
            user=obj.user,
            scopes=list(form.cleaned_data["scopes"]),
            expires_at=obj.expires_at,
        )
        obj.pk = token.pk
        obj.id = token.id
        messages.warning(
            request,
            f"API token created. Copy it now; it will not be shown again: {secret}",
        )

    @admin.action(description="Revoke selected tokens")
    def revoke_tokens(self, request: HttpRequest, queryset: object) -> None:
        from portal.access.services import api_token_revoke

        for token in queryset:  # type: ignore[attr-defined]
            api_token_revoke(token_id=token.pk, acting_user=request.user)
