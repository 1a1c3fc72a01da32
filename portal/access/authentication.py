"""DRF authentication and permission for scoped API tokens (`Authorization: Bearer`)."""

from typing import Any

from django.utils import timezone
from rest_framework.authentication import BaseAuthentication, get_authorization_header
from rest_framework.exceptions import AuthenticationFailed, NotAuthenticated
from rest_framework.permissions import BasePermission
from rest_framework.request import Request

from portal.access.models import TOKEN_PREFIX, ApiToken, api_token_hash

# Touch `last_used_at` at most this often, so reads do not write every time.
LAST_USED_RESOLUTION_SECONDS = 60


class BearerTokenAuthentication(BaseAuthentication):
    """Authenticate `Authorization: Bearer kpt_...` against the tenant's ApiToken table.

    Tokens live in the tenant schema, so a token of one tenant is unknown to
    every other tenant.
    """

    keyword = b"bearer"

    def authenticate(self, request: Request) -> tuple[Any, ApiToken] | None:
        parts = get_authorization_header(request).split()
        if not parts or parts[0].lower() != self.keyword:
            return None
        if len(parts) != 2:
            raise AuthenticationFailed("The Authorization header must be 'Bearer <token>'.")
        try:
            secret = parts[1].decode("ascii")
        except UnicodeDecodeError as error:
            raise AuthenticationFailed("The API token contains invalid characters.") from error
        if not secret.startswith(TOKEN_PREFIX):
            raise AuthenticationFailed("The API token is invalid.")
        token = (
            ApiToken.objects.select_related("user")
            .filter(token_hash=api_token_hash(secret))
            .first()
        )
        if token is None or not token.is_usable or not token.user.is_active:
            raise AuthenticationFailed("The API token is invalid, expired or revoked.")
        now = timezone.now()
        if (
            token.last_used_at is None
            or (now - token.last_used_at).total_seconds() > LAST_USED_RESOLUTION_SECONDS
        ):
            ApiToken.objects.filter(pk=token.pk).update(last_used_at=now)
        return token.user, token

    def authenticate_header(self, request: Request) -> str:
        return 'Bearer realm="keyplane"'


class HasScope(BasePermission):
    """Allow a request when its token holds the view's scope for the request method.

    Views declare `required_scopes = {"GET": "grants:read", "POST": "grants:write"}`.
    """

    def has_permission(self, request: Request, view: Any) -> bool:
        token = request.auth
        if not isinstance(token, ApiToken):
            raise NotAuthenticated("Send an API token as 'Authorization: Bearer <token>'.")
        required = getattr(view, "required_scopes", {}).get(request.method)
        if required is None:
            return False
        if required not in token.scopes:
            self.message = f"The API token lacks the scope {required!r}."
            return False
        return True
