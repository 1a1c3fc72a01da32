"""Template tags of the admin login page."""

from urllib.parse import urlencode

from django import template
from django.http import HttpRequest
from django.urls import NoReverseMatch, reverse

from identity.platform.selectors import local_password_signin_allowed, oidc_enabled_config_for

register = template.Library()


@register.inclusion_tag("identity/sso_link.html", takes_context=True)
def sso_signin(context: template.Context) -> dict[str, object]:
    """Render the single sign-on link when the request's tenant has a provider configured.

    Renders nothing on the platform admin, whose tenant has no configuration.
    """
    request: HttpRequest | None = context.get("request")
    tenant = getattr(request, "tenant", None)
    config = oidc_enabled_config_for(tenant)
    if config is None or request is None:
        return {"sso_url": "", "password_allowed": True}
    try:
        url = reverse("identity:login")
    except NoReverseMatch:
        return {"sso_url": "", "password_allowed": True}
    next_url = request.GET.get("next")
    if next_url:
        url = f"{url}?{urlencode({'next': next_url})}"
    return {"sso_url": url, "password_allowed": local_password_signin_allowed(tenant)}
