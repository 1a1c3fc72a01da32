"""URL conf of a tenant, mounted at /t/<slug>/ by portal.routing."""

from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView

from portal.admin_sites import tenant_admin_site

urlpatterns = [
    path("admin/", tenant_admin_site.urls),
    path("oidc/", include("identity.urls")),
    path("api/v1/client/", include("licensing.api.client_urls")),
    path("api/v1/client/", include("overlays.api.client_urls")),
    path("api/v1/admin/", include("licensing.api.admin_urls")),
    path("api/v1/client/", include("health.api.client_urls")),
    path("api/v1/admin/", include("overlays.api.admin_urls")),
    path("api/v1/admin/", include("approvals.api.admin_urls")),
    path("api/v1/admin/", include("health.api.admin_urls")),
    path("api/schema/", SpectacularAPIView.as_view(), name="schema"),
    path("api/docs/", SpectacularSwaggerView.as_view(url_name="schema"), name="api-docs"),
]
