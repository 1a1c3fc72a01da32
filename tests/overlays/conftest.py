"""Fixtures of the overlay tests: a product with a schema and defaults, groups, devices."""

import uuid

import pytest

from tests.overlays.schemas import desktop_defaults, desktop_schema


@pytest.fixture
def product(db):  # type: ignore[no-untyped-def]
    """A product in the public schema with overlay schema v1 and global defaults."""
    from overlays.catalog.models import GlobalDefaults, OverlaySchema
    from portal.catalog.models import Product

    code = f"desk-{uuid.uuid4().hex[:8]}"
    row = Product.objects.create(code=code, name="Desk")
    OverlaySchema.objects.create(product=row, version=1, schema=desktop_schema())
    GlobalDefaults.objects.create(product=row, values=desktop_defaults())
    return row


def make_device(group=None, name="pc"):  # type: ignore[no-untyped-def]
    from licensing.models import Device

    return Device.objects.create(
        public_jwk={"kty": "OKP", "crv": "Ed25519", "x": uuid.uuid4().hex},
        thumbprint=uuid.uuid4().hex + uuid.uuid4().hex[:20],
        name=name,
        group=group,
    )


def grant_entitlements(product_code: str, entitlements: list[str]):  # type: ignore[no-untyped-def]
    """Give the current tenant a grant in force with `entitlements`; return (grant, key)."""
    from licensing.services import grant_create, policy_create
    from portal.catalog.models import Feature, Product

    product = Product.objects.get(code=product_code)
    for code in entitlements:
        Feature.objects.get_or_create(product=product, code=code)
    policy = policy_create(
        acting_user=None,
        name=f"{product_code} policy",
        product_code=product_code,
        entitlements=entitlements,
    )
    return grant_create(policy_id=policy.pk, seat_count=5, acting_user=None)
