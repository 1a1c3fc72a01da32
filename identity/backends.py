"""Authentication backends of the tenant admin and the platform admin."""

from typing import Any

from django.contrib.auth.backends import ModelBackend
from django.db import connection
from django.http import HttpRequest
from django_tenants.utils import get_public_schema_name

from identity.platform.selectors import local_password_signin_allowed


def _password_signin_allowed_here() -> bool:
    if connection.schema_name == get_public_schema_name():  # type: ignore[attr-defined]  # set by django-tenants
        return True
    return local_password_signin_allowed(getattr(connection, "tenant", None))


class TenantPasswordBackend(ModelBackend):
    """Password sign-in, refused in tenants whose password sign-in is switched off.

    The platform admin (public schema) always accepts passwords. Sessions made
    with a password before the switch was turned off end at their next request.
    """

    def authenticate(
        self,
        request: HttpRequest | None,
        username: str | None = None,
        password: str | None = None,
        **kwargs: Any,
    ) -> Any:
        if not _password_signin_allowed_here():
            return None
        return super().authenticate(request, username=username, password=password, **kwargs)

    def get_user(self, user_id: int) -> Any:
        if not _password_signin_allowed_here():
            return None
        return super().get_user(user_id)


class OidcSignInBackend(ModelBackend):
    """Session backend of users signed in through the tenant's provider.

    `authenticate` never accepts credentials: only the callback view in
    identity/views.py logs a user in with this backend, after validating the
    provider's ID token.
    """

    def authenticate(
        self,
        request: HttpRequest | None,
        username: str | None = None,
        password: str | None = None,
        **kwargs: Any,
    ) -> Any:
        return None
