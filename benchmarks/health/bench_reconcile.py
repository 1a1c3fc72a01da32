"""Reconciliation of one tenant's fleet against a floor that only reads the same rows.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/kp_health \
    REDIS_URL=redis://127.0.0.1:6379/6 \
        .venv/bin/python benchmarks/health/bench_reconcile.py [--sizes 25000 100000] [--rounds 3]

For each fleet size the tenant `bench-health` (onboarded on the first run)
gets a fresh fleet, built in SQL with generate_series. It has one grant, and
each device has an active seat, an issued token and a latest check-in. A
fixed share drifts: every 20th device runs an old manifest, every 50th is
below the minimum client version and every 100th has been silent for five
days.

Each measurement runs in a fresh process, which reports its wall time and
peak RSS (`ru_maxrss`):

- floor: the reconciliation's own fleet query (`FLEET_SQL`) read to the end
  through the same server-side cursor and chunk size, without any checks;
- first: `findings_reconcile()` on the new fleet, which opens every finding;
- steady: `findings_reconcile()` again, where nothing changed (median of
  `--rounds` runs, alternating with the floor).

The ratio reported is steady / floor, both medians of the same run.
"""

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parents[2]
TENANT_SLUG = "bench-health"


def _setup_django() -> None:
    sys.path.insert(0, str(PROJECT_ROOT))
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "portal.settings")
    os.environ.setdefault("KEYPLANE_LOG_LEVEL", "WARNING")
    import django

    django.setup()


def _schema() -> str:
    from portal.tenants.models import Tenant
    from portal.tenants.services import tenant_onboard

    tenant = Tenant.objects.filter(slug=TENANT_SLUG).first()
    if tenant is None:
        tenant_onboard(
            slug=TENANT_SLUG,
            display_name="Health benchmark",
            admin_username="bench-admin",
            admin_email="bench@example.invalid",
            admin_password=None,
        )
        tenant = Tenant.objects.get(slug=TENANT_SLUG)
    return str(tenant.schema_name)


def build_fleet(size: int) -> None:
    """Replace the bench tenant's fleet with `size` devices (see the module docstring)."""
    _setup_django()
    from django.db import connection, transaction
    from django_tenants.utils import schema_context

    from health.checkins import health_settings_get
    from health.models import HealthSettings

    with schema_context(_schema()), transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(
            "TRUNCATE health_finding, health_historicalfinding, health_devicestate, "
            "health_checkin, licensing_seat, licensing_historicalseat, licensing_issuedtoken, "
            "licensing_revocation, licensing_historicaldevice, licensing_device, "
            "licensing_manifest, licensing_licensegrant, licensing_historicallicensegrant, "
            "licensing_policy, licensing_historicalpolicy CASCADE"
        )
        cursor.execute(
            "INSERT INTO licensing_policy (name, product_code, seat_limit, devices_per_user, "
            "entitlements, term_days, renewal_cadence, grace_days, offline_tolerance_hours, "
            "token_lifetime_hours, allowed_regions, compliance, renewal_requires_approval, "
            "seat_increase_requires_approval, created_at) VALUES ('bench', 'bench', %s, 3, "
            "'[]', 365, 'annual', 14, 168, 24, '[]', '{}', true, true, now()) RETURNING id",
            [size],
        )
        policy_id = cursor.fetchone()[0]
        cursor.execute(
            "INSERT INTO licensing_licensegrant (policy_id, seat_count, term_start, term_end, "
            "key_hash, key_hint, created_at, status, status_reason) VALUES (%s, %s, "
            "now() - interval '30 days', now() + interval '300 days', md5(random()::text), "
            "'bench', now(), 'active', '') RETURNING id",
            [policy_id, size],
        )
        grant_id = cursor.fetchone()[0]
        for version in (1, 2):
            cursor.execute(
                "INSERT INTO licensing_manifest (product_code, version, content, jws, etag, "
                "reason, created_at) VALUES ('bench', %s, '{}', 'bench', 'bench', 'bench', "
                "now() - interval '3 days')",
                [version],
            )
        cursor.execute(
            "INSERT INTO licensing_device (public_jwk, thumbprint, name, platform, first_seen, "
            'last_seen, status) SELECT \'{"kty": "OKP"}\'::jsonb, '
            "md5(i::text) || md5((i + 1)::text), 'bench-' || i, 'linux', "
            "now() - interval '30 days', "
            "CASE WHEN i %% 100 = 0 THEN now() - interval '5 days' ELSE now() END, 'active' "
            "FROM generate_series(1, %s) AS i",
            [size],
        )
        cursor.execute(
            "INSERT INTO licensing_seat (grant_id, device_id, activated_at, status, "
            "released_reason) SELECT %s, id, now() - interval '30 days', 'active', '' "
            "FROM licensing_device",
            [grant_id],
        )
        cursor.execute(
            "INSERT INTO licensing_issuedtoken (jti, grant_id, device_id, kid, issued_at, "
            "expires_at) SELECT md5(id::text), %s, id, 'bench', now() - interval '1 hour', "
            "now() + interval '23 hours' FROM licensing_device",
            [grant_id],
        )
        cursor.execute(
            "INSERT INTO health_devicestate (device_id, product_code, token_jti, "
            "manifest_version, overlay_release, decision, reason, client_version, "
            "validation_ms, startup_ms, apply_code, checked_in_at) "
            "SELECT id, 'bench', md5(id::text), CASE WHEN id % 20 = 0 THEN 1 ELSE 2 END, NULL, "
            "'valid', '', CASE WHEN id % 50 = 0 THEN '1.9.0' ELSE '2.3.1' END, 3.0, 400.0, '', "
            "CASE WHEN id % 100 = 0 THEN now() - interval '5 days' "
            "ELSE now() - interval '30 minutes' END FROM licensing_device"
        )
        settings_row = health_settings_get()
        HealthSettings.objects.filter(pk=settings_row.pk).update(
            minimum_client_version="2.0.0", release_seat_when_silent=False, stale_after_hours=24
        )
        cursor.execute("ANALYZE")


def measure(mode: str) -> None:
    """Run one measurement in this process and print its time and peak RSS as JSON."""
    _setup_django()
    from django.db import connection, transaction
    from django_tenants.utils import schema_context

    from health.reconcile import CHUNK_SIZE, FLEET_SQL, findings_reconcile

    with schema_context(_schema()):
        connection.ensure_connection()
        started = time.perf_counter()
        rows = 0
        if mode == "floor":
            with transaction.atomic(), connection.chunked_cursor() as cursor:
                cursor.execute(FLEET_SQL)
                while batch := cursor.fetchmany(CHUNK_SIZE):
                    rows += len(batch)
        else:
            result = findings_reconcile()
            rows = result.devices
        seconds = time.perf_counter() - started
    peak_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    print(json.dumps({"mode": mode, "rows": rows, "seconds": seconds, "peak_mib": peak_kib / 1024}))


def _run(*args: str) -> dict[str, float]:
    output = subprocess.run(
        [sys.executable, __file__, *args], check=True, capture_output=True, text=True
    ).stdout
    return json.loads(output.strip().splitlines()[-1])  # type: ignore[no-any-return]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[25_000, 100_000])
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()

    for size in args.sizes:
        started = time.perf_counter()
        subprocess.run([sys.executable, __file__, "--build", str(size)], check=True)
        build_seconds = time.perf_counter() - started
        first = _run("--measure", "reconcile")
        floors, steadies = [], []
        for _ in range(args.rounds):
            floors.append(_run("--measure", "floor"))
            steadies.append(_run("--measure", "reconcile"))
        floor = statistics.median(r["seconds"] for r in floors)
        steady = statistics.median(r["seconds"] for r in steadies)
        steady_peak = max(r["peak_mib"] for r in steadies)
        print(
            f"devices={size} build={build_seconds:.1f}s "
            f"floor={floor:.3f}s first={first['seconds']:.3f}s steady={steady:.3f}s "
            f"ratio_steady={steady / floor:.2f} ratio_first={first['seconds'] / floor:.2f} "
            f"peak_rss_floor={max(r['peak_mib'] for r in floors):.0f}MiB "
            f"peak_rss_first={first['peak_mib']:.0f}MiB peak_rss_steady={steady_peak:.0f}MiB"
        )


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "--build":
        build_fleet(int(sys.argv[2]))
    elif len(sys.argv) == 3 and sys.argv[1] == "--measure":
        measure(sys.argv[2])
    else:
        main()
