"""Checks of global defaults, which know no tenant yet."""

from typing import Any

from overlays.merge import DEFAULTS_LAYER, Layer, resolve
from overlays.validation import OverlayValidator, TenantFacts, ValidationIssue, secrets_scan
from portal.catalog.models import Product


def defaults_issues(product: Product, values: Any) -> list[ValidationIssue]:
    """Return the problems of `values` as the defaults of `product`.

    Defaults may leave required keys to tenants, and entitlement and region
    rules depend on the tenant, so only unknown keys, types, ranges and
    plaintext secrets are checked here. Publishing checks everything.
    """
    from overlays.catalog.models import schema_current

    if not isinstance(values, dict):
        return [ValidationIssue("", DEFAULTS_LAYER, "type", "the defaults must be a JSON object")]
    layer = Layer(DEFAULTS_LAYER, values)
    issues = secrets_scan(layer)
    current = schema_current(product.code)
    if current is None:
        return issues
    everything = TenantFacts(entitlements=frozenset(), any_entitlement=True)
    found = OverlayValidator(current.schema).validate(resolve([layer]), facts=everything)
    tenant_rules = {"required", "x-region-values"}
    return issues + [issue for issue in found if issue.rule not in tenant_rules]
