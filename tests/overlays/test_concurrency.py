"""Concurrent publishes on committed rows, each in its own thread and database connection."""

import threading
import uuid

import pytest
from django.db import connection, connections
from django_tenants.utils import schema_context

from overlays.exceptions import ReleaseConflict
from tests.overlays.schemas import desktop_defaults, desktop_schema


@pytest.fixture
def committed_product(committed_db):  # type: ignore[no-untyped-def]
    from overlays.catalog.models import GlobalDefaults, OverlaySchema
    from portal.catalog.models import Product

    with schema_context("public"):
        product = Product.objects.create(code=f"race-{uuid.uuid4().hex[:8]}", name="Race")
        OverlaySchema.objects.create(product=product, version=1, schema=desktop_schema())
        GlobalDefaults.objects.create(product=product, values=desktop_defaults())
    return product


def _publish_concurrently(product_code, patches):
    """Publish each patch from its own thread, all released at once; return results by index."""
    from overlays.services import release_publish

    barrier = threading.Barrier(len(patches))
    results: dict[int, object] = {}

    def publish(index, patch):
        try:
            with schema_context("alpha"):
                barrier.wait(timeout=10)
                results[index] = release_publish(
                    product_code=product_code,
                    base_release=None,
                    acting_user=None,
                    tenant_patch=patch,
                )
        except Exception as error:  # the test inspects whatever was raised
            results[index] = error
        finally:
            connections.close_all()

    threads = [threading.Thread(target=publish, args=(i, p)) for i, p in enumerate(patches)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    return results


def test_concurrent_publishes_of_different_content_one_wins(committed_product):
    from licensing.models import Manifest
    from overlays.models import Release
    from overlays.selectors import head_current

    results = _publish_concurrently(
        committed_product.code, [{"ui": {"theme": "dark"}}, {"ui": {"locale": "de"}}]
    )

    conflicts = [r for r in results.values() if isinstance(r, ReleaseConflict)]
    winners = [r for r in results.values() if not isinstance(r, Exception)]
    assert len(conflicts) == 1
    assert len(winners) == 1
    assert conflicts[0].code == "release_conflict"
    with schema_context("alpha"):
        assert Release.objects.filter(product_code=committed_product.code).count() == 1
        assert head_current(committed_product.code).pk == winners[0].release.pk
        manifest = Manifest.objects.filter(product_code=committed_product.code).latest("version")
        assert manifest.content["overlay"]["sha256"] == winners[0].release.sha256
    connection.set_schema_to_public()


def test_concurrent_publishes_of_same_content_one_release(committed_product):
    from overlays.models import Release

    results = _publish_concurrently(committed_product.code, [{"ui": {"theme": "dark"}}] * 2)

    assert not [r for r in results.values() if isinstance(r, Exception)]
    assert sorted(r.created for r in results.values()) == [False, True]
    assert results[0].release.pk == results[1].release.pk
    with schema_context("alpha"):
        assert Release.objects.filter(product_code=committed_product.code).count() == 1
    connection.set_schema_to_public()
