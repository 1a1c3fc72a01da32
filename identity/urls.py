"""Single sign-on URLs of a tenant, mounted at /t/<slug>/oidc/."""

from django.urls import path

from identity.views import oidc_callback, oidc_login

app_name = "identity"

urlpatterns = [
    path("login/", oidc_login, name="login"),
    path("callback/", oidc_callback, name="callback"),
]
