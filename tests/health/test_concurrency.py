"""Concurrent reconciliations of one tenant: committed rows, one connection per thread."""

import threading
import uuid
from typing import Any

from django.db import connection, connections
from django_tenants.utils import schema_context

from health.checkins import health_settings_get
from health.models import DeviceState, Finding, HealthSettings
from health.reconcile import ReconcileResult, findings_reconcile
from licensing.models import Device

DEVICES = 20


def _reconcile_in_thread(results: list[Any], barrier: threading.Barrier) -> None:
    try:
        with schema_context("alpha"):
            barrier.wait(timeout=30)
            results.append(findings_reconcile())
    except Exception as error:  # reported by the asserting thread
        results.append(error)
    finally:
        connections.close_all()


def test_reconcile_concurrent_runs_no_duplicates(committed_db: None) -> None:
    marker = uuid.uuid4().hex[:8]
    with schema_context("alpha"):
        settings_row = health_settings_get()
        HealthSettings.objects.filter(pk=settings_row.pk).update(minimum_client_version="5.0.0")
        device_ids = []
        for index in range(DEVICES):
            thumbprint = f"{marker}{index:04d}".ljust(64, "0")
            device = Device.objects.create(
                public_jwk={"kty": "OKP"}, thumbprint=thumbprint, name=f"concurrent-{marker}"
            )
            DeviceState.objects.create(
                device=device,
                product_code="atlas",
                decision="valid",
                client_version="4.0.0",
                checked_in_at=device.first_seen,
            )
            device_ids.append(device.pk)
    connection.set_schema_to_public()
    subjects = [f"device:{pk}:atlas" for pk in device_ids]

    results: list[Any] = []
    barrier = threading.Barrier(2)
    threads = [
        threading.Thread(target=_reconcile_in_thread, args=(results, barrier)) for _ in range(2)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)

    try:
        assert all(isinstance(result, ReconcileResult) for result in results), results
        opened = sorted(result.opened for result in results)
        # Other live tests may leave devices in alpha, so the first run can
        # open more than this test's findings; the second must open none.
        assert opened[0] == 0
        assert opened[1] >= DEVICES
        with schema_context("alpha"):
            assert Finding.objects.filter(subject__in=subjects).count() == DEVICES
    finally:
        with schema_context("alpha"):
            findings = Finding.objects.filter(subject__in=subjects)
            Finding.history.filter(id__in=findings.values("id")).delete()
            findings.delete()
            Device.objects.filter(pk__in=device_ids).delete()
            HealthSettings.objects.filter(pk=settings_row.pk).update(minimum_client_version="")
        connection.set_schema_to_public()
