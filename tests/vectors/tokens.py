"""Shared test vectors: valid and hostile signed objects, built at test time.

Keys are generated on every call to `make_keys()`; no private key is ever
committed. Server and client tests both load this module, so both sides
agree on the formats and on which hostile inputs must be rejected.
`corpus.json` names every hostile case and the reason code a verifier must
report; `hostile_licenses()` builds exactly those cases.
"""

import base64
import hashlib
import hmac
import json
import secrets
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

CORPUS_PATH = Path(__file__).with_name("corpus.json")
PRODUCT = "studio"
TENANT = "alpha"
OTHER_TENANT = "beta"
DAY = 24 * 3600


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def raw_public(key: Ed25519PrivateKey) -> bytes:
    return key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)


def jwk_of(key: Ed25519PrivateKey, kid: str | None = None) -> dict[str, str]:
    jwk = {"kty": "OKP", "crv": "Ed25519", "x": b64url(raw_public(key))}
    if kid:
        jwk["kid"] = kid
    return jwk


def thumbprint(key: Ed25519PrivateKey) -> str:
    jwk = jwk_of(key)
    canonical = json.dumps(
        {"crv": jwk["crv"], "kty": jwk["kty"], "x": jwk["x"]}, separators=(",", ":")
    )
    return b64url(hashlib.sha256(canonical.encode()).digest())


def encode_segment(value: dict[str, Any]) -> str:
    return b64url(json.dumps(value, separators=(",", ":")).encode())


def sign(key: Ed25519PrivateKey, header: dict[str, Any], claims: dict[str, Any]) -> str:
    signing_input = f"{encode_segment(header)}.{encode_segment(claims)}"
    return f"{signing_input}.{b64url(key.sign(signing_input.encode()))}"


@dataclass
class VectorKeys:
    """A root key, a tenant key certified by it, another tenant's key and a device key."""

    root: Ed25519PrivateKey
    root_kid: str
    tenant_key: Ed25519PrivateKey
    tenant_kid: str
    other_tenant_key: Ed25519PrivateKey
    other_tenant_kid: str
    device: Ed25519PrivateKey
    attacker: Ed25519PrivateKey
    now: int

    @property
    def root_jwks(self) -> dict[str, Any]:
        return {"keys": [jwk_of(self.root, self.root_kid)]}

    @property
    def device_thumbprint(self) -> str:
        return thumbprint(self.device)

    def key_certificate(self, *, tenant: str = TENANT, key: Ed25519PrivateKey | None = None,
                        kid: str | None = None, signer: Ed25519PrivateKey | None = None,
                        **overrides: Any) -> str:  # fmt: skip
        key = key or self.tenant_key
        kid = kid or self.tenant_kid
        claims: dict[str, Any] = {
            "iss": "http://127.0.0.1",
            "sub": kid,
            "tid": tenant,
            "jwk": jwk_of(key, kid),
            "iat": self.now - 30 * DAY,
            "nbf": self.now - 30 * DAY,
            "exp": self.now + 370 * DAY,
        }
        claims.update(overrides)
        header = {"alg": "EdDSA", "typ": "kp-key-cert+jwt", "kid": self.root_kid}
        return sign(signer or self.root, header, claims)

    def other_tenant_certificate(self) -> str:
        return self.key_certificate(
            tenant=OTHER_TENANT, key=self.other_tenant_key, kid=self.other_tenant_kid
        )

    def tenant_header(self, typ: str) -> dict[str, Any]:
        return {"alg": "EdDSA", "typ": typ, "kid": self.tenant_kid}

    def license_claims(self, **overrides: Any) -> dict[str, Any]:
        claims: dict[str, Any] = {
            "iss": f"http://127.0.0.1/t/{TENANT}",
            "aud": PRODUCT,
            "sub": "17",
            "tid": TENANT,
            "did": "42",
            "cnf": {"jkt": self.device_thumbprint},
            "ent": ["export", "render"],
            "iat": self.now,
            "nbf": self.now,
            "exp": self.now + DAY,
            "term_end": self.now + 30 * DAY,
            "grace_until": self.now + 44 * DAY,
            "offline_until": self.now + 7 * DAY,
            "mver": 3,
            "jti": secrets.token_urlsafe(12),
        }
        claims.update(overrides)
        return {k: v for k, v in claims.items() if v is not None}

    def license(self, **overrides: Any) -> str:
        return sign(
            self.tenant_key, self.tenant_header("kp-license+jwt"), self.license_claims(**overrides)
        )

    def manifest_claims(self, **overrides: Any) -> dict[str, Any]:
        claims: dict[str, Any] = {
            "iss": f"http://127.0.0.1/t/{TENANT}",
            "tid": TENANT,
            "aud": PRODUCT,
            "mver": 3,
            "iat": self.now,
            "exp": self.now + 7 * DAY,
            "features": ["export", "render"],
            "unlicensed_features": ["view"],
            "limits": {"devices_per_user": 3},
            "regions": [],
            "compliance": {},
            "key_certificates": [self.key_certificate()],
            "revoked": {"grants": [], "devices": [], "tokens": []},
            "overlay": None,
        }
        claims.update(overrides)
        return claims

    def manifest(self, **overrides: Any) -> str:
        return sign(
            self.tenant_key,
            self.tenant_header("kp-manifest+jwt"),
            self.manifest_claims(**overrides),
        )

    def overlay(
        self, *, release: int = 1, config: dict[str, Any] | None = None, **overrides: Any
    ) -> str:
        claims: dict[str, Any] = {
            "tid": TENANT,
            "aud": PRODUCT,
            "rel": release,
            "iat": self.now,
            "cfg": config if config is not None else {"theme": "dark", "autosave_minutes": 5},
        }
        claims.update(overrides)
        return sign(self.tenant_key, self.tenant_header("kp-overlay+jwt"), claims)


def make_keys(now: int = 1_800_000_000) -> VectorKeys:
    return VectorKeys(
        root=Ed25519PrivateKey.generate(),
        root_kid="root-" + secrets.token_hex(4),
        tenant_key=Ed25519PrivateKey.generate(),
        tenant_kid="alpha-" + secrets.token_hex(4),
        other_tenant_key=Ed25519PrivateKey.generate(),
        other_tenant_kid="beta-" + secrets.token_hex(4),
        device=Ed25519PrivateKey.generate(),
        attacker=Ed25519PrivateKey.generate(),
        now=now,
    )


def _hs256(secret: bytes, header: dict[str, Any], claims: dict[str, Any]) -> str:
    signing_input = f"{encode_segment(header)}.{encode_segment(claims)}"
    mac = hmac.new(secret, signing_input.encode(), hashlib.sha256).digest()
    return f"{signing_input}.{b64url(mac)}"


def _flip_payload_byte(token: str) -> str:
    header, payload, signature = token.split(".")
    raw = bytearray(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    index = raw.index(b'"export"') + 1  # keep the JSON valid: "export" becomes "fxport"
    raw[index] ^= 0x03
    return f"{header}.{b64url(bytes(raw))}.{signature}"


def _flip_signature_byte(token: str) -> str:
    header, payload, signature = token.split(".")
    raw = bytearray(base64.urlsafe_b64decode(signature + "=="))
    raw[10] ^= 0x01
    return f"{header}.{payload}.{b64url(bytes(raw))}"


def hostile_licenses(keys: VectorKeys) -> dict[str, str]:
    """Every hostile license token of `corpus.json`, by case name."""
    claims = keys.license_claims()
    header = keys.tenant_header("kp-license+jwt")
    valid = keys.license()
    attacker_jwk = jwk_of(keys.attacker, "attacker")
    cases: dict[str, str] = {
        "alg_none": f"{encode_segment({**header, 'alg': 'none'})}.{encode_segment(claims)}.",
        "alg_hs256_public_key_raw": _hs256(
            raw_public(keys.tenant_key), {**header, "alg": "HS256"}, claims
        ),
        "alg_hs256_public_key_jwk": _hs256(
            json.dumps(jwk_of(keys.tenant_key, keys.tenant_kid)).encode(),
            {**header, "alg": "HS256"},
            claims,
        ),
        "alg_lowercase": sign(keys.tenant_key, {**header, "alg": "eddsa"}, claims),
        "alg_ed25519": sign(keys.tenant_key, {**header, "alg": "Ed25519"}, claims),
        "alg_missing": sign(keys.tenant_key, {"typ": header["typ"], "kid": header["kid"]}, claims),
        "embedded_jwk": sign(
            keys.attacker, {**header, "kid": "attacker", "jwk": attacker_jwk}, claims
        ),
        "embedded_jwk_known_kid": sign(keys.attacker, {**header, "jwk": attacker_jwk}, claims),
        "header_jku": sign(
            keys.attacker, {**header, "jku": "https://attacker.invalid/jwks.json"}, claims
        ),
        "header_x5u": sign(
            keys.attacker, {**header, "x5u": "https://attacker.invalid/cert.pem"}, claims
        ),
        "header_x5c": sign(keys.attacker, {**header, "x5c": ["MIIB"]}, claims),
        "header_crit": sign(keys.tenant_key, {**header, "crit": ["exp"]}, claims),
        "unknown_kid": sign(keys.attacker, {**header, "kid": "attacker"}, claims),
        "known_kid_wrong_key": sign(keys.attacker, header, claims),
        "other_tenant_key": sign(
            keys.other_tenant_key, {**header, "kid": keys.other_tenant_kid}, claims
        ),
        "typ_manifest": sign(keys.tenant_key, keys.tenant_header("kp-manifest+jwt"), claims),
        "typ_key_cert": sign(keys.tenant_key, keys.tenant_header("kp-key-cert+jwt"), claims),
        "typ_missing": sign(keys.tenant_key, {"alg": "EdDSA", "kid": keys.tenant_kid}, claims),
        "kid_missing": sign(keys.tenant_key, {"alg": "EdDSA", "typ": "kp-license+jwt"}, claims),
        "wrong_audience": keys.license(aud="other-product"),
        "wrong_tenant": keys.license(tid=OTHER_TENANT),
        "wrong_device": keys.license(did="43"),
        "wrong_key_thumbprint": keys.license(cnf={"jkt": thumbprint(keys.attacker)}),
        "exp_as_string": keys.license(exp=str(keys.now + DAY)),
        "time_claims_out_of_order": keys.license(exp=keys.now + 50 * DAY),
        "payload_byte_changed": _flip_payload_byte(valid),
        "signature_byte_changed": _flip_signature_byte(valid),
        "signature_truncated": valid[:-10],
        "signature_empty": valid.rsplit(".", 1)[0] + ".",
        "truncated_to_header": valid.split(".", 1)[0],
        "truncated_mid_payload": valid[: len(valid) // 2],
        "four_segments": valid + ".AAAA",
        "garbage": "not a token at all",
        "garbage_base64": "####.$$$$.%%%%",
        "empty": "",
        "padded_base64": valid.split(".")[0] + "==." + ".".join(valid.split(".")[1:]),
        "header_not_object": f"{b64url(b'[1,2]')}.{encode_segment(claims)}.{valid.split('.')[2]}",
        "duplicate_claim": _duplicate_claim_token(keys, header, claims),
        "exp_infinity": _raw_claims_token(keys, header, claims, "exp", "Infinity"),
        "exp_overflow": _raw_claims_token(keys, header, claims, "exp", "1e400"),
        "exp_negative": keys.license(exp=-10),
        "signature_noncanonical_base64": _noncanonical_signature(valid),
    }
    for name in ("iss", "aud", "sub", "tid", "did", "cnf", "ent", "iat", "nbf", "exp",
                 "grace_until", "offline_until", "mver", "jti"):  # fmt: skip
        stripped = {k: v for k, v in claims.items() if k != name}
        cases[f"missing_{name}"] = sign(keys.tenant_key, header, stripped)
    return cases


def _duplicate_claim_token(keys: VectorKeys, header: dict[str, Any], claims: dict[str, Any]) -> str:
    # Two "tid" members: a parser that keeps the last one would see "beta".
    body = json.dumps(claims, separators=(",", ":"))[:-1] + ',"tid":"beta"}'
    signing_input = f"{encode_segment(header)}.{b64url(body.encode())}"
    return f"{signing_input}.{b64url(keys.tenant_key.sign(signing_input.encode()))}"


def _raw_claims_token(
    keys: VectorKeys, header: dict[str, Any], claims: dict[str, Any], name: str, literal: str
) -> str:
    # Writes `literal` verbatim as the claim's JSON value, for values json.dumps cannot produce.
    body = json.dumps({k: v for k, v in claims.items() if k != name}, separators=(",", ":"))
    body = body[:-1] + f',"{name}":{literal}}}'
    signing_input = f"{encode_segment(header)}.{b64url(body.encode())}"
    return f"{signing_input}.{b64url(keys.tenant_key.sign(signing_input.encode()))}"


def _noncanonical_signature(token: str) -> str:
    # 64 bytes encode to 86 characters whose last one carries 4 unused bits; set one of them.
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
    head, last = token[:-1], token[-1]
    return head + alphabet[alphabet.index(last) | 1]


def load_corpus() -> dict[str, dict[str, str]]:
    """The hostile corpus description: case name to {"reason", "description"}."""
    return json.loads(CORPUS_PATH.read_text())["licenses"]
