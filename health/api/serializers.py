"""Input of `POST checkin`: strict, small and free of personal data.

Every object rejects fields it does not define, and every string and list
has a bound, so a check-in body stays well under the client body limit. A
typo in a client build therefore shows up as a `request_invalid` error
instead of being dropped silently.
"""

import re
from typing import Any

from rest_framework import serializers

DECISION_STATES = ("valid", "grace", "expired", "revoked", "invalid")
CODE_PATTERN = r"^[A-Za-z0-9_.:-]{1,64}\Z"
VERSION_PATTERN = r"^[0-9A-Za-z.+-]{1,32}\Z"
TIMING_NAME_PATTERN = r"^[a-z0-9_./-]{1,40}\Z"
MAX_TIMINGS = 16
MAX_APPLY_RESULTS = 16
MAX_TIMING_MS = 3_600_000.0


class StrictSerializer(serializers.Serializer):  # type: ignore[type-arg]  # untyped input dict
    """A serializer that rejects fields it does not declare."""

    def to_internal_value(self, data: Any) -> Any:
        if isinstance(data, dict):
            unknown = sorted(set(data) - set(self.fields))
            if unknown:
                raise serializers.ValidationError(
                    {name: ["Unknown field; remove it."] for name in unknown}
                )
        return super().to_internal_value(data)


class ClientDecisionSerializer(StrictSerializer):
    state = serializers.ChoiceField(choices=DECISION_STATES)
    reason = serializers.RegexField(CODE_PATTERN, required=False, allow_blank=True, default="")


class OverlayApplyResultSerializer(StrictSerializer):
    release = serializers.IntegerField(min_value=1)
    ok = serializers.BooleanField()
    error = serializers.RegexField(CODE_PATTERN, required=False, allow_null=True, default=None)


class CheckInSerializer(StrictSerializer):
    product = serializers.RegexField(r"^[a-z0-9][a-z0-9_-]{0,62}\Z")
    token_jti = serializers.CharField(max_length=64, allow_null=True, required=False, default=None)
    manifest_version = serializers.IntegerField(
        min_value=0, allow_null=True, required=False, default=None
    )
    overlay_release = serializers.IntegerField(
        min_value=0, allow_null=True, required=False, default=None
    )
    decision = ClientDecisionSerializer()
    client_version = serializers.RegexField(VERSION_PATTERN)
    timings_ms = serializers.DictField(
        child=serializers.FloatField(min_value=0, max_value=MAX_TIMING_MS),
        required=False,
        default=dict,
    )
    overlay_apply = OverlayApplyResultSerializer(many=True, required=False, default=list)

    def validate_timings_ms(self, value: dict[str, float]) -> dict[str, float]:
        if len(value) > MAX_TIMINGS:
            raise serializers.ValidationError(f"At most {MAX_TIMINGS} timings are accepted.")
        bad = sorted(name for name in value if not re.match(TIMING_NAME_PATTERN, name))
        if bad:
            raise serializers.ValidationError(
                f"Timing names {bad[:3]} are invalid; use 1 to 40 characters of a-z, 0-9, _ . / -."
            )
        return value

    def validate_overlay_apply(self, value: list[dict[str, Any]]) -> list[dict[str, Any]]:
        if len(value) > MAX_APPLY_RESULTS:
            raise serializers.ValidationError(
                f"At most {MAX_APPLY_RESULTS} apply results are accepted per check-in."
            )
        return value
