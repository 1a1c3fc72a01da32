"""Decision-log append throughput under concurrent writer processes, against a plain-insert floor.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/kp_audit \
        .venv/bin/python benchmarks/audit/append_throughput.py [--writers 8] [--per-writer 500]

Both runs insert the same rows from the same number of processes, one
transaction per row, into the tenant schema `bench_audit` (onboarded on the
first run). The floor inserts them into a copy of the decision-log table
without chaining: no head lock, no hash, a sequence for `seq`. The chained
run calls `audit.services.decision_record`. Every process sets up Django
and connects first, then all start together. Throughput is rows over the
time from the first start to the last finish; the chained run adds the
time to chain what the writers left pending. Modes alternate for
`--rounds` rounds and the medians are compared.
"""

import argparse
import os
import subprocess
import sys
import time
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parents[2]
TENANT_SLUG = "bench-audit"
PLAIN_TABLE = "audit_bench_plain"


def _setup_django() -> None:
    sys.path.insert(0, str(PROJECT_ROOT))
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "portal.settings")
    os.environ.setdefault("KEYPLANE_LOG_LEVEL", "WARNING")
    import django

    django.setup()


def _row(writer: int, index: int) -> dict[str, object]:
    return {
        "event": "license.activate",
        "outcome": "granted" if index % 5 else "refused",
        "reason": "" if index % 5 else "seat_limit",
        "actor": f"device:{writer}-{index}",
        "subject": f"grant:{index % 50}",
        "data": {"writer": writer, "index": index, "product": "bench"},
    }


def worker(mode: str, schema: str, writer: int, count: int) -> None:
    """Insert `count` rows in `mode` (chain or plain) after the start signal.

    Prints `ready` after Django is set up and the connection is open, waits
    for a line on stdin, then prints its start and finish times.
    """
    _setup_django()
    import json

    from django.conf import settings

    # Production runs with DEBUG off; with it on, Django records every query,
    # which costs each mode in proportion to its number of statements.
    settings.DEBUG = False

    from django.db import connection
    from django.utils import timezone
    from django_tenants.utils import schema_context

    from audit import chain
    from audit.chaining import chainer
    from audit.services import decision_record

    with schema_context(schema):
        connection.ensure_connection()
        print("ready", flush=True)
        sys.stdin.readline()
        started = time.time()
        for index in range(count):
            row = _row(writer, index)
            if mode == "chain":
                decision_record(**row)
                if index == count - 1:
                    # The writer is done when its entries are chained.
                    chainer.flush(timeout=60)
                continue
            # The floor: the same columns and values, a hash of the row alone, no lock.
            now = timezone.now()
            digest = chain.entry_hash(seq=0, time=now, prev_hash=chain.GENESIS_HASH, **row)
            with connection.cursor() as cursor:
                cursor.execute(
                    f"INSERT INTO {PLAIN_TABLE} (seq, time, event, outcome, reason, actor, subject,"
                    " data, prev_hash, hash) VALUES (nextval('audit_bench_plain_seq'), %s, %s, %s,"
                    " %s, %s, %s, %s, %s, %s)",
                    [
                        now,
                        row["event"],
                        row["outcome"],
                        row["reason"],
                        row["actor"],
                        row["subject"],
                        json.dumps(row["data"]),
                        chain.GENESIS_HASH,
                        digest,
                    ],
                )
    print(started, time.time(), flush=True)


def _prepare() -> str:
    _setup_django()
    from django.db import connection
    from django_tenants.utils import schema_context

    from portal.tenants.models import Tenant
    from portal.tenants.services import tenant_onboard

    tenant = Tenant.objects.filter(slug=TENANT_SLUG).first()
    if tenant is None:
        tenant_onboard(
            slug=TENANT_SLUG,
            display_name="Audit benchmark",
            admin_username="bench-admin",
            admin_email="bench@example.invalid",
            admin_password=os.urandom(16).hex(),
        )
        tenant = Tenant.objects.get(slug=TENANT_SLUG)
    with schema_context(tenant.schema_name), connection.cursor() as cursor:
        cursor.execute(
            f"CREATE TABLE IF NOT EXISTS {PLAIN_TABLE} "
            "(LIKE audit_decisionlogentry INCLUDING DEFAULTS INCLUDING INDEXES)"
        )
        cursor.execute("CREATE SEQUENCE IF NOT EXISTS audit_bench_plain_seq")
    return str(tenant.schema_name)


def _run(mode: str, schema: str, writers: int, per_writer: int) -> float:
    """Run one mode with `writers` processes; return rows per second."""
    processes = [
        subprocess.Popen(
            [sys.executable, __file__, "--worker", mode, schema, str(w), str(per_writer)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            cwd=PROJECT_ROOT,
        )
        for w in range(writers)
    ]
    for process in processes:
        assert process.stdout is not None
        if process.stdout.readline().strip() != "ready":
            raise RuntimeError(f"{mode} writer did not start; run it alone to see its error")
    for process in processes:
        assert process.stdin is not None
        process.stdin.write("go\n")
        process.stdin.flush()
    starts, ends = [], []
    for process in processes:
        output, _ = process.communicate(timeout=900)
        if process.returncode != 0:
            raise RuntimeError(f"{mode} writer failed with status {process.returncode}")
        started, finished = output.strip().splitlines()[-1].split()
        starts.append(float(started))
        ends.append(float(finished))
    elapsed = max(ends) - min(starts)
    if mode == "chain":
        # Entries the writers left pending count against the chained run:
        # chain them now and add the time (the writers' exit is not counted).
        from django_tenants.utils import schema_context

        from audit.services import decision_log_chain

        with schema_context(schema):
            started = time.time()
            leftover = decision_log_chain(wait=True)
            elapsed += time.time() - started
        if leftover:
            print(f"chained {leftover} entries left pending after the writers finished")
    return writers * per_writer / elapsed


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "--worker":
        mode, schema, writer, count = sys.argv[2:6]
        worker(mode, schema, int(writer), int(count))
        return
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--writers", type=int, default=8)
    parser.add_argument("--per-writer", type=int, default=500)
    parser.add_argument("--rounds", type=int, default=3, help="alternating rounds of each mode")
    arguments = parser.parse_args()

    schema = _prepare()
    floors, chained = [], []
    for _ in range(arguments.rounds):
        floors.append(_run("plain", schema, arguments.writers, arguments.per_writer))
        chained.append(_run("chain", schema, arguments.writers, arguments.per_writer))
    floor = sorted(floors)[len(floors) // 2]
    chain_rate = sorted(chained)[len(chained) // 2]
    print(
        f"writers={arguments.writers} rows_per_writer={arguments.per_writer} "
        f"rounds={arguments.rounds} (medians)"
    )
    print(f"plain inserts (floor): {floor:,.0f} rows/s  {[round(x) for x in floors]}")
    print(f"chained appends:       {chain_rate:,.0f} rows/s  {[round(x) for x in chained]}")
    print(f"floor / chained:       {floor / chain_rate:.2f}x (target: at most 2x)")


if __name__ == "__main__":
    main()
