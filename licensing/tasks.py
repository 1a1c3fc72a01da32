"""Periodic licensing work per tenant; each task has a management command doing the same."""

from celery import shared_task

from licensing.maintenance import licensing_sweep


@shared_task(name="licensing.sweep", time_limit=300)
def sweep() -> dict[str, int]:
    """Run `licensing_sweep` in the tenant schema the task was sent to."""
    return licensing_sweep()
