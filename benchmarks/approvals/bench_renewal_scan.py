"""Renewal scan and what-if cost per grant, against a floor measured in the same run.

Set-up (first run only): migrates the shared schema and onboards tenant
`bench-appr` in the database named by DATABASE_URL. Each round inserts N
grants whose terms end within the renewal window, then times:

- floor: per grant, one transaction with one `INSERT ... ON CONFLICT DO
  NOTHING` of a change-request row, the least work that keeps one request
  per grant and term;
- scan: `renewals_scan()` raising N requests (preview, base versions,
  history row, decision-log entry and a notification message per grant);
- rescan: `renewals_scan()` again, which raises nothing;
- whatif: `renewals_whatif(days=120)` over the same grants.

Each figure is reported as a ratio to the floor of its round; the medians
of the rounds are printed as JSON. Notification messages sent to the broker
are purged at the end, because no worker consumes them.
"""

import argparse
import json
import os
import secrets
import statistics
import sys
import time
from datetime import timedelta
from pathlib import Path
from typing import Any

PROJECT_ROOT = Path(__file__).resolve().parents[2]
TENANT_SLUG = "bench-appr"
PRODUCT = "bench"


def _setup() -> Any:
    sys.path.insert(0, str(PROJECT_ROOT))
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "portal.settings")
    os.environ.setdefault("KEYPLANE_LOG_LEVEL", "WARNING")
    import django

    django.setup()
    from django.core.management import call_command

    from portal.catalog.models import Feature, Product
    from portal.tenants.models import Tenant
    from portal.tenants.services import tenant_onboard

    call_command("migrate_schemas", "--shared", interactive=False, verbosity=0)
    if not Tenant.objects.filter(slug=TENANT_SLUG).exists():
        tenant_onboard(
            slug=TENANT_SLUG,
            display_name="Approvals benchmark",
            admin_username="bench-admin",
            admin_email="bench@example.invalid",
            admin_password=secrets.token_urlsafe(16),
        )
    product, _ = Product.objects.get_or_create(code=PRODUCT, defaults={"name": "Bench"})
    Feature.objects.get_or_create(product=product, code="basic")
    return Tenant.objects.get(slug=TENANT_SLUG)


def _grants_insert(count: int) -> list[int]:
    from django.utils import timezone

    from licensing.models import LicenseGrant, Policy

    policy = Policy.objects.filter(product_code=PRODUCT).first() or Policy.objects.create(
        name="bench", product_code=PRODUCT, entitlements=["basic"], seat_limit=100
    )
    now = timezone.now()
    rows = [
        LicenseGrant(
            policy=policy,
            seat_count=5,
            term_start=now - timedelta(days=345),
            term_end=now + timedelta(days=20, minutes=i),
            key_hash=secrets.token_hex(32),
            key_hint=f"B{i:04d}",
        )
        for i in range(count)
    ]
    return [grant.pk for grant in LicenseGrant.objects.bulk_create(rows)]


def _floor(grant_ids: list[int]) -> float:
    from django.contrib.auth import get_user_model
    from django.db import connection, transaction
    from django.utils import timezone

    from approvals.models import ChangeRequest

    user_id = get_user_model().objects.values_list("pk", flat=True).first()
    table = ChangeRequest._meta.db_table
    started = time.perf_counter()
    for grant_id in grant_ids:
        now = timezone.now()
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.execute(
                f"INSERT INTO {table} (kind, origin, payload, reason, requester_id, grant_id, "
                "term_end, quorum_required, schedule, created_at, state, revision, before, "
                "after, base, updated_at, expires_at, escalation_level, decision_reason, "
                "result, failure_reason) SELECT 'renewal', 'renewal_scan', '{}', 'floor', %s, "
                "id, term_end, 1, 'immediate', %s, 'pending', 1, '{}', '{}', '[]', %s, %s, 0, "
                "'', '{}', '' FROM licensing_licensegrant WHERE id = %s "
                "ON CONFLICT DO NOTHING",
                [user_id, now, now, now, grant_id],
            )
    elapsed = time.perf_counter() - started
    ChangeRequest.objects.filter(grant_id__in=grant_ids).delete()
    return elapsed


def _round(grants: int) -> dict[str, float]:
    from approvals.models import ChangeRequest
    from approvals.renewals import renewals_scan, renewals_whatif
    from licensing.models import LicenseGrant

    grant_ids = _grants_insert(grants)
    floor = _floor(grant_ids)

    started = time.perf_counter()
    result = renewals_scan()
    scan = time.perf_counter() - started
    assert result.created == grants, result

    started = time.perf_counter()
    again = renewals_scan()
    rescan = time.perf_counter() - started
    assert again.created == 0, again

    started = time.perf_counter()
    renewals_whatif(days=120)
    whatif = time.perf_counter() - started

    ChangeRequest.objects.filter(grant_id__in=grant_ids).delete()
    LicenseGrant.objects.filter(pk__in=grant_ids).update(status=LicenseGrant.Status.REVOKED)
    return {
        "floor_ms_per_grant": 1000 * floor / grants,
        "scan_ms_per_grant": 1000 * scan / grants,
        "scan_vs_floor": scan / floor,
        "rescan_vs_floor": rescan / floor,
        "whatif_vs_floor": whatif / floor,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--grants", type=int, default=300, help="Grants per round (default 300).")
    parser.add_argument("--rounds", type=int, default=3, help="Rounds (default 3).")
    args = parser.parse_args()

    tenant = _setup()
    from django.db import connection
    from django_tenants.utils import schema_context

    from portal.celery import app

    with schema_context(tenant.schema_name):
        connection.tenant = tenant
        rounds = [_round(args.grants) for _ in range(args.rounds)]
    app.control.purge()
    medians = {key: round(statistics.median(r[key] for r in rounds), 3) for key in rounds[0]}
    print(json.dumps({"grants": args.grants, "rounds": args.rounds, "median": medians}, indent=2))


if __name__ == "__main__":
    main()
