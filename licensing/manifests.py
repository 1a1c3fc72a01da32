"""Signed, versioned manifests: one document per tenant and product.

A manifest carries what a client needs to enforce licensing offline beyond
its token: the permitted features, the conservative unlicensed set, device
limits, regional and compliance constraints, the tenant key certificates,
the revocation lists and the overlay pointer contributed by other apps.

Versions only increase. Publishing takes a PostgreSQL advisory lock per
tenant and product for the rest of the transaction, so concurrent publishers
get consecutive versions. A manifest expires after the longest offline
tolerance of the product's policies; `manifest_current` publishes a fresh
version once the current one is past half its lifetime, so clients that
refresh regularly never hold an expired manifest.
"""

import hashlib
import logging
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.db import connection, transaction
from django.db.models import Max
from django.utils import timezone

from licensing import manifest_contributions
from licensing.decisions import decision
from licensing.exceptions import ProductNotLicensed
from licensing.models import Manifest, Policy
from licensing.selectors import revocations_listing, tenant_entitlements
from licensing.signing import current_tenant_slug, sign_tenant_object, tenant_key_certificates
from portal.catalog.models import Product

logger = logging.getLogger(__name__)

MANIFEST_TYP = "kp-manifest+jwt"
DEFAULT_MANIFEST_LIFETIME = timedelta(days=7)


def _issuer() -> str:
    return f"{settings.KEYPLANE_BASE_URL}/t/{current_tenant_slug()}"


def _lock_product(product_code: str) -> None:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT pg_advisory_xact_lock(hashtext(%s))",
            [f"{connection.schema_name}:manifest:{product_code}"],
        )


def _manifest_claims(product: Product, version: int) -> dict[str, Any]:
    # Certificates first: they may create the tenant's first key, whose
    # window must already have started at the manifest's `iat`.
    certificates = tenant_key_certificates()
    now = timezone.now()

    policies = list(Policy.objects.filter(product_code=product.code))
    offline_hours = max((p.offline_tolerance_hours for p in policies), default=0)
    lifetime = timedelta(hours=offline_hours) if offline_hours else DEFAULT_MANIFEST_LIFETIME
    regions = sorted({region for p in policies for region in p.allowed_regions})
    # Later policies win where two set the same compliance key.
    compliance: dict[str, Any] = {}
    for policy in policies:
        compliance.update(policy.compliance)

    claims: dict[str, Any] = {
        "iss": _issuer(),
        "tid": current_tenant_slug(),
        "aud": product.code,
        "mver": version,
        "iat": int(now.timestamp()),
        "exp": int((now + lifetime).timestamp()),
        "features": sorted(tenant_entitlements(product.code)),
        "unlicensed_features": sorted(product.unlicensed_features),
        "limits": {
            "devices_per_user": min((p.devices_per_user for p in policies), default=None),
        },
        "regions": regions,
        "compliance": compliance,
        "key_certificates": certificates,
        "revoked": revocations_listing(),
        "overlay": None,
    }
    claims.update(manifest_contributions.contributions_for(product.code))
    return claims


def manifest_publish(*, product_code: str, reason: str, acting_user: Any = None) -> Manifest:
    """Publish the next manifest version of a product in the current tenant; return it."""
    product = Product.objects.filter(code=product_code).first()
    if product is None:
        raise ProductNotLicensed(f"No product has the code {product_code!r}.")
    with transaction.atomic():
        _lock_product(product_code)
        last = Manifest.objects.filter(product_code=product_code).aggregate(v=Max("version"))["v"]
        version = (last or 0) + 1
        claims = _manifest_claims(product, version)
        token = sign_tenant_object(claims, typ=MANIFEST_TYP)
        manifest = Manifest.objects.create(
            product_code=product_code,
            version=version,
            content=claims,
            jws=token,
            etag='"' + hashlib.sha256(token.encode()).hexdigest()[:32] + '"',
            reason=reason[:500],
            created_by=acting_user if getattr(acting_user, "pk", None) else None,
        )
        decision(
            event="manifest.published",
            outcome="done",
            note=reason,
            actor=getattr(acting_user, "username", "") or "",
            subject=f"{product_code}@{version}",
        )
    logger.info("manifest.published product=%s version=%d", product_code, version)
    return manifest


def manifest_publish_all(*, reason: str, acting_user: Any = None) -> list[Manifest]:
    """Publish a new version for every product the tenant has a policy for."""
    codes = sorted(set(Policy.objects.values_list("product_code", flat=True)))
    return [
        manifest_publish(product_code=code, reason=reason, acting_user=acting_user)
        for code in codes
    ]


def _latest_fresh(product_code: str) -> Manifest | None:
    manifest = Manifest.objects.filter(product_code=product_code).order_by("-version").first()
    if manifest is None:
        return None
    iat, exp = manifest.content.get("iat", 0), manifest.content.get("exp", 0)
    if timezone.now().timestamp() < iat + (exp - iat) / 2:
        return manifest
    return None


def manifest_current(product_code: str) -> Manifest:
    """Return the latest manifest of a product, publishing one if none is fresh enough.

    Concurrent callers that all find the manifest stale publish only once:
    each takes the product's lock and checks again before publishing.
    """
    fresh = _latest_fresh(product_code)
    if fresh is not None:
        return fresh
    with transaction.atomic():
        _lock_product(product_code)
        fresh = _latest_fresh(product_code)
        if fresh is not None:
            return fresh
        exists = Manifest.objects.filter(product_code=product_code).exists()
        reason = (
            "renewal of a manifest past half its lifetime"
            if exists
            else "first manifest of the product"
        )
        return manifest_publish(product_code=product_code, reason=reason)
