"""Errors raised by keyplane_client.

Every error carries a stable snake_case `reason`, the same vocabulary that
`Decision.reason` uses, so an application can map both to one message table.
"""


class KeyplaneClientError(Exception):
    """Base of every error this library raises."""

    reason = "client_error"

    def __init__(self, message: str, *, reason: str | None = None) -> None:
        super().__init__(message)
        if reason is not None:
            self.reason = reason


class VerificationError(KeyplaneClientError):
    """Raised when a signed object fails parsing, header, signature or claim checks."""

    reason = "token_invalid"


class TrustError(VerificationError):
    """Raised when a key certificate or root key set cannot be trusted."""

    reason = "key_untrusted"


class RollbackError(VerificationError):
    """Raised when a manifest is older than the newest version already seen."""

    reason = "manifest_rollback"


class StoreError(KeyplaneClientError):
    """Raised when the device key store or the cache cannot be read or written."""

    reason = "store_unavailable"


class TransportError(KeyplaneClientError):
    """Raised when the server cannot be reached or its certificate is not pinned."""

    reason = "network_unavailable"


class PinMismatchError(TransportError):
    """Raised when the server's TLS public key matches none of the configured pins."""

    reason = "tls_pin_mismatch"


class ServerError(KeyplaneClientError):
    """Raised when the server answers with an RFC 9457 problem document."""

    reason = "server_error"

    def __init__(
        self,
        message: str,
        *,
        status: int,
        code: str,
        remediation: str = "",
        retry_after: float | None = None,
    ) -> None:
        super().__init__(message, reason=code)
        self.status = status
        self.code = code
        self.remediation = remediation
        self.retry_after = retry_after
