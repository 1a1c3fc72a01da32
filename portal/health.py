"""Health endpoint: the state of PostgreSQL, Redis and the Celery workers as JSON."""

import logging
import time
from typing import Any

import redis
from django.conf import settings
from django.db import connection
from django.http import HttpRequest, JsonResponse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET

logger = logging.getLogger(__name__)

# Seconds each check may take before it counts as failed.
CHECK_TIMEOUT = 2.0


def _check_postgres() -> dict[str, Any]:
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")
        cursor.fetchone()
    return {"status": "ok"}


def _check_redis() -> dict[str, Any]:
    client = redis.Redis.from_url(
        settings.REDIS_URL, socket_timeout=CHECK_TIMEOUT, socket_connect_timeout=CHECK_TIMEOUT
    )
    try:
        client.ping()
    finally:
        client.close()
    return {"status": "ok"}


def _check_celery() -> dict[str, Any]:
    from portal.celery import app

    replies = app.control.ping(timeout=CHECK_TIMEOUT)
    workers = sorted(name for reply in replies for name in reply)
    if not workers:
        return {"status": "down", "error": "no Celery worker answered the ping", "workers": []}
    return {"status": "ok", "workers": workers}


CHECKS = {"postgres": _check_postgres, "redis": _check_redis, "celery": _check_celery}


@never_cache
@require_GET
def health(request: HttpRequest) -> JsonResponse:
    """Return 200 when every part is up and 503 naming the parts that are not."""
    parts: dict[str, dict[str, Any]] = {}
    for name, check in CHECKS.items():
        started = time.perf_counter()
        try:
            parts[name] = check()
        except Exception as error:  # any failure means the part is down
            logger.warning("health.check_failed part=%s error=%s", name, error)
            parts[name] = {"status": "down", "error": f"{type(error).__name__}: {error}"}
        parts[name]["latency_ms"] = round((time.perf_counter() - started) * 1000, 1)
    healthy = all(part["status"] == "ok" for part in parts.values())
    return JsonResponse(
        {"status": "ok" if healthy else "degraded", "checks": parts}, status=200 if healthy else 503
    )
