"""Tenant roles as Django groups with permissions.

A role grants model permissions by app label and action. Rules name models
by app label and model name, with `*` for every model of the app, so a model
added later is covered the next time `roles_sync` runs (after every tenant
migration, through `post_migrate`). Permissions that no model action covers,
such as approving a change request, are named explicitly by codename.
"""

import logging
from dataclasses import dataclass

from django.apps import apps as django_apps
from django.contrib.auth.models import Group, Permission
from django.db import connection
from django_tenants.utils import get_public_schema_name

logger = logging.getLogger(__name__)

PROCUREMENT_ADMIN = "Procurement admin"
IT_ADMIN = "IT admin"
APPROVER = "Approver"
AUDITOR = "Auditor"

ALL_ACTIONS = ("view", "add", "change", "delete")


@dataclass(frozen=True)
class PermissionRule:
    app_label: str
    model: str  # a model name, or "*" for all models of the app
    actions: tuple[str, ...]


ROLES: dict[str, tuple[PermissionRule, ...]] = {
    PROCUREMENT_ADMIN: (
        PermissionRule("licensing", "policy", ALL_ACTIONS),
        PermissionRule("licensing", "licensegrant", ALL_ACTIONS),
        PermissionRule("licensing", "seat", ("view", "change")),
        PermissionRule("licensing", "*", ("view",)),
        PermissionRule("approvals", "*", ("view", "add", "change")),
        PermissionRule("health", "*", ("view",)),
    ),
    IT_ADMIN: (
        PermissionRule("licensing", "device", ALL_ACTIONS),
        PermissionRule("licensing", "devicegroup", ALL_ACTIONS),
        PermissionRule("licensing", "revocation", ALL_ACTIONS),
        PermissionRule("licensing", "seat", ("view", "change")),
        PermissionRule("licensing", "*", ("view",)),
        PermissionRule("overlays", "*", ALL_ACTIONS),
        PermissionRule("approvals", "*", ("view", "add", "change")),
        PermissionRule("health", "*", ALL_ACTIONS),
        PermissionRule("identity", "enrollmenttoken", ALL_ACTIONS),
        PermissionRule("identity", "*", ("view",)),
    ),
    APPROVER: (
        PermissionRule("approvals", "*", ("view", "change")),
        PermissionRule("licensing", "*", ("view",)),
        PermissionRule("overlays", "*", ("view",)),
    ),
    AUDITOR: (
        PermissionRule("licensing", "*", ("view",)),
        PermissionRule("overlays", "*", ("view",)),
        PermissionRule("approvals", "*", ("view",)),
        PermissionRule("audit", "*", ("view",)),
        PermissionRule("health", "*", ("view",)),
        PermissionRule("access", "*", ("view",)),
        PermissionRule("identity", "*", ("view",)),
    ),
}

# Extra codenames per role for permissions that are not model actions.
EXTRA_CODENAMES: dict[str, tuple[str, ...]] = {
    APPROVER: ("approve_changerequest",),
    AUDITOR: ("verify_decisionlog", "export_decisionlog"),
}


def _permissions_for(rules: tuple[PermissionRule, ...]) -> list[Permission]:
    selected: list[Permission] = []
    for rule in rules:
        queryset = Permission.objects.filter(content_type__app_label=rule.app_label)
        if rule.model != "*":
            queryset = queryset.filter(content_type__model=rule.model)
        codenames = [p for p in queryset if p.codename.split("_", 1)[0] in rule.actions]
        selected.extend(codenames)
    return selected


def roles_sync() -> None:
    """Create or update the role groups in the current tenant schema."""
    for name, rules in ROLES.items():
        group, _ = Group.objects.get_or_create(name=name)
        permissions = _permissions_for(rules)
        extra = EXTRA_CODENAMES.get(name, ())
        if extra:
            permissions.extend(Permission.objects.filter(codename__in=extra))
        group.permissions.set(permissions)
    logger.info("roles.sync schema=%s roles=%d", connection.schema_name, len(ROLES))


def sync_roles_after_migrate(sender: object, **kwargs: object) -> None:
    """post_migrate receiver: keep tenant roles in step with the tenant's models."""
    if connection.schema_name == get_public_schema_name():
        return
    # post_migrate is sent once per installed app, in INSTALLED_APPS order, and
    # each app's permissions exist only after its own signal: sync on the last.
    last_app = list(django_apps.get_app_configs())[-1]
    if kwargs.get("app_config") is not last_app:
        return
    roles_sync()
