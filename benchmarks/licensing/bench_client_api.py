"""Load benchmark of the client API (activate, refresh) against a bare baseline, under gunicorn.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/kp_licensing \\
    REDIS_URL=redis://127.0.0.1:6379/1 \\
        .venv/bin/python benchmarks/licensing/bench_client_api.py \\
        [--seconds 8] [--rounds 3] [--clients 8] [--workers 4]

Set-up (first run only): migrates the shared schema, onboards tenant
`bench-lic`, and creates product `bench`, a policy and a grant with enough
seats. Then starts gunicorn (`--workers` sync workers) with the normal
settings plus a baseline endpoint (benchmarks/licensing/urls.py). The
baseline does the database work of a refresh (device and seat lookup, latest
manifest, token row insert, decision-log append) and one Ed25519 signature,
without DRF, device proofs or rate limits.

Load: `--clients` processes send requests back to back, one connection per
request (gunicorn's sync workers close connections), for `--seconds` per
mode. Modes alternate baseline, refresh, activate for `--rounds` rounds, so
background load hits all alike. Throughput is requests per second summed
over clients; latencies are per request. Each refresh and activation signs a
fresh DPoP proof on the client side, and each activation uses a new device
key generated before the timed window.
"""

import argparse
import json
import multiprocessing
import os
import secrets
import signal
import socket
import statistics
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

PROJECT_ROOT = Path(__file__).resolve().parents[2]
TENANT_SLUG = "bench-lic"
PRODUCT = "bench"


def _setup_django() -> None:
    sys.path.insert(0, str(PROJECT_ROOT))
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "portal.settings")
    os.environ.setdefault("KEYPLANE_LOG_LEVEL", "WARNING")
    import django

    django.setup()


def _prepare(refresh_devices: int) -> tuple[str, list[dict[str, Any]]]:
    """Create the tenant, product, policy and grant; activate the refresh devices.

    Returns the license key and the refresh devices as private keys (raw hex).
    """
    _setup_django()
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
    from django.core.management import call_command
    from django_tenants.utils import schema_context

    from licensing.jws import jwk_thumbprint, public_jwk
    from licensing.seats import seat_activate
    from licensing.services import grant_create, policy_create
    from portal.catalog.models import Feature, Product
    from portal.tenants.models import Tenant
    from portal.tenants.services import tenant_onboard

    call_command("migrate_schemas", "--shared", interactive=False, verbosity=0)
    if not Tenant.objects.filter(slug=TENANT_SLUG).exists():
        tenant_onboard(
            slug=TENANT_SLUG,
            display_name="Benchmark",
            admin_username="bench-admin",
            admin_email="bench@example.invalid",
            admin_password=secrets.token_urlsafe(16),
        )
    product, _ = Product.objects.get_or_create(code=PRODUCT, defaults={"name": "Bench"})
    for code in ("basic", "pro"):
        Feature.objects.get_or_create(product=product, code=code)
    tenant = Tenant.objects.get(slug=TENANT_SLUG)
    devices = []
    with schema_context(tenant.schema_name):
        from django.db import connection

        connection.tenant = tenant
        policy = policy_create(
            acting_user=None,
            name=f"bench {secrets.token_hex(3)}",
            product_code=PRODUCT,
            seat_limit=1_000_000,
            entitlements=["basic", "pro"],
        )
        _, license_key = grant_create(policy_id=policy.pk, seat_count=1_000_000, acting_user=None)
        for _ in range(refresh_devices):
            key = Ed25519PrivateKey.generate()
            jwk = public_jwk(key.public_key())
            seat_activate(
                license_key=license_key,
                product_code=PRODUCT,
                public_jwk=jwk,
                thumbprint=jwk_thumbprint(jwk),
                device_name="bench",
                platform="linux",
                idempotency_key=None,
            )
            raw = key.private_bytes(
                serialization.Encoding.Raw,
                serialization.PrivateFormat.Raw,
                serialization.NoEncryption(),
            )
            devices.append({"key": raw.hex(), "thumbprint": jwk_thumbprint(jwk)})
    return license_key, devices


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _start_server(port: int, workers: int) -> subprocess.Popen[bytes]:
    env = dict(os.environ)
    env.update(
        DJANGO_SETTINGS_MODULE="benchmarks.licensing.settings",
        PYTHONPATH=str(PROJECT_ROOT),
        KEYPLANE_BASE_URL=f"http://127.0.0.1:{port}",
        KEYPLANE_LOG_LEVEL="WARNING",
        # The benchmark sends far more requests than one client would.
        KEYPLANE_RATE_PER_ADDRESS="100000000",
        KEYPLANE_RATE_PER_LICENSE="100000000",
        KEYPLANE_RATE_PER_DEVICE="100000000",
    )
    gunicorn = str(Path(sys.executable).parent / "gunicorn")
    process = subprocess.Popen(
        [
            gunicorn,
            "portal.wsgi:application",
            "--bind",
            f"127.0.0.1:{port}",
            "--workers",
            str(workers),
            "--log-level",
            "warning",
        ],
        cwd=PROJECT_ROOT,
        env=env,
    )
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(
                f"http://127.0.0.1:{port}/.well-known/keyplane/root-keys.json", timeout=1
            ):
                return process
        except urllib.error.HTTPError:
            return process
        except OSError:
            time.sleep(0.2)
    process.kill()
    raise RuntimeError("gunicorn did not start within 30 s")


def _client(
    args: tuple[str, str, float, list[dict[str, Any]], str, int],
) -> tuple[int, int, list[float]]:
    """Send requests of one mode until the deadline; return (ok, errors, latencies in s)."""
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    from licensing.jws import jws_sign, public_jwk

    base, mode, deadline, devices, license_key, seed = args
    keys = [Ed25519PrivateKey.from_private_bytes(bytes.fromhex(d["key"])) for d in devices]
    index = seed
    ok = errors = 0
    latencies: list[float] = []
    while time.time() < deadline:
        if mode == "baseline":
            device = devices[index % len(devices)]
            url = f"{base}/t/{TENANT_SLUG}/bench/baseline"
            body = {"thumbprint": device["thumbprint"]}
            key = None
        elif mode == "refresh":
            url = f"{base}/t/{TENANT_SLUG}/api/v1/client/refresh"
            body = {"product": PRODUCT}
            key = keys[index % len(keys)]
        else:
            url = f"{base}/t/{TENANT_SLUG}/api/v1/client/activate"
            body = {"license_key": license_key, "product": PRODUCT}
            key = Ed25519PrivateKey.generate()
        index += 1
        headers = {"Content-Type": "application/json"}
        started = time.perf_counter()
        if key is not None:
            claims = {
                "htm": "POST",
                "htu": url,
                "iat": int(time.time()),
                "jti": secrets.token_urlsafe(16),
            }
            headers["DPoP"] = jws_sign(
                claims,
                typ="dpop+jwt",
                kid=None,
                private_key=key,
                extra_header={"jwk": public_jwk(key.public_key())},
            )
        request = urllib.request.Request(url, data=json.dumps(body).encode(), headers=headers)
        try:
            with urllib.request.urlopen(request, timeout=30) as response:
                response.read()
            ok += 1
            latencies.append(time.perf_counter() - started)
        except (urllib.error.URLError, OSError):
            errors += 1
    return ok, errors, latencies


def _run_mode(
    pool: Any,
    base: str,
    mode: str,
    seconds: float,
    clients: int,
    devices: list[dict[str, Any]],
    license_key: str,
) -> dict[str, float]:
    deadline = time.time() + seconds
    per_client = [devices[i::clients] or devices for i in range(clients)]
    results = pool.map(
        _client, [(base, mode, deadline, per_client[i], license_key, i) for i in range(clients)]
    )
    ok = sum(r[0] for r in results)
    errors = sum(r[1] for r in results)
    latencies = sorted(latency for r in results for latency in r[2])
    p50 = latencies[len(latencies) // 2] if latencies else float("nan")
    p99 = (
        latencies[min(len(latencies) - 1, int(len(latencies) * 0.99))]
        if latencies
        else float("nan")
    )
    return {"rps": ok / seconds, "errors": errors, "p50_ms": p50 * 1000, "p99_ms": p99 * 1000}


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--seconds", type=float, default=8.0, help="Duration of each mode per round."
    )
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--clients", type=int, default=8, help="Concurrent client processes.")
    parser.add_argument("--workers", type=int, default=4, help="gunicorn worker processes.")
    args = parser.parse_args()

    license_key, devices = _prepare(refresh_devices=64)
    port = _free_port()
    server = _start_server(port, args.workers)
    base = f"http://127.0.0.1:{port}"
    results: dict[str, list[dict[str, float]]] = {"baseline": [], "refresh": [], "activate": []}
    try:
        with multiprocessing.get_context("fork").Pool(args.clients) as pool:
            # Warm-up: load keys and open database connections in every worker.
            _run_mode(pool, base, "baseline", 1.0, args.clients, devices, license_key)
            _run_mode(pool, base, "refresh", 1.0, args.clients, devices, license_key)
            for _ in range(args.rounds):
                for mode in results:
                    results[mode].append(
                        _run_mode(
                            pool, base, mode, args.seconds, args.clients, devices, license_key
                        )
                    )
    finally:
        server.send_signal(signal.SIGTERM)
        server.wait(timeout=30)

    summary = {}
    for mode, runs in results.items():
        summary[mode] = {
            "rps": statistics.median(r["rps"] for r in runs),
            "p50_ms": statistics.median(r["p50_ms"] for r in runs),
            "p99_ms": statistics.median(r["p99_ms"] for r in runs),
            "errors": sum(r["errors"] for r in runs),
        }
    print(f"{'mode':<10} {'req/s':>8} {'p50 ms':>8} {'p99 ms':>8} {'errors':>7}")
    for mode, row in summary.items():
        print(
            f"{mode:<10} {row['rps']:>8.1f} {row['p50_ms']:>8.1f} "
            f"{row['p99_ms']:>8.1f} {row['errors']:>7}"
        )
    floor = summary["baseline"]
    for mode in ("refresh", "activate"):
        print(
            f"{mode}: throughput {summary[mode]['rps'] / floor['rps']:.2f}x of baseline, "
            f"p99 {summary[mode]['p99_ms'] / floor['p99_ms']:.2f}x of baseline"
        )


if __name__ == "__main__":
    _setup_django()
    main()
