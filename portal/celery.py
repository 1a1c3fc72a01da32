"""The Celery application.

Tasks run in the schema they were sent from: tenant-schemas-celery puts the
current schema name in every message's headers (also for the members of
groups and chords, which are sent through the same path) and activates it in
the worker before the task runs; after the task, even when it raised, the
worker's connection returns to the schema it had before (the public one).
"""

import os
from typing import Any

from celery.signals import task_postrun, task_prerun
from tenant_schemas_celery.app import CeleryApp

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "portal.settings")


class KeyplaneCelery(CeleryApp):  # type: ignore[misc]  # tenant-schemas-celery is untyped
    task_cls = "portal.task_base:KeyplaneTask"


app = KeyplaneCelery("keyplane")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()


@task_prerun.connect
def _bind_task_id_to_logs(task_id: str, **_: Any) -> None:
    from portal.request_context import current_request_id

    current_request_id.set(f"task-{task_id}")


@task_postrun.connect
def _unbind_task_id_from_logs(**_: Any) -> None:
    from portal.request_context import current_request_id

    current_request_id.set("-")
