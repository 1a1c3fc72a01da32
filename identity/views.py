"""Single sign-on to the tenant admin: `oidc/login/` starts it, `oidc/callback/` finishes it.

The `state` sent to the provider is a random value signed with a salt that
names the tenant schema, and the pending sign-in (nonce, PKCE verifier,
next page) is kept in the tenant's own session. A callback that arrives at
another tenant, or carries a state this session did not start, is refused
before any code is exchanged.

Both views count against the client address's request budget of the client
API (`KEYPLANE_RATE_PER_ADDRESS` per minute), so a flood of sign-in
attempts cannot fill the decision log unchecked.
"""

import logging
import secrets
import time
from typing import Any

from authlib.common.security import generate_token
from django.contrib.auth import login
from django.core import signing
from django.db import connection
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import render
from django.urls import reverse
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET

from identity.exceptions import OidcNotConfigured, OidcProviderError, OidcStateInvalid
from identity.oidc import authorization_url, code_exchange, discovery_fetch, id_token_validate
from identity.platform.selectors import oidc_enabled_config_for
from identity.provisioning import federated_user_signin, groups_from_claims
from identity.signin import EVENT_OIDC, client_address, signin_record
from licensing.ratelimit import rate_limit_hit
from portal.access.roles import ROLES
from portal.admin_sites import tenant_admin_site
from portal.problems import KeyplaneError, RateLimited

logger = logging.getLogger(__name__)

SESSION_KEY = "identity.oidc.pending"
# A sign-in must come back from the provider within this many seconds.
PENDING_MAX_AGE_SECONDS = 600
# Sign-ins started in other browser tabs that are kept at the same time.
PENDING_MAX_COUNT = 5
BACKEND = "identity.backends.OidcSignInBackend"


def _state_signer() -> signing.Signer:
    schema = connection.schema_name  # type: ignore[attr-defined]  # set by django-tenants
    return signing.Signer(salt=f"keyplane.identity.oidc.state.{schema}")


def _redirect_uri(request: HttpRequest) -> str:
    return request.build_absolute_uri(reverse("identity:callback"))


def _safe_next(request: HttpRequest, candidate: str | None) -> str:
    default = reverse("tenant_admin:index")
    if candidate and url_has_allowed_host_and_scheme(
        candidate, allowed_hosts={request.get_host()}, require_https=request.is_secure()
    ):
        return candidate
    return default


def _pending_fresh(pending: dict[str, Any]) -> dict[str, Any]:
    now = time.time()
    fresh = {s: p for s, p in pending.items() if now - p["created"] < PENDING_MAX_AGE_SECONDS}
    newest = sorted(fresh.items(), key=lambda item: item[1]["created"])[-PENDING_MAX_COUNT:]
    return dict(newest)


def _pending_pop(request: HttpRequest, state: str) -> dict[str, Any]:
    """Return and forget the pending sign-in of `state`; raise OidcStateInvalid if there is none."""
    try:
        _state_signer().unsign(state)
    except signing.BadSignature as error:
        raise OidcStateInvalid("The state was not issued by this tenant's sign-in.") from error
    pending = _pending_fresh(request.session.get(SESSION_KEY, {}))
    entry = pending.pop(state, None)
    request.session[SESSION_KEY] = pending
    if entry is None:
        raise OidcStateInvalid(
            "The state is unknown to this browser session, already used or older than "
            f"{PENDING_MAX_AGE_SECONDS // 60} minutes."
        )
    return dict(entry)


def _error_page(request: HttpRequest, error: KeyplaneError) -> HttpResponse:
    logger.info("identity.oidc.refused code=%s", error.code)
    context = {
        **tenant_admin_site.each_context(request),
        "title": error.title,
        "error": error,
        "login_url": reverse("tenant_admin:login"),
    }
    response = render(request, "identity/signin_error.html", context, status=error.status)
    if isinstance(error, RateLimited):
        response["Retry-After"] = str(error.retry_after)
    return response


@never_cache
@require_GET
def oidc_login(request: HttpRequest) -> HttpResponse:
    """Redirect the browser to the tenant's provider with a fresh state, nonce and PKCE verifier."""
    config = oidc_enabled_config_for(getattr(request, "tenant", None))
    try:
        rate_limit_hit(scope="address", identity=client_address(request))
        if config is None:
            raise OidcNotConfigured("This organisation has no single sign-on configured.")
        metadata = discovery_fetch(config)
    except KeyplaneError as error:
        signin_record(event=EVENT_OIDC, outcome="refused", reason=error.code, request=request)
        return _error_page(request, error)

    state = _state_signer().sign(secrets.token_urlsafe(24))
    nonce = secrets.token_urlsafe(24)
    code_verifier = generate_token(64)
    pending = _pending_fresh(request.session.get(SESSION_KEY, {}))
    pending[state] = {
        "nonce": nonce,
        "code_verifier": code_verifier,
        "next": _safe_next(request, request.GET.get("next")),
        "created": time.time(),
    }
    request.session[SESSION_KEY] = _pending_fresh(pending)
    url = authorization_url(
        config=config,
        metadata=metadata,
        redirect_uri=_redirect_uri(request),
        state=state,
        nonce=nonce,
        code_verifier=code_verifier,
    )
    return HttpResponseRedirect(url)


@never_cache
@require_GET
def oidc_callback(request: HttpRequest) -> HttpResponse:
    """Check state, exchange the code, validate the ID token, provision the user and log in."""
    config = oidc_enabled_config_for(getattr(request, "tenant", None))
    issuer = config.issuer if config is not None else ""
    try:
        rate_limit_hit(scope="address", identity=client_address(request))
        if config is None:
            raise OidcNotConfigured("This organisation has no single sign-on configured.")
        pending = _pending_pop(request, request.GET.get("state", ""))
        if request.GET.get("error"):
            raise OidcProviderError(
                f"The provider returned {request.GET['error']!r}: "
                f"{request.GET.get('error_description', '')[:200]}"
            )
        code = request.GET.get("code", "")
        if not code:
            raise OidcProviderError("The provider returned no authorization code.")
        metadata = discovery_fetch(config)
        token = code_exchange(
            config=config,
            metadata=metadata,
            redirect_uri=_redirect_uri(request),
            code=code,
            code_verifier=pending["code_verifier"],
        )
        claims = id_token_validate(
            config=config,
            metadata=metadata,
            id_token=token["id_token"],
            nonce=pending["nonce"],
            access_token=token.get("access_token"),
        )
        user = federated_user_signin(config=config, claims=claims)
    except KeyplaneError as error:
        signin_record(
            event=EVENT_OIDC,
            outcome="refused",
            reason=error.code,
            request=request,
            data={"issuer": issuer},
        )
        return _error_page(request, error)

    # Recorded before the session exists, so a sign-in that cannot be
    # recorded does not happen.
    roles = sorted(user.groups.filter(name__in=ROLES).values_list("name", flat=True))
    signin_record(
        event=EVENT_OIDC,
        outcome="granted",
        user=user,
        request=request,
        data={
            "issuer": issuer,
            "roles": roles,
            "groups": groups_from_claims(claims, config.groups_claim)[:50],
        },
    )
    login(request, user, backend=BACKEND)
    return HttpResponseRedirect(pending["next"])
