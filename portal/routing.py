"""Path-prefix tenant routing: platform pages at `/`, tenant pages under `/t/<slug>/`.

`TenantPathMiddleware` resolves the tenant from the first path segment after
the prefix, activates its schema and mounts the tenant URL conf there the way
a WSGI server mounts an application: the prefix moves from `path_info` to the
script prefix, so `reverse()` and the admin produce `/t/<slug>/...` links with
no per-tenant URL conf. An unknown slug is a 404; it never falls back to the
public schema.

`TenantSessionMiddleware` gives each tenant its own session cookie name and
path, and sessions are stored in the tenant's schema, so a session made on
one tenant is unknown on any other.
"""

import logging
import re
from collections.abc import Callable

from django.conf import settings
from django.contrib.sessions.middleware import SessionMiddleware
from django.db import connection
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseForbidden
from django.urls import set_script_prefix
from django_tenants.utils import get_public_schema_name

from portal.problems import TenantNotFound, TenantSuspended, problem_response
from portal.tenants.models import Tenant

logger = logging.getLogger(__name__)

_TENANT_PATH = re.compile(
    rf"^/{re.escape(settings.KEYPLANE_TENANT_PATH_PREFIX)}/(?P<slug>[^/]+)(?P<rest>/.*)?$"
)


def _is_client_api(path_info: str) -> bool:
    return path_info.startswith("/api/")


class TenantPathMiddleware:
    """Select the tenant schema and URL conf from the request path."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        connection.set_schema_to_public()
        match = _TENANT_PATH.match(request.path_info)
        if match is None:
            return self._serve_public(request)

        slug = match.group("slug")
        rest = match.group("rest") or "/"
        tenant = Tenant.objects.filter(slug=slug).exclude(schema_name=get_public_schema_name())
        tenant_row = tenant.first()
        if tenant_row is None:
            if _is_client_api(rest):
                return problem_response(
                    TenantNotFound(f"No tenant has the slug {slug!r}."), request
                )
            raise Http404(f"No tenant has the slug {slug!r}.")

        if not tenant_row.is_serving:
            logger.info("tenant.refused slug=%s status=%s path=%s", slug, tenant_row.status, rest)
            error = TenantSuspended(
                f"Tenant {slug!r} is {tenant_row.get_status_display().lower()}."
            )
            if _is_client_api(rest):
                return problem_response(error, request)
            return HttpResponseForbidden(f"{error.detail} {error.remediation}")

        script_prefix = f"{request.META.get('SCRIPT_NAME', '').rstrip('/')}"
        script_prefix += f"/{settings.KEYPLANE_TENANT_PATH_PREFIX}/{slug}"
        request.META["SCRIPT_NAME"] = script_prefix
        request.path_info = rest
        set_script_prefix(script_prefix + "/")

        request.tenant = tenant_row  # type: ignore[attr-defined]  # django-tenants convention
        request.urlconf = settings.ROOT_URLCONF  # type: ignore[attr-defined]
        connection.set_tenant(tenant_row)
        try:
            return self.get_response(request)
        finally:
            connection.set_schema_to_public()

    def _serve_public(self, request: HttpRequest) -> HttpResponse:
        request.tenant = Tenant.public_tenant()  # type: ignore[attr-defined]
        request.urlconf = settings.PUBLIC_SCHEMA_URLCONF  # type: ignore[attr-defined]
        return self.get_response(request)


class TenantSessionMiddleware(SessionMiddleware):
    """Session middleware with a cookie name and path of the tenant's own."""

    @staticmethod
    def cookie_name(request: HttpRequest) -> str:
        tenant = getattr(request, "tenant", None)
        if tenant is None or tenant.schema_name == get_public_schema_name():
            return settings.SESSION_COOKIE_NAME
        return f"{settings.SESSION_COOKIE_NAME}_{tenant.schema_name}"

    def process_request(self, request: HttpRequest) -> None:
        session_key = request.COOKIES.get(self.cookie_name(request))
        request.session = self.SessionStore(session_key)

    def process_response(self, request: HttpRequest, response: HttpResponse) -> HttpResponse:
        # SessionMiddleware writes the cookie under SESSION_COOKIE_NAME; move
        # it to the tenant's own name and path afterwards.
        response = super().process_response(request, response)
        default_name = settings.SESSION_COOKIE_NAME
        tenant_name = self.cookie_name(request)
        if tenant_name != default_name and default_name in response.cookies:
            morsel = response.cookies.pop(default_name)
            response.cookies[tenant_name] = morsel.value
            for attribute in ("expires", "max-age", "domain", "secure", "httponly", "samesite"):
                if morsel[attribute]:
                    response.cookies[tenant_name][attribute] = morsel[attribute]
            response.cookies[tenant_name]["path"] = request.META.get("SCRIPT_NAME", "") + "/"
        return response
