"""Local state: the device's memory of trusted time and versions seen.

The state holds what signed objects alone cannot prove on this machine: the
highest manifest version seen and the high-water mark of trusted time. It is
stored MACed with a key bound to the device key (see `cache.py`), so an
edited state file is detected and dropped. Dropping it is safe because
`decide()` also takes the `iat` and version floors from the signed token and
manifest themselves.

Trusted time has two parts. `signed_time` is the newest signed `iat` ever
seen and never decreases. `checked_time` is the latest local clock reading
the library accepted. A successful refresh resets `checked_time` to the
server's signed `iat`, so a clock that was once set far ahead recovers by
going online, while a clock set back offline cannot revive a license.
"""

from typing import Any, NamedTuple

from keyplane_client.tokens import License, Manifest


class LocalState(NamedTuple):
    """Device-local facts that `decide()` reads; every field has a safe default."""

    device_id: str | None = None
    signed_time: int = 0
    checked_time: int = 0
    max_manifest_version: int = 0
    last_refresh_at: int | None = None
    validated: bool = False

    # Bookkeeping for the refresher; `decide()` never reads these, so a failed
    # refresh cannot change a decision.
    refresh_failures: int = 0
    last_refresh_attempt_at: int | None = None

    @property
    def trusted_time(self) -> int:
        return max(self.signed_time, self.checked_time)

    def to_dict(self) -> dict[str, Any]:
        return self._asdict()

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "LocalState":
        """Build a state from stored JSON, ignoring unknown members from newer versions."""
        known = set(cls._fields)
        values = {name: value for name, value in data.items() if name in known}
        state = cls(**values)
        for name in ("signed_time", "checked_time", "max_manifest_version", "refresh_failures"):
            value = getattr(state, name)
            if isinstance(value, bool) or not isinstance(value, int):
                raise ValueError(f"state field {name!r} must be an integer, not {value!r}")
        return state


def state_after_refresh(
    state: LocalState, *, license: License, manifest: Manifest | None, now: int
) -> LocalState:
    """Return the state after new signed objects arrived from the server."""
    newest_signed = max(license.issued_at, manifest.issued_at if manifest else 0)
    return state._replace(
        signed_time=max(state.signed_time, newest_signed),
        checked_time=newest_signed,
        max_manifest_version=max(state.max_manifest_version, manifest.version if manifest else 0),
        device_id=license.device_id,
        last_refresh_at=license.issued_at,
        validated=True,
        refresh_failures=0,
        last_refresh_attempt_at=now,
    )


def state_after_manifest(state: LocalState, *, manifest: Manifest) -> LocalState:
    return state._replace(
        signed_time=max(state.signed_time, manifest.issued_at),
        max_manifest_version=max(state.max_manifest_version, manifest.version),
    )


def state_after_failure(state: LocalState, *, now: int) -> LocalState:
    return state._replace(refresh_failures=state.refresh_failures + 1, last_refresh_attempt_at=now)


def state_after_check(state: LocalState, *, now: int) -> LocalState:
    """Advance the last accepted clock reading; a reading in the past changes nothing."""
    if now <= state.checked_time:
        return state
    return state._replace(checked_time=now)
