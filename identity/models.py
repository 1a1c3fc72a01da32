"""Tenant-side identity: IdP group to role mappings, federated users, enrollment tokens."""

from typing import ClassVar

from django.conf import settings
from django.db import models
from django.db.models import F, Q
from django.utils import timezone
from simple_history.models import HistoricalRecords

from portal.access.roles import ROLES


class RoleMapping(models.Model):
    """Grants a Keyplane role to every user whose provider groups include `idp_group`."""

    idp_group = models.CharField(
        max_length=255, help_text="Group name exactly as the provider sends it in the groups claim."
    )
    role = models.CharField(max_length=64, choices=[(name, name) for name in ROLES])
    created_at = models.DateTimeField(auto_now_add=True)

    history = HistoricalRecords()

    class Meta:
        ordering: ClassVar = ["idp_group", "role"]
        constraints: ClassVar = [
            models.UniqueConstraint(
                fields=["idp_group", "role"],
                name="identity_rolemapping_unique",
                violation_error_message="This group already maps to this role.",
            )
        ]

    def __str__(self) -> str:
        return f"{self.idp_group} → {self.role}"


class FederatedIdentity(models.Model):
    """Links a user of this tenant to one account (`iss`, `sub`) at the tenant's provider."""

    # Deleting the user removes the link, so the next sign-in provisions a fresh user.
    user = models.OneToOneField(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="federated_identity"
    )
    issuer = models.CharField(max_length=500)
    subject = models.CharField(max_length=255)
    created_at = models.DateTimeField(auto_now_add=True)

    last_signin_at = models.DateTimeField(null=True, blank=True)
    last_groups = models.JSONField(
        default=list, blank=True, help_text="Provider groups seen at the last sign-in."
    )

    history = HistoricalRecords()

    class Meta:
        verbose_name_plural = "federated identities"
        ordering: ClassVar = ["id"]
        constraints: ClassVar = [
            models.UniqueConstraint(
                fields=["issuer", "subject"],
                name="identity_federated_unique_subject",
                violation_error_message="This provider account is already linked to a user.",
            )
        ]

    def __str__(self) -> str:
        return f"{self.user} via {self.issuer}"


class EnrollmentToken(models.Model):
    """A secret that lets devices activate on a grant without a license key.

    IT admins ship it with the installer through their device-management tool.
    Only a SHA-256 of the token is stored (see identity/enrollment.py), so the
    token is shown once, when it is created.
    """

    label = models.CharField(max_length=200, help_text="Where the token is deployed.")
    # A grant or group with enrollment tokens cannot be deleted: the decision
    # log and the device records refer to them.
    grant = models.ForeignKey(
        "licensing.LicenseGrant", on_delete=models.PROTECT, related_name="enrollment_tokens"
    )
    product_code = models.CharField(max_length=63, editable=False)
    group = models.ForeignKey(
        "licensing.DeviceGroup", on_delete=models.PROTECT, related_name="enrollment_tokens"
    )
    token_hash = models.CharField(max_length=64, unique=True, editable=False)
    token_hint = models.CharField(max_length=8, editable=False)
    expires_at = models.DateTimeField()
    max_uses = models.PositiveIntegerField()
    created_at = models.DateTimeField(auto_now_add=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        # The token outlives the account of the admin who created it.
        on_delete=models.SET_NULL,
        related_name="+",
    )

    uses = models.PositiveIntegerField(default=0, editable=False)
    last_used_at = models.DateTimeField(null=True, blank=True, editable=False)
    revoked_at = models.DateTimeField(null=True, blank=True, editable=False)
    revoked_reason = models.CharField(max_length=500, blank=True, editable=False)

    history = HistoricalRecords(excluded_fields=["token_hash"])

    class Meta:
        ordering: ClassVar = ["-created_at"]
        constraints: ClassVar = [
            models.CheckConstraint(
                condition=Q(uses__lte=F("max_uses")),
                name="identity_enrollment_uses_within_max",
                violation_error_message="An enrollment token is used at most max_uses times.",
            ),
            models.CheckConstraint(
                condition=Q(max_uses__gte=1),
                name="identity_enrollment_max_uses_positive",
                violation_error_message="max_uses must be at least 1.",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.label} (…{self.token_hint})"

    @property
    def is_revoked(self) -> bool:
        return self.revoked_at is not None

    @property
    def is_expired(self) -> bool:
        return self.expires_at <= timezone.now()
