"""Keyplane errors and their rendering as RFC 9457 problem details.

Every error that reaches a client is a `KeyplaneError` subclass with a stable
snake_case `code`, an HTTP status, a title, a message naming the bad value and
a one-sentence remediation for the person who can fix it. Business modules raise
these; the DRF exception handler and `problem_response` render them as
`application/problem+json`. The full code table lives in docs/api.md.
"""

import logging
from typing import Any, ClassVar

from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpRequest, JsonResponse
from rest_framework import exceptions as drf_exceptions
from rest_framework.response import Response
from rest_framework.views import exception_handler as drf_exception_handler

logger = logging.getLogger(__name__)

PROBLEM_CONTENT_TYPE = "application/problem+json"
PROBLEM_TYPE_BASE = "https://keyplane.dev/problems/"


class KeyplaneError(Exception):
    """Base of every error Keyplane reports to a user, admin or client."""

    code: ClassVar[str] = "internal_error"
    status: ClassVar[int] = 500
    title: ClassVar[str] = "Internal error"
    remediation: ClassVar[str] = "Retry later; if the error persists, contact the operator."

    def __init__(
        self,
        detail: str | None = None,
        *,
        remediation: str | None = None,
        extra: dict[str, Any] | None = None,
    ) -> None:
        self.detail = detail or self.title
        if remediation is not None:
            self.remediation = remediation  # type: ignore[misc]  # per-instance override
        self.extra = extra or {}
        super().__init__(self.detail)

    def as_problem(self, instance: str | None = None) -> dict[str, Any]:
        problem: dict[str, Any] = {
            "type": PROBLEM_TYPE_BASE + self.code,
            "title": self.title,
            "status": self.status,
            "detail": self.detail,
            "code": self.code,
            "remediation": self.remediation,
        }
        if instance:
            problem["instance"] = instance
        problem.update(self.extra)
        return problem


class RequestInvalid(KeyplaneError):
    """Raised when a request body or parameter is malformed or fails validation."""

    code = "request_invalid"
    status = 400
    title = "Invalid request"
    remediation = "Correct the fields named in `errors` and send the request again."


class NotAuthenticated(KeyplaneError):
    """Raised when an admin API call carries no valid credentials."""

    code = "not_authenticated"
    status = 401
    title = "Authentication required"
    remediation = "Send a valid API token as `Authorization: Bearer <token>`."


class PermissionDeniedError(KeyplaneError):
    """Raised when the caller is authenticated but lacks the role or scope."""

    code = "permission_denied"
    status = 403
    title = "Permission denied"
    remediation = "Ask a tenant administrator for a token or role with the needed scope."


class NotFound(KeyplaneError):
    """Raised when the addressed object or page does not exist in this tenant."""

    code = "not_found"
    status = 404
    title = "Not found"
    remediation = "Check the identifier and the tenant in the URL."


class MethodNotAllowed(KeyplaneError):
    """Raised when the HTTP method is not supported by the endpoint."""

    code = "method_not_allowed"
    status = 405
    title = "Method not allowed"
    remediation = "Use one of the methods listed in the `Allow` header."


class UnsupportedMediaType(KeyplaneError):
    """Raised when the request body is not JSON."""

    code = "unsupported_media_type"
    status = 415
    title = "Unsupported media type"
    remediation = "Send the body as JSON with `Content-Type: application/json`."


class NotAcceptable(KeyplaneError):
    """Raised when the client accepts no representation that the endpoint produces."""

    code = "not_acceptable"
    status = 406
    title = "Not acceptable"
    remediation = "Accept `application/json` or `application/problem+json`."


class RateLimited(KeyplaneError):
    """Raised when a client exceeds its request budget; carries `retry_after` seconds."""

    code = "rate_limited"
    status = 429
    title = "Too many requests"
    remediation = "Wait for the number of seconds in `Retry-After` before retrying."

    def __init__(self, detail: str | None = None, *, retry_after: int) -> None:
        super().__init__(detail, extra={"retry_after": retry_after})
        self.retry_after = retry_after


class TenantNotFound(KeyplaneError):
    """Raised when the `/t/<slug>/` prefix names no tenant."""

    code = "tenant_not_found"
    status = 404
    title = "Tenant not found"
    remediation = "Check the tenant slug in the server URL configured in the application."


class TenantSuspended(KeyplaneError):
    """Raised when a suspended or offboarding tenant's client API is called."""

    code = "tenant_suspended"
    status = 403
    title = "Tenant suspended"
    remediation = "The organisation's Keyplane account is suspended; contact your IT administrator."


def problem_response(error: KeyplaneError, request: HttpRequest | None = None) -> JsonResponse:
    """Render `error` as a problem-details response outside DRF (middleware, plain views)."""
    instance = request.path if request is not None else None
    response = JsonResponse(
        error.as_problem(instance), status=error.status, content_type=PROBLEM_CONTENT_TYPE
    )
    if isinstance(error, RateLimited):
        response["Retry-After"] = str(error.retry_after)
    return response


def _validation_errors(detail: Any, path: str = "") -> list[dict[str, str]]:
    """Flatten DRF's nested validation detail into `[{"field", "message", "code"}]`."""
    errors: list[dict[str, str]] = []
    if isinstance(detail, dict):
        for key, value in detail.items():
            child = f"{path}.{key}" if path else str(key)
            errors.extend(_validation_errors(value, child))
    elif isinstance(detail, list):
        for index, value in enumerate(detail):
            if isinstance(value, dict | list):
                errors.extend(_validation_errors(value, f"{path}[{index}]"))
            else:
                errors.extend(_validation_errors(value, path))
    else:
        code = getattr(detail, "code", "invalid")
        errors.append({"field": path or "non_field_errors", "message": str(detail), "code": code})
    return errors


def _translate_drf_error(exc: Exception) -> KeyplaneError | None:
    if isinstance(exc, drf_exceptions.ValidationError):
        errors = _validation_errors(exc.detail)
        summary = "; ".join(f"{item['field']}: {item['message']}" for item in errors[:5])
        return RequestInvalid(f"The request is invalid: {summary}", extra={"errors": errors})
    if isinstance(exc, drf_exceptions.ParseError):
        return RequestInvalid(f"The request body is not valid JSON: {exc.detail}")
    if isinstance(exc, drf_exceptions.NotAuthenticated | drf_exceptions.AuthenticationFailed):
        return NotAuthenticated(str(exc.detail))
    if isinstance(exc, drf_exceptions.PermissionDenied | PermissionDenied):
        return PermissionDeniedError(str(getattr(exc, "detail", "")) or None)
    if isinstance(exc, drf_exceptions.NotFound | Http404):
        return NotFound(str(getattr(exc, "detail", "")) or None)
    if isinstance(exc, drf_exceptions.MethodNotAllowed):
        return MethodNotAllowed(str(exc.detail))
    if isinstance(exc, drf_exceptions.UnsupportedMediaType):
        return UnsupportedMediaType(str(exc.detail))
    if isinstance(exc, drf_exceptions.NotAcceptable):
        return NotAcceptable(str(exc.detail))
    if isinstance(exc, drf_exceptions.Throttled):
        return RateLimited(str(exc.detail), retry_after=int(exc.wait or 1))
    if isinstance(exc, drf_exceptions.APIException):
        error = KeyplaneError(str(exc.detail))
        error.status = exc.status_code  # type: ignore[misc]  # keep DRF's status for unknown cases
        return error
    return None


def problem_exception_handler(exc: Exception, context: dict[str, Any]) -> Response | None:
    """DRF exception handler: render every known error as problem details."""
    error = exc if isinstance(exc, KeyplaneError) else _translate_drf_error(exc)
    if error is None:
        # Unknown exceptions propagate so Django logs them and returns a 500.
        return drf_exception_handler(exc, context)

    request = context.get("request")
    instance = request.path if request is not None else None
    headers = {}
    if isinstance(error, RateLimited):
        headers["Retry-After"] = str(error.retry_after)
    if isinstance(error, MethodNotAllowed) and request is not None:
        view = context.get("view")
        if view is not None:
            headers["Allow"] = ", ".join(view.allowed_methods)
    if error.status >= 500:
        logger.error("api.error code=%s path=%s", error.code, instance)
    return Response(
        error.as_problem(instance),
        status=error.status,
        headers=headers,
        content_type=PROBLEM_CONTENT_TYPE,
    )
