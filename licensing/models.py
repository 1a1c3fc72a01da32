"""Licensing records of one tenant: policies, grants, devices, seats, keys, manifests.

Products live in the public catalog (portal.catalog), and tenant rows refer
to them by `product_code`. A tenant schema must survive the removal of a
catalog row, and a cross-schema foreign key would tie their life cycles.
"""

from typing import ClassVar

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import models
from django.db.models import F, Q
from simple_history.models import HistoricalRecords

from portal.catalog.models import KeyState

MAX_GRACE_DAYS = 90
CADENCE_DAYS = {"monthly": 28, "quarterly": 89, "annual": 365}


class Policy(models.Model):
    """Machine-readable license terms of one product, from which grants and tokens follow."""

    class Cadence(models.TextChoices):
        MONTHLY = "monthly", "Monthly"
        QUARTERLY = "quarterly", "Quarterly"
        ANNUAL = "annual", "Annual"

    name = models.CharField(max_length=200)
    product_code = models.CharField(max_length=63, db_index=True)
    seat_limit = models.PositiveIntegerField(
        default=10, help_text="Maximum seats a single grant of this policy may hold."
    )
    devices_per_user = models.PositiveIntegerField(
        default=3, help_text="Maximum active devices assigned to one user."
    )
    entitlements = models.JSONField(
        default=list, blank=True, help_text="Feature codes of the product this policy grants."
    )
    term_days = models.PositiveIntegerField(default=365, help_text="Length of one term in days.")
    renewal_cadence = models.CharField(
        max_length=16, choices=Cadence.choices, default=Cadence.ANNUAL
    )
    grace_days = models.PositiveIntegerField(
        default=14,
        help_text=f"Days a client keeps working after expiry (at most {MAX_GRACE_DAYS}).",
    )
    offline_tolerance_hours = models.PositiveIntegerField(
        default=168, help_text="Hours a client may run without reaching the server."
    )
    token_lifetime_hours = models.PositiveIntegerField(
        default=24, help_text="Lifetime of one license token in hours."
    )
    allowed_regions = models.JSONField(
        default=list, blank=True, help_text="Region codes where the product may run; empty: any."
    )
    compliance = models.JSONField(
        default=dict, blank=True, help_text="Further compliance constraints passed to clients."
    )
    renewal_requires_approval = models.BooleanField(default=True)
    seat_increase_requires_approval = models.BooleanField(default=True)
    created_at = models.DateTimeField(auto_now_add=True)

    history = HistoricalRecords()

    class Meta:
        ordering: ClassVar = ["id"]
        verbose_name_plural = "policies"
        constraints: ClassVar = [
            models.CheckConstraint(
                condition=Q(seat_limit__gte=1),
                name="licensing_policy_seat_limit_positive",
                violation_error_message="seat_limit must be at least 1.",
            ),
            models.CheckConstraint(
                condition=Q(devices_per_user__gte=1),
                name="licensing_policy_devices_per_user_positive",
                violation_error_message="devices_per_user must be at least 1.",
            ),
            models.CheckConstraint(
                condition=Q(grace_days__lte=MAX_GRACE_DAYS) & Q(grace_days__lte=F("term_days")),
                name="licensing_policy_grace_within_limits",
                violation_error_message=(
                    f"grace_days must be at most {MAX_GRACE_DAYS} and at most term_days."
                ),
            ),
            models.CheckConstraint(
                condition=Q(token_lifetime_hours__gte=1)
                & Q(token_lifetime_hours__lte=F("offline_tolerance_hours")),
                name="licensing_policy_token_within_offline_window",
                violation_error_message=(
                    "token_lifetime_hours must be between 1 and offline_tolerance_hours."
                ),
            ),
        ]

    def __str__(self) -> str:
        return f"{self.name} ({self.product_code})"

    def clean(self) -> None:
        errors: dict[str, str] = {}
        from portal.catalog.models import Product

        product = Product.objects.filter(code=self.product_code).first()
        if product is None:
            errors["product_code"] = f"No product has the code {self.product_code!r}."
        if not isinstance(self.entitlements, list) or not all(
            isinstance(code, str) for code in self.entitlements
        ):
            errors["entitlements"] = "Enter a JSON list of feature codes."
        elif product is not None:
            unknown = sorted(set(self.entitlements) - product.feature_codes())
            if unknown:
                errors["entitlements"] = (
                    f"Product {product.code!r} has no features {unknown}; "
                    "remove them or add them to the catalog."
                )
        if not isinstance(self.allowed_regions, list) or not all(
            isinstance(code, str) for code in self.allowed_regions
        ):
            errors["allowed_regions"] = "Enter a JSON list of region codes."
        if not isinstance(self.compliance, dict):
            errors["compliance"] = "Enter a JSON object."
        if self.grace_days is not None and self.grace_days > MAX_GRACE_DAYS:
            errors["grace_days"] = (
                f"grace_days {self.grace_days} exceeds the allowed maximum of {MAX_GRACE_DAYS}."
            )
        elif (
            self.grace_days is not None
            and self.term_days is not None
            and self.grace_days > self.term_days
        ):
            errors["grace_days"] = (
                f"grace_days {self.grace_days} is longer than term_days {self.term_days}."
            )
        if (
            self.token_lifetime_hours is not None
            and self.offline_tolerance_hours is not None
            and self.token_lifetime_hours > self.offline_tolerance_hours
        ):
            errors["token_lifetime_hours"] = (
                f"token_lifetime_hours {self.token_lifetime_hours} exceeds "
                f"offline_tolerance_hours {self.offline_tolerance_hours}; a token must not "
                "outlive the offline window."
            )
        minimum_term = CADENCE_DAYS.get(self.renewal_cadence)
        if minimum_term and self.term_days is not None and self.term_days < minimum_term:
            errors["term_days"] = (
                f"term_days {self.term_days} is shorter than one {self.renewal_cadence} "
                f"renewal period ({minimum_term} days)."
            )
        if errors:
            raise ValidationError(errors)


class LicenseGrant(models.Model):
    """A tenant's license for one policy: a term, a seat count and a one-time license key.

    Only an HMAC of the license key is stored (see licensing/licensekeys.py),
    so the key itself is shown once, when the grant is created.
    """

    class Status(models.TextChoices):
        ACTIVE = "active", "Active"
        SUSPENDED = "suspended", "Suspended"
        EXPIRED = "expired", "Expired"
        REVOKED = "revoked", "Revoked"

    # A policy with grants cannot be deleted: tokens and audits refer to its terms.
    policy = models.ForeignKey(Policy, on_delete=models.PROTECT, related_name="grants")
    seat_count = models.PositiveIntegerField()
    term_start = models.DateTimeField()
    term_end = models.DateTimeField()
    key_hash = models.CharField(max_length=64, unique=True, editable=False)
    key_hint = models.CharField(
        max_length=16, editable=False, help_text="The key's last characters, to tell keys apart."
    )
    created_at = models.DateTimeField(auto_now_add=True)

    status = models.CharField(max_length=16, choices=Status.choices, default=Status.ACTIVE)
    status_reason = models.CharField(max_length=500, blank=True)

    history = HistoricalRecords(excluded_fields=["key_hash"])

    class Meta:
        ordering: ClassVar = ["id"]
        constraints: ClassVar = [
            models.CheckConstraint(
                condition=~Q(status="active") | Q(seat_count__gte=1),
                name="licensing_grant_active_has_seats",
                violation_error_message="An active grant needs a seat_count of at least 1.",
            ),
            models.CheckConstraint(
                condition=Q(term_end__gt=F("term_start")),
                name="licensing_grant_term_ordered",
                violation_error_message="term_end must be after term_start.",
            ),
        ]

    def __str__(self) -> str:
        return f"grant {self.pk} ({self.policy.product_code}, …{self.key_hint})"

    def clean(self) -> None:
        errors: dict[str, str] = {}
        if self.status == self.Status.ACTIVE and not self.seat_count:
            errors["seat_count"] = "seat_count must be at least 1 on an active grant."
        if self.policy_id and self.seat_count and self.seat_count > self.policy.seat_limit:
            errors["seat_count"] = (
                f"seat_count {self.seat_count} exceeds the policy's seat_limit "
                f"{self.policy.seat_limit}."
            )
        if self.term_start and self.term_end and self.term_end <= self.term_start:
            errors["term_end"] = "term_end must be after term_start."
        if errors:
            raise ValidationError(errors)


class DeviceGroup(models.Model):
    """A named set of devices, used for overlays and rollouts."""

    name = models.CharField(max_length=100, unique=True)
    description = models.TextField(blank=True)

    history = HistoricalRecords()

    class Meta:
        ordering: ClassVar = ["name"]

    def __str__(self) -> str:
        return self.name


class Device(models.Model):
    """A desktop installation, identified by its own Ed25519 key pair."""

    class Status(models.TextChoices):
        ACTIVE = "active", "Active"
        REVOKED = "revoked", "Revoked"

    public_jwk = models.JSONField(editable=False)
    thumbprint = models.CharField(
        max_length=64, unique=True, editable=False, help_text="RFC 7638 SHA-256 thumbprint."
    )
    name = models.CharField(max_length=200, blank=True)
    platform = models.CharField(max_length=64, blank=True)
    group = models.ForeignKey(
        DeviceGroup, null=True, blank=True, on_delete=models.SET_NULL, related_name="devices"
    )
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="devices",
    )
    first_seen = models.DateTimeField(auto_now_add=True)

    last_seen = models.DateTimeField(null=True, blank=True)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.ACTIVE)

    history = HistoricalRecords()

    class Meta:
        ordering: ClassVar = ["id"]

    def __str__(self) -> str:
        return f"{self.name or 'device'} ({self.thumbprint[:10]})"


class Seat(models.Model):
    """The assignment of one grant seat to one device."""

    class Status(models.TextChoices):
        ACTIVE = "active", "Active"
        RELEASED = "released", "Released"

    grant = models.ForeignKey(LicenseGrant, on_delete=models.CASCADE, related_name="seats")
    device = models.ForeignKey(Device, on_delete=models.CASCADE, related_name="seats")
    activated_at = models.DateTimeField(auto_now_add=True)

    status = models.CharField(max_length=16, choices=Status.choices, default=Status.ACTIVE)
    released_at = models.DateTimeField(null=True, blank=True)
    released_reason = models.CharField(max_length=500, blank=True)

    history = HistoricalRecords()

    class Meta:
        ordering: ClassVar = ["id"]
        constraints: ClassVar = [
            models.UniqueConstraint(
                fields=["grant", "device"],
                condition=Q(status="active"),
                name="licensing_seat_one_active_per_device",
                violation_error_message="The device already holds an active seat of this grant.",
            )
        ]

    def __str__(self) -> str:
        return f"seat {self.pk} (grant {self.grant_id}, device {self.device_id}, {self.status})"


class IssuedToken(models.Model):
    """A license token that was issued; kept to revoke it by `jti` and to retire keys."""

    jti = models.CharField(max_length=64, unique=True)
    grant = models.ForeignKey(LicenseGrant, on_delete=models.CASCADE, related_name="tokens")
    device = models.ForeignKey(Device, on_delete=models.CASCADE, related_name="tokens")
    kid = models.CharField(max_length=64)
    issued_at = models.DateTimeField()
    expires_at = models.DateTimeField()

    class Meta:
        ordering: ClassVar = ["id"]
        indexes: ClassVar = [models.Index(fields=["kid", "expires_at"])]

    def __str__(self) -> str:
        return f"token {self.jti}"


class Revocation(models.Model):
    """A revoked grant, device or token id; every manifest published afterwards lists it."""

    class Kind(models.TextChoices):
        GRANT = "grant", "License grant"
        DEVICE = "device", "Device"
        TOKEN = "token", "Token"

    kind = models.CharField(max_length=16, choices=Kind.choices)
    grant = models.ForeignKey(
        LicenseGrant, null=True, blank=True, on_delete=models.CASCADE, related_name="revocations"
    )
    device = models.ForeignKey(
        Device, null=True, blank=True, on_delete=models.CASCADE, related_name="revocations"
    )
    token_jti = models.CharField(max_length=64, blank=True)
    reason = models.CharField(max_length=500)
    created_at = models.DateTimeField(auto_now_add=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )

    history = HistoricalRecords()

    class Meta:
        ordering: ClassVar = ["id"]
        constraints: ClassVar = [
            models.CheckConstraint(
                condition=(Q(kind="grant") & Q(grant__isnull=False))
                | (Q(kind="device") & Q(device__isnull=False))
                | (Q(kind="token") & ~Q(token_jti="")),
                name="licensing_revocation_target_matches_kind",
                violation_error_message="A revocation names exactly the target of its kind.",
            ),
            models.UniqueConstraint(
                fields=["kind", "grant", "device", "token_jti"],
                name="licensing_revocation_unique_target",
                nulls_distinct=False,
                violation_error_message="This target is already revoked.",
            ),
        ]

    def __str__(self) -> str:
        target = self.grant_id or self.device_id or self.token_jti
        return f"revoked {self.kind} {target}"


class SigningKey(models.Model):
    """A tenant signing key (Ed25519) certified by the platform root key."""

    kid = models.CharField(max_length=64, unique=True)
    public_key = models.BinaryField(help_text="Raw 32-byte Ed25519 public key.")
    private_key_envelope = models.BinaryField(editable=False)
    certificate = models.TextField(help_text="The kp-key-cert+jwt issued by the root key.")
    created_at = models.DateTimeField(auto_now_add=True)

    state = models.CharField(max_length=16, choices=KeyState.choices, default=KeyState.ACTIVE)
    state_changed_at = models.DateTimeField(auto_now_add=True)
    verify_until = models.DateTimeField(
        null=True, blank=True, help_text="A retiring key is published until this time."
    )

    history = HistoricalRecords(excluded_fields=["private_key_envelope"])

    class Meta:
        ordering: ClassVar = ["-created_at"]
        constraints: ClassVar = [
            models.UniqueConstraint(
                fields=["state"],
                condition=Q(state="active"),
                name="licensing_signingkey_one_active",
                violation_error_message="Only one tenant signing key can be active.",
            )
        ]

    def __str__(self) -> str:
        return f"signing key {self.kid} ({self.state})"


class Manifest(models.Model):
    """One signed version of a product's manifest; versions only increase."""

    product_code = models.CharField(max_length=63)
    version = models.PositiveIntegerField()
    content = models.JSONField()
    jws = models.TextField()
    etag = models.CharField(max_length=80)
    reason = models.CharField(max_length=500)
    created_at = models.DateTimeField(auto_now_add=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )

    class Meta:
        ordering: ClassVar = ["product_code", "-version"]
        constraints: ClassVar = [
            models.UniqueConstraint(
                fields=["product_code", "version"],
                name="licensing_manifest_unique_version",
                violation_error_message="This manifest version already exists.",
            )
        ]

    def __str__(self) -> str:
        return f"manifest {self.product_code} v{self.version}"


class IdempotencyRecord(models.Model):
    """The first response to an activation with an `Idempotency-Key`, returned to retries."""

    key = models.CharField(max_length=200)
    thumbprint = models.CharField(max_length=64)
    request_hash = models.CharField(
        max_length=64, blank=True, help_text="SHA-256 of the request body, to detect a reused key."
    )
    status_code = models.PositiveSmallIntegerField()
    body = models.JSONField()
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints: ClassVar = [
            models.UniqueConstraint(
                fields=["key", "thumbprint"], name="licensing_idempotency_unique_key"
            )
        ]

    def __str__(self) -> str:
        return f"idempotency {self.key}"
