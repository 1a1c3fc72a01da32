"""An OpenFeature provider backed by a `Client` (install the `openfeature` extra).

    from openfeature import api
    from keyplane_client.openfeature_provider import KeyplaneProvider

    api.set_provider(KeyplaneProvider(client))
    flags = api.get_client()
    flags.get_boolean_value("export", False)       # licensed feature
    flags.get_string_value("ui.theme", "light")    # overlay value by dotted path

Boolean flags named like a feature of the product (in the manifest's
features, its unlicensed set or the token's entitlements) resolve to whether
the current decision allows that feature. Every other key is a dotted path
into the verified overlay configuration. Unknown keys return the default
with `FLAG_NOT_FOUND`, values of another type with `TYPE_MISMATCH`. A change
of decision or overlay emits `PROVIDER_CONFIGURATION_CHANGED`.

Every evaluation calls `Client.decision()`, which runs the offline
`decide()` and never touches the network.
"""

from collections.abc import Mapping, Sequence
from typing import Any, TypeVar

from openfeature.evaluation_context import EvaluationContext
from openfeature.event import ProviderEventDetails
from openfeature.exception import ErrorCode
from openfeature.flag_evaluation import FlagResolutionDetails, Reason
from openfeature.provider import AbstractProvider, Metadata

from keyplane_client.client import Client
from keyplane_client.decision import Decision
from keyplane_client.tokens import Overlay

T = TypeVar("T")
_MISSING = object()


class KeyplaneProvider(AbstractProvider):
    """Resolve flags from the license decision and overlay values of a `Client`."""

    def __init__(self, client: Client) -> None:
        super().__init__()
        self.client = client
        client.on_decision_change(self._decision_changed)
        client.on_overlay_change(self._overlay_changed)

    def get_metadata(self) -> Metadata:
        return Metadata(name="keyplane")

    # Change notifications.

    def _decision_changed(self, decision: Decision, previous: Decision | None) -> None:
        before = set(previous.features) if previous else set()
        changed = sorted(before.symmetric_difference(decision.features))
        self._emit_changed(
            changed, f"license decision is now {decision.state.value} ({decision.reason})"
        )

    def _overlay_changed(self, overlay: Overlay | None, previous: Overlay | None) -> None:
        new_values = overlay.values if overlay else {}
        old_values = previous.values if previous else {}
        changed = sorted(
            key
            for key in set(new_values) | set(old_values)
            if new_values.get(key) != old_values.get(key)
        )
        release = overlay.release if overlay else None
        self._emit_changed(changed, f"overlay release is now {release}")

    def _emit_changed(self, flags: list[str], message: str) -> None:
        if hasattr(self, "_on_emit"):
            self.emit_provider_configuration_changed(
                ProviderEventDetails(flags_changed=flags, message=message)
            )

    # Resolution.

    def _known_features(self, decision: Decision) -> set[str]:
        known = set(decision.features)
        if self.client.manifest is not None:
            known |= self.client.manifest.features | self.client.manifest.fallback_features
        if self.client.license is not None:
            known |= self.client.license.entitlements
        return known

    def _overlay_value(self, path: str) -> Any:
        value: Any = self.client.overlay.values if self.client.overlay else _MISSING
        for part in path.split("."):
            if not isinstance(value, Mapping) or part not in value:
                return _MISSING
            value = value[part]
        return value

    def _resolve(
        self, flag_key: str, default: T, expected: type | tuple[type, ...]
    ) -> FlagResolutionDetails[T]:
        decision = self.client.decision()
        metadata: dict[str, str | int] = {
            "license_state": decision.state.value,
            "license_reason": decision.reason,
        }
        if expected is bool and flag_key in self._known_features(decision):
            allowed = decision.allows(flag_key)
            return FlagResolutionDetails(
                value=allowed,  # type: ignore[arg-type]  # T is bool on this path
                reason=Reason.TARGETING_MATCH,
                variant="on" if allowed else "off",
                flag_metadata=metadata,
            )
        value = self._overlay_value(flag_key)
        if value is _MISSING:
            return FlagResolutionDetails(
                value=default,
                reason=Reason.ERROR,
                error_code=ErrorCode.FLAG_NOT_FOUND,
                error_message=(
                    f"{flag_key!r} is neither a feature of the product nor an overlay value"
                ),
                flag_metadata=metadata,
            )
        # bool is an int subclass; a float flag accepts an integer value.
        type_ok = isinstance(value, expected) and not (
            expected in (int, float) and isinstance(value, bool)
        )
        if not type_ok:
            return FlagResolutionDetails(
                value=default,
                reason=Reason.ERROR,
                error_code=ErrorCode.TYPE_MISMATCH,
                error_message=f"overlay value {flag_key!r} is a {type(value).__name__}",
                flag_metadata=metadata,
            )
        if self.client.overlay is not None:
            metadata["overlay_release"] = self.client.overlay.release
        if expected == (int, float):
            value = float(value)
        return FlagResolutionDetails(value=value, reason=Reason.STATIC, flag_metadata=metadata)

    def resolve_boolean_details(
        self,
        flag_key: str,
        default_value: bool,
        evaluation_context: EvaluationContext | None = None,
    ) -> FlagResolutionDetails[bool]:
        return self._resolve(flag_key, default_value, bool)

    def resolve_string_details(
        self, flag_key: str, default_value: str, evaluation_context: EvaluationContext | None = None
    ) -> FlagResolutionDetails[str]:
        return self._resolve(flag_key, default_value, str)

    def resolve_integer_details(
        self, flag_key: str, default_value: int, evaluation_context: EvaluationContext | None = None
    ) -> FlagResolutionDetails[int]:
        return self._resolve(flag_key, default_value, int)

    def resolve_float_details(
        self,
        flag_key: str,
        default_value: float,
        evaluation_context: EvaluationContext | None = None,
    ) -> FlagResolutionDetails[float]:
        return self._resolve(flag_key, default_value, (int, float))

    def resolve_object_details(
        self,
        flag_key: str,
        default_value: Sequence[Any] | Mapping[str, Any],
        evaluation_context: EvaluationContext | None = None,
    ) -> FlagResolutionDetails[Sequence[Any] | Mapping[str, Any]]:
        return self._resolve(flag_key, default_value, (Mapping, list))
