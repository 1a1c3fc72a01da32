"""Change-request admin API of a tenant, mounted at /t/<slug>/api/v1/admin/."""

from django.urls import URLPattern, URLResolver, path

from approvals.api import views

urlpatterns: list[URLPattern | URLResolver] = [
    path("change-requests/", views.ChangeRequestListView.as_view(), name="admin-change-requests"),
    path(
        "change-requests/<int:pk>/",
        views.ChangeRequestDetailView.as_view(),
        name="admin-change-request",
    ),
    path(
        "change-requests/<int:pk>/approve/",
        views.ChangeRequestApproveView.as_view(),
        name="admin-change-request-approve",
    ),
    path(
        "change-requests/<int:pk>/reject/",
        views.ChangeRequestRejectView.as_view(),
        name="admin-change-request-reject",
    ),
    path(
        "change-requests/<int:pk>/withdraw/",
        views.ChangeRequestWithdrawView.as_view(),
        name="admin-change-request-withdraw",
    ),
    path(
        "change-requests/<int:pk>/apply/",
        views.ChangeRequestApplyView.as_view(),
        name="admin-change-request-apply",
    ),
    path("renewals/whatif/", views.RenewalWhatIfView.as_view(), name="admin-renewals-whatif"),
]
