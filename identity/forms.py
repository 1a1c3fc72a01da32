"""The tenant admin's login form: password switch, lockout and decision log."""

from typing import Any

from django.contrib.admin.forms import AdminAuthenticationForm
from django.core.exceptions import ValidationError
from django.db import connection

from identity.exceptions import PasswordSigninDisabled, SigninThrottled
from identity.platform.selectors import local_password_signin_allowed
from identity.signin import (
    EVENT_PASSWORD,
    client_address,
    signin_failure_count,
    signin_failures_clear,
    signin_record,
    signin_throttle_check,
)


class TenantAdminLoginForm(AdminAuthenticationForm):
    """Admin login that applies the tenant's sign-in rules before checking the password."""

    def clean(self) -> dict[str, Any]:
        username = str(self.cleaned_data.get("username") or "")
        address = client_address(self.request)

        if not local_password_signin_allowed(getattr(connection, "tenant", None)):
            error: Any = PasswordSigninDisabled(
                "This organisation signs in through single sign-on only."
            )
            signin_record(
                event=EVENT_PASSWORD, outcome="refused", reason=error.code, request=self.request
            )
            raise ValidationError(f"{error.detail} {error.remediation}", code=error.code)

        if username:
            try:
                signin_throttle_check(username=username, address=address)
            except SigninThrottled as throttled:
                signin_record(
                    event=EVENT_PASSWORD,
                    outcome="refused",
                    reason=throttled.code,
                    request=self.request,
                )
                raise ValidationError(throttled.detail, code=throttled.code) from throttled

        try:
            cleaned = super().clean()
        except ValidationError:
            failures = signin_failure_count(username=username, address=address) if username else 0
            signin_record(
                event=EVENT_PASSWORD,
                outcome="refused",
                reason="invalid_credentials",
                request=self.request,
                data={"failures": failures},
            )
            raise

        signin_failures_clear(username=username, address=address)
        signin_record(
            event=EVENT_PASSWORD, outcome="granted", user=self.get_user(), request=self.request
        )
        return cleaned
