"""Overlay admin API, mounted at /t/<slug>/api/v1/admin/."""

from django.urls import path

from overlays.api import views

PREFIX = "overlays/<str:product>/"

urlpatterns = [
    path(PREFIX + "draft", views.DraftView.as_view(), name="overlay-draft"),
    path(PREFIX + "preview", views.PreviewView.as_view(), name="overlay-preview"),
    path(PREFIX + "effective", views.EffectiveView.as_view(), name="overlay-effective"),
    path(PREFIX + "releases", views.ReleasesView.as_view(), name="overlay-releases"),
    path(PREFIX + "rollback", views.RollbackView.as_view(), name="overlay-rollback"),
    path(PREFIX + "rollout/promote", views.PromoteView.as_view(), name="overlay-promote"),
]
