"""Health admin API, mounted at /t/<slug>/api/v1/admin/."""

from django.urls import URLPattern, URLResolver, path

from health.api import views

urlpatterns: list[URLPattern | URLResolver] = [
    path("findings", views.FindingListView.as_view(), name="health-findings"),
    path(
        "findings/<int:finding_id>/acknowledge",
        views.FindingAcknowledgeView.as_view(),
        name="health-finding-acknowledge",
    ),
]
