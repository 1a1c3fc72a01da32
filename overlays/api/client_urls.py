"""Overlay client API, mounted at /t/<slug>/api/v1/client/."""

from django.urls import path

from overlays.api import views

urlpatterns = [
    path("overlay", views.ClientOverlayView.as_view(), name="client-overlay"),
    path("overlay/apply", views.ClientApplyReportView.as_view(), name="client-overlay-apply"),
]
