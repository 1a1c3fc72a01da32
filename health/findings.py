"""The finding types that reconciliation produces: stable codes, severities, remediations.

The codes are part of the admin API and of alert payloads, so they never
change meaning. A new kind of drift gets a new code. docs/health.md lists
the same table for operators.
"""

from dataclasses import dataclass, field
from typing import Any

from health.models import Finding

CRITICAL = Finding.Severity.CRITICAL
WARNING = Finding.Severity.WARNING
INFO = Finding.Severity.INFO


@dataclass(frozen=True)
class FindingType:
    code: str
    severity: str
    remediation: str


FINDING_TYPES: dict[str, FindingType] = {
    entry.code: entry
    for entry in (
        FindingType(
            "device_revoked_checking_in",
            CRITICAL,
            "Find the machine by its device id in the admin and remove the application from it; "
            "the revocation is in the manifest, so check that the machine can fetch manifests.",
        ),
        FindingType(
            "token_revoked_in_use",
            CRITICAL,
            "Revoke the device as well if the token was leaked; otherwise make sure the device "
            "can reach Keyplane so it picks up the revocation and refreshes its token.",
        ),
        FindingType(
            "grant_over_seats",
            CRITICAL,
            "Release the seats of devices that no longer need the product, or ask procurement "
            "to raise the grant's seat count.",
        ),
        FindingType(
            "device_silent",
            WARNING,
            "Check whether the machine still exists; release its seat in the admin if it is "
            "gone, or let reconciliation release it by enabling it in Health settings.",
        ),
        FindingType(
            "manifest_stale",
            WARNING,
            "Make sure the device can reach Keyplane (proxy, firewall, clock) so it fetches the "
            "current manifest; restarting the application forces a fetch.",
        ),
        FindingType(
            "overlay_release_stale",
            WARNING,
            "Make sure the device can reach Keyplane and check its apply results; restarting the "
            "application fetches and applies the current overlay release.",
        ),
        FindingType(
            "client_version_below_minimum",
            WARNING,
            "Update the application on this device to at least the tenant's minimum client "
            "version, or lower the minimum in Health settings.",
        ),
        FindingType(
            "release_apply_failed",
            WARNING,
            "Open the release's apply reports, fix the overlay values behind the failure code "
            "and publish a new release, or roll the release back.",
        ),
        FindingType(
            "grant_in_grace",
            WARNING,
            "Renew the license grant now: its term has ended and clients stop working when the "
            "grace period is over.",
        ),
        FindingType(
            "grant_expiring",
            INFO,
            "Start the renewal of this license grant, or confirm it is meant to end.",
        ),
    )
}


@dataclass(frozen=True)
class Detected:
    """One drift found in this run, before it is matched with stored findings."""

    code: str
    subject: str
    summary: str
    affected: dict[str, Any] = field(default_factory=dict)

    @property
    def severity(self) -> str:
        return FINDING_TYPES[self.code].severity

    @property
    def remediation(self) -> str:
        return FINDING_TYPES[self.code].remediation
