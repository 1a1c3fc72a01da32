"""Errors of the audit app."""

from portal.problems import KeyplaneError


class AuditError(KeyplaneError):
    """Base of the audit app's errors."""

    code = "audit_error"
    status = 500
    title = "Audit error"


class DecisionEntryInvalid(AuditError):
    """Raised when a decision-log entry has a field of the wrong form."""

    code = "audit_entry_invalid"
    title = "Invalid decision-log entry"
    remediation = "Fix the calling code so that it passes the field in the documented form."


class SecretInDecisionData(AuditError):
    """Raised when an entry's data contains a secret or a value that looks like one."""

    code = "audit_secret_rejected"
    title = "Secret in decision-log data"
    remediation = "Record an identifier (key id, token jti, device id) instead of the secret."


class CheckpointSignerMissing(AuditError):
    """Raised when a checkpoint must be signed but no signer is registered."""

    code = "audit_checkpoint_signer_missing"
    title = "No checkpoint signer"
    remediation = (
        "Make sure the licensing app is installed and has registered its signer with "
        "audit.chain.register_checkpoint_signer, and that the tenant has an active signing key."
    )
