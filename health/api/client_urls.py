"""Health client API, mounted at /t/<slug>/api/v1/client/."""

from django.urls import URLPattern, URLResolver, path

from health.api import views

urlpatterns: list[URLPattern | URLResolver] = [
    path("checkin", views.CheckInView.as_view(), name="client-checkin"),
]
