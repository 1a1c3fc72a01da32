"""Tenant slug rules and the schema name derived from a slug.

The slug appears in URLs (`/t/<slug>/`) and, with hyphens turned into
underscores, as the PostgreSQL schema name, so it must be a safe unquoted
identifier: lower case, starting with a letter, at most 50 characters (well
under PostgreSQL's 63-byte identifier limit), and never a name PostgreSQL or
Keyplane reserves.
"""

import re

from django.core.exceptions import ValidationError

SLUG_MAX_LENGTH = 50
SLUG_MIN_LENGTH = 3
_SLUG_PATTERN = re.compile(r"^[a-z][a-z0-9-]*[a-z0-9]$")
_RESERVED_SLUGS = frozenset(
    {"public", "information_schema", "admin", "api", "static", "default", "template", "t"}
)
_RESERVED_PREFIXES = ("pg_", "pg-")


def validate_tenant_slug(slug: str) -> None:
    """Raise ValidationError naming the rule that `slug` breaks."""
    if len(slug) < SLUG_MIN_LENGTH or len(slug) > SLUG_MAX_LENGTH:
        raise ValidationError(
            f"Tenant slug {slug!r} has {len(slug)} characters; "
            f"use {SLUG_MIN_LENGTH} to {SLUG_MAX_LENGTH}.",
            code="slug_length",
        )
    if slug != slug.lower():
        raise ValidationError(
            f"Tenant slug {slug!r} contains upper case letters; use lower case only.",
            code="slug_case",
        )
    if not slug[0].isalpha():
        raise ValidationError(
            f"Tenant slug {slug!r} starts with {slug[0]!r}; it must start with a letter.",
            code="slug_start",
        )
    if not _SLUG_PATTERN.match(slug) or "--" in slug:
        raise ValidationError(
            f"Tenant slug {slug!r} may contain only a-z, 0-9 and single hyphens, "
            "and must not end with a hyphen.",
            code="slug_characters",
        )
    if slug in _RESERVED_SLUGS or slug.startswith(_RESERVED_PREFIXES):
        raise ValidationError(
            f"Tenant slug {slug!r} is reserved (public, information_schema, pg_* and "
            "route names); choose another.",
            code="slug_reserved",
        )


def schema_name_for_slug(slug: str) -> str:
    """Return the PostgreSQL schema name for a valid slug."""
    return slug.replace("-", "_")
