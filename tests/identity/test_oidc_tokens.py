"""ID token validation, fed with real tokens of the test provider and altered copies."""

import base64
import secrets
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
import requests
from joserfc import jwt
from joserfc.jwk import OctKey, RSAKey

from identity.exceptions import OidcIdTokenInvalid, OidcIssuerMismatch
from identity.oidc import (
    authorization_url,
    code_exchange,
    discovery_fetch,
    id_token_validate,
)
from identity.platform.models import TenantOidcConfig
from tests.identity.conftest import Provider, provider_authorize

CLIENT_ID = "keyplane-direct"
CLIENT_SECRET = "direct-client-secret-1"
# Nothing listens here: the test reads the code from the provider's redirect.
REDIRECT_URI = "http://127.0.0.1:9/callback"


@dataclass(frozen=True)
class RealToken:
    config: TenantOidcConfig
    metadata: dict[str, Any]
    token: dict[str, Any]
    nonce: str
    email: str


@pytest.fixture(scope="module")
def real_token(oidc_provider: Provider, django_db_blocker: Any) -> RealToken:
    """One ID token issued by the provider for a fresh user, with the nonce it was asked for."""
    from portal.tenants.models import Tenant

    oidc_provider.seed(
        clients=[
            {
                "client_id": CLIENT_ID,
                "client_secret": CLIENT_SECRET,
                "redirect_uris": [REDIRECT_URI],
            }
        ]
    )
    user = oidc_provider.user(email_domain="alpha.example", groups=["kp-it-admins"])
    with django_db_blocker.unblock():
        tenant = Tenant.objects.get(slug="alpha")
    config = TenantOidcConfig(
        tenant=tenant,
        issuer=oidc_provider.issuer,
        client_id=CLIENT_ID,
        allowed_email_domains=["alpha.example"],
    )
    config.client_secret_set(CLIENT_SECRET)
    metadata = discovery_fetch(config)
    nonce = secrets.token_urlsafe(16)
    verifier = secrets.token_urlsafe(48)
    url = authorization_url(
        config=config,
        metadata=metadata,
        redirect_uri=REDIRECT_URI,
        state=secrets.token_urlsafe(16),
        nonce=nonce,
        code_verifier=verifier,
    )
    location = provider_authorize(requests.Session(), url, user)
    code = parse_qs(urlsplit(location).query)["code"][0]
    token = code_exchange(
        config=config,
        metadata=metadata,
        redirect_uri=REDIRECT_URI,
        code=code,
        code_verifier=verifier,
    )
    return RealToken(
        config=config, metadata=metadata, token=token, nonce=nonce, email=user["email"]
    )


def _validate(real: RealToken, **overrides: Any) -> dict[str, Any]:
    arguments: dict[str, Any] = {
        "config": real.config,
        "metadata": real.metadata,
        "id_token": real.token["id_token"],
        "nonce": real.nonce,
        "access_token": real.token["access_token"],
    }
    arguments.update(overrides)
    return id_token_validate(**arguments)


def _segments(token: str) -> list[str]:
    return token.split(".")


def _b64decode(segment: str) -> bytes:
    return base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4))


def _b64encode(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _config_with(config: TenantOidcConfig, **changes: Any) -> TenantOidcConfig:
    copy = TenantOidcConfig(
        tenant=config.tenant,
        issuer=config.issuer,
        client_id=config.client_id,
        allowed_email_domains=config.allowed_email_domains,
        client_secret_envelope=config.client_secret_envelope,
    )
    for name, value in changes.items():
        setattr(copy, name, value)
    return copy


def test_id_token_valid_returns_claims(real_token: RealToken) -> None:
    claims = _validate(real_token)
    assert claims["iss"] == real_token.config.issuer
    assert claims["aud"] == CLIENT_ID
    assert claims["email"] == real_token.email
    assert claims["groups"] == ["kp-it-admins"]
    assert claims["nonce"] == real_token.nonce


def test_id_token_flipped_signature_byte_rejected(real_token: RealToken) -> None:
    header, payload, signature = _segments(real_token.token["id_token"])
    raw = bytearray(_b64decode(signature))
    raw[10] ^= 0x01
    tampered = ".".join([header, payload, _b64encode(bytes(raw))])
    with pytest.raises(OidcIdTokenInvalid) as caught:
        _validate(real_token, id_token=tampered)
    assert caught.value.code == "oidc_id_token_invalid"


def test_id_token_edited_groups_rejected(real_token: RealToken) -> None:
    header, payload, signature = _segments(real_token.token["id_token"])
    edited = _b64decode(payload).replace(b'"kp-it-admins"', b'"kp-auditors"')
    tampered = ".".join([header, _b64encode(edited), signature])
    with pytest.raises(OidcIdTokenInvalid):
        _validate(real_token, id_token=tampered)


def test_id_token_wrong_nonce_rejected(real_token: RealToken) -> None:
    with pytest.raises(OidcIdTokenInvalid) as caught:
        _validate(real_token, nonce="another-sign-in")
    assert "nonce" in caught.value.detail


def test_id_token_other_audience_rejected(real_token: RealToken) -> None:
    other_client = _config_with(real_token.config, client_id="keyplane-someone-else")
    with pytest.raises(OidcIdTokenInvalid):
        _validate(real_token, config=other_client)


def test_id_token_wrong_issuer_rejected(real_token: RealToken) -> None:
    other_issuer = _config_with(real_token.config, issuer="https://idp.other.example")
    with pytest.raises(OidcIssuerMismatch) as caught:
        _validate(real_token, config=other_issuer)
    assert caught.value.code == "oidc_issuer_mismatch"


def test_id_token_foreign_key_same_kid_rejected(real_token: RealToken) -> None:
    original = jwt.decode(
        real_token.token["id_token"],
        RSAKey.import_key(
            requests.get(real_token.metadata["jwks_uri"], timeout=10).json()["keys"][0]
        ),
    )
    forged = jwt.encode(
        {"alg": "RS256", "kid": original.header["kid"]},
        original.claims,
        RSAKey.generate_key(2048),
    )
    with pytest.raises(OidcIdTokenInvalid):
        _validate(real_token, id_token=forged)


def test_id_token_hmac_with_client_secret_rejected(real_token: RealToken) -> None:
    claims = dict(_validate(real_token))
    forged = jwt.encode({"alg": "HS256"}, claims, OctKey.import_key(CLIENT_SECRET.encode()))
    with pytest.raises(OidcIdTokenInvalid):
        _validate(real_token, id_token=forged)


def test_id_token_other_access_token_rejected(real_token: RealToken) -> None:
    with pytest.raises(OidcIdTokenInvalid):
        _validate(real_token, access_token="another-access-token")


def _save_device_config(real: RealToken, device_client_ids: list[str]) -> None:
    from django.db import connection

    from identity.platform.services import oidc_config_save

    config = TenantOidcConfig.objects.filter(tenant=real.config.tenant).first()
    if config is None:
        config = TenantOidcConfig(tenant=real.config.tenant)
    for name in ("issuer", "client_id", "allowed_email_domains"):
        setattr(config, name, getattr(real.config, name))
    config.enabled = True
    config.device_client_ids = device_client_ids
    oidc_config_save(config=config, client_secret=CLIENT_SECRET, acting_user=None)
    connection.set_tenant(config.tenant)


def test_device_user_bound_from_id_token(real_token: RealToken, db: None) -> None:
    from identity.device_users import device_user_from_id_token
    from identity.models import FederatedIdentity

    _save_device_config(real_token, [CLIENT_ID])
    user = device_user_from_id_token(id_token=real_token.token["id_token"])
    assert user.email == real_token.email
    assert not user.is_staff
    assert FederatedIdentity.objects.get(user=user).issuer == real_token.config.issuer
    again = device_user_from_id_token(id_token=real_token.token["id_token"])
    assert again.pk == user.pk


def test_device_user_other_audience_rejected(real_token: RealToken, db: None) -> None:
    from identity.device_users import device_user_from_id_token

    _save_device_config(real_token, ["keyplane-desktop"])
    with pytest.raises(OidcIdTokenInvalid):
        device_user_from_id_token(id_token=real_token.token["id_token"])


def test_device_user_stale_token_rejected(
    real_token: RealToken, db: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    from identity import device_users

    _save_device_config(real_token, [CLIENT_ID])
    monkeypatch.setattr(device_users, "MAX_ID_TOKEN_AGE_SECONDS", -1)
    with pytest.raises(OidcIdTokenInvalid) as caught:
        device_users.device_user_from_id_token(id_token=real_token.token["id_token"])
    assert "issued" in caught.value.detail


def test_device_user_without_desktop_client_rejected(real_token: RealToken, db: None) -> None:
    from identity.device_users import device_user_from_id_token
    from identity.exceptions import OidcNotConfigured

    _save_device_config(real_token, [])
    with pytest.raises(OidcNotConfigured):
        device_user_from_id_token(id_token=real_token.token["id_token"])
