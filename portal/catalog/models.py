"""The platform product catalog and the root signing key (public schema).

Products and their features are defined once by the platform operator and
shared by every tenant. The root key signs tenant key certificates; clients
pin its public half, so it never leaves the public schema.
"""

from typing import ClassVar

from django.core.exceptions import ValidationError
from django.core.validators import RegexValidator
from django.db import models
from simple_history.models import HistoricalRecords

code_validator = RegexValidator(
    r"^[a-z][a-z0-9_.-]{0,62}$",
    "Use lower case letters, digits, '_', '.' or '-', starting with a letter.",
)


class Product(models.Model):
    """A desktop product that tenants license, identified by a stable code."""

    code = models.CharField(max_length=63, unique=True, validators=[code_validator])
    name = models.CharField(max_length=200)
    unlicensed_features = models.JSONField(
        default=list,
        blank=True,
        help_text=(
            "Feature codes a client falls back to when it has no valid license: "
            "the conservative set that is safe to run unlicensed."
        ),
    )
    created_at = models.DateTimeField(auto_now_add=True)

    history = HistoricalRecords()

    class Meta:
        ordering: ClassVar = ["code"]

    def __str__(self) -> str:
        return f"{self.name} ({self.code})"

    def clean(self) -> None:
        if not isinstance(self.unlicensed_features, list) or not all(
            isinstance(item, str) for item in self.unlicensed_features
        ):
            raise ValidationError({"unlicensed_features": "Enter a JSON list of feature codes."})
        if self.pk:
            known = set(self.features.values_list("code", flat=True))
            unknown = sorted(set(self.unlicensed_features) - known)
            if unknown:
                raise ValidationError(
                    {
                        "unlicensed_features": (
                            f"Unknown feature codes {unknown}; add them to the product first."
                        )
                    }
                )

    def feature_codes(self) -> set[str]:
        """Return the codes of every feature of this product (one query)."""
        return set(self.features.values_list("code", flat=True))


class Feature(models.Model):
    """A feature or entitlement of a product that a policy can switch on."""

    product = models.ForeignKey(Product, on_delete=models.CASCADE, related_name="features")
    code = models.CharField(max_length=63, validators=[code_validator])
    description = models.TextField(blank=True)

    history = HistoricalRecords()

    class Meta:
        ordering: ClassVar = ["product__code", "code"]
        constraints: ClassVar = [
            models.UniqueConstraint(
                fields=["product", "code"],
                name="catalog_feature_unique_code",
                violation_error_message="The product already has a feature with this code.",
            )
        ]

    def __str__(self) -> str:
        return f"{self.product.code}:{self.code}"


class KeyState(models.TextChoices):
    """Life cycle of a signing key; shared by root and tenant keys."""

    ACTIVE = "active", "Active"
    RETIRING = "retiring", "Retiring (verifies, no longer signs)"
    RETIRED = "retired", "Retired"
    COMPROMISED = "compromised", "Compromised"


class RootSigningKey(models.Model):
    """A platform root key (Ed25519) that certifies tenant signing keys.

    The private key is stored only as an envelope produced by the key store
    (licensing/keystore.py); at most one key is active at a time.
    """

    kid = models.CharField(max_length=64, unique=True)
    public_key = models.BinaryField(help_text="Raw 32-byte Ed25519 public key.")
    private_key_envelope = models.BinaryField(editable=False)
    created_at = models.DateTimeField(auto_now_add=True)
    not_after = models.DateTimeField(
        null=True, blank=True, help_text="End of validity; set when the key starts retiring."
    )

    state = models.CharField(max_length=16, choices=KeyState.choices, default=KeyState.ACTIVE)
    state_changed_at = models.DateTimeField(auto_now_add=True)

    history = HistoricalRecords(excluded_fields=["private_key_envelope"])

    class Meta:
        ordering: ClassVar = ["-created_at"]
        constraints: ClassVar = [
            models.UniqueConstraint(
                fields=["state"],
                condition=models.Q(state="active"),
                name="catalog_rootkey_one_active",
                violation_error_message="Only one root key can be active.",
            )
        ]

    def __str__(self) -> str:
        return f"root key {self.kid} ({self.state})"
