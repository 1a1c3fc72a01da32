import pytest
from django.core.exceptions import ValidationError

from portal.tenants.naming import schema_name_for_slug, validate_tenant_slug


@pytest.mark.parametrize(
    ("slug", "rule"),
    [
        ("Acme", "upper case"),
        ("1acme", "start with a letter"),
        ("public", "reserved"),
        ("pg-catalog", "reserved"),
        ("information_schema", "only a-z"),
        ("a" * 51, "use 3 to 50"),
        ("ab", "use 3 to 50"),
        ("acme--corp", "single hyphens"),
        ("acme-", "must not end with a hyphen"),
        ("acme corp", "only a-z"),
    ],
)
def test_validate_tenant_slug_rejects_with_rule(slug: str, rule: str) -> None:
    with pytest.raises(ValidationError) as raised:
        validate_tenant_slug(slug)
    assert rule in raised.value.messages[0]


def test_validate_tenant_slug_accepts_hyphenated() -> None:
    validate_tenant_slug("acme-corp-2")


def test_schema_name_for_slug_replaces_hyphens() -> None:
    assert schema_name_for_slug("acme-corp") == "acme_corp"
