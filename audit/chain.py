"""Hash chaining of decision-log entries and the signing hooks for checkpoints.

Entry format. Each entry is serialized as canonical JSON: the object
`{"seq", "time", "event", "outcome", "reason", "actor", "subject", "data",
"prev_hash"}` with keys sorted, no insignificant whitespace, UTF-8, and `time`
written as `YYYY-MM-DDTHH:MM:SS.ffffffZ` in UTC. The entry's `hash` is the
lower-case hex SHA-256 of those bytes. Because `prev_hash` (the previous
entry's hash, or 64 zeros for the first entry) is inside the hashed bytes,
editing, removing, inserting or reordering any entry changes every later hash.

Checkpoints. A checkpoint is a compact JWS (EdDSA, typ
`kp-audit-checkpoint+jwt`) over the claims `{"tid", "seq", "hash", "kind",
"iat"}`: the tenant slug, the sequence number it covers, that entry's hash,
`periodic` or `retention_cut`, and the signing time in Unix seconds. This
module does not hold keys: the licensing app registers a signer that signs
with the tenant's current key and a provider of the tenant's public key set,
because audit imports no other Keyplane app.

`audit/verify_bundle.py` repeats the serialization and the JWS check so that it
runs without Django; the bundle tests keep the two in step.

This module imports nothing from Django, so the benchmark and offline tools
can use it directly.
"""

import base64
import datetime as dt
import hashlib
import json
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

GENESIS_HASH = "0" * 64
CHECKPOINT_TYPE = "kp-audit-checkpoint+jwt"

CheckpointSigner = Callable[[dict[str, Any]], str]
KeySetProvider = Callable[[], dict[str, Any]]

_checkpoint_signer: CheckpointSigner | None = None
_key_set_provider: KeySetProvider | None = None
_certificate_provider: Callable[[], list[str]] | None = None


class CheckpointSignatureInvalid(Exception):
    """Raised when a checkpoint JWS is malformed, of the wrong type or fails verification."""


def format_time(value: dt.datetime) -> str:
    """Format an aware datetime as the UTC text used inside the hashed bytes."""
    if value.tzinfo is None:
        raise ValueError(f"entry time {value!r} has no time zone; pass an aware datetime")
    return value.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def canonical_entry(
    *,
    seq: int,
    time: dt.datetime | str,
    event: str,
    outcome: str,
    reason: str,
    actor: str,
    subject: str,
    data: dict[str, Any],
    prev_hash: str,
) -> bytes:
    """Serialize one entry to the canonical bytes that its hash covers."""
    document = {
        "seq": seq,
        "time": time if isinstance(time, str) else format_time(time),
        "event": event,
        "outcome": outcome,
        "reason": reason,
        "actor": actor,
        "subject": subject,
        "data": data,
        "prev_hash": prev_hash,
    }
    return json.dumps(
        document, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False
    ).encode("utf-8")


def entry_hash(**fields: Any) -> str:
    """Return the hex SHA-256 of the canonical entry built from `fields`."""
    return hashlib.sha256(canonical_entry(**fields)).hexdigest()


# --- Checkpoint signing hooks ---------------------------------------------------


def register_checkpoint_signer(signer: CheckpointSigner | None) -> None:
    """Set the callable that signs checkpoint claims with the current tenant's key.

    `signer(claims)` runs in the tenant's schema and returns a compact JWS
    with `alg` EdDSA, a `kid` header and typ `kp-audit-checkpoint+jwt`.
    Passing None removes the signer (tests use this).
    """
    global _checkpoint_signer
    _checkpoint_signer = signer


def register_key_set_provider(
    provider: KeySetProvider | None,
    *,
    certificates: Callable[[], list[str]] | None = None,
) -> None:
    """Set the callables returning the current tenant's public keys.

    `provider()` returns a JWKS dict `{"keys": [...]}` with every key that may
    have signed a checkpoint (retired keys included). `certificates()`
    returns the `kp-key-cert+jwt` certificates of those keys signed by the
    root key. The export bundle includes them, so an auditor can tie the
    tenant keys to the root key.
    """
    global _key_set_provider, _certificate_provider
    _key_set_provider = provider
    _certificate_provider = certificates


def checkpoint_signer() -> CheckpointSigner | None:
    return _checkpoint_signer


def tenant_key_set() -> dict[str, Any] | None:
    """Return the registered tenant JWKS, or None when no provider is registered."""
    return _key_set_provider() if _key_set_provider is not None else None


def tenant_key_certificates() -> list[str]:
    return _certificate_provider() if _certificate_provider is not None else []


# --- Compact JWS verification (EdDSA only) --------------------------------------


def _b64url_decode(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def jws_verify(token: str, key_set: dict[str, Any], *, expected_type: str) -> dict[str, Any]:
    """Verify an EdDSA compact JWS against `key_set` and return its claims.

    Raises CheckpointSignatureInvalid when the token is malformed, its `typ`
    or `alg` is unexpected, its `kid` is not in the key set or the signature
    does not verify.
    """
    parts = token.split(".")
    if len(parts) != 3:
        raise CheckpointSignatureInvalid("the token is not a compact JWS with three parts")
    try:
        header = json.loads(_b64url_decode(parts[0]))
        claims = json.loads(_b64url_decode(parts[1]))
        signature = _b64url_decode(parts[2])
    except ValueError as error:
        raise CheckpointSignatureInvalid(
            f"the token is not valid base64url JSON: {error}"
        ) from None
    if header.get("alg") != "EdDSA":
        raise CheckpointSignatureInvalid(f"unexpected alg {header.get('alg')!r}; expected EdDSA")
    if header.get("typ") != expected_type:
        raise CheckpointSignatureInvalid(
            f"unexpected typ {header.get('typ')!r}; expected {expected_type}"
        )
    kid = header.get("kid")
    matching = [key for key in key_set.get("keys", []) if key.get("kid") == kid]
    if not matching:
        raise CheckpointSignatureInvalid(f"kid {kid!r} is not in the tenant key set")
    jwk = matching[0]
    if jwk.get("kty") != "OKP" or jwk.get("crv") != "Ed25519":
        raise CheckpointSignatureInvalid(f"key {kid!r} is not an Ed25519 OKP key")
    public_key = Ed25519PublicKey.from_public_bytes(_b64url_decode(jwk["x"]))
    try:
        public_key.verify(signature, f"{parts[0]}.{parts[1]}".encode("ascii"))
    except InvalidSignature:
        raise CheckpointSignatureInvalid(
            f"the signature does not verify with key {kid!r}"
        ) from None
    if not isinstance(claims, dict):
        raise CheckpointSignatureInvalid("the claims are not a JSON object")
    return claims


# --- Chain verification -----------------------------------------------------------


@dataclass(frozen=True)
class Finding:
    """One problem found by `verify_chain`; `seq` names the entry, `checkpoint` the checkpoint."""

    code: str
    message: str
    seq: int | None = None
    checkpoint: int | None = None


@dataclass
class VerificationReport:
    """The outcome of `verify_chain`: ok when `findings` is empty."""

    findings: list[Finding] = field(default_factory=list)
    entries_checked: int = 0
    checkpoints_checked: int = 0
    first_seq: int | None = None
    last_seq: int | None = None
    last_signed_seq: int | None = None
    # Decisions recorded but not chained yet; set by the caller that can count them.
    pending: int = 0

    @property
    def ok(self) -> bool:
        return not self.findings

    @property
    def first_bad(self) -> Finding | None:
        return self.findings[0] if self.findings else None


ENTRY_FIELDS = (
    "seq",
    "time",
    "event",
    "outcome",
    "reason",
    "actor",
    "subject",
    "data",
    "prev_hash",
)


def verify_chain(
    entries: Iterable[dict[str, Any]],
    checkpoints: list[dict[str, Any]],
    *,
    key_set: dict[str, Any] | None,
    tenant: str,
    head: tuple[int, str] | None = None,
    start: tuple[int, str] | None = None,
) -> VerificationReport:
    """Recompute the chain and check it against the signed checkpoints.

    `entries` yields dicts with the entry fields and `hash`, in ascending
    `seq` order. `checkpoints` are dicts with `id`, `seq`, `hash`, `kind` and
    `token`. `tenant` is the tenant slug that the checkpoints' `tid` must
    name. `head` is the stored chain head `(seq, hash)` when there is one.
    `start` is `(seq, hash)` of the entry just before the first one to check,
    for a part of the chain such as an export. The caller must check that
    the start is signed.

    1. Verify every checkpoint's signature and that its claims match its row.
    2. Start after `start` when given, else after the newest valid retention
       cut, else at #1 with the genesis hash.
    3. Walk the entries: each must have the next sequence number, a stored
       hash equal to the recomputed one, the previous entry's hash as its
       `prev_hash`, and the hash of every checkpoint at its `seq`.
    4. Check that the chain ends where the head and the checkpoints say.

    The walk stops at the first bad entry, because every later entry fails
    with it; that entry is `report.first_bad`.
    """
    report = VerificationReport()
    valid_checkpoints: list[dict[str, Any]] = []

    for checkpoint in checkpoints:
        report.checkpoints_checked += 1
        problem = _checkpoint_problem(checkpoint, key_set=key_set, tenant=tenant)
        if problem is not None:
            report.findings.append(
                Finding("checkpoint_invalid", problem, checkpoint.get("seq"), checkpoint.get("id"))
            )
        else:
            valid_checkpoints.append(checkpoint)

    cuts = [c for c in valid_checkpoints if c["kind"] == "retention_cut"]
    cut = max(cuts, key=lambda c: c["seq"], default=None)
    if start is not None:
        cut = {"seq": start[0], "hash": start[1]}
    expected_seq = cut["seq"] + 1 if cut else 1
    expected_prev = cut["hash"] if cut else GENESIS_HASH
    by_seq: dict[int, list[dict[str, Any]]] = {}
    for checkpoint in valid_checkpoints:
        if checkpoint["seq"] >= expected_seq:
            by_seq.setdefault(checkpoint["seq"], []).append(checkpoint)
    report.last_signed_seq = max((c["seq"] for c in valid_checkpoints), default=None)

    for entry in entries:
        seq = entry["seq"]
        if report.first_seq is None:
            report.first_seq = seq
        if seq < expected_seq and cut is not None and report.entries_checked == 0:
            report.findings.append(
                Finding(
                    "entry_unexpected",
                    f"entry #{seq} is older than the signed start of the chain at #{cut['seq']}",
                    seq,
                )
            )
            return report
        if seq != expected_seq:
            report.findings.append(_gap_finding(expected_seq, seq, cut))
            return report

        recomputed = entry_hash(**{name: entry[name] for name in ENTRY_FIELDS})
        if recomputed != entry["hash"]:
            report.findings.append(
                Finding(
                    "entry_edited",
                    f"entry #{seq} does not match its stored hash: a field was edited "
                    "or the entry was moved",
                    seq,
                )
            )
            return report
        if entry["prev_hash"] != expected_prev:
            report.findings.append(
                Finding(
                    "entry_link_broken",
                    f"entry #{seq} does not link to the hash of entry #{seq - 1}: an entry "
                    "was inserted, removed or reordered before it",
                    seq,
                )
            )
            return report
        for checkpoint in by_seq.get(seq, []):
            if checkpoint["hash"] != recomputed:
                report.findings.append(
                    Finding(
                        "checkpoint_mismatch",
                        f"entry #{seq} differs from the signed checkpoint {checkpoint['id']} "
                        "at that position: the chain was rewritten",
                        seq,
                        checkpoint.get("id"),
                    )
                )
                return report

        report.entries_checked += 1
        report.last_seq = seq
        expected_seq = seq + 1
        expected_prev = recomputed

    last_seq = expected_seq - 1
    beyond = [c for group in by_seq.values() for c in group if c["seq"] > last_seq]
    if beyond:
        checkpoint = min(beyond, key=lambda c: c["seq"])
        report.findings.append(
            Finding(
                "entries_missing",
                f"entry #{last_seq + 1} is missing: signed checkpoint {checkpoint['id']} covers "
                f"#{checkpoint['seq']} but the chain ends at #{last_seq}",
                last_seq + 1,
                checkpoint.get("id"),
            )
        )
    elif head is not None and (head[0] != last_seq or (last_seq and head[1] != expected_prev)):
        report.findings.append(
            Finding(
                "head_mismatch",
                f"the chain head records #{head[0]} but the chain ends at #{last_seq}: "
                "entries at the end were deleted or the head was edited",
                min(head[0], last_seq + 1),
            )
        )
    return report


def _gap_finding(expected_seq: int, seq: int, cut: dict[str, Any] | None) -> Finding:
    if seq > expected_seq:
        if expected_seq == 1 or (cut is not None and expected_seq == cut["seq"] + 1):
            return Finding(
                "entries_missing",
                f"entry #{expected_seq} is missing: the chain starts at #{seq} and no signed "
                "retention cut covers the entries before it",
                expected_seq,
            )
        return Finding(
            "entries_missing",
            f"entry #{expected_seq} is missing: entry #{seq} follows #{expected_seq - 1}",
            expected_seq,
        )
    return Finding(
        "entry_duplicated",
        f"entry #{seq} appears again after #{expected_seq - 1}",
        seq,
    )


def _checkpoint_problem(
    checkpoint: dict[str, Any], *, key_set: dict[str, Any] | None, tenant: str
) -> str | None:
    """Return why the checkpoint is invalid, or None when it is valid."""
    label = f"checkpoint {checkpoint.get('id')} at #{checkpoint.get('seq')}"
    if key_set is None:
        return f"{label} cannot be verified: no tenant key set is available"
    try:
        claims = jws_verify(checkpoint["token"], key_set, expected_type=CHECKPOINT_TYPE)
    except CheckpointSignatureInvalid as error:
        return f"{label} has an invalid signature: {error}"
    for name in ("seq", "hash", "kind"):
        if claims.get(name) != checkpoint.get(name):
            return (
                f"{label}: the signed {name} {claims.get(name)!r} differs from the stored "
                f"{checkpoint.get(name)!r}"
            )
    if claims.get("tid") != tenant:
        return f"{label} was signed for tenant {claims.get('tid')!r}, not {tenant!r}"
    return None
