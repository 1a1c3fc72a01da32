"""Base class of every Keyplane Celery task."""

import functools
import logging
from typing import Any

from django.db import transaction
from tenant_schemas_celery.task import TenantTask, headers_with_schema

logger = logging.getLogger(__name__)


class KeyplaneTask(TenantTask):  # type: ignore[misc]  # tenant-schemas-celery is untyped
    """A tenant-aware task whose on-commit sends keep the schema of the enqueueing code.

    Celery's `delay_on_commit` reads the schema only when the transaction
    commits. This base captures it when the task is enqueued, so a send that
    runs after the schema changed still goes to the right tenant. A task
    enqueued in a transaction that rolls back is never sent.
    """

    abstract = True

    def delay_on_commit(self, *args: Any, **kwargs: Any) -> None:
        self.apply_async_on_commit(args, kwargs)

    def apply_async_on_commit(self, args: Any = None, kwargs: Any = None, **options: Any) -> None:
        options["headers"] = headers_with_schema(options.get("headers"))
        transaction.on_commit(functools.partial(self.apply_async, args, kwargs, **options))
