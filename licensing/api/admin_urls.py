"""Licensing admin API of a tenant, mounted at /t/<slug>/api/v1/admin/."""

from django.urls import path

from licensing.api import admin_views as views

urlpatterns = [
    path("policies/", views.PolicyListView.as_view(), name="admin-policies"),
    path("policies/<int:pk>/", views.PolicyDetailView.as_view(), name="admin-policy"),
    path("grants/", views.GrantListView.as_view(), name="admin-grants"),
    path("grants/<int:pk>/", views.GrantDetailView.as_view(), name="admin-grant"),
    path("grants/<int:pk>/revoke/", views.GrantRevokeView.as_view(), name="admin-grant-revoke"),
    path("devices/", views.DeviceListView.as_view(), name="admin-devices"),
    path("devices/<int:pk>/revoke/", views.DeviceRevokeView.as_view(), name="admin-device-revoke"),
    path("seats/", views.SeatListView.as_view(), name="admin-seats"),
    path("seats/<int:pk>/release/", views.SeatReleaseView.as_view(), name="admin-seat-release"),
    path("tokens/revoke/", views.TokenRevokeView.as_view(), name="admin-token-revoke"),
    path("revocations/", views.RevocationListView.as_view(), name="admin-revocations"),
    path("manifests/", views.ManifestListView.as_view(), name="admin-manifests"),
]
