"""`decide()`: what the user may do now, from verified inputs and a time.

`decide()` is a pure function: no I/O, no clock reading, no randomness. The
same inputs always give the same `Decision`, so a long-running process only
has to call it again at `next_boundary` to move from `valid` to `grace` to
`expired` on time. Only new signed objects, a new local state or a later
`now` change the result; a failed refresh changes none of them.

Checks run in this order, and the first that applies decides:

1. clock set back below the trusted-time high-water mark: `invalid`
2. no license token: `invalid` (fallback features if this device validated before)
3. no manifest, or one older than a version already seen: `invalid`
4. license, device or token id listed in the manifest's revocations: `revoked`
5. manifest past its expiry plus tolerance (freeze): `expired`
6. license not yet valid: `invalid`
7. past the grace end or the offline window: `expired`
8. past the paid term (`term_end`, else `exp`) but inside grace and the offline window: `grace`
9. otherwise: `valid`
"""

from enum import StrEnum
from typing import NamedTuple

from keyplane_client.state import LocalState
from keyplane_client.tokens import License, Manifest, Overlay


class DecisionState(StrEnum):
    VALID = "valid"
    GRACE = "grace"
    EXPIRED = "expired"
    REVOKED = "revoked"
    INVALID = "invalid"


REMEDIATIONS: dict[str, str] = {
    "ok": "No action needed.",
    "in_grace": "Ask your license administrator to renew the license before grace ends.",
    "license_expired": "Ask your license administrator to renew the license, then run refresh.",
    "offline_window_exceeded": "Connect to the network and refresh the license.",
    "license_revoked": "Ask your license administrator for a new license key.",
    "device_revoked": "Ask your license administrator to re-admit this device, then activate.",
    "token_revoked": "Connect to the network and refresh the license.",
    "manifest_expired": "Connect to the network so the client can fetch a current manifest.",
    "manifest_missing": "Connect to the network so the client can fetch the signed manifest.",
    "manifest_rollback": "Connect to the network; the cached manifest is older than one seen.",
    "manifest_mismatch": "Refresh the license; the cached manifest is for another product.",
    "not_activated": "Activate this device with a license key.",
    "not_yet_valid": "Check the system clock; the license starts later than the current time.",
    "clock_rollback": "Set the system clock to the correct time, then refresh the license.",
}


class DecisionRules(NamedTuple):
    """Tolerances for `decide()`, in seconds."""

    # How far the clock may fall behind the trusted-time high-water mark, for
    # NTP corrections and small drifts between processes, before it counts as
    # set back.
    clock_leeway: int = 300
    # Accepted clock skew against the server for a token's `nbf`.
    not_before_leeway: int = 60
    # How long a manifest stays usable after its `exp` while the device cannot
    # fetch a newer one; past it, a withheld manifest cannot hide revocations.
    manifest_tolerance: int = 3 * 24 * 3600


DEFAULT_RULES = DecisionRules()


class Decision(NamedTuple):
    """The outcome of `decide()`: state, features, reason and when it next changes.

    A named tuple rather than a frozen dataclass: it is as immutable and about
    four times faster to build, which matters on the repeated-decision path.
    """

    state: DecisionState
    reason: str
    features: tuple[str, ...]
    remediation: str
    decided_at: int
    # Unix time at which `decide()` with the same inputs returns something
    # else; None if only new signed information can change it.
    next_boundary: int | None
    expires_at: int | None = None
    grace_until: int | None = None
    offline_until: int | None = None
    manifest_version: int | None = None
    overlay_release: int | None = None

    @property
    def licensed(self) -> bool:
        return self.state in (DecisionState.VALID, DecisionState.GRACE)

    def allows(self, feature: str) -> bool:
        return feature in self.features

    def same_outcome(self, other: "Decision | None") -> bool:
        """True when state, reason and features match; used to decide whether to notify."""
        return other is not None and (self.state, self.reason, self.features) == (
            other.state,
            other.reason,
            other.features,
        )

    def to_dict(self) -> dict[str, object]:
        data: dict[str, object] = self._asdict()
        data["state"] = self.state.value
        data["features"] = list(self.features)
        return data


def _earliest(*times: int | None) -> int | None:
    future = [t for t in times if t is not None]
    return min(future) if future else None


def decide(
    license: License | None,
    manifest: Manifest | None,
    overlay: Overlay | None,
    state: LocalState,
    now: int | float,
    *,
    rules: DecisionRules = DEFAULT_RULES,
) -> Decision:
    """Decide the license state at `now` (Unix seconds) from verified inputs."""
    now = int(now)
    fallback = manifest.fallback_list if manifest is not None else ()
    times: tuple[int | None, int | None, int | None] = (None, None, None)
    if license is not None:
        times = (license.expires_at, license.grace_until, license.offline_until)
    extra = (
        *times,
        manifest.version if manifest is not None else None,
        overlay.release if overlay else None,
    )

    def result(
        state_: DecisionState, reason: str, features: tuple[str, ...], next_boundary: int | None
    ) -> Decision:
        return Decision(state_, reason, features, REMEDIATIONS[reason], now, next_boundary, *extra)

    # 1. Trusted time: the local high-water mark and every signed iat in hand.
    trusted_time = max(
        state.trusted_time,
        license.issued_at if license else 0,
        manifest.issued_at if manifest else 0,
    )
    rollback_floor = trusted_time - rules.clock_leeway
    if now < rollback_floor:
        return result(DecisionState.INVALID, "clock_rollback", (), rollback_floor)

    # 2. No token. A device that validated before keeps the unlicensed set.
    validated_before = state.validated or license is not None
    if license is None:
        features = fallback if validated_before else ()
        return result(DecisionState.INVALID, "not_activated", features, None)

    # 3. The manifest must be present, current enough and about this license.
    if manifest is None:
        return result(DecisionState.INVALID, "manifest_missing", (), None)
    if manifest.tenant != license.tenant or manifest.product != license.product:
        return result(DecisionState.INVALID, "manifest_mismatch", (), None)
    if manifest.version < max(state.max_manifest_version, license.manifest_version):
        return result(DecisionState.INVALID, "manifest_rollback", (), None)

    # 4. Revocations apply offline as soon as a manifest lists them.
    revoked = manifest.revocations
    if license.grant_id in revoked.grants:
        return result(DecisionState.REVOKED, "license_revoked", fallback, None)
    if license.device_id in revoked.devices or license.key_thumbprint in revoked.devices:
        return result(DecisionState.REVOKED, "device_revoked", fallback, None)
    if license.token_id in revoked.token_ids:
        return result(DecisionState.REVOKED, "token_revoked", fallback, None)

    # 5. Freeze: a manifest that stopped updating cannot be trusted forever.
    manifest_stale_at = manifest.expires_at + rules.manifest_tolerance
    if now >= manifest_stale_at:
        return result(DecisionState.EXPIRED, "manifest_expired", fallback, None)

    # 6. Not yet valid (clock behind the server beyond the leeway).
    starts_at = license.not_before - rules.not_before_leeway
    if now < starts_at:
        return result(DecisionState.INVALID, "not_yet_valid", (), starts_at)

    # 7. Past the end of use: the grace end or the offline window, whichever is first.
    end_of_use = min(license.grace_until, license.offline_until)
    if now >= end_of_use:
        reason = (
            "offline_window_exceeded"
            if license.offline_until < license.grace_until
            else "license_expired"
        )
        return result(DecisionState.EXPIRED, reason, fallback, None)

    # 8 and 9. Grace after the paid term, valid before. The token's `exp` is
    # not a boundary here: past it, the device keeps working offline until
    # the offline window ends, which is what `offline_until` is for.
    entitled = license.entitlement_list
    valid_until = min(license.term_end, end_of_use)
    if now >= valid_until:
        return result(
            DecisionState.GRACE, "in_grace", entitled, _earliest(end_of_use, manifest_stale_at)
        )
    return result(
        DecisionState.VALID, "ok", entitled, _earliest(valid_until, end_of_use, manifest_stale_at)
    )
