"""Request and response serializers of the licensing client and admin APIs."""

from typing import Any

from rest_framework import serializers

from licensing.models import Device, LicenseGrant, Manifest, Policy, Revocation, Seat


class StrictSerializer(serializers.Serializer):
    """A serializer that rejects fields it does not declare, at every nesting level."""

    def to_internal_value(self, data: Any) -> Any:
        if isinstance(data, dict):
            unknown = sorted(set(data) - set(self.fields))
            if unknown:
                raise serializers.ValidationError(
                    {name: ["Unknown field; remove it."] for name in unknown}
                )
        return super().to_internal_value(data)


class StrictCharField(serializers.CharField):
    """A string field that rejects numbers and booleans instead of converting them."""

    def to_internal_value(self, data: Any) -> str:
        if not isinstance(data, str):
            self.fail("invalid")
        return str(super().to_internal_value(data))


class ProductField(serializers.RegexField):
    def __init__(self, **kwargs: Any) -> None:
        super().__init__(r"^[a-z][a-z0-9_.-]{0,62}$", max_length=63, **kwargs)


class DeviceInfoSerializer(StrictSerializer):
    name = StrictCharField(max_length=200, allow_blank=True, required=False, default="")
    platform = StrictCharField(max_length=64, allow_blank=True, required=False, default="")


class ActivateRequestSerializer(StrictSerializer):
    """Activation with either a license key or an enrollment token, never both."""

    license_key = StrictCharField(max_length=100, trim_whitespace=True, required=False)
    enrollment_token = StrictCharField(
        max_length=200,
        required=False,
        help_text="Enrollment token shipped with the installer, in place of a license key.",
    )
    id_token = StrictCharField(
        max_length=8192,
        required=False,
        help_text="ID token of the signed-in user, bound to the device (with enrollment tokens).",
    )
    product = ProductField()
    device = DeviceInfoSerializer(required=False)

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        has_key = bool(attrs.get("license_key"))
        has_token = bool(attrs.get("enrollment_token"))
        if has_key == has_token:
            raise serializers.ValidationError(
                "Send exactly one of `license_key` and `enrollment_token`."
            )
        if attrs.get("id_token") and not has_token:
            raise serializers.ValidationError(
                {"id_token": ["An ID token is accepted only with an enrollment token."]}
            )
        return attrs


class ProductRequestSerializer(StrictSerializer):
    product = ProductField()


class OverlayPointerSerializer(serializers.Serializer):
    release = serializers.IntegerField()
    sha256 = serializers.CharField()


class TokenResponseSerializer(serializers.Serializer):
    token = serializers.CharField(help_text="License token (kp-license+jwt).")
    manifest = serializers.CharField(help_text="Signed manifest (kp-manifest+jwt).")
    overlay = OverlayPointerSerializer(allow_null=True)


class ActivateResponseSerializer(TokenResponseSerializer):
    device_id = serializers.CharField()


class ManifestResponseSerializer(serializers.Serializer):
    manifest = serializers.CharField(help_text="Signed manifest (kp-manifest+jwt).")


class KeysResponseSerializer(serializers.Serializer):
    keys = serializers.ListField(
        child=serializers.CharField(), help_text="Tenant key certificates (kp-key-cert+jwt)."
    )


class ProblemSerializer(serializers.Serializer):
    type = serializers.CharField()
    title = serializers.CharField()
    status = serializers.IntegerField()
    detail = serializers.CharField()
    code = serializers.CharField()
    remediation = serializers.CharField()


# --- Admin API ------------------------------------------------------------------


class PolicySerializer(serializers.ModelSerializer):
    class Meta:
        model = Policy
        fields = (
            "id",
            "name",
            "product_code",
            "seat_limit",
            "devices_per_user",
            "entitlements",
            "term_days",
            "renewal_cadence",
            "grace_days",
            "offline_tolerance_hours",
            "token_lifetime_hours",
            "allowed_regions",
            "compliance",
            "renewal_requires_approval",
            "seat_increase_requires_approval",
            "created_at",
        )
        read_only_fields = ("id", "created_at")


class PolicyCreateSerializer(StrictSerializer, serializers.ModelSerializer):
    entitlements = serializers.ListField(
        child=serializers.CharField(max_length=63), required=False, max_length=200
    )
    allowed_regions = serializers.ListField(
        child=serializers.CharField(max_length=32), required=False, max_length=200
    )
    compliance = serializers.DictField(required=False)

    class Meta:
        model = Policy
        fields = tuple(f for f in PolicySerializer.Meta.fields if f not in {"id", "created_at"})
        extra_kwargs = {
            "seat_limit": {"min_value": 1, "max_value": 1_000_000},
            "devices_per_user": {"min_value": 1, "max_value": 10_000},
            "term_days": {"min_value": 1, "max_value": 3650},
            "grace_days": {"min_value": 0, "max_value": 3650},
            "offline_tolerance_hours": {"min_value": 1, "max_value": 87600},
            "token_lifetime_hours": {"min_value": 1, "max_value": 87600},
        }
        # The model's database constraints are checked by full_clean in the service.
        validators: list[Any] = []

    def get_validators(self) -> list[Any]:
        return []


class GrantSerializer(serializers.ModelSerializer):
    product = serializers.CharField(source="policy.product_code", read_only=True)
    seats_in_use = serializers.SerializerMethodField()

    class Meta:
        model = LicenseGrant
        fields = (
            "id",
            "policy",
            "product",
            "seat_count",
            "seats_in_use",
            "term_start",
            "term_end",
            "status",
            "status_reason",
            "key_hint",
            "created_at",
        )

    def get_seats_in_use(self, grant: LicenseGrant) -> int:
        return grant.seats.filter(status=Seat.Status.ACTIVE).count()


class GrantCreateSerializer(StrictSerializer):
    policy = serializers.IntegerField(min_value=1, max_value=2**62)
    seat_count = serializers.IntegerField(min_value=1, max_value=1_000_000)
    term_start = serializers.DateTimeField(required=False)
    term_end = serializers.DateTimeField(required=False)


class GrantCreatedSerializer(GrantSerializer):
    license_key = StrictCharField(
        help_text="Shown only in this response; Keyplane stores only its hash."
    )

    class Meta(GrantSerializer.Meta):
        fields = (*GrantSerializer.Meta.fields, "license_key")


class DeviceSerializer(serializers.ModelSerializer):
    class Meta:
        model = Device
        fields = (
            "id",
            "name",
            "platform",
            "thumbprint",
            "group",
            "user",
            "status",
            "first_seen",
            "last_seen",
        )


class SeatSerializer(serializers.ModelSerializer):
    class Meta:
        model = Seat
        fields = (
            "id",
            "grant",
            "device",
            "status",
            "activated_at",
            "released_at",
            "released_reason",
        )


class ReasonSerializer(StrictSerializer):
    reason = StrictCharField(max_length=500)


class TokenRevokeSerializer(StrictSerializer):
    jti = StrictCharField(max_length=64)
    reason = StrictCharField(max_length=500)


class RevocationSerializer(serializers.ModelSerializer):
    class Meta:
        model = Revocation
        fields = ("id", "kind", "grant", "device", "token_jti", "reason", "created_at")


class ManifestSerializer(serializers.ModelSerializer):
    class Meta:
        model = Manifest
        fields = ("id", "product_code", "version", "etag", "reason", "created_at", "content")
