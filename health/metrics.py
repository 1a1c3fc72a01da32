"""Prometheus metrics, shared by every gunicorn and Celery process through Redis.

gunicorn runs several worker processes, so an in-process counter would show
only the share of the process that happens to serve the scrape. Instead:

- Events are counted where this app can see them without touching the code
  that makes them: `ClientMetricsMiddleware` times the client API's
  `activate` and `refresh` responses and reads the `code` of refusals, and
  Celery's task signals count task outcomes. Each event is one pipelined
  HINCRBY in Redis, shared by all processes and kept across restarts.
- Findings by severity and tenant are read from each tenant's schema at
  scrape time, so they are exact and need no bookkeeping.

`GET /metrics` renders both in the Prometheus text format. When Redis fails,
the request being measured still succeeds: the error is logged and the event
is not counted. Each Redis call times out after one second, so an outage can
add that much to a measured request.
"""

import json
import logging
import re
import time
from collections.abc import Callable, Iterator
from typing import Any

import redis
from django.conf import settings
from django.db import connection
from django.db.models import Count
from django.http import HttpRequest, HttpResponse
from django_tenants.utils import get_public_schema_name, schema_context
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily
from prometheus_client.exposition import CONTENT_TYPE_LATEST

logger = logging.getLogger(__name__)

LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
ISSUING_PATH = re.compile(r"^/t/[^/]+/api/v1/client/(activate|refresh)$")

_client: "redis.Redis | None" = None


def _redis() -> "redis.Redis":
    global _client
    if _client is None:
        _client = redis.Redis.from_url(
            settings.REDIS_URL, socket_timeout=1, socket_connect_timeout=1
        )
    return _client


def _key(*parts: str) -> str:
    prefix = settings.CACHES["default"].get("KEY_PREFIX", "kp")
    return ":".join([prefix, "metrics", *parts])


def issuance_observe(*, schema: str, endpoint: str, status: int, seconds: float, code: str) -> None:
    """Count one `activate` or `refresh` response and its latency."""
    pipeline = _redis().pipeline(transaction=False)
    pipeline.sadd(_key("schemas"), schema)
    if status < 300:
        pipeline.hincrby(_key("issued", schema), endpoint, 1)
        latency = _key("latency", schema, endpoint)
        for bound in LATENCY_BUCKETS:
            if seconds <= bound:
                pipeline.hincrby(latency, repr(bound), 1)
        pipeline.hincrby(latency, "count", 1)
        pipeline.hincrbyfloat(latency, "sum", seconds)
    elif endpoint == "activate" and code:
        pipeline.hincrby(_key("refused", schema), code, 1)
    pipeline.execute()


def task_outcome_count(*, task: str, outcome: str) -> None:
    """Count one Celery task outcome (success, failure, retry)."""
    try:
        _redis().hincrby(_key("tasks"), f"{task}|{outcome}", 1)
    except redis.RedisError as error:
        logger.warning("health.metrics_lost kind=task error=%s", type(error).__name__)


class ClientMetricsMiddleware:
    """Time the client API's token-issuing endpoints and count their refusals by code."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        match = ISSUING_PATH.match(request.path) if request.method == "POST" else None
        if match is None:
            return self.get_response(request)
        started = time.perf_counter()
        response = self.get_response(request)
        seconds = time.perf_counter() - started
        tenant = getattr(request, "tenant", None)
        schema = getattr(tenant, "schema_name", "")
        if not schema or schema == get_public_schema_name():
            return response
        try:
            issuance_observe(
                schema=schema,
                endpoint=match.group(1),
                status=response.status_code,
                seconds=seconds,
                code=_problem_code(response),
            )
        except redis.RedisError as error:
            logger.warning("health.metrics_lost kind=issuance error=%s", type(error).__name__)
        return response


def _problem_code(response: HttpResponse) -> str:
    if response.status_code < 400 or "problem+json" not in response.get("Content-Type", ""):
        return ""
    try:
        code = json.loads(response.content).get("code", "")
    except (ValueError, AttributeError):
        return ""
    return code if isinstance(code, str) and re.fullmatch(r"[a-z0-9_]{1,64}", code) else ""


def _text(value: bytes | str) -> str:
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else value


class KeyplaneCollector:
    """Collect the metrics from Redis and from the tenants' findings at scrape time."""

    def collect(self) -> Iterator[Any]:
        from health.models import Finding
        from portal.tenants.models import Tenant

        client = _redis()
        slugs = dict(
            Tenant.objects.exclude(schema_name=get_public_schema_name()).values_list(
                "schema_name", "slug"
            )
        )

        issued = CounterMetricFamily(
            "keyplane_tokens_issued", "License tokens issued", labels=["tenant", "endpoint"]
        )
        refused = CounterMetricFamily(
            "keyplane_activations_refused", "Activations refused", labels=["tenant", "reason"]
        )
        latency = HistogramMetricFamily(
            "keyplane_token_issuance_seconds",
            "Latency of activate and refresh responses that issued a token",
            labels=["tenant", "endpoint"],
        )
        for schema in sorted(_text(s) for s in client.smembers(_key("schemas"))):
            tenant = slugs.get(schema)
            if tenant is None:
                continue
            for endpoint, count in client.hgetall(_key("issued", schema)).items():
                issued.add_metric([tenant, _text(endpoint)], float(count))
            for reason, count in client.hgetall(_key("refused", schema)).items():
                refused.add_metric([tenant, _text(reason)], float(count))
            for endpoint in ("activate", "refresh"):
                raw = {
                    _text(k): float(v)
                    for k, v in client.hgetall(_key("latency", schema, endpoint)).items()
                }
                if not raw:
                    continue
                buckets = [(repr(b), raw.get(repr(b), 0.0)) for b in LATENCY_BUCKETS]
                buckets.append(("+Inf", raw.get("count", 0.0)))
                latency.add_metric([tenant, endpoint], buckets, raw.get("sum", 0.0))
        yield issued
        yield refused
        yield latency

        tasks = CounterMetricFamily(
            "keyplane_celery_tasks", "Celery task outcomes", labels=["task", "outcome"]
        )
        for field, count in client.hgetall(_key("tasks")).items():
            task, _, outcome = _text(field).partition("|")
            tasks.add_metric([task, outcome], float(count))
        yield tasks

        findings = GaugeMetricFamily(
            "keyplane_findings_open",
            "Unresolved health findings",
            labels=["tenant", "severity"],
        )
        for schema, slug in sorted(slugs.items()):
            with schema_context(schema):
                counts = dict(
                    Finding.objects.exclude(state=Finding.State.RESOLVED)
                    .values_list("severity")
                    .order_by()
                    .annotate(n=Count("id"))
                    .values_list("severity", "n")
                )
            for severity in Finding.Severity.values:
                findings.add_metric([slug, severity], float(counts.get(severity, 0)))
        connection.set_schema_to_public()
        yield findings


def metrics_view(request: HttpRequest) -> HttpResponse:
    """Render the metrics; with KEYPLANE_METRICS_TOKEN set, require it as a bearer token."""
    token = getattr(settings, "KEYPLANE_METRICS_TOKEN", "")
    if token:
        import hmac

        sent = request.headers.get("Authorization", "")
        if not hmac.compare_digest(sent.encode(), f"Bearer {token}".encode()):
            return HttpResponse(
                "metrics need a bearer token\n", status=401, content_type="text/plain"
            )
    registry = CollectorRegistry(auto_describe=False)
    registry.register(KeyplaneCollector())
    return HttpResponse(generate_latest(registry), content_type=CONTENT_TYPE_LATEST)
