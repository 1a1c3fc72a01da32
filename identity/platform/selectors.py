"""Reads of the per-tenant sign-in settings."""

from identity.platform.models import TenantOidcConfig
from portal.tenants.models import Tenant


def oidc_config_for(tenant: Tenant | None) -> TenantOidcConfig | None:
    """Return the tenant's sign-in settings, or None when the platform operator set none."""
    if tenant is None or tenant.pk is None:
        return None
    return TenantOidcConfig.objects.select_related("tenant").filter(tenant=tenant).first()


def oidc_enabled_config_for(tenant: Tenant | None) -> TenantOidcConfig | None:
    """Return the tenant's settings when single sign-on is switched on, else None."""
    config = oidc_config_for(tenant)
    if config is None or not config.enabled:
        return None
    return config


def local_password_signin_allowed(tenant: Tenant | None) -> bool:
    """Return whether the tenant's admins may sign in with a password (the default)."""
    config = oidc_config_for(tenant)
    return config is None or config.local_password_signin
