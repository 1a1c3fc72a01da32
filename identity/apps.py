from django.apps import AppConfig


class IdentityConfig(AppConfig):
    """Tenant side of sign-in: role mappings, federated users and device enrollment tokens."""

    name = "identity"
    verbose_name = "Identity"

    def ready(self) -> None:
        from identity.forms import TenantAdminLoginForm
        from portal.admin_sites import tenant_admin_site

        # The tenant admin's login form enforces the tenant's password switch
        # and the failed sign-in lockout; the platform admin keeps Django's form.
        tenant_admin_site.login_form = TenantAdminLoginForm
