import pytest

from overlays.exceptions import OverlaySchemaInvalid
from overlays.merge import Layer, resolve
from overlays.validation import (
    OverlayValidator,
    TenantFacts,
    schema_check,
    secret_kind,
    secrets_scan,
)
from tests.overlays.schemas import desktop_defaults, desktop_schema

NO_GRANTS = TenantFacts(entitlements=frozenset())
SSO_GRANTED = TenantFacts(entitlements=frozenset({"sso"}))
PRIVATE_KEY = (
    "-----BEGIN OPENSSH PRIVATE KEY-----\n"
    "b3BlbnNzaC1rZXktdjEAAAAABG5vbmUAAAAEbm9uZQAAAAAAAAABAAAAMwAAAAtzc2gtZW\n"
    "-----END OPENSSH PRIVATE KEY-----\n"
)


def _validate(*patches, facts=NO_GRANTS):
    layers = [Layer("defaults", desktop_defaults())]
    layers += [Layer(name, patch) for name, patch in patches]
    return OverlayValidator(desktop_schema()).validate(
        resolve(layers), facts=facts, target="tenant"
    )


def test_validate_defaults_alone_pass():
    assert _validate() == []


def test_validate_misspelled_key_at_depth_three():
    issues = _validate(("tenant", {"ui": {"editor": {"font_sise": 14}}}))

    assert len(issues) == 1
    assert issues[0].path == "/ui/editor/font_sise"
    assert issues[0].layer == "tenant"
    assert issues[0].rule == "additionalProperties"
    assert "did you mean 'font_size'" in issues[0].message


def test_validate_range_names_layer_and_rule():
    issues = _validate(("tenant", {}), ("group:eng", {"ui": {"editor": {"font_size": 99}}}))

    assert [(i.path, i.layer, i.rule) for i in issues] == [
        ("/ui/editor/font_size", "group:eng", "maximum")
    ]


def test_validate_required_removed_by_null_names_remover():
    issues = _validate(("group:kiosk", {"ui": {"theme": None}}))

    assert [(i.path, i.layer, i.rule) for i in issues] == [("/ui/theme", "group:kiosk", "required")]


def test_validate_enum_and_pattern_errors():
    issues = _validate(("tenant", {"ui": {"theme": "blue", "locale": "english"}}))

    assert [(i.path, i.rule) for i in issues] == [("/ui/locale", "pattern"), ("/ui/theme", "enum")]


def test_validate_sso_flag_without_entitlement_rejected():
    issues = _validate(("tenant", {"auth": {"sso_enabled": True}}))

    assert len(issues) == 1
    assert issues[0].path == "/auth/sso_enabled"
    assert issues[0].rule == "x-requires-entitlement"
    assert "'sso'" in issues[0].message


def test_validate_sso_flag_with_entitlement_passes():
    assert _validate(("tenant", {"auth": {"sso_enabled": True}}), facts=SSO_GRANTED) == []


def test_validate_secret_field_rejects_plaintext_without_echo():
    issues = _validate(("tenant", {"auth": {"vpn_psk": "correct horse"}}))

    assert [(i.path, i.rule) for i in issues] == [("/auth/vpn_psk", "x-secret")]
    assert "correct horse" not in issues[0].message


def test_validate_secret_field_accepts_reference():
    assert _validate(("tenant", {"auth": {"vpn_psk": "secretref:keychain/vpn-psk"}})) == []


def test_validate_region_restricts_values():
    eu = TenantFacts(entitlements=frozenset(), regions=frozenset({"eu"}))
    layers = [Layer("defaults", desktop_defaults()), Layer("tenant", {"telemetry": "full"})]
    validator = OverlayValidator(desktop_schema())

    eu_issues = validator.validate(resolve(layers), facts=eu)
    us_issues = validator.validate(
        resolve(layers), facts=TenantFacts(frozenset(), regions=frozenset({"us"}))
    )

    assert [(i.path, i.rule) for i in eu_issues] == [("/telemetry", "x-region-values")]
    assert us_issues == []


def test_secrets_scan_private_key_in_string_field():
    issues = secrets_scan(Layer("tenant", {"support_url": PRIVATE_KEY}))

    assert [(i.path, i.layer, i.rule) for i in issues] == [
        ("/support_url", "tenant", "plaintext-secret")
    ]
    assert "private key" in issues[0].message
    assert "BEGIN" not in issues[0].message


def test_secrets_scan_finds_secret_in_array_and_key():
    issues = secrets_scan(
        Layer(
            "group:eng",
            {
                "a": [{"b": "ghp_" + "A1b2C3d4E5f6G7h8I9j0K1l2M3n4O5p6Q7r8"}],
                "AKIAIOSFODNN7EXAMPLE": 1,
            },
        )
    )

    assert sorted(i.path for i in issues) == ["/AKIAIOSFODNN7EXAMPLE", "/a/0/b"]


@pytest.mark.parametrize(
    "text",
    [
        "AKIAIOSFODNN7EXAMPLE",
        "xoxb-1234567890-abcdefghij",
        "sk_live_4eC39HqLyjWDarjtT1zdp7dc",
        "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
        "3f786850e387550fdab836ed7e6dc881de23001b",
        "-----BEGIN RSA PRIVATE KEY-----",
    ],
)
def test_secret_kind_flags_credentials(text):
    assert secret_kind(text) is not None


@pytest.mark.parametrize(
    "text",
    [
        "https://proxy.corp.example:8443/path/to/thing",
        "/opt/ExampleCorp/Desktop2024/plugins/Extra",
        "550e8400-e29b-41d4-a716-446655440000",
        "update-channel-2024-stable-eu-west-1",
        "secretref:keychain/vpn-psk",
        "Europe/Berlin",
    ],
)
def test_secret_kind_leaves_ordinary_values(text):
    assert secret_kind(text) is None


def test_schema_check_rejects_open_nested_object():
    schema = desktop_schema()
    del schema["properties"]["ui"]["properties"]["editor"]["additionalProperties"]

    with pytest.raises(OverlaySchemaInvalid, match="/properties/ui/properties/editor"):
        schema_check(schema)


def test_schema_check_rejects_invalid_keyword_value():
    schema = desktop_schema()
    schema["properties"]["support_url"]["type"] = "text"

    with pytest.raises(OverlaySchemaInvalid, match="invalid"):
        schema_check(schema)


def test_schema_check_accepts_unevaluated_properties_with_all_of():
    schema = {
        "type": "object",
        "unevaluatedProperties": False,
        "allOf": [{"type": "object", "properties": {"a": {"type": "integer"}}}],
    }

    schema_check(schema)
    issues = OverlayValidator(schema).validate(
        resolve([Layer("tenant", {"a": 1, "b": 2})]), facts=NO_GRANTS
    )
    assert [(i.path, i.rule) for i in issues] == [("/b", "unevaluatedProperties")]


def test_validate_does_not_echo_secret_in_other_rule():
    issues = _validate(("tenant", {"ui": {"locale": PRIVATE_KEY}}))

    assert [(i.path, i.rule) for i in issues] == [("/ui/locale", "pattern")]
    assert "PRIVATE KEY" not in issues[0].message
