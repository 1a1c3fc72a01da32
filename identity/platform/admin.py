"""Platform admin for each tenant's sign-in settings (public schema, default admin site)."""

from typing import Any, ClassVar

from django import forms
from django.contrib import admin
from django.http import HttpRequest
from simple_history.admin import SimpleHistoryAdmin

from identity.platform.models import TenantOidcConfig
from identity.platform.services import oidc_config_save


class TenantOidcConfigForm(forms.ModelForm):  # type: ignore[type-arg]
    """Edits the settings; the client secret is write-only and the domains a comma list."""

    client_secret = forms.CharField(
        required=False,
        strip=True,
        widget=forms.PasswordInput(render_value=False),
        help_text="Leave empty to keep the stored secret. It is stored encrypted and never shown.",
    )
    remove_client_secret = forms.BooleanField(
        required=False, help_text="Remove the stored secret (for a public client)."
    )
    issuer = forms.URLField(
        max_length=500,
        assume_scheme="https",
        help_text="The provider's issuer URL exactly as its discovery document states it.",
    )
    allowed_email_domains = forms.CharField(
        required=False,
        help_text="Comma-separated e-mail domains whose users may sign in, such as example.com.",
    )

    class Meta:
        model = TenantOidcConfig
        fields: ClassVar = [
            "tenant",
            "enabled",
            "issuer",
            "client_id",
            "scopes",
            "groups_claim",
            "allowed_email_domains",
            "device_client_ids",
            "local_password_signin",
        ]

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if self.instance.pk:
            self.initial["allowed_email_domains"] = ", ".join(self.instance.allowed_email_domains)

    def clean_allowed_email_domains(self) -> list[str]:
        text = self.cleaned_data.get("allowed_email_domains") or ""
        domains = [part.strip().lower().lstrip("@") for part in text.split(",") if part.strip()]
        for domain in domains:
            if "." not in domain or " " in domain or "@" in domain:
                raise forms.ValidationError(f"{domain!r} is not a domain name such as example.com.")
        return domains

    def secret_change(self) -> str | None:
        """Return the secret to store, "" to remove it, or None to keep it."""
        if self.cleaned_data.get("remove_client_secret"):
            return ""
        return self.cleaned_data.get("client_secret") or None


@admin.register(TenantOidcConfig)
class TenantOidcConfigAdmin(SimpleHistoryAdmin):
    form = TenantOidcConfigForm
    list_display = ("tenant", "enabled", "issuer", "client_id", "local_password_signin")
    list_select_related = ("tenant",)
    list_filter = ("enabled", "local_password_signin")
    search_fields = ("tenant__slug", "issuer", "client_id")
    readonly_fields = ("secret_stored", "created_at", "updated_at")

    @admin.display(description="client secret stored", boolean=True)
    def secret_stored(self, obj: TenantOidcConfig) -> bool:
        return obj.has_client_secret

    def save_model(
        self, request: HttpRequest, obj: TenantOidcConfig, form: Any, change: bool
    ) -> None:
        oidc_config_save(config=obj, client_secret=form.secret_change(), acting_user=request.user)
