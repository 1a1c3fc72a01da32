"""Request ids and the logging filter that stamps tenant and request on records."""

import logging
import re
import uuid
from collections.abc import Callable
from contextvars import ContextVar

from django.db import connection
from django.http import HttpRequest, HttpResponse

# The id of the request (or Celery task) being handled in this context.
current_request_id: ContextVar[str] = ContextVar("current_request_id", default="-")

# An incoming X-Request-ID is kept only when it is short and plain, so a
# client cannot inject newlines or markup into log lines.
_ACCEPTED_REQUEST_ID = re.compile(r"^[A-Za-z0-9._-]{8,64}$")


class RequestIdMiddleware:
    """Assign every request an id, echo it in `X-Request-ID` and expose it to logging."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        incoming = request.headers.get("X-Request-ID", "")
        request_id = incoming if _ACCEPTED_REQUEST_ID.match(incoming) else uuid.uuid4().hex
        request.request_id = request_id  # type: ignore[attr-defined]  # read by views and problems
        token = current_request_id.set(request_id)
        try:
            response = self.get_response(request)
        finally:
            current_request_id.reset(token)
        response["X-Request-ID"] = request_id
        return response


class RequestContextFilter(logging.Filter):
    """Add `tenant` (the active schema) and `request_id` to every log record."""

    def filter(self, record: logging.LogRecord) -> bool:
        record.tenant = getattr(connection, "schema_name", "-") or "-"
        record.request_id = current_request_id.get()
        return True
