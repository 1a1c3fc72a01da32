"""Licensing fixtures: a catalog product, a policy and grant, device keys and proofs."""

import secrets
import time
import uuid
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from django_tenants.utils import schema_context

from licensing.jws import jws_sign, public_jwk

FEATURES = ("export", "sync", "render", "basic")


def product_ensure(code: str = "atlas") -> Any:
    """Create (or fetch) a catalog product with four features in the public schema."""
    from portal.catalog.models import Feature, Product

    with schema_context("public"):
        product, _ = Product.objects.get_or_create(
            code=code, defaults={"name": code.title(), "unlicensed_features": ["basic"]}
        )
        for feature in FEATURES:
            Feature.objects.get_or_create(product=product, code=feature)
    return product


def policy_make(product_code: str = "atlas", **overrides: Any) -> Any:
    from licensing.services import policy_create

    fields: dict[str, Any] = {
        "name": f"Standard {uuid.uuid4().hex[:6]}",
        "product_code": product_code,
        "seat_limit": 100,
        "entitlements": ["export", "sync"],
    }
    fields.update(overrides)
    return policy_create(acting_user=None, **fields)


def grant_make(seat_count: int = 5, **policy_overrides: Any) -> tuple[Any, str]:
    from licensing.services import grant_create

    policy = policy_make(**policy_overrides)
    return grant_create(policy_id=policy.pk, seat_count=seat_count, acting_user=None)


class DeviceKey:
    """An Ed25519 device key that signs DPoP proofs the way keyplane_client does."""

    def __init__(self) -> None:
        self.private_key = Ed25519PrivateKey.generate()
        self.jwk = public_jwk(self.private_key.public_key())

    def proof(
        self,
        method: str,
        url: str,
        *,
        iat: int | None = None,
        jti: str | None = None,
        typ: str = "dpop+jwt",
        jwk: dict[str, Any] | None = None,
    ) -> str:
        claims = {
            "htm": method,
            "htu": url,
            "iat": int(time.time()) if iat is None else iat,
            "jti": jti or secrets.token_urlsafe(16),
        }
        return jws_sign(
            claims,
            typ=typ,
            kid=None,
            private_key=self.private_key,
            extra_header={"jwk": jwk or self.jwk},
        )


@pytest.fixture
def product(db: None) -> Any:
    return product_ensure()


@pytest.fixture
def device_key() -> DeviceKey:
    return DeviceKey()
