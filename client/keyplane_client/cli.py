"""`keyplane-client`: the reference command-line client.

    keyplane-client --server URL --tenant SLUG --product CODE --state-dir DIR
                    [--root-keys FILE] [--pin SHA256]... COMMAND

Commands: `activate --license-key KEY`, `refresh`, `deactivate`,
`status [--json]`, `features`, `verify TOKEN`. `status`, `features` and
`verify` never use the network.

Exit status: 0 when the license is valid (`status` also accepts grace),
1 when it is not or a token fails verification (the reason code is printed),
2 for usage and configuration errors, 3 when the server could not be reached
or rejected the request.
"""

import argparse
import json
import logging
import sys
import time
from pathlib import Path
from typing import Any

from keyplane_client.decision import Decision, DecisionState, decide
from keyplane_client.errors import KeyplaneClientError, ServerError, TransportError
from keyplane_client.trust import RootKeys

EXIT_OK = 0
EXIT_NOT_LICENSED = 1
EXIT_USAGE = 2
EXIT_SERVER = 3
ROOT_KEYS_FILE = "root-keys.json"
WELL_KNOWN_ROOT_KEYS = "/.well-known/keyplane/root-keys.json"


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="keyplane-client", description="Activate and check a Keyplane license."
    )
    parser.add_argument(
        "--server",
        required=True,
        help="base URL of the Keyplane site, for example https://licensing.example",
    )
    parser.add_argument("--tenant", required=True, help="tenant slug")
    parser.add_argument("--product", required=True, help="product code")
    parser.add_argument(
        "--state-dir", required=True, type=Path, help="directory for the device key and cache"
    )
    parser.add_argument(
        "--root-keys",
        type=Path,
        help="JWKS file with the pinned root keys; copied into the state directory "
        f"(default: {ROOT_KEYS_FILE} there)",
    )
    parser.add_argument(
        "--pin",
        action="append",
        default=[],
        help="SHA-256 of the server's TLS SubjectPublicKeyInfo (repeatable)",
    )
    parser.add_argument(
        "--ca-file", help="CA bundle for the server certificate instead of the system store"
    )
    parser.add_argument(
        "--verbose", "-v", action="store_true", help="log requests and cache events to stderr"
    )
    commands = parser.add_subparsers(dest="command", required=True)
    activate = commands.add_parser("activate", help="activate this device with a license key")
    activate.add_argument("--license-key", required=True)
    activate.add_argument("--device-name", help="name shown to administrators (default: host name)")
    commands.add_parser("refresh", help="fetch a fresh license token")
    commands.add_parser("deactivate", help="release this device's seat")
    status = commands.add_parser("status", help="show the license decision (offline)")
    status.add_argument("--json", action="store_true", help="print the decision as JSON")
    commands.add_parser("features", help="list the features allowed now, one per line (offline)")
    verify = commands.add_parser("verify", help="verify a license token offline")
    verify.add_argument("token", help="the token, or - to read it from standard input")
    return parser


def _load_root_keys(args: argparse.Namespace, *, may_fetch: bool) -> RootKeys:
    """Root keys from --root-keys (then kept), the state directory, or, for activate, the server."""
    stored = args.state_dir / ROOT_KEYS_FILE
    if args.root_keys is not None:
        text = args.root_keys.read_text(encoding="utf-8")
        root_keys = RootKeys.from_jwks(text)
        args.state_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
        stored.write_text(text, encoding="utf-8")
        return root_keys
    if stored.exists():
        return RootKeys.from_jwks(stored.read_text(encoding="utf-8"))
    if not may_fetch:
        raise KeyplaneClientError(
            f"no root keys: pass --root-keys FILE or activate first so {stored} exists",
            reason="root_keys_missing",
        )
    from keyplane_client.transport import HttpTransport

    print(
        "warning: no --root-keys given; trusting the root keys the server presents now. "
        "Applications should pin them at build time.",
        file=sys.stderr,
    )
    transport = HttpTransport(args.server, pins=args.pin, ca_file=args.ca_file)
    response = transport.request("GET", WELL_KNOWN_ROOT_KEYS)
    root_keys = RootKeys.from_jwks(response.body)
    args.state_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    stored.write_bytes(response.body)
    return root_keys


def _client(args: argparse.Namespace, root_keys: RootKeys) -> Any:
    from keyplane_client.client import Client

    return Client(
        server=args.server,
        tenant=args.tenant,
        product=args.product,
        state_dir=args.state_dir,
        root_keys=root_keys,
        pins=tuple(args.pin),
        ca_file=args.ca_file,
    )


def _format_time(moment: int | None) -> str:
    if moment is None:
        return "-"
    return time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(moment))


def _print_decision(decision: Decision) -> None:
    print(f"state:          {decision.state.value}")
    print(f"reason:         {decision.reason}")
    print(f"features:       {', '.join(decision.features) or '-'}")
    print(f"expires:        {_format_time(decision.expires_at)}")
    print(f"grace until:    {_format_time(decision.grace_until)}")
    print(f"offline until:  {_format_time(decision.offline_until)}")
    print(f"next change:    {_format_time(decision.next_boundary)}")
    print(
        "manifest:       "
        + (str(decision.manifest_version) if decision.manifest_version is not None else "-")
    )
    if not decision.licensed:
        print(f"remediation:    {decision.remediation}")


def _licensed_exit(decision: Decision) -> int:
    return EXIT_OK if decision.licensed else EXIT_NOT_LICENSED


def _verify(args: argparse.Namespace, root_keys: RootKeys) -> int:
    from keyplane_client.cache import Cache
    from keyplane_client.device import DeviceIdentity, FileKeyStore
    from keyplane_client.tokens import verify_license

    read_stdin = args.token == "-"  # noqa: S105  # "-" is the stdin marker, not a secret
    compact = sys.stdin.read() if read_stdin else args.token
    identity = DeviceIdentity.load_or_create(FileKeyStore(args.state_dir / "device-key.pem"))
    cache = Cache(args.state_dir, identity=identity, tenant=args.tenant, product=args.product)
    keyring = cache.load_keyring(root_keys)
    manifest = cache.load_manifest(keyring)
    if manifest is not None:
        keyring = keyring.extended(manifest.key_certificates, root_keys)
    try:
        license = verify_license(compact, keyring, product=args.product)
    except KeyplaneClientError as exc:
        print(f"invalid: {exc.reason}: {exc}")
        return EXIT_NOT_LICENSED
    decision = decide(license, manifest, None, cache.load_state(), time.time())
    print(f"{decision.state.value}: {decision.reason}")
    return EXIT_OK if decision.state == DecisionState.VALID else EXIT_NOT_LICENSED


def run(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    logging.basicConfig(
        level=logging.INFO if args.verbose else logging.ERROR,
        format="%(levelname)s %(name)s: %(message)s",
    )
    try:
        root_keys = _load_root_keys(args, may_fetch=args.command == "activate")
        if args.command == "verify":
            return _verify(args, root_keys)
        client = _client(args, root_keys)
        if args.command == "status":
            decision = client.decision()
            client.stop()
            if args.json:
                print(json.dumps(decision.to_dict(), indent=2))
            else:
                _print_decision(decision)
            return _licensed_exit(decision)
        if args.command == "features":
            decision = client.decision()
            client.stop()
            for feature in decision.features:
                print(feature)
            return _licensed_exit(decision)
        if args.command == "activate":
            decision = client.activate(args.license_key, device_name=args.device_name)
        elif args.command == "refresh":
            decision = client.refresh()
        else:
            decision = client.deactivate()
            print("deactivated")
            return EXIT_OK
        _print_decision(decision)
        return _licensed_exit(decision)
    except ServerError as exc:
        print(f"error: {exc.code}: {exc}", file=sys.stderr)
        if exc.remediation:
            print(exc.remediation, file=sys.stderr)
        return EXIT_SERVER
    except TransportError as exc:
        print(f"error: {exc.reason}: {exc}", file=sys.stderr)
        return EXIT_SERVER
    except KeyplaneClientError as exc:
        print(f"error: {exc.reason}: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except OSError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_USAGE


def main() -> None:
    sys.exit(run())
