"""Validation of overlay schemas, effective configurations and overlay layers.

Three checks run before anything is published:

1. `schema_check` accepts a product's JSON Schema (draft 2020-12) only when
   every object in it closes its keys (`additionalProperties` or
   `unevaluatedProperties`), so an unknown or misspelled key is an error at
   every nesting level.
2. `OverlayValidator.validate` checks an effective configuration against the
   schema plus three Keyplane annotations, and names for each error the JSON
   Pointer, the layer that set the value (from merge provenance) and the rule:
     - `x-requires-entitlement: "<code>"`: the value may be anything but
       `false` or `null` only when the tenant's grants include the code;
     - `x-secret: true`: the value must be a secret reference
       (`secretref:<store>/<name>`), resolved by the client from its own
       secret store; plaintext is rejected;
     - `x-region-values: {"<region>": [allowed values]}`: when the tenant's
       product may run in a listed region, only the values allowed in every
       such region are accepted.
3. `secrets_scan` rejects plaintext that looks like a secret anywhere in a
   layer, in keys and values at any depth: private key blocks, known
   credential prefixes and high-entropy tokens.

An error at a field marked `x-secret`, or about a value that contains a
string the scan flags, shows no value. Other messages may quote the value.
"""

import contextvars
import difflib
import math
import re
from collections import Counter
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from jsonschema import (  # type: ignore[import-untyped]  # no stubs in the venv
    Draft202012Validator,
    ValidationError,
    validators,
)
from jsonschema.exceptions import SchemaError  # type: ignore[import-untyped]

from overlays.exceptions import OverlaySchemaInvalid
from overlays.merge import JSONValue, Layer, Resolution, pointer_from_path, pointer_join

SECRET_REF = re.compile(r"^secretref:[a-z][a-z0-9-]{0,31}/[A-Za-z0-9._~/-]{1,256}$")

_PRIVATE_KEY_BLOCK = re.compile(r"-----BEGIN (?:[A-Z0-9]+ )*PRIVATE KEY(?: BLOCK)?-----")
_CREDENTIAL_PREFIXES: tuple[tuple[str, re.Pattern[str]], ...] = (
    ("an AWS access key id", re.compile(r"\b(?:AKIA|ASIA)[0-9A-Z]{16}\b")),
    (
        "a GitHub token",
        re.compile(r"\b(?:gh[pousr]_[A-Za-z0-9]{30,}|github_pat_[A-Za-z0-9_]{30,})"),
    ),
    ("a GitLab token", re.compile(r"\bglpat-[A-Za-z0-9_-]{20,}")),
    ("a Slack token", re.compile(r"\bxox[abposr]-[A-Za-z0-9-]{10,}")),
    ("a Stripe live key", re.compile(r"\b(?:sk|rk)_live_[A-Za-z0-9]{16,}")),
    ("a Google API key", re.compile(r"\bAIza[0-9A-Za-z_-]{35}")),
    ("a JSON Web Token", re.compile(r"\beyJ[A-Za-z0-9_-]{8,}\.eyJ[A-Za-z0-9_-]{8,}\.")),
)
# Thresholds in the spirit of truffleHog's: random base64 of 20+ characters
# scores above 4 bits per character, English words and slugs score well below.
_TOKEN = re.compile(r"[A-Za-z0-9+/=_-]{20,}")
_HEX_TOKEN = re.compile(r"\b[0-9a-fA-F]{32,}\b")
_BASE64_MIN_ENTROPY = 4.0
# A token with a slash may be a file path or URL path, so it needs a higher score.
_SLASHED_MIN_ENTROPY = 4.5
_HEX_MIN_ENTROPY = 3.0


@dataclass(frozen=True)
class ValidationIssue:
    """One reason an overlay cannot be published."""

    path: str  # JSON Pointer into the effective configuration or the layer
    layer: str | None  # the layer that set the value, or None when no layer did
    rule: str  # the JSON Schema keyword or Keyplane check that failed
    message: str
    target: str = ""  # the target whose effective configuration failed, if any

    def as_dict(self) -> dict[str, Any]:
        return {
            "path": self.path,
            "layer": self.layer,
            "rule": self.rule,
            "message": self.message,
            "target": self.target,
        }

    def __str__(self) -> str:
        where = f"{self.path or '/'} (layer {self.layer or 'none'}, rule {self.rule})"
        return f"{self.target + ': ' if self.target else ''}{where}: {self.message}"


@dataclass(frozen=True)
class TenantFacts:
    """The tenant's entitlements and region, as the annotation rules use them."""

    entitlements: frozenset[str]
    regions: frozenset[str] = frozenset()
    any_entitlement: bool = False  # for platform checks that know no tenant


_FACTS: contextvars.ContextVar[TenantFacts] = contextvars.ContextVar("overlay_tenant_facts")


# --- schema check -----------------------------------------------------------

_SUBSCHEMA_MAPS = ("properties", "patternProperties", "$defs", "definitions", "dependentSchemas")
_SUBSCHEMA_LISTS = ("allOf", "anyOf", "oneOf", "prefixItems")
_SUBSCHEMA_SINGLE = (
    "additionalProperties",
    "unevaluatedProperties",
    "items",
    "contains",
    "not",
    "if",
    "then",
    "else",
    "propertyNames",
    "unevaluatedItems",
)


def _is_object_schema(schema: Mapping[str, Any]) -> bool:
    declared = schema.get("type")
    types = declared if isinstance(declared, list) else [declared]
    return "object" in types or "properties" in schema


def _open_objects(schema: Any, pointer: str, closed_by_parent: bool) -> Iterator[str]:
    """Yield the pointer of every object subschema that leaves unknown keys allowed."""
    if not isinstance(schema, Mapping):
        return
    closes = "additionalProperties" in schema or "unevaluatedProperties" in schema
    if _is_object_schema(schema) and not closes and not closed_by_parent:
        yield pointer
    # Branches of a schema closed by `unevaluatedProperties` are closed by it.
    branches_closed = "unevaluatedProperties" in schema
    for keyword in _SUBSCHEMA_MAPS:
        for name, child in (schema.get(keyword) or {}).items():
            yield from _open_objects(
                child, pointer_join(pointer_join(pointer, keyword), name), False
            )
    for keyword in _SUBSCHEMA_LISTS:
        for index, child in enumerate(schema.get(keyword) or []):
            closed = branches_closed and keyword != "prefixItems"
            yield from _open_objects(
                child, pointer_join(pointer_join(pointer, keyword), index), closed
            )
    for keyword in _SUBSCHEMA_SINGLE:
        if keyword in schema:
            closed = branches_closed and keyword in ("then", "else", "if")
            yield from _open_objects(schema[keyword], pointer_join(pointer, keyword), closed)


def schema_check(schema: Any) -> None:
    """Raise `OverlaySchemaInvalid` unless `schema` is a closed draft 2020-12 object schema."""
    if not isinstance(schema, dict):
        raise OverlaySchemaInvalid(
            f"The schema must be a JSON object, not {type(schema).__name__}."
        )
    declared = schema.get("$schema")
    if declared not in (None, "https://json-schema.org/draft/2020-12/schema"):
        raise OverlaySchemaInvalid(
            f"The schema declares $schema {declared!r}; overlay schemas use draft 2020-12 "
            "(https://json-schema.org/draft/2020-12/schema)."
        )
    try:
        Draft202012Validator.check_schema(schema)
    except SchemaError as error:
        raise OverlaySchemaInvalid(
            f"The schema is invalid at {pointer_from_path(error.path) or '/'}: {error.message}"
        ) from error
    if schema.get("type") != "object":
        raise OverlaySchemaInvalid('The root of an overlay schema must have "type": "object".')
    open_objects = list(_open_objects(schema, "", False))
    if open_objects:
        raise OverlaySchemaInvalid(
            f"The object schemas at {', '.join(p or '/' for p in open_objects)} allow unknown "
            'keys; add "additionalProperties": false (or a schema for the allowed extra '
            "keys) so that misspelled settings are rejected."
        )


# --- Keyplane annotations ---------------------------------------------------


def _requires_entitlement(
    validator: Any, code: str, instance: Any, schema: Mapping[str, Any]
) -> Iterator[ValidationError]:
    facts = _FACTS.get()
    if instance is False or instance is None or facts.any_entitlement:
        return
    if code in facts.entitlements:
        return
    yield ValidationError(
        f"enabling this setting needs the entitlement {code!r}, which the tenant's "
        "license grants for this product do not include"
    )


def _secret(
    validator: Any, marked: bool, instance: Any, schema: Mapping[str, Any]
) -> Iterator[ValidationError]:
    if not marked or instance is None:
        return
    if not isinstance(instance, str) or not SECRET_REF.match(instance):
        yield ValidationError(
            "this is a secret field and accepts only a secret reference such as "
            "secretref:keychain/vpn-psk; the value given is not one (value not shown)"
        )


def _region_values(
    validator: Any, allowed: Mapping[str, list[Any]], instance: Any, schema: Mapping[str, Any]
) -> Iterator[ValidationError]:
    for region in sorted(_FACTS.get().regions):
        if region in allowed and instance not in allowed[region]:
            yield ValidationError(
                f"{instance!r} is not allowed in region {region!r}; "
                f"allowed there: {allowed[region]!r}"
            )


_KeyplaneValidator = validators.extend(
    Draft202012Validator,
    {
        "x-requires-entitlement": _requires_entitlement,
        "x-secret": _secret,
        "x-region-values": _region_values,
    },
)


# --- effective configuration ------------------------------------------------


def _unknown_keys(error: ValidationError) -> list[str]:
    instance, schema = error.instance, error.schema
    if not isinstance(instance, dict) or not isinstance(schema, Mapping):
        return []
    known = set(schema.get("properties") or {})
    for branch in schema.get("allOf") or []:
        if isinstance(branch, Mapping):
            known |= set(branch.get("properties") or {})
    patterns = [re.compile(p) for p in schema.get("patternProperties") or {}]
    return [
        key for key in instance if key not in known and not any(p.search(key) for p in patterns)
    ]


def _known_keys(schema: Any) -> list[str]:
    return list(schema.get("properties") or {}) if isinstance(schema, Mapping) else []


class OverlayValidator:
    """A compiled product schema that validates effective configurations."""

    def __init__(self, schema: dict[str, Any]) -> None:
        schema_check(schema)
        self.schema = schema
        self._validator = _KeyplaneValidator(schema)

    def validate(
        self, resolution: Resolution, *, facts: TenantFacts, target: str = ""
    ) -> list[ValidationIssue]:
        """Return every issue of `resolution.config`, sorted by path; empty when valid."""
        token = _FACTS.set(facts)
        try:
            errors = list(self._validator.iter_errors(resolution.config))
        finally:
            _FACTS.reset(token)

        issues: list[ValidationIssue] = []
        for error in errors:
            issues.extend(self._issues_from(error, resolution, target))
        return sorted(issues, key=lambda issue: (issue.path, issue.rule))

    def _issues_from(
        self, error: ValidationError, resolution: Resolution, target: str
    ) -> Iterator[ValidationIssue]:
        pointer = pointer_from_path(error.absolute_path)
        rule = str(error.validator)

        if rule in ("additionalProperties", "unevaluatedProperties"):
            known = _known_keys(error.schema)
            for key in _unknown_keys(error):
                child = pointer_join(pointer, key)
                hint = difflib.get_close_matches(key, known, n=1)
                suggestion = f"; did you mean {hint[0]!r}?" if hint else ""
                yield ValidationIssue(
                    child,
                    resolution.layer_of(child),
                    rule,
                    f"unknown key {key!r}{suggestion}",
                    target,
                )
            return

        if rule == "required":
            present = error.instance if isinstance(error.instance, dict) else {}
            for key in error.validator_value:
                if key in present:
                    continue
                child = pointer_join(pointer, key)
                remover = resolution.removed.get(child)
                cause = f"removed by a null in layer {remover}" if remover else "no layer sets it"
                yield ValidationIssue(
                    child, remover, rule, f"required key {key!r} is missing ({cause})", target
                )
            return

        message = error.message
        if _inside_secret(error) or any(_scan(error.instance, "", "")):
            message = f"the value fails the {rule!r} rule (value not shown: secret field)"
        yield ValidationIssue(pointer, resolution.layer_of(pointer), rule, message, target)


def _inside_secret(error: ValidationError) -> bool:
    """Return whether the failing value sits in a field marked `x-secret`."""
    return bool(isinstance(error.schema, Mapping) and error.schema.get("x-secret"))


# --- plaintext secrets --------------------------------------------------------


def shannon_entropy(text: str) -> float:
    """Return the Shannon entropy of `text` in bits per character."""
    counts = Counter(text)
    length = len(text)
    return -sum(n / length * math.log2(n / length) for n in counts.values())


def secret_kind(text: str) -> str | None:
    """Return what kind of secret `text` looks like, or None when it looks harmless."""
    if SECRET_REF.match(text):
        return None
    if _PRIVATE_KEY_BLOCK.search(text):
        return "a private key block"
    for kind, pattern in _CREDENTIAL_PREFIXES:
        if pattern.search(text):
            return kind
    for token in _HEX_TOKEN.findall(text):
        if shannon_entropy(token) >= _HEX_MIN_ENTROPY:
            return "a high-entropy hex token"
    for token in _TOKEN.findall(text):
        has_digit = any(c.isdigit() for c in token)
        has_letter = any(c.isalpha() for c in token)
        threshold = _SLASHED_MIN_ENTROPY if "/" in token else _BASE64_MIN_ENTROPY
        if has_digit and has_letter and shannon_entropy(token) >= threshold:
            return "a high-entropy token"
    return None


def _scan(value: JSONValue, pointer: str, layer: str) -> Iterator[ValidationIssue]:
    if isinstance(value, dict):
        for key, child in value.items():
            child_pointer = pointer_join(pointer, key)
            kind = secret_kind(key)
            if kind:
                yield _secret_issue(child_pointer, layer, kind, "key")
            yield from _scan(child, child_pointer, layer)
    elif isinstance(value, list):
        for index, child in enumerate(value):
            yield from _scan(child, pointer_join(pointer, index), layer)
    elif isinstance(value, str):
        kind = secret_kind(value)
        if kind:
            yield _secret_issue(pointer, layer, kind, "value")


def _secret_issue(pointer: str, layer: str, kind: str, where: str) -> ValidationIssue:
    return ValidationIssue(
        pointer,
        layer,
        "plaintext-secret",
        f"the {where} looks like {kind}; store the secret in the client's secret store and "
        "put a reference such as secretref:keychain/<name> here (value not shown)",
    )


def secrets_scan(layer: Layer) -> list[ValidationIssue]:
    """Return an issue for every key or string in `layer` that looks like a plaintext secret."""
    return list(_scan(dict(layer.patch), "", layer.name))
