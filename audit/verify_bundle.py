"""Verify an exported audit bundle without Django or a database.

    python verify_bundle.py BUNDLE_DIR --root-keys ROOT_JWKS_FILE

Needs Python 3.11+ and the `cryptography` package, and `chain.py` next to
this file (the export copies both into the bundle's `verifier/` folder).

Checks, in order:
1. Every file listed in manifest.json has the recorded SHA-256.
2. Each tenant key certificate (`kp-key-cert+jwt`) verifies with a root key
   and names the bundle's tenant; only certified keys verify checkpoints.
   Without --root-keys the bundle's own key set is used, with a warning
   that the keys are not tied to the root.
3. The entries form an unbroken chain: each hash recomputes, each entry
   links to the one before, and every checkpoint verifies and matches.
4. Both ends of the exported range are signed: the entry before the first
   one is a checkpoint (or the chain's genesis), and the last entry is
   covered by a checkpoint unless --allow-unsigned-end is given.

Exit status 0 when the bundle verifies, 1 when it does not (the first
problem is printed), 2 for usage errors.
"""

import argparse
import hashlib
import json
import sys
from pathlib import Path
from typing import Any

if __package__:
    from audit import chain
else:
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    import chain  # type: ignore[no-redef,import-not-found]  # the copy next to this file

KEY_CERT_TYPE = "kp-key-cert+jwt"


class BundleInvalid(Exception):
    """Raised when the bundle fails a check; the message names the first problem."""


def _read_jsonl(path: Path) -> list[dict[str, Any]]:
    with path.open(encoding="utf-8") as handle:
        return [json.loads(line) for line in handle if line.strip()]


def _check_files(bundle: Path, manifest: dict[str, Any]) -> None:
    for name, expected in manifest.get("files", {}).items():
        path = bundle / name
        if not path.is_file():
            raise BundleInvalid(f"file {name} listed in manifest.json is missing")
        actual = hashlib.sha256(path.read_bytes()).hexdigest()
        if actual != expected:
            raise BundleInvalid(
                f"file {name} has SHA-256 {actual}, manifest.json records {expected}"
            )


def certified_key_set(
    keys: dict[str, Any], root_keys: dict[str, Any], tenant: str
) -> dict[str, Any]:
    """Return the tenant keys whose certificates verify with `root_keys` and name `tenant`."""
    certified: list[dict[str, Any]] = []
    for index, certificate in enumerate(keys.get("certificates", [])):
        try:
            claims = chain.jws_verify(certificate, root_keys, expected_type=KEY_CERT_TYPE)
        except chain.CheckpointSignatureInvalid as error:
            raise BundleInvalid(
                f"tenant key certificate {index} does not verify: {error}"
            ) from None
        if claims.get("tid") != tenant:
            raise BundleInvalid(
                f"tenant key certificate {index} names tenant {claims.get('tid')!r}, not {tenant!r}"
            )
        jwk = dict(claims.get("jwk") or {})
        jwk.setdefault("kid", claims.get("sub"))
        certified.append(jwk)
    return {"keys": certified}


def verify_bundle(
    bundle: Path, *, root_keys: dict[str, Any] | None, allow_unsigned_end: bool = False
) -> tuple[chain.VerificationReport, list[str]]:
    """Verify the bundle in `bundle`; return the chain report and warnings.

    Raises BundleInvalid for problems outside the chain itself (files, keys,
    unsigned ends); chain problems are in the report's findings.
    """
    warnings: list[str] = []
    manifest = json.loads((bundle / "manifest.json").read_text(encoding="utf-8"))
    if manifest.get("format") != "keyplane-audit-bundle/1":
        raise BundleInvalid(f"unknown bundle format {manifest.get('format')!r}")
    _check_files(bundle, manifest)
    tenant = manifest["tenant"]

    keys = json.loads((bundle / "keys.json").read_text(encoding="utf-8"))
    if root_keys is not None:
        key_set = certified_key_set(keys, root_keys, tenant)
    else:
        key_set = {"keys": keys.get("keys", [])}
        warnings.append("no --root-keys given: the tenant keys are not checked against a root key")

    entries = _read_jsonl(bundle / "decisions.jsonl")
    checkpoints = _read_jsonl(bundle / "checkpoints.jsonl")
    if not entries:
        report = chain.verify_chain([], checkpoints, key_set=key_set, tenant=tenant, start=(0, ""))
        return report, warnings

    first = entries[0]
    start = (first["seq"] - 1, first["prev_hash"])
    report = chain.verify_chain(entries, checkpoints, key_set=key_set, tenant=tenant, start=start)
    if not report.ok:
        return report, warnings

    valid = {
        (c["seq"], c["hash"])
        for c in checkpoints
        if not any(f.checkpoint == c.get("id") for f in report.findings)
    }
    start_signed = start == (0, chain.GENESIS_HASH) or start in valid
    if not start_signed:
        raise BundleInvalid(
            f"the bundle starts at entry #{first['seq']} but no valid checkpoint covers "
            f"entry #{start[0]}, so entries before it could have been removed"
        )
    last = entries[-1]
    if (last["seq"], last["hash"]) not in valid:
        message = (
            f"the last entry #{last['seq']} is not covered by a signed checkpoint, so "
            "entries at the end could have been removed or added"
        )
        if not allow_unsigned_end:
            raise BundleInvalid(message)
        warnings.append(message)
    return report, warnings


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Verify a Keyplane audit bundle offline.")
    parser.add_argument("bundle", type=Path, help="the bundle folder (contains manifest.json)")
    parser.add_argument(
        "--root-keys",
        metavar="FILE_OR_JWKS",
        help="the platform root keys as a JWKS file, or the JWKS JSON text itself",
    )
    parser.add_argument(
        "--allow-unsigned-end",
        action="store_true",
        help="accept a bundle whose last entry is not covered by a checkpoint (warn only)",
    )
    arguments = parser.parse_args(argv)

    root_keys = None
    if arguments.root_keys:
        text = arguments.root_keys
        if not text.lstrip().startswith("{"):
            text = Path(text).read_text(encoding="utf-8")
        root_keys = json.loads(text)

    try:
        report, warnings = verify_bundle(
            arguments.bundle, root_keys=root_keys, allow_unsigned_end=arguments.allow_unsigned_end
        )
    except BundleInvalid as error:
        print(f"FAILED: {error}", file=sys.stderr)
        return 1
    for warning in warnings:
        print(f"warning: {warning}", file=sys.stderr)
    if not report.ok:
        for finding in report.findings:
            print(f"FAILED: {finding.code}: {finding.message}", file=sys.stderr)
        return 1
    print(
        f"ok: {report.entries_checked} entries (#{report.first_seq} to #{report.last_seq}), "
        f"{report.checkpoints_checked} checkpoints verified"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
