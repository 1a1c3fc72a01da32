"""Tenants and their domain records (public schema)."""

from typing import ClassVar

from django.db import models
from django_tenants.models import DomainMixin, TenantMixin
from django_tenants.utils import get_public_schema_name
from simple_history.models import HistoricalRecords

from portal.tenants.naming import schema_name_for_slug, validate_tenant_slug


class Tenant(TenantMixin):
    """An enterprise customer; owns one PostgreSQL schema named after its slug."""

    class Status(models.TextChoices):
        ACTIVE = "active", "Active"
        SUSPENDED = "suspended", "Suspended"
        OFFBOARDING = "offboarding", "Offboarding"

    slug = models.CharField(
        max_length=50,
        unique=True,
        validators=[validate_tenant_slug],
        help_text="URL and schema name: lower case letters, digits and hyphens.",
    )
    display_name = models.CharField(max_length=200)
    region = models.CharField(
        max_length=32, default="eu", help_text="Data residency region, for example eu or us."
    )
    is_sandbox = models.BooleanField(
        default=False, help_text="A sandbox tenant tries changes before production."
    )
    sandbox_of = models.ForeignKey(
        "self",
        null=True,
        blank=True,
        # A sandbox outlives the removal of its source tenant's row.
        on_delete=models.SET_NULL,
        related_name="sandboxes",
    )
    created_at = models.DateTimeField(auto_now_add=True)

    status = models.CharField(max_length=16, choices=Status.choices, default=Status.ACTIVE)
    suspended_at = models.DateTimeField(null=True, blank=True)
    exported_at = models.DateTimeField(null=True, blank=True)
    export_path = models.CharField(max_length=500, blank=True)
    drop_after = models.DateTimeField(
        null=True, blank=True, help_text="The schema is dropped after this time (offboarding)."
    )

    history = HistoricalRecords()

    # The schema is created explicitly by `tenant_onboard`, inside its steps.
    auto_create_schema = False
    auto_drop_schema = False

    class Meta:
        ordering: ClassVar = ["slug"]

    def __str__(self) -> str:
        return f"{self.display_name} ({self.slug})"

    def save(self, *args: object, **kwargs: object) -> None:
        if not self.schema_name and self.slug:
            self.schema_name = schema_name_for_slug(self.slug)
        super().save(*args, **kwargs)  # type: ignore[arg-type]

    @property
    def is_serving(self) -> bool:
        """Whether the tenant's pages and client API serve requests."""
        return self.status == self.Status.ACTIVE

    @classmethod
    def public_tenant(cls) -> "Tenant":
        """Return an unsaved stand-in for the public schema, used for platform requests."""
        return cls(schema_name=get_public_schema_name(), slug="", display_name="Platform")


class Domain(DomainMixin):
    """A host name that routes to a tenant at `/` (optional, for production subdomains)."""

    def __str__(self) -> str:
        return self.domain
