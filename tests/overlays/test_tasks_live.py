"""Scheduled rollout promotion through a real Celery worker on Redis (committed rows)."""

import uuid
from datetime import timedelta

import pytest
from django.db import connection
from django_tenants.utils import schema_context

from tests.overlays.schemas import desktop_defaults, desktop_schema

RESULT_TIMEOUT = 60


@pytest.mark.live
def test_rollouts_advance_task_promotes_in_tenant(celery_worker, committed_db):
    from overlays.catalog.models import GlobalDefaults, OverlaySchema
    from overlays.models import MaintenanceWindow, Rollout
    from overlays.services import release_publish
    from overlays.tasks import rollouts_advance_task
    from portal.catalog.models import Product

    with schema_context("public"):
        product = Product.objects.create(code=f"sched-{uuid.uuid4().hex[:8]}", name="Scheduled")
        OverlaySchema.objects.create(product=product, version=1, schema=desktop_schema())
        GlobalDefaults.objects.create(product=product, values=desktop_defaults())
    with schema_context("alpha"):
        assert not MaintenanceWindow.objects.exists()
        release_publish(product_code=product.code, base_release=None, acting_user=None)
        release = release_publish(
            product_code=product.code,
            base_release=1,
            acting_user=None,
            tenant_patch={"ui": {"theme": "dark"}},
            steps=[{"percent": 10}, {"percent": 100}],
            promote_every_minutes=5,
        ).release
        rollout = Rollout.objects.get(release=release)
        Rollout.objects.filter(pk=rollout.pk).update(
            step_started_at=rollout.step_started_at - timedelta(minutes=6)
        )

        promoted = rollouts_advance_task.apply_async().get(timeout=RESULT_TIMEOUT)

        assert promoted == 1
        assert Rollout.objects.get(pk=rollout.pk).status == "complete"
    connection.set_schema_to_public()
