"""Identity errors: single sign-on, password sign-in and device enrollment."""

from portal.problems import KeyplaneError


class OidcNotConfigured(KeyplaneError):
    """Raised when single sign-on is requested for a tenant without an enabled provider."""

    code = "oidc_not_configured"
    status = 404
    title = "Single sign-on not configured"
    remediation = "Sign in with a password, or ask the platform operator to configure the provider."


class OidcDiscoveryFailed(KeyplaneError):
    """Raised when the provider's discovery document or key set cannot be fetched or read."""

    code = "oidc_discovery_failed"
    status = 502
    title = "Identity provider unreachable"
    remediation = "Retry later; if it persists, the platform operator should check the issuer URL."


class OidcIssuerMismatch(KeyplaneError):
    """Raised when the discovery document or an ID token names another issuer than configured."""

    code = "oidc_issuer_mismatch"
    status = 401
    title = "Wrong identity provider"
    remediation = "The platform operator should set the issuer exactly as the provider states it."


class OidcClientSecretUnreadable(KeyplaneError):
    """Raised when the stored client secret cannot be decrypted (the KEK changed or the row did)."""

    code = "oidc_client_secret_unreadable"
    status = 500
    title = "Client secret unreadable"
    remediation = "The platform operator should enter the tenant's client secret again."


class OidcStateInvalid(KeyplaneError):
    """Raised when a callback's state is unknown, expired, reused or made for another tenant."""

    code = "oidc_state_invalid"
    status = 400
    title = "Sign-in session invalid"
    remediation = "Start the sign-in again from this tenant's admin login page."


class OidcProviderError(KeyplaneError):
    """Raised when the provider returns an error to the callback instead of a code."""

    code = "oidc_provider_error"
    status = 400
    title = "Identity provider refused the sign-in"
    remediation = "Start the sign-in again; if it persists, ask the provider's administrator."


class OidcTokenRequestFailed(KeyplaneError):
    """Raised when the provider's token endpoint rejects the authorization code."""

    code = "oidc_token_request_failed"
    status = 502
    title = "Code exchange failed"
    remediation = "Start the sign-in again; if it persists, check the client id and secret."


class OidcIdTokenInvalid(KeyplaneError):
    """Raised when an ID token's signature, audience, nonce or lifetime fails validation."""

    code = "oidc_id_token_invalid"
    status = 401
    title = "ID token invalid"
    remediation = "Start the sign-in again; if it persists, check the provider's client settings."


class OidcEmailDomainNotAllowed(KeyplaneError):
    """Raised when the signed-in account's e-mail is missing or outside the allowed domains."""

    code = "oidc_email_domain_not_allowed"
    status = 403
    title = "Account not allowed for this tenant"
    remediation = "Sign in with an account of your organisation's own e-mail domain."


class OidcNoRole(KeyplaneError):
    """Raised when none of the account's provider groups maps to a Keyplane role."""

    code = "oidc_no_role"
    status = 403
    title = "No role for this account"
    remediation = "Ask your administrator to add you to a provider group that maps to a role."


class OidcUsernameTaken(KeyplaneError):
    """Raised when a new federated user's username already belongs to another local user."""

    code = "oidc_username_taken"
    status = 409
    title = "Username already in use"
    remediation = "An administrator should rename or delete the local user with this username."


class OidcUserInactive(KeyplaneError):
    """Raised when the linked user was deactivated in the tenant admin."""

    code = "oidc_user_inactive"
    status = 403
    title = "User deactivated"
    remediation = "Ask a tenant administrator to reactivate your user."


class PasswordSigninDisabled(KeyplaneError):
    """Raised when a password sign-in is tried on a tenant that allows single sign-on only."""

    code = "signin_password_disabled"
    status = 403
    title = "Password sign-in disabled"
    remediation = "Sign in through your organisation's single sign-on."


class SigninThrottled(KeyplaneError):
    """Raised when too many password sign-ins failed for this username and address."""

    code = "signin_throttled"
    status = 429
    title = "Too many failed sign-ins"
    remediation = "Wait until the lockout ends, then sign in with the correct password."

    def __init__(self, detail: str, *, retry_after: int) -> None:
        super().__init__(detail, extra={"retry_after": retry_after})
        self.retry_after = retry_after


class EnrollmentTokenInvalid(KeyplaneError):
    """Raised when an enrollment token cannot be created with the given settings."""

    code = "enrollment_token_invalid"
    status = 400
    title = "Enrollment token settings invalid"
    remediation = "Correct the named setting and create the token again."


class EnrollmentInvalid(KeyplaneError):
    """Raised when a presented enrollment token matches no token of the tenant."""

    code = "enrollment_invalid"
    status = 403
    title = "Enrollment token invalid"
    remediation = "Deploy the enrollment token exactly as your IT administrator issued it."


class EnrollmentRevoked(KeyplaneError):
    """Raised when a presented enrollment token was revoked."""

    code = "enrollment_revoked"
    status = 403
    title = "Enrollment token revoked"
    remediation = "Ask your IT administrator for a new enrollment token."


class EnrollmentExpired(KeyplaneError):
    """Raised when a presented enrollment token is past its expiry."""

    code = "enrollment_expired"
    status = 403
    title = "Enrollment token expired"
    remediation = "Ask your IT administrator for a new enrollment token."


class EnrollmentExhausted(KeyplaneError):
    """Raised when a presented enrollment token has been used `max_uses` times."""

    code = "enrollment_exhausted"
    status = 409
    title = "Enrollment token used up"
    remediation = "Ask your IT administrator to issue a token with more uses."
