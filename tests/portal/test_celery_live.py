"""Tenant-aware Celery tasks on a real worker process and the real Redis broker."""

import uuid

import pytest
import redis
from celery import chord, group
from django.conf import settings
from django.contrib.auth import get_user_model
from django.db import transaction
from django_tenants.utils import schema_context

from portal.celery import app
from tests.celery_tasks import current_schema, fail_in_schema, mark_user

pytestmark = pytest.mark.live

RESULT_TIMEOUT = 30


def _last_name(schema: str, user_id: int) -> str:
    with schema_context(schema):
        return get_user_model().objects.get(pk=user_id).last_name


@pytest.fixture
def shared_user_id(committed_db: None) -> int:
    """An id that exists in both tenants: each tenant's first administrator."""
    with schema_context("alpha"):
        alpha_id = get_user_model().objects.get(username="alpha-admin").pk
    with schema_context("beta"):
        beta_id = get_user_model().objects.get(username="beta-admin").pk
    assert alpha_id == beta_id
    return alpha_id


def test_task_touches_only_sending_tenant(celery_worker: object, shared_user_id: int) -> None:
    marker = uuid.uuid4().hex[:12]
    with schema_context("alpha"):
        schema = mark_user.delay(shared_user_id, marker).get(timeout=RESULT_TIMEOUT)
    assert schema == "alpha"
    assert _last_name("alpha", shared_user_id) == marker
    assert _last_name("beta", shared_user_id) != marker


def test_group_members_run_in_sending_tenant(celery_worker: object, shared_user_id: int) -> None:
    marker = uuid.uuid4().hex[:12]
    with schema_context("beta"):
        result = group(mark_user.s(shared_user_id, marker) for _ in range(3)).apply_async()
        schemas = result.get(timeout=RESULT_TIMEOUT)
    assert schemas == ["beta", "beta", "beta"]
    assert _last_name("beta", shared_user_id) == marker
    assert _last_name("alpha", shared_user_id) != marker


def test_chord_callback_runs_in_sending_tenant(celery_worker: object, committed_db: None) -> None:
    with schema_context("alpha"):
        result = chord([current_schema.s(), current_schema.s()])(current_schema.si())
        schema = result.get(timeout=RESULT_TIMEOUT)
    assert schema == "alpha"


def test_failing_task_leaves_worker_on_public(celery_worker: object, committed_db: None) -> None:
    with schema_context("alpha"):
        failing = fail_in_schema.delay()
        with pytest.raises(RuntimeError, match="failing on purpose in alpha"):
            failing.get(timeout=RESULT_TIMEOUT)
    # Sent from the public schema, the next task must not inherit alpha.
    schemas = {current_schema.delay().get(timeout=RESULT_TIMEOUT) for _ in range(4)}
    assert schemas == {"public"}


def _queue_length(queue: str) -> int:
    return int(redis.Redis.from_url(settings.CELERY_BROKER_URL).llen(queue))


def test_task_enqueued_in_rolled_back_transaction_is_never_sent(committed_db: None) -> None:
    # A queue no worker consumes, so the broker shows exactly what was sent.
    queue = f"unconsumed-{uuid.uuid4().hex[:8]}"

    def enqueue_then_fail() -> None:
        with transaction.atomic():
            current_schema.apply_async_on_commit(queue=queue)
            raise RuntimeError("roll back")

    with schema_context("alpha"), pytest.raises(RuntimeError, match="roll back"):
        enqueue_then_fail()
    assert _queue_length(queue) == 0


def test_task_enqueued_in_committed_transaction_is_sent_once(committed_db: None) -> None:
    queue = f"unconsumed-{uuid.uuid4().hex[:8]}"
    with schema_context("alpha"), transaction.atomic():
        current_schema.apply_async_on_commit(queue=queue)
        assert _queue_length(queue) == 0
    assert _queue_length(queue) == 1
    redis.Redis.from_url(settings.CELERY_BROKER_URL).delete(queue)


def test_on_commit_send_keeps_schema_of_enqueue_time(committed_db: None) -> None:
    queue = f"unconsumed-{uuid.uuid4().hex[:8]}"
    with transaction.atomic(), schema_context("beta"):
        current_schema.apply_async_on_commit(queue=queue)
    client = redis.Redis.from_url(settings.CELERY_BROKER_URL)
    import json

    message = json.loads(client.lpop(queue))
    assert message["headers"]["_schema_name"] == "beta"


def test_fan_out_sends_one_task_per_active_tenant(
    celery_worker: object, committed_db: None
) -> None:
    sent = app.send_task("portal.for_each_tenant", args=["portal.ping"]).get(timeout=RESULT_TIMEOUT)
    assert sent >= 2
