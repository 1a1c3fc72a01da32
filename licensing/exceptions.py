"""Licensing errors reported to desktop clients and admins (codes in docs/api.md)."""

from portal.problems import KeyplaneError


class ProofMissing(KeyplaneError):
    """Raised when a request that needs a device proof carries no `DPoP` header."""

    code = "proof_missing"
    status = 401
    title = "Device proof missing"
    remediation = "Sign the request with the device key and send the proof in the `DPoP` header."


class ProofInvalid(KeyplaneError):
    """Raised when a device proof is malformed, signed by the wrong key or for another request."""

    code = "proof_invalid"
    status = 401
    title = "Device proof invalid"
    remediation = "Create a new proof for this method and URL, signed by the device's Ed25519 key."


class ProofStale(KeyplaneError):
    """Raised when a device proof's `iat` lies outside the accepted time window."""

    code = "proof_stale"
    status = 401
    title = "Device proof stale"
    remediation = "Check the device clock, then send a freshly created proof."


class ProofReplayed(KeyplaneError):
    """Raised when a device proof's `jti` was already used."""

    code = "proof_replayed"
    status = 401
    title = "Device proof replayed"
    remediation = "Create a new proof with a fresh random `jti` for every request."


class LicenseInvalid(KeyplaneError):
    """Raised when a license key matches no grant of the tenant."""

    code = "license_invalid"
    status = 403
    title = "License key invalid"
    remediation = "Check the license key; your procurement administrator can issue a new one."


class LicenseExpired(KeyplaneError):
    """Raised when the grant's term and grace period have ended."""

    code = "license_expired"
    status = 403
    title = "License expired"
    remediation = "Ask your procurement administrator to renew the license."


class LicenseSuspended(KeyplaneError):
    """Raised when the grant is suspended by an administrator."""

    code = "license_suspended"
    status = 403
    title = "License suspended"
    remediation = "Ask your procurement administrator why the license was suspended."


class LicenseRevoked(KeyplaneError):
    """Raised when the grant, or the token presented, was revoked."""

    code = "license_revoked"
    status = 403
    title = "License revoked"
    remediation = "Ask your procurement administrator for a new license key."


class ProductNotLicensed(KeyplaneError):
    """Raised when the product is unknown or the license or device does not cover it."""

    code = "product_not_licensed"
    status = 403
    title = "Product not licensed"
    remediation = "Activate the device with a license key for this product."


class SeatLimitReached(KeyplaneError):
    """Raised when every seat of the grant is taken."""

    code = "seat_limit_reached"
    status = 409
    title = "Seat limit reached"
    remediation = (
        "Deactivate the product on a device you no longer use, or ask your procurement "
        "administrator for more seats."
    )


class DeviceLimitReached(KeyplaneError):
    """Raised when the device's user already has the policy's maximum of active devices."""

    code = "device_limit_reached"
    status = 409
    title = "Device limit reached"
    remediation = "Deactivate one of your other devices, or ask your IT administrator."


class DeviceRevoked(KeyplaneError):
    """Raised when the device was revoked by an IT administrator."""

    code = "device_revoked"
    status = 403
    title = "Device revoked"
    remediation = "Contact your IT administrator; this device can no longer be licensed."


class DeviceUnknown(KeyplaneError):
    """Raised when the proof's key belongs to no device with a seat for the product."""

    code = "device_unknown"
    status = 404
    title = "Device unknown"
    remediation = "Activate the device with a license key first."


class PolicyInvalid(KeyplaneError):
    """Raised when policy or grant settings contradict each other or the catalog."""

    code = "policy_invalid"
    status = 400
    title = "Contradictory license settings"
    remediation = "Correct the fields named in `errors` and save again."


class ObjectNotFound(KeyplaneError):
    """Raised when an admin request names a licensing object that does not exist."""

    code = "not_found"
    status = 404
    title = "Not found"
    remediation = "Check the identifier; list the objects to find it."


class AlreadyRevoked(KeyplaneError):
    """Raised when a grant, device or token is revoked a second time."""

    code = "already_revoked"
    status = 409
    title = "Already revoked"
    remediation = "Nothing to do: the target is already revoked."


class IdempotencyKeyReused(KeyplaneError):
    """Raised when an `Idempotency-Key` is sent again with a different request body."""

    code = "idempotency_key_reused"
    status = 422
    title = "Idempotency key reused"
    remediation = (
        "Send a new Idempotency-Key for a new request; reuse a key only for an exact retry."
    )


class RequestTooLarge(KeyplaneError):
    """Raised when a client API request body exceeds the size limit."""

    code = "request_too_large"
    status = 413
    title = "Request body too large"
    remediation = "Send only the documented fields; client API bodies are small JSON objects."
