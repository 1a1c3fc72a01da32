"""URL conf of a tenant, mounted at /t/<slug>/ by portal.routing."""

from django.urls import path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView

from portal.admin_sites import tenant_admin_site

urlpatterns = [
    path("admin/", tenant_admin_site.urls),
    path("api/schema/", SpectacularAPIView.as_view(), name="schema"),
    path("api/docs/", SpectacularSwaggerView.as_view(url_name="schema"), name="api-docs"),
]
