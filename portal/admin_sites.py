"""The two admin sites: the platform admin at `/admin/` and the tenant admin.

The platform admin is Django's default site, so third-party apps that live
in the public schema (Celery beat schedules) register there by themselves.
Tenant apps register on `tenant_admin_site` only, which is mounted at
`/t/<slug>/admin/`, so each admin shows only the models of its own schema.
"""

from django.contrib import admin
from django.contrib.admin import AdminSite
from django.contrib.auth.admin import GroupAdmin, UserAdmin
from django.contrib.auth.models import Group, User
from django.http import HttpRequest

admin.site.site_header = "Keyplane platform"
admin.site.site_title = "Keyplane platform"
admin.site.index_title = "Platform administration"


class TenantAdminSite(AdminSite):
    """Admin of one tenant; its header names the tenant being administered."""

    site_title = "Keyplane"
    index_title = "Tenant administration"

    def each_context(self, request: HttpRequest) -> dict[str, object]:
        context = super().each_context(request)
        tenant = getattr(request, "tenant", None)
        context["site_header"] = f"Keyplane · {tenant.display_name}" if tenant else "Keyplane"
        return context


tenant_admin_site = TenantAdminSite(name="tenant_admin")
tenant_admin_site.register(User, UserAdmin)
tenant_admin_site.register(Group, GroupAdmin)
