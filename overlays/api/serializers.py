"""Request and response serializers of the overlay client and admin APIs."""

from typing import Any

from rest_framework import serializers

from licensing.api.serializers import ProductField, StrictCharField, StrictSerializer


class ObjectField(serializers.JSONField):
    """A JSON value that must be an object (a merge patch)."""

    def to_internal_value(self, data: Any) -> Any:
        value = super().to_internal_value(data)
        if not isinstance(value, dict):
            raise serializers.ValidationError("Must be a JSON object.")
        return value


class GroupEntrySerializer(StrictSerializer):
    group = StrictCharField(max_length=100)
    position = serializers.IntegerField(min_value=0, required=False, default=100)
    overlay = ObjectField()


class DraftSerializer(StrictSerializer):
    tenant = ObjectField(required=False)
    groups = GroupEntrySerializer(many=True, required=False)


class StepSerializer(StrictSerializer):
    percent = serializers.FloatField(min_value=0, max_value=100)
    groups = serializers.ListField(child=StrictCharField(max_length=100), required=False)


class PublishSerializer(DraftSerializer):
    base_release = serializers.IntegerField(min_value=1, allow_null=True)
    steps = StepSerializer(many=True, required=False)
    promote_every_minutes = serializers.IntegerField(min_value=1, required=False, allow_null=True)
    reason = StrictCharField(max_length=500, required=False, allow_blank=True, default="")


class RollbackSerializer(StrictSerializer):
    to_release = serializers.IntegerField(min_value=1)
    reason = StrictCharField(max_length=500, required=False, allow_blank=True, default="")


class PromoteSerializer(StrictSerializer):
    ignore_window = serializers.BooleanField(required=False, default=False)


class ReleaseSerializer(serializers.Serializer[Any]):
    number = serializers.IntegerField()
    sha256 = serializers.CharField()
    kind = serializers.CharField()
    restores_number = serializers.IntegerField(allow_null=True)
    base_number = serializers.SerializerMethodField()
    schema_version = serializers.IntegerField()
    reason = serializers.CharField()
    created_at = serializers.DateTimeField()
    rollout = serializers.SerializerMethodField()

    def get_base_number(self, release: Any) -> int | None:
        return release.base.number if release.base_id else None

    def get_rollout(self, release: Any) -> dict[str, Any] | None:
        rollout = getattr(release, "rollout", None)
        if rollout is None:
            return None
        return {
            "steps": rollout.steps,
            "step_index": rollout.step_index,
            "status": rollout.status,
            "promote_every_minutes": rollout.promote_every_minutes,
        }


class OverlayQuerySerializer(StrictSerializer):
    product = ProductField()


class ApplyReportSerializer(StrictSerializer):
    product = ProductField()
    release = serializers.IntegerField(min_value=1)
    ok = serializers.BooleanField()
    code = StrictCharField(max_length=64, required=False, allow_blank=True, default="")


class OverlayResponseSerializer(serializers.Serializer[Any]):
    release = serializers.IntegerField()
    overlay = serializers.CharField(help_text="The kp-overlay+jwt of this device's configuration.")
