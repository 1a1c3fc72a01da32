"""Health work in real processes: the Celery task in a worker, metrics through gunicorn."""

import secrets
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
import requests
from django.db import connection
from django_tenants.utils import schema_context

from health.checkins import health_settings_get
from health.models import DeviceState, Finding, HealthSettings
from licensing.models import Device
from tests.licensing.conftest import DeviceKey

pytestmark = pytest.mark.live


@pytest.fixture
def committed_outdated_device(committed_db: None) -> Iterator[int]:
    """A committed device in alpha whose client is below a committed minimum version."""
    with schema_context("alpha"):
        settings_row = health_settings_get()
        HealthSettings.objects.filter(pk=settings_row.pk).update(minimum_client_version="5.0.0")
        thumbprint = uuid.uuid4().hex * 2
        device = Device.objects.create(
            public_jwk={"kty": "OKP", "crv": "Ed25519", "x": thumbprint[:43]}, thumbprint=thumbprint
        )
        DeviceState.objects.create(
            device=device,
            product_code="atlas",
            decision="valid",
            client_version="4.9.0",
            manifest_version=1,
            checked_in_at=device.first_seen,
        )
    try:
        yield device.pk
    finally:
        with schema_context("alpha"):
            findings = Finding.objects.filter(subject=f"device:{device.pk}:atlas")
            Finding.history.filter(id__in=findings.values("id")).delete()
            findings.delete()
            Device.objects.filter(pk=device.pk).delete()
            HealthSettings.objects.filter(pk=settings_row.pk).update(minimum_client_version="")
        connection.set_schema_to_public()


def test_reconcile_task_runs_in_worker(celery_worker: Any, committed_outdated_device: int) -> None:
    from portal.celery import app

    with schema_context("alpha"):
        result = app.send_task("health.reconcile")
    summary = result.get(timeout=60)

    # Other live tests leave committed devices in alpha, so only this test's
    # device and finding are checked exactly.
    assert summary["devices"] >= 1
    with schema_context("alpha"):
        finding = Finding.objects.get(subject=f"device:{committed_outdated_device}:atlas")
    assert finding.code == "client_version_below_minimum"


def test_metrics_count_task_outcomes(
    celery_worker: Any, live_site: str, committed_outdated_device: int
) -> None:
    from portal.celery import app

    with schema_context("alpha"):
        app.send_task("health.reconcile").get(timeout=60)

    text = requests.get(f"{live_site}/metrics", timeout=60).text

    assert 'keyplane_celery_tasks_total{outcome="success",task="health.reconcile"}' in text


def test_metrics_count_refused_activation(live_site: str, committed_db: None) -> None:
    url = f"{live_site}/t/alpha/api/v1/client/activate"
    body = {
        "license_key": "KP-" + secrets.token_hex(12),
        "product": "atlas",
        "device": {"name": "laptop", "platform": "linux"},
    }

    response = requests.post(
        url, json=body, headers={"DPoP": DeviceKey().proof("POST", url)}, timeout=60
    )
    text = requests.get(f"{live_site}/metrics", timeout=60).text

    assert response.json()["code"] == "license_invalid"
    assert 'keyplane_activations_refused_total{reason="license_invalid",tenant="alpha"}' in text
