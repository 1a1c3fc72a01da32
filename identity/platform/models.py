"""Per-tenant sign-in settings, stored in the public schema.

The platform operator configures each tenant's OpenID Connect provider here,
because a tenant admin who could change the issuer could also let any
account of another provider into the tenant. The client secret is stored
encrypted with the same envelope key store as the signing keys
(licensing/keystore.py), bound to the tenant, and is never shown again.
"""

from typing import ClassVar
from urllib.parse import urlsplit

from django.core.exceptions import ValidationError
from django.db import models
from simple_history.models import HistoricalRecords

from licensing.keystore import default_keystore
from portal.tenants.models import Tenant

DEFAULT_SCOPES = "openid email profile"
_LOOPBACK_HOSTS = frozenset({"127.0.0.1", "localhost", "::1"})


def _secret_kid(tenant_id: int) -> str:
    # The envelope's associated data: a secret copied onto another tenant's row fails to open.
    return f"oidc-client-secret:tenant-{tenant_id}"


class TenantOidcConfig(models.Model):
    """Sign-in settings of one tenant: its OpenID Connect provider and the password switch."""

    tenant = models.OneToOneField(Tenant, on_delete=models.CASCADE, related_name="oidc_config")
    enabled = models.BooleanField(
        default=True, help_text="Offer single sign-on through this provider on the admin login."
    )
    issuer = models.URLField(
        max_length=500,
        help_text="The provider's issuer URL exactly as its discovery document states it.",
    )
    client_id = models.CharField(max_length=255)
    client_secret_envelope = models.BinaryField(editable=False, blank=True, default=b"")
    scopes = models.CharField(
        max_length=255,
        default=DEFAULT_SCOPES,
        help_text="Space-separated scopes to request; must include openid.",
    )
    groups_claim = models.CharField(
        max_length=100,
        default="groups",
        help_text="ID token claim that lists the user's groups at the provider.",
    )
    allowed_email_domains = models.JSONField(
        default=list,
        blank=True,
        help_text="E-mail domains whose users may sign in, such as example.com.",
    )
    device_client_ids = models.JSONField(
        default=list,
        blank=True,
        help_text=(
            "Client ids of the desktop application at the provider. An ID token issued to "
            "one of them binds its user to the device that activates with it."
        ),
    )
    local_password_signin = models.BooleanField(
        default=True,
        help_text="Allow tenant admins to sign in with a password as well as through the provider.",
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    history = HistoricalRecords(excluded_fields=["client_secret_envelope"])

    class Meta:
        verbose_name = "tenant OpenID Connect configuration"
        ordering: ClassVar = ["tenant__slug"]

    def __str__(self) -> str:
        return f"sign-in of {self.tenant.slug}"

    def clean(self) -> None:
        errors: dict[str, str] = {}
        if "openid" not in self.scopes.split():
            errors["scopes"] = f"The scopes {self.scopes!r} must include openid."
        domains = self.allowed_email_domains
        if not isinstance(domains, list) or not all(isinstance(d, str) and d for d in domains):
            errors["allowed_email_domains"] = "Give a list of domain names such as example.com."
        elif self.enabled and not domains:
            errors["allowed_email_domains"] = (
                "Name at least one e-mail domain, so that only the tenant's own accounts "
                "at the provider can sign in."
            )
        client_ids = self.device_client_ids
        if not isinstance(client_ids, list) or not all(
            isinstance(c, str) and c for c in client_ids
        ):
            errors["device_client_ids"] = "Give a list of client ids such as keyplane-desktop."
        parsed = urlsplit(self.issuer)
        if parsed.scheme != "https" and parsed.hostname not in _LOOPBACK_HOSTS:
            errors["issuer"] = (
                f"The issuer {self.issuer!r} must use https; plain http is accepted only "
                "on a loopback address, for tests and local development."
            )
        elif self.issuer.endswith("/"):
            errors["issuer"] = (
                f"The issuer {self.issuer!r} ends with a slash; enter it exactly as the "
                "provider's discovery document states it, usually without one."
            )
        if errors:
            raise ValidationError(errors)

    @property
    def has_client_secret(self) -> bool:
        return bool(self.client_secret_envelope)

    def client_secret_set(self, secret: str) -> None:
        """Encrypt `secret` into the envelope field; the caller saves the row."""
        self.client_secret_envelope = default_keystore().seal(
            secret.encode("utf-8"), kid=_secret_kid(self.tenant_id)
        )

    def client_secret(self) -> str:
        """Decrypt and return the client secret, or "" for a public client."""
        if not self.client_secret_envelope:
            return ""
        plain = default_keystore().open(
            bytes(self.client_secret_envelope), kid=_secret_kid(self.tenant_id)
        )
        return plain.decode("utf-8")

    def email_domain_allowed(self, email: str) -> bool:
        domain = email.rpartition("@")[2].lower()
        return bool(domain) and domain in {d.lower() for d in self.allowed_email_domains}
