"""The history-user rule shared by every history-tracked model.

Pass `get_user=history_user` to `HistoricalRecords`, so a change with no
explicit user is attributed to a named system user, never left empty:

    history = HistoricalRecords(get_user=history_user)

django-simple-history asks for the user in this order: the instance's
`_history_user` (tasks and services set it), then the authenticated user of
the current request (its middleware clears the request when the request ends,
also after an exception), then this function.
"""

from typing import Any

from celery import current_task


def history_user(request: Any = None, **_: Any) -> Any:
    """Return the request's user, else the system user of the running task or process."""
    from audit.actors import system_user

    user = getattr(request, "user", None)
    if user is not None and user.is_authenticated:
        return user
    # `current_task` is a proxy that is falsy outside a task.
    if current_task and current_task.name:
        return system_user(_actor_name(current_task.name))
    return system_user("unattributed")


def _actor_name(task_name: str) -> str:
    cleaned = "".join(c if c.isalnum() or c in "_.-" else "_" for c in task_name.lower())
    if not cleaned[:1].isalpha():
        cleaned = "task_" + cleaned
    return cleaned[:61]
