"""Reads of licensing state used by the API, the admin and other apps."""

from datetime import datetime, timedelta

from django.db.models import QuerySet
from django.utils import timezone

from licensing.models import Device, LicenseGrant, Policy, Revocation, Seat


def grants_in_force(product_code: str) -> QuerySet[LicenseGrant]:
    """Active grants of a product whose term has started (grace is checked per grant)."""
    return LicenseGrant.objects.filter(
        policy__product_code=product_code,
        status=LicenseGrant.Status.ACTIVE,
        term_start__lte=timezone.now(),
    ).select_related("policy")


def grant_grace_end(grant: LicenseGrant) -> datetime:
    return grant.term_end + timedelta(days=grant.policy.grace_days)


def tenant_entitlements(product_code: str) -> set[str]:
    """Return the union of entitlements of the tenant's grants in force for the product."""
    now = timezone.now()
    codes: set[str] = set()
    for grant in grants_in_force(product_code):
        if grant_grace_end(grant) >= now:
            codes.update(grant.policy.entitlements)
    return codes


def tenant_product_codes() -> list[str]:
    """Return every product code that a policy of the tenant refers to."""
    return sorted(set(Policy.objects.values_list("product_code", flat=True)))


def revocations_listing() -> dict[str, list[str]]:
    """Return every revoked grant id, device thumbprint and token id of the tenant."""
    listing: dict[str, list[str]] = {"grants": [], "devices": [], "tokens": []}
    rows = Revocation.objects.select_related("device").order_by("id")
    for row in rows:
        if row.kind == Revocation.Kind.GRANT:
            listing["grants"].append(str(row.grant_id))
        elif row.kind == Revocation.Kind.DEVICE and row.device is not None:
            listing["devices"].append(row.device.thumbprint)
        elif row.kind == Revocation.Kind.TOKEN:
            listing["tokens"].append(row.token_jti)
    return listing


def device_active_seat(device: Device, product_code: str) -> Seat | None:
    """Return the device's active seat for the product, with grant and policy loaded."""
    return (
        Seat.objects.filter(
            device=device, status=Seat.Status.ACTIVE, grant__policy__product_code=product_code
        )
        .select_related("grant__policy", "device")
        .order_by("-id")
        .first()
    )
