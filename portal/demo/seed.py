"""Seed the demo: platform operator, catalog, two tenants with users, licenses and overlays.

Every step is idempotent: rows are looked up by their natural key and
created only when missing, and secrets the first run generated (passwords,
license keys, admin API tokens) are read back from the credentials file,
because Keyplane itself keeps only their hashes. Writes go through the
owning apps' services where they exist (tenants, licensing, overlays); the
catalog and user accounts have no service layer, so their rows are created
here with `full_clean`.
"""

import logging
import shutil
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.db import transaction
from django.utils import timezone
from django_tenants.utils import schema_context

from portal.demo import data
from portal.demo.state import Credentials
from portal.tenants.models import Tenant

logger = logging.getLogger(__name__)

OPERATOR_USERNAME = "operator"


@dataclass
class SeededTenant:
    slug: str
    name: str
    admin_username: str
    users: dict[str, str] = field(default_factory=dict)  # username -> role
    grants: list[dict[str, Any]] = field(default_factory=list)
    api_token: str | None = None


@dataclass
class SeedResult:
    operator: str
    tenants: list[SeededTenant]


def _user_ensure(username: str, *, password: str, superuser: bool = False, **fields: Any) -> Any:
    """Create or update a user so that it can log in with `password`."""
    users = get_user_model().objects
    user = users.filter(username=username).first()
    if user is None:
        if superuser:
            user = users.create_superuser(username=username, password=password, **fields)
        else:
            user = users.create_user(username=username, password=password, is_staff=True, **fields)
        return user
    if not user.check_password(password):
        user.set_password(password)
        user.save(update_fields=["password"])
    return user


def catalog_seed() -> None:
    """Create the demo products, their features, overlay schemas and global defaults."""
    from overlays.catalog.models import GlobalDefaults, OverlaySchema
    from portal.catalog.models import Feature, Product

    for spec in data.PRODUCTS:
        with transaction.atomic():
            product, created = Product.objects.get_or_create(
                code=spec["code"], defaults={"name": spec["name"]}
            )
            for code, description in spec["features"].items():
                Feature.objects.get_or_create(
                    product=product, code=code, defaults={"description": description}
                )
            if created:
                product.unlicensed_features = spec["unlicensed_features"]
                product.full_clean()
                product.save(update_fields=["unlicensed_features"])
            if not OverlaySchema.objects.filter(product=product).exists():
                schema = OverlaySchema(
                    product=product, version=1, schema=spec["schema"], notes="Demo schema."
                )
                schema.full_clean()
                schema.save()
            if not GlobalDefaults.objects.filter(product=product).exists():
                defaults = GlobalDefaults(product=product, values=spec["defaults"])
                defaults.full_clean()
                defaults.save()
        logger.info("demo.catalog product=%s created=%s", product.code, created)


def _tenant_ensure(spec: dict[str, Any], credentials: Credentials) -> tuple[Tenant, str]:
    from portal.tenants.services import tenant_onboard

    admin_username = f"{spec['slug']}-admin"
    password = credentials.password(admin_username)
    tenant = Tenant.objects.filter(slug=spec["slug"]).first()
    if tenant is None:
        tenant = tenant_onboard(
            slug=spec["slug"],
            display_name=spec["name"],
            region=spec["region"],
            admin_username=admin_username,
            admin_email=f"it-admin@{spec['slug']}.example",
            admin_password=password,
        ).tenant
    return tenant, admin_username


def _users_seed(spec: dict[str, Any], seeded: SeededTenant, credentials: Credentials) -> None:
    seeded.users[seeded.admin_username] = "Tenant administrator"
    _user_ensure(
        seeded.admin_username, password=credentials.password(seeded.admin_username), superuser=True
    )
    for suffix, role, first_name in data.ROLE_USERS:
        username = f"{spec['slug']}-{suffix}"
        user = _user_ensure(
            username,
            password=credentials.password(username),
            first_name=first_name,
            email=f"{suffix}@{spec['slug']}.example",
        )
        user.groups.add(Group.objects.get(name=role))
        seeded.users[username] = role


def _policies_seed(spec: dict[str, Any], acting_user: Any) -> dict[str, Any]:
    from licensing.models import Policy
    from licensing.services import policy_create

    policies = {}
    for policy_spec in spec["policies"]:
        fields = {key: value for key, value in policy_spec.items() if key != "key"}
        policy = Policy.objects.filter(name=fields["name"]).first()
        if policy is None:
            policy = policy_create(acting_user=acting_user, **fields)
        policies[policy_spec["key"]] = policy
    return policies


def _grants_seed(
    spec: dict[str, Any],
    seeded: SeededTenant,
    policies: dict[str, Any],
    credentials: Credentials,
    acting_user: Any,
) -> None:
    from licensing.models import LicenseGrant
    from licensing.services import grant_create

    now = timezone.now()
    for grant_spec in spec["grants"]:
        stored = credentials.grant(spec["slug"], grant_spec["label"])
        grant = LicenseGrant.objects.filter(pk=stored["id"]).first() if stored else None
        if grant is None or stored is None:
            grant, license_key = grant_create(
                policy_id=policies[grant_spec["policy"]].pk,
                seat_count=grant_spec["seats"],
                term_start=now + timedelta(days=grant_spec["term_offset_days"]),
                term_end=now + timedelta(days=grant_spec["term_end_in_days"]),
                acting_user=acting_user,
            )
            credentials.grant_store(
                spec["slug"], grant_spec["label"], grant_id=grant.pk, license_key=license_key
            )
        else:
            license_key = stored["license_key"]
        seeded.grants.append(
            {
                "label": grant_spec["label"],
                "id": grant.pk,
                "product": grant.policy.product_code,
                "policy": grant.policy.name,
                "seats": grant.seat_count,
                "term_end": grant.term_end.isoformat(),
                "license_key": license_key,
                "fleet_weight": grant_spec["fleet_weight"],
            }
        )


def _groups_seed(spec: dict[str, Any]) -> None:
    from licensing.models import DeviceGroup

    for name, description in spec["groups"].items():
        DeviceGroup.objects.get_or_create(name=name, defaults={"description": description})


def _overlay_seed(spec: dict[str, Any], acting_user: Any) -> None:
    """Publish the tenant and group overlays as the first release, unless one exists."""
    from overlays.selectors import head_current
    from overlays.services import release_publish

    overlay = spec["overlay"]
    if head_current(overlay["product"]) is not None:
        return
    release_publish(
        product_code=overlay["product"],
        base_release=None,
        acting_user=acting_user,
        tenant_patch=overlay["tenant"],
        group_entries=overlay["groups"],
        reason="demo: initial overlay",
    )


def _api_token_seed(seeded: SeededTenant, credentials: Credentials, user: Any) -> str:
    """Return the tenant's demo admin API token, issuing one when none is stored and usable."""
    from portal.demo import integration

    stored = credentials.token(seeded.slug)
    if stored and integration.api_token_valid(stored):
        return stored
    token = integration.api_token_create(user=user, name="demo automation")
    credentials.token_store(seeded.slug, token)
    return token


def tenant_seed(spec: dict[str, Any], credentials: Credentials) -> SeededTenant:
    """Seed one tenant: schema, users, policies, grants, groups, overlays, API token."""
    tenant, admin_username = _tenant_ensure(spec, credentials)
    seeded = SeededTenant(slug=tenant.slug, name=tenant.display_name, admin_username=admin_username)
    with schema_context(tenant.schema_name):
        _users_seed(spec, seeded, credentials)
        procurement = get_user_model().objects.get(username=f"{spec['slug']}-procurement")
        it_admin = get_user_model().objects.get(username=f"{spec['slug']}-it")
        admin = get_user_model().objects.get(username=admin_username)

        policies = _policies_seed(spec, procurement)
        _grants_seed(spec, seeded, policies, credentials, procurement)
        _groups_seed(spec)
        _overlay_seed(spec, it_admin)
        seeded.api_token = _api_token_seed(seeded, credentials, admin)
    logger.info("demo.tenant_seeded slug=%s grants=%d", tenant.slug, len(seeded.grants))
    return seeded


def demo_seed(*, credentials: Credentials | None = None) -> SeedResult:
    """Seed the platform operator, the catalog and both demo tenants; return what exists."""
    credentials = credentials or Credentials()
    _user_ensure(
        OPERATOR_USERNAME,
        password=credentials.password(OPERATOR_USERNAME),
        superuser=True,
        email="operator@keyplane.example",
    )
    catalog_seed()
    result = SeedResult(operator=OPERATOR_USERNAME, tenants=[])
    try:
        for spec in data.TENANTS:
            result.tenants.append(tenant_seed(spec, credentials))
    finally:
        # Keys created before a failure must survive it: they are shown only once.
        credentials.save()
    return result


def demo_tenants_reset(*, credentials: Credentials | None = None) -> list[str]:
    """Offboard and drop the demo tenants so that the next seed starts from scratch.

    Uses the tenant lifecycle services (suspend for offboarding, export,
    drop), then deletes the export, which holds only generated demo data.
    Returns the slugs that were dropped.
    """
    from portal.tenants.services import tenant_drop, tenant_export, tenant_suspend

    credentials = credentials or Credentials()
    dropped = []
    for spec in data.TENANTS:
        tenant = Tenant.objects.filter(slug=spec["slug"]).first()
        if tenant is None:
            credentials.forget_tenant(spec["slug"])
            continue
        tenant = tenant_suspend(tenant=tenant, offboarding=True)
        if tenant.exported_at is None:
            tenant_export(tenant=tenant)
            tenant.refresh_from_db()
        export_path = tenant.export_path
        tenant_drop(tenant=tenant, now=tenant.drop_after)
        # The export holds only generated demo data; keeping one per run would pile up.
        if export_path:
            shutil.rmtree(export_path, ignore_errors=True)
        credentials.forget_tenant(spec["slug"])
        dropped.append(spec["slug"])
    credentials.save()
    return dropped
