"""A small product schema shared by the overlay tests."""

import copy
from typing import Any

DESKTOP_SCHEMA: dict[str, Any] = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "type": "object",
    "additionalProperties": False,
    "required": ["ui"],
    "properties": {
        "ui": {
            "type": "object",
            "additionalProperties": False,
            "required": ["theme"],
            "properties": {
                "theme": {"enum": ["light", "dark"]},
                "locale": {"type": "string", "pattern": "^[a-z]{2}(-[A-Z]{2})?$"},
                "editor": {
                    "type": "object",
                    "additionalProperties": False,
                    "properties": {
                        "font_size": {"type": "integer", "minimum": 8, "maximum": 32},
                        "plugins": {"type": "array", "items": {"type": "string"}},
                    },
                },
            },
        },
        "auth": {
            "type": "object",
            "additionalProperties": False,
            "properties": {
                "sso_enabled": {"type": "boolean", "x-requires-entitlement": "sso"},
                "vpn_psk": {"type": "string", "x-secret": True},
            },
        },
        "support_url": {"type": "string"},
        "telemetry": {
            "enum": ["off", "basic", "full"],
            "x-region-values": {"eu": ["off", "basic"]},
        },
    },
}

DESKTOP_DEFAULTS: dict[str, Any] = {
    "ui": {"theme": "light", "editor": {"font_size": 12, "plugins": ["spell", "git"]}},
    "auth": {"sso_enabled": False},
    "telemetry": "basic",
}


def desktop_schema() -> dict[str, Any]:
    return copy.deepcopy(DESKTOP_SCHEMA)


def desktop_defaults() -> dict[str, Any]:
    return copy.deepcopy(DESKTOP_DEFAULTS)
