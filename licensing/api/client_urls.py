"""Client API of a tenant, mounted at /t/<slug>/api/v1/client/."""

from django.urls import path

from licensing.api import client_views

urlpatterns = [
    path("keys", client_views.KeysView.as_view(), name="client-keys"),
    path("activate", client_views.ActivateView.as_view(), name="client-activate"),
    path("refresh", client_views.RefreshView.as_view(), name="client-refresh"),
    path("deactivate", client_views.DeactivateView.as_view(), name="client-deactivate"),
    path("manifest", client_views.ManifestView.as_view(), name="client-manifest"),
]
