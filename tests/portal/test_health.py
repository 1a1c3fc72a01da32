"""The health endpoint reports each part; Celery is checked against a real worker."""

import pytest
from django.test import Client


@pytest.mark.live
def test_health_reports_every_part_ok(celery_worker: object, committed_db: None) -> None:
    response = Client().get("/health/")
    body = response.json()
    assert response.status_code == 200, body
    assert body["checks"]["postgres"]["status"] == "ok"
    assert body["checks"]["redis"]["status"] == "ok"
    assert body["checks"]["celery"]["status"] == "ok"


def test_health_reports_redis_down(db: None, settings: object) -> None:
    settings.REDIS_URL = "redis://127.0.0.1:1/0"  # type: ignore[attr-defined]
    response = Client().get("/health/")
    body = response.json()
    assert response.status_code == 503
    assert body["checks"]["redis"]["status"] == "down"
