from typing import Any

from django.apps import AppConfig


class HealthConfig(AppConfig):
    name = "health"
    verbose_name = "License health"

    def ready(self) -> None:
        from celery.signals import task_failure, task_retry, task_success

        task_success.connect(_count_success, weak=False, dispatch_uid="health.task_success")
        task_failure.connect(_count_failure, weak=False, dispatch_uid="health.task_failure")
        task_retry.connect(_count_retry, weak=False, dispatch_uid="health.task_retry")


def _task_name(sender: Any) -> str:
    return str(getattr(sender, "name", None) or sender or "unknown")


def _count_success(sender: Any = None, **_: Any) -> None:
    from health.metrics import task_outcome_count

    task_outcome_count(task=_task_name(sender), outcome="success")


def _count_failure(sender: Any = None, **_: Any) -> None:
    from health.metrics import task_outcome_count

    task_outcome_count(task=_task_name(sender), outcome="failure")


def _count_retry(sender: Any = None, **_: Any) -> None:
    from health.metrics import task_outcome_count

    task_outcome_count(task=_task_name(sender), outcome="retry")
