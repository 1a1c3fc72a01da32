"""URL conf of the public schema: platform admin, health, root keys, API docs."""

from django.contrib import admin
from django.urls import path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView

import portal.admin_sites  # noqa: F401  # sets the platform admin's titles
from health.platform_views import metrics_view, platform_dashboard
from licensing.api.client_views import root_keys
from portal.health import health

urlpatterns = [
    path("admin/health/", platform_dashboard, name="platform-health"),
    path("metrics", metrics_view, name="metrics"),
    path("admin/", admin.site.urls),
    path("health/", health, name="health"),
    path(".well-known/keyplane/root-keys.json", root_keys, name="root-keys"),
    path("api/schema/", SpectacularAPIView.as_view(urlconf="portal.urls_tenant"), name="schema"),
    path("api/docs/", SpectacularSwaggerView.as_view(url_name="schema"), name="api-docs"),
]
