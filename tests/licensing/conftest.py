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


class ClientApi:
    """Calls a tenant's client API in-process, signing each request with a device key.

    The routing middleware switches the connection back to the public schema
    after each request; this helper restores the tenant schema afterwards so
    the test body keeps reading the tenant's rows.
    """

    def __init__(self, tenant: Any, base: str = "http://testserver") -> None:
        from django.test import Client

        self.tenant = tenant
        self.base = base
        self.http = Client()

    def url(self, endpoint: str) -> str:
        return f"{self.base}/t/{self.tenant.slug}/api/v1/client/{endpoint}"

    def _restore(self) -> None:
        from django.db import connection

        connection.set_tenant(self.tenant)

    def post(
        self,
        endpoint: str,
        body: Any,
        *,
        key: DeviceKey | None = None,
        proof: str | None = None,
        raw: bytes | None = None,
        headers: dict[str, str] | None = None,
    ) -> Any:
        all_headers = dict(headers or {})
        if proof is None and key is not None:
            proof = key.proof("POST", self.url(endpoint))
        if proof is not None:
            all_headers["DPoP"] = proof
        import json as _json

        data = raw if raw is not None else _json.dumps(body)
        try:
            return self.http.post(
                f"/t/{self.tenant.slug}/api/v1/client/{endpoint}",
                data=data,
                content_type="application/json",
                headers=all_headers,
            )
        finally:
            self._restore()

    def get(self, endpoint: str, *, headers: dict[str, str] | None = None, **params: str) -> Any:
        try:
            return self.http.get(
                f"/t/{self.tenant.slug}/api/v1/client/{endpoint}", params, headers=headers or {}
            )
        finally:
            self._restore()


@pytest.fixture
def alpha_api(in_alpha: Any, product: Any) -> ClientApi:
    from django.db import connection

    connection.set_tenant(in_alpha)
    return ClientApi(in_alpha)


@pytest.fixture(autouse=True)
def rate_limits_reset() -> None:
    """Start every test with empty rate-limit counters of this test run."""
    from django.conf import settings

    from licensing.redis_store import redis_client

    prefix = settings.CACHES["default"]["KEY_PREFIX"]
    client = redis_client()
    keys = list(client.scan_iter(match=f"{prefix}:*:rl:*", count=500))
    if keys:
        client.delete(*keys)
