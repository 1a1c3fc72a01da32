"""Tenant lifecycle: onboarding, suspension, export and drop.

Each step logs its start and end with the tenant slug. Offboarding runs
suspend, export and drop in that order, and the drop raises TenantStateInvalid before
the export exists and the retention period has passed.
"""

import json
import logging
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

from django.apps import apps
from django.conf import settings
from django.contrib.auth import get_user_model
from django.core import serializers
from django.core.exceptions import ValidationError
from django.db import connection, transaction
from django.utils import timezone
from django_tenants.utils import schema_context, schema_exists

from portal.problems import KeyplaneError
from portal.tenants.models import Tenant
from portal.tenants.naming import schema_name_for_slug, validate_tenant_slug

logger = logging.getLogger(__name__)


class TenantError(KeyplaneError):
    """Base of tenant lifecycle errors."""

    code = "tenant_error"
    status = 400
    title = "Tenant operation failed"


class TenantSlugInvalid(TenantError):
    """Raised when a slug breaks a naming rule (see portal/tenants/naming.py)."""

    code = "tenant_slug_invalid"
    title = "Invalid tenant slug"
    remediation = "Choose a slug of lower case letters, digits and hyphens, starting with a letter."


class TenantExists(TenantError):
    """Raised when the slug or its schema name is already taken."""

    code = "tenant_exists"
    status = 409
    title = "Tenant already exists"
    remediation = "Choose another slug."


class TenantStateInvalid(TenantError):
    """Raised when an offboarding step is run out of order."""

    code = "tenant_state_invalid"
    status = 409
    title = "Tenant is not in the required state"
    remediation = "Run the offboarding steps in order: suspend, export, then drop."


@dataclass(frozen=True)
class OnboardedTenant:
    tenant: Tenant
    admin_username: str
    admin_password: str | None


def tenant_onboard(
    *,
    slug: str,
    display_name: str,
    admin_username: str,
    admin_email: str,
    admin_password: str | None = None,
    region: str = "eu",
    is_sandbox: bool = False,
    sandbox_of: Tenant | None = None,
) -> OnboardedTenant:
    """Create a tenant, its schema, its roles and its first administrator.

    1. Validate the slug and reserve it by saving the tenant row.
    2. Create the schema and run every tenant migration in it (django-tenants).
    3. Create the role groups and the first tenant administrator in the schema.
    If step 2 or 3 fails, the schema is dropped and the row deleted, so a
    failed onboarding leaves nothing behind and can be retried.
    """
    try:
        validate_tenant_slug(slug)
    except ValidationError as error:
        raise TenantSlugInvalid(error.messages[0]) from error
    schema_name = schema_name_for_slug(slug)
    if Tenant.objects.filter(slug=slug).exists() or schema_exists(schema_name):
        raise TenantExists(f"A tenant with slug {slug!r} (schema {schema_name!r}) already exists.")

    logger.info("tenant.onboard.start slug=%s", slug)
    with transaction.atomic():
        tenant = Tenant(
            slug=slug,
            schema_name=schema_name,
            display_name=display_name,
            region=region,
            is_sandbox=is_sandbox,
            sandbox_of=sandbox_of,
        )
        tenant.full_clean()
        tenant.save()

    try:
        tenant.create_schema(check_if_exists=True, verbosity=0)
        with schema_context(schema_name):
            from portal.access.roles import roles_sync

            roles_sync()
            admin = get_user_model().objects.create_superuser(
                username=admin_username, email=admin_email, password=admin_password
            )
            if admin_password is None:
                admin.set_unusable_password()
                admin.save(update_fields=["password"])
    except Exception:
        logger.exception("tenant.onboard.failed slug=%s; removing the partial schema", slug)
        with connection.cursor() as cursor:
            cursor.execute(f'DROP SCHEMA IF EXISTS "{schema_name}" CASCADE')
        Tenant.objects.filter(pk=tenant.pk).delete()
        raise

    logger.info("tenant.onboard.done slug=%s schema=%s", slug, schema_name)
    return OnboardedTenant(
        tenant=tenant, admin_username=admin_username, admin_password=admin_password
    )


def tenant_suspend(*, tenant: Tenant, offboarding: bool = False) -> Tenant:
    """Stop serving the tenant's pages and client API; data stays untouched."""
    target = Tenant.Status.OFFBOARDING if offboarding else Tenant.Status.SUSPENDED
    with transaction.atomic():
        locked = Tenant.objects.select_for_update().get(pk=tenant.pk)
        locked.status = target
        locked.suspended_at = locked.suspended_at or timezone.now()
        locked.save(update_fields=["status", "suspended_at"])
    logger.info("tenant.suspend slug=%s status=%s", locked.slug, target)
    return locked


def tenant_reactivate(*, tenant: Tenant) -> Tenant:
    """Serve a suspended tenant again; an offboarding tenant with an export cannot return."""
    with transaction.atomic():
        locked = Tenant.objects.select_for_update().get(pk=tenant.pk)
        if locked.status == Tenant.Status.OFFBOARDING and locked.exported_at:
            raise TenantStateInvalid(
                f"Tenant {locked.slug!r} was exported for offboarding and cannot be reactivated."
            )
        locked.status = Tenant.Status.ACTIVE
        locked.suspended_at = None
        locked.drop_after = None
        locked.save(update_fields=["status", "suspended_at", "drop_after"])
    logger.info("tenant.reactivate slug=%s", locked.slug)
    return locked


def tenant_data_dir(tenant: Tenant) -> Path:
    """Return the tenant's own folder for files (exports, bundles); every path carries the slug."""
    path = Path(settings.KEYPLANE_DATA_DIR) / "tenants" / tenant.schema_name
    path.mkdir(parents=True, exist_ok=True, mode=0o700)
    return path


def tenant_export(*, tenant: Tenant) -> Path:
    """Write every row of the tenant's schema as JSON, one file per model.

    Requires the tenant to be offboarding, so no write can race the export.
    Returns the export folder; sets the drop date to now plus the retention.
    """
    if tenant.status != Tenant.Status.OFFBOARDING:
        raise TenantStateInvalid(
            f"Tenant {tenant.slug!r} is {tenant.status}; suspend it for offboarding first."
        )
    logger.info("tenant.export.start slug=%s", tenant.slug)
    stamp = timezone.now().strftime("%Y%m%dT%H%M%SZ")
    folder = tenant_data_dir(tenant) / f"export-{stamp}"
    folder.mkdir(mode=0o700)

    tenant_labels = {app.rsplit(".", 1)[-1] for app in settings.TENANT_APPS}
    manifest: dict[str, int] = {}
    with schema_context(tenant.schema_name):
        for model in apps.get_models():
            if model._meta.app_label not in tenant_labels:
                continue
            label = model._meta.label_lower
            rows = model._default_manager.order_by("pk")
            path = folder / f"{label}.json"
            with path.open("w", encoding="utf-8") as stream:
                serializers.serialize("json", rows.iterator(chunk_size=2000), stream=stream)
            manifest[label] = rows.count()
    (folder / "manifest.json").write_text(
        json.dumps({"tenant": tenant.slug, "exported_at": stamp, "rows": manifest}, indent=2),
        encoding="utf-8",
    )

    tenant.exported_at = timezone.now()
    tenant.export_path = str(folder)
    tenant.drop_after = tenant.exported_at + timedelta(
        days=settings.KEYPLANE_OFFBOARDING_RETENTION_DAYS
    )
    tenant.save(update_fields=["exported_at", "export_path", "drop_after"])
    logger.info("tenant.export.done slug=%s path=%s models=%d", tenant.slug, folder, len(manifest))
    return folder


def tenant_drop(*, tenant: Tenant, now: object = None) -> None:
    """Drop the schema of an exported tenant whose retention period has passed."""
    current = now or timezone.now()
    if tenant.status != Tenant.Status.OFFBOARDING or tenant.exported_at is None:
        raise TenantStateInvalid(
            f"Tenant {tenant.slug!r} has not been exported for offboarding; export it first."
        )
    if tenant.drop_after is not None and tenant.drop_after > current:  # type: ignore[operator]
        raise TenantStateInvalid(
            f"Tenant {tenant.slug!r} is kept until {tenant.drop_after.isoformat()} "
            "(KEYPLANE_OFFBOARDING_RETENTION_DAYS); drop it after that."
        )
    logger.info("tenant.drop.start slug=%s schema=%s", tenant.slug, tenant.schema_name)
    with transaction.atomic():
        with connection.cursor() as cursor:
            cursor.execute(f'DROP SCHEMA IF EXISTS "{tenant.schema_name}" CASCADE')
        Tenant.objects.filter(pk=tenant.pk).delete()
    logger.info("tenant.drop.done slug=%s", tenant.slug)
