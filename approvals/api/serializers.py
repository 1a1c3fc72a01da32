"""Input and output shapes of the change-request admin API."""

from rest_framework import serializers

from approvals.models import Approval, ChangeRequest


class ProblemSerializer(serializers.Serializer):  # type: ignore[type-arg]  # schema only
    type = serializers.CharField()
    title = serializers.CharField()
    status = serializers.IntegerField()
    detail = serializers.CharField()
    code = serializers.CharField()
    remediation = serializers.CharField()


class ApprovalSerializer(serializers.ModelSerializer):  # type: ignore[type-arg]  # untyped generic
    approver = serializers.CharField(source="approver.username", read_only=True)

    class Meta:
        model = Approval
        fields = ["approver", "decision", "reason", "revision", "created_at", "voided_at"]


class ChangeRequestSerializer(serializers.ModelSerializer):  # type: ignore[type-arg]  # untyped generic
    requester = serializers.CharField(source="requester.username", read_only=True)
    approvals = ApprovalSerializer(many=True, read_only=True)

    class Meta:
        model = ChangeRequest
        fields = [
            "id", "kind", "origin", "state", "revision", "payload", "reason", "requester",
            "grant", "term_end", "quorum_required", "schedule", "apply_after", "before", "after",
            "base", "created_at", "expires_at", "escalation_level", "apply_due_at", "decided_at",
            "decision_reason", "applied_at", "result", "failure_reason", "approvals",
        ]  # fmt: skip
        read_only_fields = fields


class ChangeRequestCreateSerializer(serializers.Serializer):  # type: ignore[type-arg]  # untyped
    kind = serializers.ChoiceField(choices=ChangeRequest.Kind.choices)
    payload = serializers.JSONField()
    reason = serializers.CharField(max_length=2000)
    schedule = serializers.ChoiceField(
        choices=ChangeRequest.Schedule.choices, default=ChangeRequest.Schedule.IMMEDIATE
    )
    apply_after = serializers.DateTimeField(required=False, allow_null=True, default=None)


class ChangeRequestEditSerializer(serializers.Serializer):  # type: ignore[type-arg]  # untyped
    payload = serializers.JSONField(required=False)
    reason = serializers.CharField(max_length=2000, required=False)
    schedule = serializers.ChoiceField(choices=ChangeRequest.Schedule.choices, required=False)
    apply_after = serializers.DateTimeField(required=False, allow_null=True)


class DecisionSerializer(serializers.Serializer):  # type: ignore[type-arg]  # untyped
    reason = serializers.CharField(max_length=2000, required=False, allow_blank=True, default="")


class WhatIfEventSerializer(serializers.Serializer):  # type: ignore[type-arg]  # untyped
    date = serializers.DateTimeField()
    grant_id = serializers.IntegerField()
    product_code = serializers.CharField()
    event = serializers.CharField()
    detail = serializers.CharField()
