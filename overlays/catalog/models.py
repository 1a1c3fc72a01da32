"""Platform-level overlay schemas and global defaults (public schema).

The platform operator publishes one JSON Schema (draft 2020-12) per product
and version, and one set of global defaults per product. Tenants build their
overlays on top of both; a release snapshots the schema version and the
defaults it was validated against, so editing them never changes a release.
"""

from typing import Any, ClassVar

from django.core.exceptions import ValidationError
from django.db import models
from simple_history.models import HistoricalRecords

from portal.catalog.models import Product


class OverlaySchema(models.Model):
    """One version of a product's overlay schema; the highest version is in force."""

    product = models.ForeignKey(Product, on_delete=models.CASCADE, related_name="overlay_schemas")
    version = models.PositiveIntegerField()
    schema = models.JSONField(
        help_text=(
            "JSON Schema draft 2020-12. Every object must set additionalProperties or "
            "unevaluatedProperties. Annotations: x-requires-entitlement, x-secret, "
            "x-region-values."
        )
    )
    notes = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    history = HistoricalRecords()

    class Meta:
        ordering: ClassVar = ["product__code", "-version"]
        constraints: ClassVar = [
            models.UniqueConstraint(
                fields=["product", "version"],
                name="overlay_schema_unique_version",
                violation_error_message="This product already has a schema with this version.",
            )
        ]

    def __str__(self) -> str:
        return f"{self.product.code} schema v{self.version}"

    def clean(self) -> None:
        from overlays.exceptions import OverlaySchemaInvalid
        from overlays.validation import schema_check

        try:
            schema_check(self.schema)
        except OverlaySchemaInvalid as error:
            raise ValidationError({"schema": error.detail}) from error


class GlobalDefaults(models.Model):
    """The platform's default configuration of a product: the first layer of every merge."""

    product = models.OneToOneField(
        Product, on_delete=models.CASCADE, related_name="overlay_defaults"
    )
    values = models.JSONField(default=dict, blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    history = HistoricalRecords()

    class Meta:
        verbose_name_plural = "global defaults"

    def __str__(self) -> str:
        return f"{self.product.code} defaults"

    def clean(self) -> None:
        from overlays.catalog.checks import defaults_issues

        issues = defaults_issues(self.product, self.values) if self.product_id else []
        if issues:
            raise ValidationError({"values": [str(issue) for issue in issues]})


def schema_current(product_code: str) -> OverlaySchema | None:
    """Return the highest schema version of a product, or None when it has none."""
    return (
        OverlaySchema.objects.filter(product__code=product_code)
        .select_related("product")
        .order_by("-version")
        .first()
    )


def defaults_values(product_code: str) -> dict[str, Any]:
    row = GlobalDefaults.objects.filter(product__code=product_code).only("values").first()
    return dict(row.values) if row is not None else {}
