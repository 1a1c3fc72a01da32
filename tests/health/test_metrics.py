"""Metrics shared through Redis: issuance latency, refusals, task outcomes."""

from typing import Any

from django.db import connection
from django.test import Client

from health.metrics import issuance_observe, task_outcome_count


def _scrape() -> str:
    connection.set_schema_to_public()
    return Client().get("/metrics").content.decode()


def test_metrics_issuance_histogram(in_alpha: Any) -> None:
    issuance_observe(schema="alpha", endpoint="activate", status=201, seconds=0.03, code="")
    issuance_observe(schema="alpha", endpoint="activate", status=200, seconds=0.7, code="")
    issuance_observe(schema="alpha", endpoint="refresh", status=200, seconds=0.004, code="")

    text = _scrape()

    assert 'keyplane_tokens_issued_total{endpoint="activate",tenant="alpha"} 2.0' in text
    assert (
        'keyplane_token_issuance_seconds_bucket{endpoint="activate",le="0.05",tenant="alpha"} 1.0'
        in text
    )
    assert (
        'keyplane_token_issuance_seconds_bucket{endpoint="activate",le="+Inf",tenant="alpha"} 2.0'
        in text
    )
    assert 'keyplane_token_issuance_seconds_count{endpoint="refresh",tenant="alpha"} 1.0' in text


def test_metrics_refusals_by_reason(in_alpha: Any) -> None:
    for _ in range(2):
        issuance_observe(
            schema="alpha", endpoint="activate", status=409, seconds=0.01, code="seat_limit_reached"
        )

    text = _scrape()

    assert (
        'keyplane_activations_refused_total{reason="seat_limit_reached",tenant="alpha"} 2.0' in text
    )
    assert 'keyplane_tokens_issued_total{endpoint="activate",tenant="alpha"}' not in text


def test_metrics_task_outcomes(in_alpha: Any) -> None:
    task_outcome_count(task="health.digest", outcome="failure")

    text = _scrape()

    assert 'keyplane_celery_tasks_total{outcome="failure",task="health.digest"} 1.0' in text


def test_metrics_bearer_token_required_when_set(in_alpha: Any, settings: Any) -> None:
    settings.KEYPLANE_METRICS_TOKEN = "scrape-secret"
    connection.set_schema_to_public()

    refused = Client().get("/metrics")
    allowed = Client().get("/metrics", headers={"Authorization": "Bearer scrape-secret"})

    assert refused.status_code == 401
    assert allowed.status_code == 200
