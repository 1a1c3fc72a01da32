"""Errors of the overlays app, rendered as RFC 9457 problem details."""

from typing import Any

from portal.problems import KeyplaneError


class OverlayInvalid(KeyplaneError):
    """Raised when a layer or an effective configuration fails validation; lists every issue."""

    code = "overlay_invalid"
    status = 422
    title = "Overlay invalid"
    remediation = "Fix each entry of `errors` in the layer it names and publish again."

    def __init__(self, detail: str, *, issues: list[dict[str, Any]]) -> None:
        super().__init__(detail, extra={"errors": issues})
        self.issues = issues


class OverlaySchemaInvalid(KeyplaneError):
    """Raised when an uploaded overlay schema is not a usable JSON Schema 2020-12."""

    code = "overlay_schema_invalid"
    status = 422
    title = "Overlay schema invalid"
    remediation = "Fix the schema at the JSON Pointer named in the message and upload it again."


class OverlaySchemaMissing(KeyplaneError):
    """Raised when a product has no active overlay schema yet."""

    code = "overlay_schema_missing"
    status = 409
    title = "Overlay schema missing"
    remediation = "Ask the platform operator to publish an overlay schema for the product."


class OverlayGroupUnknown(KeyplaneError):
    """Raised when an overlay or a rollout step names a device group that does not exist."""

    code = "overlay_group_unknown"
    status = 422
    title = "Unknown device group"
    remediation = "Create the device group first or correct its slug."


class ReleaseConflict(KeyplaneError):
    """Raised when another publish changed or is changing the current release."""

    code = "release_conflict"
    status = 409
    title = "Release conflict"
    remediation = "Reload the current release, review its changes and publish again."


class ReleaseNotFound(KeyplaneError):
    """Raised when a release number does not exist for the product."""

    code = "release_not_found"
    status = 404
    title = "Release not found"
    remediation = "List the product's releases and pick an existing number."


class NoOverlayRelease(KeyplaneError):
    """Raised when a client asks for the overlay of a product with no published release."""

    code = "overlay_not_published"
    status = 404
    title = "No overlay published"
    remediation = "Run without an overlay until the tenant's IT admin publishes one."


class RolloutInvalid(KeyplaneError):
    """Raised when rollout steps, a promotion or a maintenance window are malformed."""

    code = "rollout_invalid"
    status = 422
    title = "Rollout invalid"
    remediation = "Correct the rollout steps or window named in the message."
