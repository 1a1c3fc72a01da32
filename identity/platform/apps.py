from django.apps import AppConfig


class IdentityPlatformConfig(AppConfig):
    """Per-tenant sign-in settings kept in the public schema and edited by the platform operator."""

    name = "identity.platform"
    label = "identity_platform"
    verbose_name = "Tenant sign-in"
