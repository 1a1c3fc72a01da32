"""OpenID Connect relying party for one tenant's provider.

The protocol work is done by libraries: Authlib builds the authorization
request (authorization code flow with PKCE S256, `state` and `nonce`) and
sends the token request; joserfc verifies the ID token's signature against
the provider's JWKS; Authlib's `CodeIDToken` checks `iss`, `aud`, `azp`,
`exp`, `iat`, `nonce` and `at_hash`. This module feeds them the tenant's
settings (identity/platform/models.py) and caches the provider's discovery
document and key set.

Discovery follows OpenID Connect Discovery 1.0: the document is fetched from
`<issuer>/.well-known/openid-configuration`, and its `issuer` must equal the
configured issuer exactly, or every later check would trust the wrong party.
"""

import functools
import hashlib
import json
import logging
from typing import Any

import requests
from authlib.integrations.requests_client import OAuth2Session
from authlib.oauth2.rfc6749.errors import OAuth2Error
from authlib.oidc.core import CodeIDToken
from django.conf import settings
from django.core.cache import cache
from joserfc import jwt
from joserfc.errors import InvalidKeyIdError, JoseError
from joserfc.jwk import KeySet
from joserfc.jws import JWSRegistry

from identity.exceptions import (
    OidcClientSecretUnreadable,
    OidcDiscoveryFailed,
    OidcIdTokenInvalid,
    OidcIssuerMismatch,
    OidcTokenRequestFailed,
)
from identity.platform.models import TenantOidcConfig
from licensing.keystore import KeyStoreError

logger = logging.getLogger(__name__)

HTTP_TIMEOUT_SECONDS = 10
# Seconds of clock difference tolerated on `exp` and `iat`.
CLOCK_LEEWAY_SECONDS = 60
_REQUIRED_METADATA = ("authorization_endpoint", "token_endpoint", "jwks_uri")
# Symmetric algorithms would verify with the client secret and `none` with
# nothing; ID tokens are accepted only with the provider's public keys.
_REJECTED_ALGORITHMS = frozenset({"none", "HS256", "HS384", "HS512"})


def _cache_key(kind: str, issuer: str) -> str:
    return f"identity:oidc:{kind}:{hashlib.sha256(issuer.encode()).hexdigest()[:32]}"


def _get_json(url: str, what: str) -> dict[str, Any]:
    try:
        response = requests.get(url, timeout=HTTP_TIMEOUT_SECONDS)
        response.raise_for_status()
        document = response.json()
    except (requests.RequestException, ValueError) as error:
        logger.warning("identity.oidc.fetch_failed what=%s url=%s error=%s", what, url, error)
        raise OidcDiscoveryFailed(
            f"The provider's {what} at {url} could not be read: {error}."
        ) from error
    if not isinstance(document, dict):
        raise OidcDiscoveryFailed(f"The provider's {what} at {url} is not a JSON object.")
    return document


def discovery_fetch(config: TenantOidcConfig) -> dict[str, Any]:
    """Return the provider's discovery document, from the cache when fresh.

    Raises OidcDiscoveryFailed when it cannot be read or lacks an endpoint,
    and OidcIssuerMismatch when it names another issuer than configured.
    """
    key = _cache_key("metadata", config.issuer)
    cached = cache.get(key)
    if cached is not None:
        return dict(cached)

    url = f"{config.issuer}/.well-known/openid-configuration"
    metadata = _get_json(url, "discovery document")
    if metadata.get("issuer") != config.issuer:
        raise OidcIssuerMismatch(
            f"The discovery document at {url} names the issuer {metadata.get('issuer')!r}, "
            f"but this tenant is configured for {config.issuer!r}."
        )
    missing = [field for field in _REQUIRED_METADATA if not metadata.get(field)]
    if missing:
        raise OidcDiscoveryFailed(f"The discovery document at {url} lacks {', '.join(missing)}.")
    cache.set(key, metadata, settings.KEYPLANE_OIDC_METADATA_CACHE_SECONDS)
    return metadata


def jwks_fetch(metadata: dict[str, Any], *, refresh: bool = False) -> dict[str, Any]:
    """Return the provider's JWKS, from the cache unless `refresh` (after a key rotation)."""
    key = _cache_key("jwks", str(metadata["issuer"]))
    if not refresh:
        cached = cache.get(key)
        if cached is not None:
            return dict(cached)
    jwks = _get_json(str(metadata["jwks_uri"]), "key set")
    if not isinstance(jwks.get("keys"), list):
        raise OidcDiscoveryFailed(f"The key set at {metadata['jwks_uri']} has no keys list.")
    cache.set(key, jwks, settings.KEYPLANE_OIDC_METADATA_CACHE_SECONDS)
    return jwks


def _session(config: TenantOidcConfig, redirect_uri: str) -> OAuth2Session:
    try:
        secret = config.client_secret()
    except KeyStoreError as error:
        logger.error("identity.oidc.client_secret_unreadable tenant=%s", config.tenant_id)
        raise OidcClientSecretUnreadable(
            f"The client secret stored for tenant {config.tenant_id} cannot be decrypted."
        ) from error
    return OAuth2Session(
        client_id=config.client_id,
        client_secret=secret or None,
        scope=config.scopes,
        redirect_uri=redirect_uri,
        code_challenge_method="S256",
        token_endpoint_auth_method="client_secret_basic" if secret else "none",
    )


def authorization_url(
    *,
    config: TenantOidcConfig,
    metadata: dict[str, Any],
    redirect_uri: str,
    state: str,
    nonce: str,
    code_verifier: str,
) -> str:
    """Return the provider URL that starts the authorization code flow with PKCE (S256)."""
    with _session(config, redirect_uri) as session:
        url, _ = session.create_authorization_url(
            metadata["authorization_endpoint"],
            state=state,
            nonce=nonce,
            code_verifier=code_verifier,
        )
    return str(url)


def code_exchange(
    *,
    config: TenantOidcConfig,
    metadata: dict[str, Any],
    redirect_uri: str,
    code: str,
    code_verifier: str,
) -> dict[str, Any]:
    """Exchange the authorization code at the token endpoint; return the token response."""
    try:
        with _session(config, redirect_uri) as session:
            token = session.fetch_token(
                metadata["token_endpoint"],
                grant_type="authorization_code",
                code=code,
                code_verifier=code_verifier,
                timeout=HTTP_TIMEOUT_SECONDS,
            )
    except (OAuth2Error, requests.RequestException, ValueError) as error:
        logger.warning(
            "identity.oidc.token_request_failed issuer=%s error=%s", config.issuer, error
        )
        raise OidcTokenRequestFailed(
            f"The token endpoint {metadata['token_endpoint']} rejected the code: {error}."
        ) from error
    if not token.get("id_token"):
        raise OidcTokenRequestFailed(
            "The token response has no id_token; request the openid scope.",
        )
    return dict(token)


@functools.lru_cache(maxsize=64)
def _key_set(jwks_json: str) -> KeySet:
    # Importing RSA keys costs about as much as one signature check, and the
    # same few key sets serve every sign-in, so each process keeps them parsed.
    return KeySet.import_key_set(json.loads(jwks_json))


def _decode(id_token: str, jwks: dict[str, Any], algorithms: list[str]) -> Any:
    return jwt.decode(
        id_token,
        _key_set(json.dumps(jwks, sort_keys=True)),
        registry=JWSRegistry(algorithms=algorithms),
    )


def id_token_validate(
    *,
    config: TenantOidcConfig,
    metadata: dict[str, Any],
    id_token: str,
    nonce: str,
    access_token: str | None = None,
    jwks: dict[str, Any] | None = None,
    audience: str | None = None,
) -> dict[str, Any]:
    """Verify an ID token for this tenant and return its claims.

    1. Verify the JWS signature with the provider's keys (fetched again once
       when the token names an unknown `kid`, for a key rotation).
    2. Reject a token whose `iss` is not the configured issuer.
    3. Check `aud` contains `audience` (the admin client id by default),
       `azp`, `exp`, `iat`, the `nonce` (skipped when empty) and `at_hash`
       against the access token.

    Raises OidcIssuerMismatch for step 2 and OidcIdTokenInvalid otherwise.
    """
    supported = metadata.get("id_token_signing_alg_values_supported") or ["RS256"]
    algorithms = [alg for alg in supported if alg not in _REJECTED_ALGORITHMS]
    key_set = jwks if jwks is not None else jwks_fetch(metadata)
    try:
        try:
            token = _decode(id_token, key_set, algorithms)
        except InvalidKeyIdError:
            if jwks is not None:
                raise
            token = _decode(id_token, jwks_fetch(metadata, refresh=True), algorithms)
    except (JoseError, ValueError) as error:
        raise OidcIdTokenInvalid(
            f"The ID token failed signature verification ({error.__class__.__name__})."
        ) from error

    claims = dict(token.claims)
    if claims.get("iss") != config.issuer:
        raise OidcIssuerMismatch(
            f"The ID token was issued by {claims.get('iss')!r}, "
            f"but this tenant trusts {config.issuer!r} only."
        )
    client_id = audience or config.client_id
    params: dict[str, Any] = {"nonce": nonce, "client_id": client_id}
    if access_token:
        params["access_token"] = access_token
    options = {
        "iss": {"essential": True, "value": config.issuer},
        "aud": {"essential": True, "value": client_id},
    }
    checked = CodeIDToken(claims, token.header, options, params)
    try:
        checked.validate(leeway=CLOCK_LEEWAY_SECONDS)
    except (JoseError, ValueError) as error:
        raise OidcIdTokenInvalid(f"The ID token's claims are invalid: {error}.") from error
    return claims
