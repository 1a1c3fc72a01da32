"""Just-in-time provisioning of federated users and their roles.

A user who signs in through the tenant's provider is found by the link
(`iss`, `sub`) in this tenant's schema, or created on the first sign-in.
Users live in each tenant's own schema, so an account with the same e-mail
at two tenants is two unrelated users, and a link made in one tenant is
unknown in the other. Roles are recomputed from the provider's groups on
every sign-in: a user removed from all mapped groups loses the roles and
the admin access at the next sign-in and is refused.
"""

import logging
from typing import Any

from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group, User
from django.db import transaction
from django.utils import timezone

from identity.exceptions import (
    OidcEmailDomainNotAllowed,
    OidcNoRole,
    OidcUserInactive,
    OidcUsernameTaken,
)
from identity.models import FederatedIdentity, RoleMapping
from identity.platform.models import TenantOidcConfig
from portal.access.roles import ROLES

logger = logging.getLogger(__name__)


def groups_from_claims(claims: dict[str, Any], groups_claim: str) -> list[str]:
    """Return the provider groups in `claims`, accepting a list or one space-separated string."""
    value = claims.get(groups_claim)
    if isinstance(value, str):
        return sorted(set(value.split()))
    if isinstance(value, list):
        return sorted({item for item in value if isinstance(item, str) and item})
    return []


def roles_for_groups(groups: list[str]) -> set[str]:
    """Return the Keyplane roles that this tenant's mappings grant to `groups`."""
    mapped = RoleMapping.objects.filter(idp_group__in=groups).values_list("role", flat=True)
    return {role for role in mapped if role in ROLES}


def _roles_apply(user: User, roles: set[str]) -> None:
    """Set the user's role groups to exactly `roles`; other groups stay as they are."""
    current = set(user.groups.filter(name__in=ROLES).values_list("name", flat=True))
    removed = current - roles
    added = roles - current
    if removed:
        user.groups.remove(*Group.objects.filter(name__in=removed))
    if added:
        missing = added - set(Group.objects.filter(name__in=added).values_list("name", flat=True))
        for name in missing:
            Group.objects.get_or_create(name=name)
        user.groups.add(*Group.objects.filter(name__in=added))


def _allowed_email(config: TenantOidcConfig, claims: dict[str, Any]) -> str:
    """Return the claims' e-mail, lower-cased, if verified and in an allowed domain."""
    email = str(claims.get("email") or "").strip().lower()
    if claims.get("email_verified") is False:
        raise OidcEmailDomainNotAllowed(
            f"The provider marks the e-mail {email!r} as unverified.",
            remediation="Verify the e-mail address at your identity provider, then sign in again.",
        )
    if not email or not config.email_domain_allowed(email):
        domain = email.rpartition("@")[2] or "(no e-mail)"
        raise OidcEmailDomainNotAllowed(
            f"The e-mail domain {domain!r} is not allowed for tenant {config.tenant.slug!r}."
        )
    return email


def _link_lock_or_create(
    config: TenantOidcConfig, claims: dict[str, Any], email: str
) -> FederatedIdentity:
    """Lock the link of (`iss`, `sub`), or create a user without roles and its link.

    Runs inside the caller's transaction.
    """
    link = (
        FederatedIdentity.objects.select_for_update()
        .select_related("user")
        .filter(issuer=config.issuer, subject=str(claims["sub"]))
        .first()
    )
    if link is not None:
        return link
    user_model = get_user_model()
    if user_model.objects.filter(username=email).exists():
        raise OidcUsernameTaken(
            f"A local user named {email!r} already exists in this tenant, so the "
            "provider account cannot be linked to it automatically."
        )
    user = user_model.objects.create_user(username=email, email=email)
    user.set_unusable_password()
    user.save(update_fields=["password"])
    link = FederatedIdentity.objects.create(
        user=user, issuer=config.issuer, subject=str(claims["sub"])
    )
    logger.info("identity.user_provisioned user=%s", user.pk)
    return link


def federated_user_signin(*, config: TenantOidcConfig, claims: dict[str, Any]) -> User:
    """Find or create the user of validated ID token `claims` and apply the mapped roles.

    1. Check the e-mail domain against the tenant's allowed domains.
    2. Lock the user linked to (`iss`, `sub`), or create the user and the link.
    3. Replace the user's role groups with those the provider groups map to;
       `is_staff` follows whether any role remains.
    4. Refuse a deactivated user or one without any role; step 3 is saved even then.
    """
    email = _allowed_email(config, claims)
    groups = groups_from_claims(claims, config.groups_claim)
    roles = roles_for_groups(groups)
    with transaction.atomic():
        link = _link_lock_or_create(config, claims, email)
        user = link.user

        _roles_apply(user, roles)
        user.is_staff = bool(roles)
        user.email = email
        user.first_name = str(claims.get("given_name") or user.first_name)[:150]
        user.last_name = str(claims.get("family_name") or user.last_name)[:150]
        user.save(update_fields=["is_staff", "email", "first_name", "last_name"])
        link.last_signin_at = timezone.now()
        link.last_groups = groups
        link.save(update_fields=["last_signin_at", "last_groups"])

    if not user.is_active:
        raise OidcUserInactive(f"User {user.pk} is deactivated in this tenant.")
    if not roles:
        raise OidcNoRole(
            f"None of the provider groups {groups!r} maps to a role in tenant "
            f"{config.tenant.slug!r}.",
        )
    return user


def federated_user_for_device(*, config: TenantOidcConfig, claims: dict[str, Any]) -> User:
    """Find or create the user of validated ID token `claims`, to bind to a device.

    Unlike an admin sign-in, this neither needs nor changes roles: the user of
    a desktop device may have no admin role at all.
    """
    email = _allowed_email(config, claims)
    with transaction.atomic():
        user = _link_lock_or_create(config, claims, email).user
    if not user.is_active:
        raise OidcUserInactive(f"User {user.pk} is deactivated in this tenant.")
    return user
