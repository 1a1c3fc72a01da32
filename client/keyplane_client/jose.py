"""The small, strict subset of JOSE that Keyplane uses.

Only JWS compact serialization (RFC 7515) with `alg` `EdDSA` over Ed25519
keys (RFC 8037) is supported. The verifier never reads `alg` to choose an
algorithm: `EdDSA` is the only value accepted, and every other value, `none`
and the HMAC family included, is rejected before any key is touched.
Headers that carry or point to a key (`jwk`, `jku`, `x5u`, `x5c`, `x5t`,
`x5t#S256`) or that declare critical extensions (`crit`) are rejected,
because a verifier must use only keys derived from the pinned root keys.

The signature is checked over the exact received `header.payload` bytes.
The decoded JSON is never re-serialized for verification.
"""

import base64
import binascii
import hashlib
import json
import re
from typing import Any, NamedTuple

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from keyplane_client.errors import VerificationError

ALGORITHM = "EdDSA"
FORBIDDEN_HEADERS = frozenset({"jwk", "jku", "x5u", "x5c", "x5t", "x5t#S256", "crit"})

# Larger than any token, manifest or overlay bundle the server produces, and
# small enough that parsing hostile input stays cheap.
MAX_COMPACT_LENGTH = 1024 * 1024

_B64URL = re.compile(r"^[A-Za-z0-9_-]*$")
_B64URL_ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
_TO_STANDARD = str.maketrans("-_", "+/")


def b64url_encode(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def b64url_decode(text: str) -> bytes:
    """Decode unpadded base64url, rejecting padding and any other alphabet."""
    if not _B64URL.match(text) or len(text) % 4 == 1:
        raise VerificationError(
            "invalid base64url segment; expected unpadded base64url text",
            reason="token_malformed",
        )
    try:
        # The regular expression above already limited the alphabet, so the
        # standard decoder can run on the translated text directly.
        data = binascii.a2b_base64(text.translate(_TO_STANDARD) + "=" * (-len(text) % 4))
    except (binascii.Error, ValueError) as exc:
        raise VerificationError(
            f"invalid base64url segment: {exc}", reason="token_malformed"
        ) from exc
    # Reject encodings with non-zero trailing bits, so each value has one spelling:
    # a final group of 2 characters leaves 4 unused bits, one of 3 leaves 2.
    unused_bits = {2: 0b1111, 3: 0b11}.get(len(text) % 4, 0)
    if unused_bits and _B64URL_ALPHABET.index(text[-1]) & unused_bits:
        raise VerificationError(
            "non-canonical base64url segment; re-encode it without trailing bits",
            reason="token_malformed",
        )
    return data


def _reject_duplicate_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    result: dict[str, Any] = {}
    for key, value in pairs:
        if key in result:
            raise VerificationError(
                f"duplicate JSON member {key!r}; a signed object must name each member once",
                reason="token_malformed",
            )
        result[key] = value
    return result


def _reject_constant(name: str) -> Any:
    raise VerificationError(f"JSON constant {name} is not accepted", reason="token_malformed")


def _decode_json_object(segment: bytes, part: str) -> dict[str, Any]:
    try:
        value = json.loads(
            segment.decode("utf-8"),
            object_pairs_hook=_reject_duplicate_keys,
            parse_constant=_reject_constant,
        )
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError) as exc:
        raise VerificationError(
            f"the {part} is not UTF-8 JSON: {exc}", reason="token_malformed"
        ) from exc
    if not isinstance(value, dict):
        raise VerificationError(f"the {part} is not a JSON object", reason="token_malformed")
    return value


class CompactJws(NamedTuple):
    """A parsed, not yet verified, JWS in compact serialization."""

    header: dict[str, Any]
    claims: dict[str, Any]
    signing_input: bytes
    signature: bytes
    compact: str


def parse_compact(compact: str | bytes) -> CompactJws:
    """Split and decode a compact JWS without trusting any of it."""
    if isinstance(compact, bytes):
        try:
            compact = compact.decode("ascii")
        except UnicodeDecodeError as exc:
            raise VerificationError(
                "the token is not ASCII text", reason="token_malformed"
            ) from exc
    if not isinstance(compact, str):
        raise VerificationError("the token is not a string", reason="token_malformed")
    compact = compact.strip()
    if len(compact) > MAX_COMPACT_LENGTH:
        raise VerificationError(
            f"the token is {len(compact)} characters long; the maximum is {MAX_COMPACT_LENGTH}",
            reason="token_malformed",
        )

    segments = compact.split(".")
    if len(segments) != 3:
        raise VerificationError(
            f"a compact JWS has 3 dot-separated segments; this one has {len(segments)}",
            reason="token_malformed",
        )
    header_b64, payload_b64, signature_b64 = segments
    header = _decode_json_object(b64url_decode(header_b64), "JWS header")
    claims = _decode_json_object(b64url_decode(payload_b64), "JWS payload")
    signature = b64url_decode(signature_b64)
    return CompactJws(
        header=header,
        claims=claims,
        signing_input=f"{header_b64}.{payload_b64}".encode("ascii"),
        signature=signature,
        compact=compact,
    )


def check_header(header: dict[str, Any], *, expected_typ: str) -> str:
    """Check `alg`, `typ` and forbidden members; return the `kid`."""
    alg = header.get("alg")
    if alg != ALGORITHM:
        raise VerificationError(
            f"algorithm {alg!r} is not accepted; only {ALGORITHM!r} is",
            reason="token_alg_rejected",
        )
    forbidden = sorted(FORBIDDEN_HEADERS.intersection(header))
    if forbidden:
        raise VerificationError(
            f"header members {forbidden} are not accepted; "
            "keys come only from the pinned root keys",
            reason="token_header_rejected",
        )
    typ = header.get("typ")
    if typ != expected_typ:
        raise VerificationError(
            f"typ {typ!r} is not accepted here; expected {expected_typ!r}",
            reason="token_typ_mismatch",
        )
    kid = header.get("kid")
    if not isinstance(kid, str) or not kid:
        raise VerificationError("the header has no kid", reason="token_malformed")
    return kid


def verify_signature(jws: CompactJws, public_key: Ed25519PublicKey) -> None:
    if len(jws.signature) != 64:
        raise VerificationError(
            f"an Ed25519 signature is 64 bytes; this one is {len(jws.signature)}",
            reason="signature_invalid",
        )
    try:
        public_key.verify(jws.signature, jws.signing_input)
    except InvalidSignature as exc:
        raise VerificationError(
            "the signature does not verify", reason="signature_invalid"
        ) from exc


def sign_compact(
    private_key: Ed25519PrivateKey, header: dict[str, Any], claims: dict[str, Any]
) -> str:
    """Serialize and sign; used for device proofs and by the test vectors."""
    header_b64 = b64url_encode(json.dumps(header, separators=(",", ":")).encode("utf-8"))
    payload_b64 = b64url_encode(json.dumps(claims, separators=(",", ":")).encode("utf-8"))
    signing_input = f"{header_b64}.{payload_b64}".encode("ascii")
    return f"{header_b64}.{payload_b64}.{b64url_encode(private_key.sign(signing_input))}"


def public_key_from_jwk(jwk: Any) -> Ed25519PublicKey:
    """Load an Ed25519 public key from an OKP JWK, rejecting anything else."""
    if not isinstance(jwk, dict):
        raise VerificationError("the JWK is not a JSON object", reason="key_invalid")
    if jwk.get("kty") != "OKP" or jwk.get("crv") != "Ed25519":
        raise VerificationError(
            f"key type {jwk.get('kty')!r}/{jwk.get('crv')!r} is not accepted; expected OKP/Ed25519",
            reason="key_invalid",
        )
    if "d" in jwk:
        raise VerificationError("the JWK contains a private key member 'd'", reason="key_invalid")
    x = jwk.get("x")
    if not isinstance(x, str):
        raise VerificationError("the JWK has no 'x' member", reason="key_invalid")
    raw = b64url_decode(x)
    if len(raw) != 32:
        raise VerificationError(
            f"an Ed25519 public key is 32 bytes; 'x' has {len(raw)}", reason="key_invalid"
        )
    return Ed25519PublicKey.from_public_bytes(raw)


def public_jwk(public_key: Ed25519PublicKey, *, kid: str | None = None) -> dict[str, str]:
    raw = public_key.public_bytes_raw()
    jwk = {"kty": "OKP", "crv": "Ed25519", "x": b64url_encode(raw)}
    if kid is not None:
        jwk["kid"] = kid
    return jwk


def jwk_thumbprint(jwk: dict[str, Any]) -> str:
    """RFC 7638 thumbprint of an OKP key: SHA-256 over the required members in order."""
    canonical = json.dumps(
        {"crv": jwk["crv"], "kty": jwk["kty"], "x": jwk["x"]},
        separators=(",", ":"),
        sort_keys=True,
    )
    return b64url_encode(hashlib.sha256(canonical.encode("utf-8")).digest())
