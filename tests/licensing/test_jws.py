import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from licensing.jws import (
    JWKError,
    JWSError,
    b64url_encode,
    jwk_thumbprint,
    jws_sign,
    jws_verify,
    public_jwk,
    public_key_from_jwk,
)


@pytest.fixture
def key() -> Ed25519PrivateKey:
    return Ed25519PrivateKey.generate()


def test_jws_sign_verifies_with_pyjwt(key: Ed25519PrivateKey) -> None:
    token = jws_sign({"sub": "1"}, typ="kp-license+jwt", kid="k1", private_key=key)
    claims = jwt.decode(token, key.public_key(), algorithms=["EdDSA"])
    assert claims == {"sub": "1"}
    assert jwt.get_unverified_header(token) == {
        "alg": "EdDSA",
        "typ": "kp-license+jwt",
        "kid": "k1",
    }


def test_jws_verify_round_trip(key: Ed25519PrivateKey) -> None:
    token = jws_sign({"a": 1}, typ="t+jwt", kid="k", private_key=key)
    header, claims = jws_verify(token, typ="t+jwt", public_key=key.public_key())
    assert claims == {"a": 1}
    assert header["kid"] == "k"


def test_jws_verify_wrong_typ_rejected(key: Ed25519PrivateKey) -> None:
    token = jws_sign({"a": 1}, typ="kp-manifest+jwt", kid="k", private_key=key)
    with pytest.raises(JWSError, match="typ"):
        jws_verify(token, typ="kp-license+jwt", public_key=key.public_key())


def test_jws_verify_wrong_key_rejected(key: Ed25519PrivateKey) -> None:
    token = jws_sign({"a": 1}, typ="t", kid="k", private_key=key)
    with pytest.raises(JWSError, match="signature"):
        jws_verify(token, typ="t", public_key=Ed25519PrivateKey.generate().public_key())


def test_jws_verify_alg_none_rejected(key: Ed25519PrivateKey) -> None:
    token = jws_sign({"a": 1}, typ="t", kid="k", private_key=key)
    forged = b64url_encode(b'{"alg":"none","typ":"t"}') + "." + token.split(".")[1] + "."
    with pytest.raises(JWSError, match="alg"):
        jws_verify(forged, typ="t", public_key=key.public_key())


def test_jws_verify_tampered_payload_rejected(key: Ed25519PrivateKey) -> None:
    header, _, signature = jws_sign({"a": 1}, typ="t", kid="k", private_key=key).split(".")
    payload = b64url_encode(b'{"a":2}')
    forged = f"{header}.{payload}.{signature}"
    with pytest.raises(JWSError):
        jws_verify(forged, typ="t", public_key=key.public_key())


@pytest.mark.parametrize("token", ["", "a.b", "a.b.c.d", 42, "!!.??.**"])
def test_jws_verify_malformed_rejected(key: Ed25519PrivateKey, token: object) -> None:
    with pytest.raises(JWSError):
        jws_verify(token, typ="t", public_key=key.public_key())


def test_jws_verify_non_ascii_payload_rejected(key: Ed25519PrivateKey) -> None:
    header, _, signature = jws_sign({"a": 1}, typ="t", kid="k", private_key=key).split(".")
    with pytest.raises(JWSError, match="ASCII"):
        jws_verify(f"{header}.\u00e9.{signature}", typ="t", public_key=key.public_key())


def test_jwk_thumbprint_matches_rfc8037_example() -> None:
    # RFC 8037, appendix A.3: the thumbprint of the example Ed25519 public key.
    jwk = {"kty": "OKP", "crv": "Ed25519", "x": "11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"}
    assert jwk_thumbprint(jwk) == "kPrK_qmxVWaYVA9wwBF6Iuo3vVzz7TxHCTwXBygrS4k"


@pytest.mark.parametrize(
    "jwk",
    [
        {"kty": "EC", "crv": "P-256", "x": "AAAA", "y": "AAAA"},
        {"kty": "OKP", "crv": "X25519", "x": "11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"},
        {"kty": "OKP", "crv": "Ed25519", "x": "AAAA"},
        {"kty": "OKP", "crv": "Ed25519"},
        "not-a-jwk",
    ],
)
def test_public_key_from_jwk_rejects_other_keys(jwk: object) -> None:
    with pytest.raises(JWKError):
        public_key_from_jwk(jwk)


def test_public_key_from_jwk_rejects_private_member(key: Ed25519PrivateKey) -> None:
    jwk = {**public_jwk(key.public_key()), "d": "secret"}
    with pytest.raises(JWKError, match="private"):
        public_key_from_jwk(jwk)
