"""Errors of change requests and approvals, rendered as problem details with stable codes."""

from portal.problems import KeyplaneError


class ChangeRequestNotFound(KeyplaneError):
    """Raised when no change request has the given id in this tenant."""

    code = "change_request_not_found"
    status = 404
    title = "Change request not found"
    remediation = "Check the request id; list the tenant's change requests to find it."


class ChangeRequestInvalid(KeyplaneError):
    """Raised when a request's kind or payload does not describe an applicable change."""

    code = "change_request_invalid"
    status = 400
    title = "Invalid change request"
    remediation = "Correct the payload as the detail describes and raise the request again."


class ChangeNotGated(KeyplaneError):
    """Raised when a change request is raised for a kind the tenant's policy does not gate."""

    code = "change_not_gated"
    status = 409
    title = "Change needs no approval"
    remediation = "Make the change directly, or gate this kind in the approval settings."


class ChangeRequestStateConflict(KeyplaneError):
    """Raised when an action does not fit the request's current state."""

    code = "change_request_state_conflict"
    status = 409
    title = "Change request is in the wrong state"
    remediation = "Reload the request; only pending requests can be decided or edited."


class SelfApprovalForbidden(KeyplaneError):
    """Raised when the requester tries to approve or reject their own request."""

    code = "self_approval_forbidden"
    status = 403
    title = "Requesters cannot decide their own requests"
    remediation = "Ask another approver of the tenant to decide the request."


class ApproverNotAllowed(KeyplaneError):
    """Raised when a user without the approve permission tries to decide a request."""

    code = "approver_not_allowed"
    status = 403
    title = "Not an approver"
    remediation = "Ask a tenant administrator for the Approver role."


class AlreadyDecided(KeyplaneError):
    """Raised when an approver decides the same revision of a request twice."""

    code = "change_request_already_decided"
    status = 409
    title = "Already decided"
    remediation = "Each approver counts once; wait for other approvers."


class DecisionReasonMissing(KeyplaneError):
    """Raised when a rejection or withdrawal carries no reason."""

    code = "decision_reason_missing"
    status = 400
    title = "Reason required"
    remediation = "State why the request is rejected or withdrawn."


class NotRequester(KeyplaneError):
    """Raised when someone other than the requester edits or withdraws a request."""

    code = "not_requester"
    status = 403
    title = "Only the requester can do this"
    remediation = "Ask the requester, or reject the request with a reason instead."


class BaseChanged(KeyplaneError):
    """Raised when an object a request was based on changed since the request was raised."""

    code = "change_request_base_changed"
    status = 409
    title = "Changed since the request was raised"
    remediation = "Raise a new request based on the current values."


class QuorumNotMet(KeyplaneError):
    """Raised when a request is applied without the approvals its quorum needs."""

    code = "quorum_not_met"
    status = 409
    title = "Quorum not met"
    remediation = "Wait for enough approvers to approve the current revision."


class ApplyUnavailable(KeyplaneError):
    """Raised when the service that applies a kind of change is not installed."""

    code = "change_apply_unavailable"
    status = 503
    title = "Change cannot be applied here"
    remediation = "Install the app that provides the change, then apply the request again."
