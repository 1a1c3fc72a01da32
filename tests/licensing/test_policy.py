"""Policy and grant validation: contradictory settings are rejected, naming the fields."""

import pytest
from django.db import IntegrityError, transaction

from licensing.exceptions import PolicyInvalid
from licensing.models import Policy
from tests.licensing.conftest import policy_make


def _fields(error: PolicyInvalid) -> set[str]:
    return {item["field"] for item in error.extra["errors"]}


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"grace_days": 91}, "grace_days"),
        ({"grace_days": 40, "term_days": 30, "renewal_cadence": "monthly"}, "grace_days"),
        ({"token_lifetime_hours": 48, "offline_tolerance_hours": 24}, "token_lifetime_hours"),
        ({"term_days": 30, "renewal_cadence": "annual"}, "term_days"),
        ({"entitlements": ["teleport"]}, "entitlements"),
        ({"product_code": "nothing"}, "product_code"),
    ],
)
def test_policy_contradiction_rejected(in_alpha, product, overrides: dict, field: str) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(PolicyInvalid) as raised:
        policy_make(**overrides)
    assert field in _fields(raised.value)
    assert not Policy.objects.exists()


def test_policy_database_constraint_backs_clean(in_alpha, product) -> None:  # type: ignore[no-untyped-def]
    policy = policy_make()
    with pytest.raises(IntegrityError), transaction.atomic():
        Policy.objects.filter(pk=policy.pk).update(token_lifetime_hours=1000)


def test_grant_zero_seats_rejected(in_alpha, product) -> None:  # type: ignore[no-untyped-def]
    from licensing.services import grant_create

    policy = policy_make()
    with pytest.raises(PolicyInvalid) as raised:
        grant_create(policy_id=policy.pk, seat_count=0, acting_user=None)
    assert "seat_count" in _fields(raised.value)


def test_license_key_stored_only_as_hash(in_alpha, product) -> None:  # type: ignore[no-untyped-def]
    from licensing.models import LicenseGrant
    from licensing.services import grant_create

    policy = policy_make()
    grant, license_key = grant_create(policy_id=policy.pk, seat_count=1, acting_user=None)
    row = LicenseGrant.objects.filter(pk=grant.pk).values().get()
    assert all(license_key not in str(value) for value in row.values())


def test_every_error_code_documented() -> None:
    from pathlib import Path

    import licensing.exceptions
    import portal.problems

    text = (Path(__file__).resolve().parents[2] / "docs" / "api.md").read_text()
    codes = {
        value.code
        for module in (licensing.exceptions, portal.problems)
        for value in vars(module).values()
        if isinstance(value, type) and issubclass(value, portal.problems.KeyplaneError)
    }
    missing = sorted(code for code in codes if f"`{code}`" not in text)
    assert missing == []


def test_grant_update_checks_policy_limit(in_alpha, product) -> None:  # type: ignore[no-untyped-def]
    from licensing.models import LicenseGrant, Manifest
    from licensing.services import grant_create, grant_update

    policy = policy_make(seat_limit=10)
    grant, _ = grant_create(policy_id=policy.pk, seat_count=2, acting_user=None)
    with pytest.raises(PolicyInvalid) as raised:
        grant_update(grant_id=grant.pk, seat_count=11, acting_user=None)
    assert "seat_count" in _fields(raised.value)
    assert LicenseGrant.objects.get(pk=grant.pk).seat_count == 2
    versions = Manifest.objects.filter(product_code="atlas").count()
    grant_update(grant_id=grant.pk, seat_count=5, acting_user=None)
    assert LicenseGrant.objects.get(pk=grant.pk).seat_count == 5
    assert Manifest.objects.filter(product_code="atlas").count() == versions + 1


def test_manifest_current_renews_stale_once(in_alpha, product) -> None:  # type: ignore[no-untyped-def]
    import time as time_module

    from licensing.manifests import manifest_current
    from licensing.models import Manifest
    from tests.licensing.conftest import grant_make

    grant_make()
    latest = manifest_current("atlas")
    now = int(time_module.time())
    content = {**latest.content, "iat": now - 100, "exp": now + 50}
    Manifest.objects.filter(pk=latest.pk).update(content=content)
    renewed = manifest_current("atlas")
    assert renewed.version == latest.version + 1
    assert manifest_current("atlas").version == renewed.version
