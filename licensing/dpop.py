"""Device proofs of possession, after DPoP (RFC 9449).

A proof is a compact JWS with header `{"alg": "EdDSA", "typ": "dpop+jwt",
"jwk": <the device's Ed25519 public key>}` and claims `htm` (HTTP method),
`htu` (the request URL without query or fragment), `iat` (seconds) and a
random `jti`. The server accepts a proof only if:

- the signature verifies with the key in its own `jwk` header, and that key
  is an Ed25519 public key;
- `htm` and `htu` name this request (scheme, host and path compared);
- `iat` lies within PROOF_WINDOW_SECONDS of the server clock, either way;
- its `jti` was not used with the same key in this tenant within twice that
  window (stored in Redis with SET NX, so the check covers all processes).

The thumbprint of the proof key identifies the device.
"""

import time
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from django.http import HttpRequest

from licensing.exceptions import ProofInvalid, ProofMissing, ProofReplayed, ProofStale
from licensing.jws import (
    JWSError,
    jwk_thumbprint,
    jws_parse_header,
    jws_verify,
    public_key_from_jwk,
)
from licensing.ratelimit import rate_limit_queue
from licensing.redis_store import redis_client, tenant_key

PROOF_TYP = "dpop+jwt"
PROOF_WINDOW_SECONDS = 60
MAX_JTI_LENGTH = 128


@dataclass(frozen=True)
class DeviceProof:
    jwk: dict[str, str]
    thumbprint: str
    jti: str


def _url_without_query(url: str) -> tuple[str, str, str]:
    parts = urlsplit(url)
    return parts.scheme.lower(), parts.netloc.lower(), parts.path


def proof_verify(request: HttpRequest, *, rate_scope: str | None = None) -> DeviceProof:
    """Verify the request's `DPoP` header; return the proven device key.

    With `rate_scope`, also count the request against that rate limit for
    the proven key, in the same Redis round trip as the replay check.
    """
    token = request.headers.get("DPoP")
    if not token:
        raise ProofMissing("The request has no `DPoP` header.")
    try:
        header = jws_parse_header(token)
        if header.get("typ") != PROOF_TYP:
            raise ProofInvalid(
                f"The proof's `typ` must be {PROOF_TYP!r}, not {header.get('typ')!r}."
            )
        jwk = header.get("jwk")
        public_key = public_key_from_jwk(jwk)
        assert isinstance(jwk, dict)  # public_key_from_jwk rejects anything else
        _, claims = jws_verify(token, typ=PROOF_TYP, public_key=public_key)
    except JWSError as error:
        raise ProofInvalid(f"The device proof is invalid: {error}") from error

    _check_claims(request, claims)
    thumbprint = jwk_thumbprint(jwk)
    jti = claims["jti"]
    pipeline = redis_client().pipeline(transaction=True)
    pipeline.set(tenant_key("dpop", thumbprint, jti), b"1", nx=True, ex=2 * PROOF_WINDOW_SECONDS)
    rate_check = None
    if rate_scope is not None:
        rate_check = rate_limit_queue(pipeline, scope=rate_scope, identity=thumbprint)
    results = pipeline.execute()
    if not results[0]:
        raise ProofReplayed(f"The proof with jti {jti!r} was already used.")
    if rate_check is not None:
        rate_check(results[1])
    public_jwk = {"kty": jwk["kty"], "crv": jwk["crv"], "x": jwk["x"]}
    return DeviceProof(jwk=public_jwk, thumbprint=thumbprint, jti=jti)


def _check_claims(request: HttpRequest, claims: dict[str, Any]) -> None:
    htm, htu, iat, jti = (claims.get(name) for name in ("htm", "htu", "iat", "jti"))
    if not isinstance(jti, str) or not 8 <= len(jti) <= MAX_JTI_LENGTH:
        raise ProofInvalid(
            f"The proof's `jti` must be a string of 8 to {MAX_JTI_LENGTH} characters."
        )
    if htm != request.method:
        raise ProofInvalid(f"The proof is for method {htm!r}, not {request.method!r}.")
    if not isinstance(htu, str):
        raise ProofInvalid("The proof has no `htu` string.")
    expected = request.build_absolute_uri(request.path)
    if _url_without_query(htu) != _url_without_query(expected):
        raise ProofInvalid(f"The proof is for URL {htu!r}, not {expected!r}.")
    if not isinstance(iat, int) or isinstance(iat, bool):
        raise ProofInvalid("The proof's `iat` must be an integer number of seconds.")
    skew = int(time.time()) - iat
    if abs(skew) > PROOF_WINDOW_SECONDS:
        raise ProofStale(
            f"The proof was created {skew} s from the server time; at most "
            f"{PROOF_WINDOW_SECONDS} s either way is accepted."
        )
