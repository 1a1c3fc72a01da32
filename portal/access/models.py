"""Scoped API tokens for the tenant admin API.

A token is `kpt_` followed by 43 URL-safe characters (256 random bits). Only
its SHA-256 is stored: the token is high-entropy, so a fast unkeyed hash
cannot be reversed, and the lookup is a unique-index match. The token acts
for the user who owns it, so history and the decision log name that user,
and it carries scopes that limit what it can do even when the user could do
more.
"""

import hashlib
import secrets
from typing import ClassVar

from django.conf import settings
from django.db import models
from django.utils import timezone
from simple_history.models import HistoricalRecords

TOKEN_PREFIX = "kpt_"  # noqa: S105  # a public prefix, not a secret

# Scopes a token can hold; an admin API view names the one it needs.
SCOPES = {
    "policies:read": "Read license policies",
    "policies:write": "Create license policies",
    "grants:read": "Read license grants",
    "grants:write": "Create license grants",
    "devices:read": "Read devices and seats",
    "devices:write": "Change devices and release seats",
    "revocations:write": "Revoke grants, devices and tokens",
    "manifests:read": "Read manifest history",
    "overlays:read": "Read overlays and releases",
    "overlays:write": "Change overlays and publish releases",
    "approvals:read": "Read change requests and the renewal what-if",
    "approvals:write": "Raise, edit and withdraw change requests",
    "approvals:decide": "Approve, reject and apply change requests",
}


def api_token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def api_token_generate() -> str:
    return TOKEN_PREFIX + secrets.token_urlsafe(32)


class ApiToken(models.Model):
    """A bearer token for the admin API, owned by a tenant user, limited to scopes."""

    name = models.CharField(
        max_length=100, help_text="What the token is for, e.g. 'procurement sync'."
    )
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="api_tokens"
    )
    scopes = models.JSONField(default=list, help_text="Scope names, e.g. ['grants:write'].")
    token_hash = models.CharField(max_length=64, unique=True, editable=False)
    hint = models.CharField(max_length=8, editable=False, help_text="The token's last characters.")
    created_at = models.DateTimeField(auto_now_add=True)
    expires_at = models.DateTimeField(null=True, blank=True)

    revoked_at = models.DateTimeField(null=True, blank=True)
    last_used_at = models.DateTimeField(null=True, blank=True)

    history = HistoricalRecords(excluded_fields=["token_hash", "last_used_at"])

    class Meta:
        ordering: ClassVar = ["id"]
        verbose_name = "API token"

    def __str__(self) -> str:
        return f"{self.name} (…{self.hint})"

    @property
    def is_usable(self) -> bool:
        if self.revoked_at is not None:
            return False
        return self.expires_at is None or self.expires_at > timezone.now()
